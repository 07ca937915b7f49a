"""The tidy frame: one row per line (and period) with actual and reference side by side, stacked from period
columns or pivoted from scenario rows; every step is columnar."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from analyst.dataset import (
    ACCOUNT_TYPE,
    ACTUAL,
    ACTUAL_QTY,
    PERIOD,
    REFERENCE,
    REFERENCE_QTY,
)
from analyst.ingest import periods
from analyst.ingest.columns import Columns
from analyst.ingest.exclusions import Exclusions
from analyst.ingest.plan import METRIC, SECTION_HEADINGS, Plan
from analyst.ingest.stated_variance import check_variance

BLANK_LABEL = "(blank)"


def _dimension(columns: Columns, name: str, keep: np.ndarray | None) -> pd.Series:
    """A text column as stripped labels (QuickBooks indents accounts) with empty cells named; the column
    itself when it is clean already."""
    column = columns.raw[name]
    labels = [str(u) for u in columns.uniques(name)]
    clean = not column.hasnans and all(label == label.strip() and label for label in labels)
    if clean and column.dtype == "str":
        picked = column if keep is None else column[keep]
        return picked.reset_index(drop=True)
    codes, uniques = columns.factorized(name)
    texts = pd.Series(np.asarray(uniques, dtype=object)).astype("str").str.strip()
    texts = texts.mask(texts == "", BLANK_LABEL)
    table = np.append(texts.to_numpy(dtype=object), BLANK_LABEL)
    row_codes = codes if keep is None else codes[keep]
    return pd.Series(table[row_codes], dtype="str")  # code -1 (empty cell) picks the trailing BLANK_LABEL


def build_frame(columns: Columns, plan: Plan, exclusions: Exclusions) -> tuple[pd.DataFrame, list[str]]:
    """The tidy frame for ``plan`` over the kept rows, and warnings about what was read."""
    raw = columns.raw
    keep = exclusions.keep
    warnings: list[str] = []

    def take(values: pd.Series | np.ndarray) -> np.ndarray | pd.Series:
        if keep is None:
            return values
        return values[keep]

    source_dims = [d for d in plan.dimensions if d != METRIC]
    dims = {d: _dimension(columns, d, keep) for d in source_dims}
    if plan.account_type and plan.account_type in raw.columns:
        # Carried like a dimension so that every shape keeps it beside its line.
        dims[ACCOUNT_TYPE] = _dimension(columns, plan.account_type, keep)
    elif plan.account_type == SECTION_HEADINGS and exclusions.section_types is not None:
        types = exclusions.section_types if keep is None else exclusions.section_types[keep]
        dims[ACCOUNT_TYPE] = pd.Series(types, dtype="str").fillna(BLANK_LABEL)
    period: pd.Series | None = None
    months = columns.iso_months(plan.period) if plan.period and plan.period in raw.columns else None
    if months is not None:
        # ISO dates: the codes index the months in calendar order already, and every cell has one.
        month_codes = months.codes if keep is None else months.codes[keep]
        period = pd.Series(
            pd.Categorical.from_codes(
                month_codes, categories=pd.Index(months.labels, dtype="str"), ordered=True, validate=False
            )
        )
    elif plan.period and plan.period in raw.columns:
        codes, uniques, labels = columns.period_codes(plan.period)
        if not any(label is not None for label in labels):
            # A column the file itself calls "period" ("P01", "Week 3"): its own labels, in the file's order.
            labels = [None if u is None or u != u else str(u).strip() or None for u in uniques]
        period_values: Sequence[object] | pd.Index = uniques
        if plan.period_year:
            codes, period_values, labels = _year_months(columns, plan.period_year, codes, labels)
        categorical, unreadable = periods.to_period(codes if keep is None else codes[keep], period_values, labels)
        period = pd.Series(categorical)
        if unreadable:
            warnings.append(f"{unreadable} row(s) have a '{plan.period}' value that is not a month or a date.")

    def numbers(name: str | None) -> np.ndarray:
        if name is None:
            return np.full(int(keep.sum()) if keep is not None else len(raw), np.nan)
        return np.asarray(take(columns.numbers[name].values))

    out: dict[str, object] = {}
    if plan.shape == "wide":
        out = {**dims}
        if period is not None:
            out[PERIOD] = period
        out[ACTUAL] = numbers(plan.actual)
        out[REFERENCE] = numbers(plan.reference)
        if plan.actual_qty and plan.reference_qty:
            out[ACTUAL_QTY] = numbers(plan.actual_qty)
            out[REFERENCE_QTY] = numbers(plan.reference_qty)
    elif plan.pairs:
        labels = list(plan.pairs)
        rows = len(next(iter(dims.values()))) if dims else len(numbers(None))
        out = {d: _repeat(s, len(labels)) for d, s in dims.items()}
        stacked_label = pd.Categorical.from_codes(
            np.repeat(np.arange(len(labels)), rows),
            categories=pd.Index(labels, dtype="str"),
            ordered=plan.shape == "wide_by_period",
        )
        if plan.shape == "wide_by_period":
            out[PERIOD] = stacked_label
        else:
            out[METRIC] = pd.Series(stacked_label).cat.set_categories(labels, ordered=False)
            if period is not None:
                out[PERIOD] = _repeat(period, len(labels))
        out[ACTUAL] = np.concatenate([numbers(a) for a, _ in plan.pairs.values()])
        out[REFERENCE] = np.concatenate([numbers(r) for _, r in plan.pairs.values()])
    else:
        out = _pivot_long(columns, plan, dims, period, numbers, keep, warnings)
    frame = pd.DataFrame(out, copy=False)
    if plan.shape == "wide" and plan.variance:
        warnings.extend(check_variance(columns, plan, keep))
    return frame, warnings


def _year_months(
    columns: Columns, year: str, month_codes: np.ndarray, month_labels: list[str | None]
) -> tuple[np.ndarray, list[object], list[str | None]]:
    """A month-name column and a year column as one column of real periods ("2024" + "Jan" → "2024-01"):
    the pairs are coded once (years × months), never labelled row by row."""
    year_codes, _ = columns.factorized(year)
    year_labels = columns.period_labels(year)
    months = len(month_labels)
    combined = np.where((year_codes >= 0) & (month_codes >= 0), year_codes.astype(np.int64) * months + month_codes, -1)
    labels: list[str | None] = []
    for y in year_labels:
        digits = periods.year_digits(y)
        for m in month_labels:
            labels.append(None if digits is None or m is None else f"{digits}-{periods.MONTHS.index(m) + 1:02d}")
    return combined, list(range(len(labels))), labels


def _repeat(values: pd.Series, times: int) -> pd.Series:
    """The column written ``times`` times one after another."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = np.tile(values.cat.codes.to_numpy(), times)
        return pd.Series(pd.Categorical.from_codes(codes, dtype=values.dtype))
    return values.take(np.tile(np.arange(len(values)), times)).reset_index(drop=True)


