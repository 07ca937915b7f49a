"""Periods with actuals: a full-year budget against actuals to date compares like with like.

A budget for every month against actuals to March would make every total look favourable by the budget of
April–December. The report's headline, drivers and lines, the charts and the pack all compare only the periods
that have actuals when later periods have a budget only (unless the caller chose the periods); the by-period
view stays complete, for the projection.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from analyst.dataset import PERIOD, Dataset
from analyst.engine import prepared as core
from analyst.engine.options import AnalysisOptions
from analyst.engine.periods import period_view

Filters = Mapping[str, Sequence[str] | str]


def periods_with_actuals(ds: Dataset, opts: AnalysisOptions | None, filters: Filters | None) -> Filters | None:
    """``filters`` limited to the periods that have actuals, when some periods have a budget only.

    ``filters`` as given when the caller chose the periods (or quarters), when every period has actuals, or when
    none has."""
    if not ds.has_period:
        return filters
    opts = opts if opts is not None else AnalysisOptions()
    prep = core.prepare(ds, opts)
    if filters and any(core.resolve_key(prep, key) in (PERIOD, core.QUARTER_KEY) for key in filters):
        return filters  # the caller chose the periods
    rows = period_view(ds, filters=filters, opts=opts).to_dict()["periods"]
    booked = [str(r[PERIOD]) for r in rows if r.get("has_actual", True)]
    if not booked or len(booked) == len(rows):
        return filters
    return {**(filters or {}), PERIOD: booked}


@dataclass(frozen=True, slots=True, eq=False)
class ToDate:
    """The dataset limited to the periods with actuals (``compared``); ``budget_only`` are the later periods
    left out, which have a reference and no actual."""

    dataset: Dataset = field(repr=False)
    compared: tuple[str, ...]
    budget_only: tuple[str, ...]

    def sentence(self) -> str:
        """The one line a reader needs near the headline."""
        return f"compared to date: {_span(self.compared)}; {_span(self.budget_only)} " + (
            "has budget only" if len(self.budget_only) == 1 else "have budget only"
        )

    def to_dict(self) -> dict[str, object]:
        return {"to_date": True, "compared": list(self.compared), "budget_only": list(self.budget_only)}


def _span(periods: Sequence[str]) -> str:
    return periods[0] if len(periods) == 1 else f"{periods[0]} – {periods[-1]}"


def to_date(ds: Dataset, opts: AnalysisOptions | None = None) -> ToDate | None:
    """``ds`` without the periods that have a budget only, or ``None`` when there is nothing to leave out."""
    chosen = periods_with_actuals(ds, opts, None)
    if not chosen:
        return None
    booked = set(chosen[PERIOD])
    period = ds.frame[PERIOD]
    keep = period.astype("str").isin(booked).to_numpy() & period.notna().to_numpy()
    categories = [str(p) for p in period.cat.categories]
    frame = ds.frame[keep].reset_index(drop=True)
    frame[PERIOD] = frame[PERIOD].cat.remove_unused_categories()
    return ToDate(
        dataset=replace(ds, frame=frame),
        compared=tuple(p for p in categories if p in booked),
        budget_only=tuple(p for p in categories if p not in booked),
    )
