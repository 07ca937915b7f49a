"""Period views: by period, year-to-date, flux, run-rate and a full-year projection.

Definitions (stated so that an answer can quote them):
- *so far*: the periods that have any actual (a non-missing, non-zero actual on at least one line);
- *YTD*: cumulative sums within each calendar year found in the period labels (one year when labels carry
none);
- *flux*: change from the previous period, of the actual and of the variance;
- *run-rate*: average actual per period so far × periods in a year (12 for months, 4 for quarters);
- *full-year projection*: actual so far + reference of the year's remaining periods (those without actuals).
Run-rate and projection are for the latest year that has actuals.

Annual periods (``2023``, ``FY2023``: a year or fiscal-year column) are compared year by year: flux is the change
from the previous year; YTD, run-rate and the full-year projection do not apply (each period *is* a year), and
the view says so in its notes.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analyst.dataset import PERIOD, Dataset
from analyst.engine import prepared as core
from analyst.engine.errors import AnalysisError
from analyst.engine.options import AnalysisOptions, Materiality
from analyst.engine.variance import Filters

_YEAR_RE = re.compile(r"(?<!\d)((?:19|20)\d{2})(?!\d)")
_MONTH_RE = re.compile(
    r"(?<!\d)(?:19|20)\d{2}[-/.](?:0?[1-9]|1[0-2])(?!\d)|(?<!\d)(?:0?[1-9]|1[0-2])[-/.](?:19|20)\d{2}(?!\d)"
    r"|^(?:jan|feb|m[aä]r|apr|ma[iy]|jun|jul|aug|sep|o[ck]t|nov|de[cz]|янв|фев|мар|апр|ма[йя]|июн|июл|авг|сен|окт"
    r"|ноя|дек)",
    re.IGNORECASE,
)
_ANNUAL_RE = re.compile(r"^\s*(?:FY|ФГ|GJ)?\s*(?:19|20)\d\d\s*$", re.IGNORECASE)


def is_annual(labels: Sequence[str]) -> bool:
    """Period labels that are years ("2023", "FY2023")."""
    return bool(labels) and all(_ANNUAL_RE.match(label) for label in labels)


def year_of(label: str) -> str:
    """The year a period label belongs to ("2025-03" → "2025"; "" when it names none)."""
    found = _YEAR_RE.search(label)
    return found.group(1) if found else ""


_QUARTER_RE = re.compile(r"\bq[1-4]\b|\b[1-4]\s*q\b|[1-4]\s*кв|кв\w*\s*[1-4]|quartal", re.IGNORECASE)


def periods_per_year(labels: Sequence[str]) -> int | None:
    """12 for monthly labels, 4 for quarterly ones, None when the labels say neither."""
    if not labels:
        return None
    if all(_MONTH_RE.search(label.strip()) for label in labels):
        return 12
    if all(_QUARTER_RE.search(label) for label in labels):
        return 4
    return None


@dataclass(frozen=True, slots=True, eq=False)
class PeriodView:
    """Per-period variance with YTD and flux columns, plus run-rate and projection for the latest year."""

    filters: dict[str, list[str]]
    table: pd.DataFrame  # one row per period, chronological; minor units
    year: str | None
    periods_in_year: int
    periods_so_far: tuple[str, ...]
    ytd_actual: float
    ytd_reference: float
    run_rate: float | None
    full_year_reference: float
    full_year_projection: float
    projection_variance: float  # projection − full-year reference
    notes: tuple[str, ...]
    prep: core.Prepared = field(repr=False)
    materiality: Materiality
    annual: bool = False  # periods are years: no YTD, run-rate or projection

    def to_dict(self, max_rows: int | None = None) -> dict[str, Any]:
        scale = self.prep.scale
        rows = core.records(self.table, [PERIOD], self.prep, self.materiality, with_impact=True)
        extra = self.table[["__ytd_a", "__ytd_r", "__flux_a", "__flux_v", "__prev_a", "__has_actual"]]
        previous_has_actual = False
        for row, (ytd_a, ytd_r, flux_a, flux_v, prev_a, has_actual) in zip(
            rows, extra.itertuples(index=False, name=None), strict=True
        ):
            row["ytd_actual"] = core.money(ytd_a, scale)
            row["ytd_reference"] = core.money(ytd_r, scale)
            row["ytd_variance"] = core.money(ytd_a - ytd_r, scale)
            row["ytd_variance_pct"] = core.percent(ytd_a - ytd_r, ytd_r)
            # A period without actuals (a future month with budget only), or right after one, has no flux: the
            # change from or to "nothing booked yet" is not a movement of the actuals.
            first = prev_a == _NO_PREVIOUS or not has_actual or not previous_has_actual
            previous_has_actual = bool(has_actual)
            row["flux_actual"] = None if first else core.money(flux_a, scale)
            row["flux_actual_pct"] = None if first else core.percent(flux_a, prev_a)
            row["flux_variance"] = None if first else core.money(flux_v, scale)
            row["has_actual"] = bool(has_actual)
        if max_rows is not None and len(rows) > max_rows:
            # Keep the latest periods; the earlier ones are summed so totals still reconcile.
            earlier = self.table.iloc[: len(rows) - max_rows]
            a, r = int(earlier[core.A].sum()), int(earlier[core.R].sum())
            summary = {PERIOD: f"{len(earlier)} earlier", **core.amounts(a, r, scale), "more": len(earlier)}
            rows = [summary, *rows[len(rows) - max_rows :]]
        return {
            "filters": self.filters,
            "periods": rows,
            "year": self.year,
            "periods_in_year": self.periods_in_year,
            "periods_so_far": list(self.periods_so_far),
            "ytd_actual": self.ytd_actual,
            "ytd_reference": self.ytd_reference,
            "ytd_variance": round(self.ytd_actual - self.ytd_reference, scale) + 0.0,
            "run_rate": self.run_rate,
            "full_year_reference": self.full_year_reference,
            "full_year_projection": self.full_year_projection,
            "projection_variance": self.projection_variance,
            "notes": list(self.notes),
            "annual": self.annual,
        }


_NO_PREVIOUS = np.iinfo(np.int64).min


def period_view(
    ds: Dataset, *, filters: Filters | None = None, opts: AnalysisOptions | None = None
) -> PeriodView:
    """By period, YTD, flux, run-rate and full-year projection (see the module docstring for definitions)."""
    opts = opts if opts is not None else AnalysisOptions()
    prep = core.prepare(ds, opts)
    if PERIOD not in prep.frame.columns:
        raise AnalysisError(
            "This dataset has no period column (month, quarter, date), "
            "so there is no trend, YTD or projection. "
            f"Break it down by one of: {', '.join(prep.keys)}."
        )
    mask = core.filter_mask(prep, filters)
    table = core.finish(core.aggregate(prep, [PERIOD], mask), prep, opts.materiality)
    table = core.order_by_keys(table, [PERIOD])
    if table.empty:
        raise AnalysisError("There are no rows, so there is no period view.")
    labels = [str(p) for p in table[PERIOD]]
    actual = table[core.A].to_numpy(np.int64)
    reference = table[core.R].to_numpy(np.int64)
    variance = actual - reference

    # Which periods have any actual: tested per line, so +x and −x on two lines still count as actuals.
    frame = prep.frame if mask is None else prep.frame[mask]
    categories = list(prep.frame[PERIOD].cat.categories)
    period_codes = frame[PERIOD].cat.codes.to_numpy()
    with_actual_codes = core.present_codes(period_codes, len(categories), frame[core.A].to_numpy() != 0)
    with_actual = {str(categories[c]) for c in with_actual_codes}
    has_actual = np.array([label in with_actual for label in labels], dtype=bool)

    years = [m.group(1) if (m := _YEAR_RE.search(label)) else "" for label in labels]
    year_ids = pd.factorize(pd.Series(years, dtype=object))[0]
    table["__ytd_a"] = pd.Series(actual).groupby(year_ids).cumsum().to_numpy()
    table["__ytd_r"] = pd.Series(reference).groupby(year_ids).cumsum().to_numpy()
    # Flux against the previous period; the first period has none (marked by _NO_PREVIOUS in __prev_a).
    prev_a = np.concatenate([[0], actual[:-1]])
    prev_v = np.concatenate([[0], variance[:-1]])
    table["__flux_a"] = actual - prev_a
    table["__flux_v"] = variance - prev_v
    prev_a[:1] = _NO_PREVIOUS
    table["__prev_a"] = prev_a
    table["__has_actual"] = has_actual

    notes: list[str] = []
    if is_annual(labels):
        return _annual_view(prep, table, labels, has_actual, filters, opts)
    # The latest year with actuals (else the latest year) is the one projected.
    year_of_interest = years[int(np.flatnonzero(has_actual)[-1])] if has_actual.any() else years[-1]
    in_year = np.array([y == year_of_interest for y in years], dtype=bool)
    so_far = in_year & has_actual
    remaining = in_year & ~has_actual
    per_year = periods_per_year([label for label, keep in zip(labels, in_year, strict=True) if keep])
    if per_year is None:
        per_year = int(in_year.sum())
        notes.append(
            "Period labels are neither months nor quarters; "
            f"a year is taken as the {per_year} periods present."
        )
    elif int(in_year.sum()) < per_year:
        notes.append(
            f"The data covers {int(in_year.sum())} of {per_year} periods of the year; the projection adds no "
            "reference for the periods that are not in the file."
        )
    ytd_a = int(actual[so_far].sum())
    ytd_r = int(reference[so_far].sum())
    n_so_far = int(so_far.sum())
    scale = prep.scale
    run_rate = None if n_so_far == 0 else round(ytd_a / n_so_far * per_year / 10**scale, scale)
    if n_so_far == 0:
        notes.append("No period has actuals yet, so there is no run-rate.")
    projection = ytd_a + int(reference[remaining].sum())
    full_year_reference = int(reference[in_year].sum())
    return PeriodView(
        filters=core.normalise_filters(filters),
        table=table,
        year=year_of_interest or None,
        periods_in_year=per_year,
        periods_so_far=tuple(label for label, keep in zip(labels, so_far, strict=True) if keep),
        ytd_actual=core.money(ytd_a, scale),
        ytd_reference=core.money(ytd_r, scale),
        run_rate=run_rate,
        full_year_reference=core.money(full_year_reference, scale),
        full_year_projection=core.money(projection, scale),
        projection_variance=core.money(projection - full_year_reference, scale),
        notes=tuple(notes),
        prep=prep,
        materiality=opts.materiality,
    )


def _annual_view(
    prep: core.Prepared,
    table: pd.DataFrame,
    labels: list[str],
    has_actual: np.ndarray,
    filters: Filters | None,
    opts: AnalysisOptions,
) -> PeriodView:
    """Years compared one by one: each year's YTD is the year itself, flux is year over year, and there is no
    run-rate or projection (a year with actuals is complete as far as the file says)."""
    table["__ytd_a"] = table[core.A].to_numpy(np.int64)
    table["__ytd_r"] = table[core.R].to_numpy(np.int64)
    scale = prep.scale
    latest = int(np.flatnonzero(has_actual)[-1]) if has_actual.any() else len(labels) - 1
    actual = int(table[core.A].iloc[latest])
    reference = int(table[core.R].iloc[latest])
    return PeriodView(
        filters=core.normalise_filters(filters),
        table=table,
        year=labels[latest],
        periods_in_year=1,
        periods_so_far=tuple(label for label, keep in zip(labels, has_actual, strict=True) if keep),
        ytd_actual=core.money(actual, scale),
        ytd_reference=core.money(reference, scale),
        run_rate=None,
        full_year_reference=core.money(reference, scale),
        full_year_projection=core.money(actual, scale),
        projection_variance=core.money(actual - reference, scale),
        notes=(
            "The periods are years: each is compared whole and flux is year over year; year-to-date, run-rate "
            "and a full-year projection do not apply.",
        ),
        prep=prep,
        materiality=opts.materiality,
        annual=True,
    )