def _pivot_long(
    columns: Columns,
    plan: Plan,
    dims: dict[str, pd.Series],
    period: pd.Series | None,
    numbers: Callable[[str | None], np.ndarray],
    keep: np.ndarray | None,
    warnings: list[str],
) -> dict[str, object]:
    """Long rows (one per scenario) → one row per line with actual and reference side by side. Several rows
    of one line and scenario (postings, a split line) are added together, as a pivot table would, and the
    warnings say so."""
    assert plan.scenario is not None
    codes, uniques = columns.factorized(plan.scenario)
    values_text = pd.Series(np.asarray(uniques, dtype=object)).astype("str").str.strip().to_numpy(dtype=object)
    actual_codes = np.append(values_text == plan.actual, False)
    reference_codes = np.append(values_text == plan.reference, False)
    row_codes = codes if keep is None else codes[keep]
    is_actual = actual_codes[row_codes]
    is_reference = reference_codes[row_codes]
    scenario = row_codes
    keys: dict[str, pd.Series] = dict(dims)
    if plan.period_columns:
        labels = list(plan.period_columns)
        rows = len(scenario)
        keys = {d: _repeat(s, len(labels)) for d, s in dims.items()}
        keys[PERIOD] = pd.Series(
            pd.Categorical.from_codes(
                np.repeat(np.arange(len(labels)), rows),
                categories=pd.Index(labels, dtype="str"),
                ordered=True,
            )
        )
        amount = np.concatenate([numbers(c) for c in plan.period_columns.values()])
        quantity = None
        is_actual = np.tile(is_actual, len(labels))
        is_reference = np.tile(is_reference, len(labels))
    else:
        if period is not None:
            keys[PERIOD] = period
        amount = numbers(plan.amount)
        quantity = numbers(plan.quantity) if plan.quantity else None
    values: dict[str, np.ndarray] = {
        ACTUAL: np.where(is_actual, amount, np.nan),
        REFERENCE: np.where(is_reference, amount, np.nan),
    }
    if quantity is not None:
        values[ACTUAL_QTY] = np.where(is_actual, quantity, np.nan)
        values[REFERENCE_QTY] = np.where(is_reference, quantity, np.nan)
    frame = pd.DataFrame({**keys, **values})
    frame = frame[is_actual | is_reference]
    if not keys:
        return {name: [frame[name].sum(min_count=1)] for name in values}
    grouped = frame.groupby(list(keys), sort=False, observed=True, dropna=False)[list(values)].sum(min_count=1)
    result = grouped.reset_index()
    for name, label in ((ACTUAL, plan.actual), (REFERENCE, plan.reference)):
        # Rows with an amount against the lines that got one: more rows than lines means some were added up.
        rows_with_amount = int(frame[name].notna().sum())
        lines_with_amount = int(result[name].notna().sum())
        if rows_with_amount > lines_with_amount:
            warnings.append(
                f"{rows_with_amount - lines_with_amount:,} '{label}' row(s) repeat a line already seen "
                f"(same {', '.join(keys)}); "
                "their amounts were added together, as a pivot table would."
            )
    if PERIOD in result.columns and not isinstance(result[PERIOD].dtype, pd.CategoricalDtype):
        result[PERIOD] = pd.Categorical(result[PERIOD], categories=keys[PERIOD].cat.categories, ordered=True)
    return {name: result[name] for name in result.columns}
