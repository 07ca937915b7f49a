"""Rows to leave out of the sums: totals and subtotals (labelled or not), computed lines (gross profit, net
income: by label, or by their arithmetic) and section headings, each listed with its reason; and the account
type that section headings give the lines below them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analyst.dataset import (
    ExcludedRow,
)
from analyst.ingest import totals
from analyst.ingest.columns import Columns
from analyst.ingest.plan import Plan, amount_columns

MAX_LISTED_EXCLUSIONS = 500


@dataclass(slots=True)
class Exclusions:
    keep: np.ndarray | None  # boolean mask over raw rows; None keeps everything
    rows: list[ExcludedRow]
    total: int
    # Per raw row, the P&L section heading above it ("Expenses"), when the file has such headings and no
    # type column: the lines' account type. (See :func:`section_types`.)
    section_types: np.ndarray | None = None


def find_exclusions(columns: Columns, plan: Plan) -> Exclusions:
    """Totals, subtotals and computed lines (by label, in any text column) and section headings (no
    amounts)."""
    n = len(columns.raw)
    total: np.ndarray | None = None
    computed: np.ndarray | None = None
    for name in columns.text:
        if name == plan.period and columns.iso_months(name) is not None:
            continue  # dates, never a total's label
        total_labels, computed_labels = totals.label_kinds(columns.uniques(name))
        # Only a column that has such labels pays for a per-row pass.
        if total_labels:
            hits = columns.raw[name].isin(total_labels).to_numpy(dtype=bool)
            total = hits if total is None else total | hits
        if computed_labels:
            hits = columns.raw[name].isin(computed_labels).to_numpy(dtype=bool)
            computed = hits if computed is None else computed | hits
    if total is not None and computed is not None:
        computed = computed & ~total  # (isin's arrays may be read-only views)
    amount_cols = amount_columns(plan)
    heading: np.ndarray | None = None
    if amount_cols:
        heading = np.isnan(columns.numbers[amount_cols[0]].values)
        for name in amount_cols[1:]:
            heading &= np.isnan(columns.numbers[name].values)
        for labelled in (total, computed):
            if labelled is not None:
                heading &= ~labelled
    unlabelled = _unlabelled_subtotals(columns, plan, amount_cols, total, computed, heading)
    if unlabelled is not None:
        total = unlabelled if total is None else total | unlabelled
    sections = None
    label = plan.account
    if heading is not None and plan.account_type is None and label is not None and label in columns.raw.columns:
        sections = section_types(columns, label, heading, total)
    excluded = heading if heading is not None else np.zeros(n, dtype=bool)
    for labelled in (total, computed):
        if labelled is not None:
            excluded = excluded | labelled
    arithmetic = _computed_by_arithmetic(columns, plan, amount_cols, excluded, sections)
    if arithmetic is not None:
        computed = arithmetic if computed is None else computed | arithmetic
        excluded = excluded | arithmetic
    count = int(np.count_nonzero(excluded))
    if count == 0:
        return Exclusions(None, [], 0, sections)
    positions = np.flatnonzero(excluded)[:MAX_LISTED_EXCLUSIONS]
    label_cols = [c for c in ([plan.account] if plan.account else []) + columns.text if c in columns.raw.columns]
    labels = _row_labels(columns.raw, label_cols, positions)
    line_numbers = columns.raw.index.to_numpy()[positions]
    listed = []
    for position, line, label in zip(positions, line_numbers, labels, strict=True):
        if unlabelled is not None and unlabelled[position]:
            reason = "subtotal without a label (equals the sum of the lines above it)"
        elif total is not None and total[position]:
            reason = "total or subtotal row"
        elif arithmetic is not None and arithmetic[position]:
            reason = "computed line: its amounts equal revenue minus costs of the lines above it, not an account"
        elif computed is not None and computed[position]:
            reason = "computed line (sums other lines), not an account"
        else:
            reason = "section heading or line without amounts"
        listed.append(ExcludedRow(source_row=int(line), label=label, reason=reason))
    return Exclusions(~excluded, listed, count, sections)


def _computed_by_arithmetic(
    columns: Columns, plan: Plan, amount_cols: list[str], excluded: np.ndarray, sections: np.ndarray | None
) -> np.ndarray | None:
    """ "Net …" rows (Net Revenue, Net Operating Revenue, Net Result, Чистая прибыль) whose amounts equal, in every
    amount column, revenue minus costs of the account lines above them (or their plain sum, when the file writes
    costs as negatives). The label alone cannot tell: "Net Revenue" is net sales in one export and net income in
    another, so the arithmetic decides. Line types come from the section headings, else the type column, else the
    account labels; all of it works on distinct labels and cumulative sums."""
    label = plan.account
    if (
        label is None
        or label not in columns.raw.columns
        or not amount_cols
        or plan.shape not in ("wide", "wide_by_period")
    ):
        return None
    uniques = columns.uniques(label)
    if not any(totals.NET_LINE_RE.match(str(u)) for u in uniques):
        return None
    from analyst.engine.accounts import classify_label
    from analyst.engine.options import AccountType

    codes, factorized = columns.factorized(label)
    is_net = np.append([bool(totals.NET_LINE_RE.match(str(u))) for u in factorized], False)[codes]
    candidate = is_net & ~excluded
    if not candidate.any():
        return None
    sign_of = {AccountType.REVENUE: 1.0, AccountType.EXPENSE: -1.0, AccountType.CONTRA_REVENUE: -1.0}

    def signs_for(values: np.ndarray, row_codes: np.ndarray) -> np.ndarray:
        per_value = np.array([sign_of.get(classify_label(str(v)), 0.0) for v in values] + [0.0])
        return per_value[row_codes]

    if sections is not None:
        texts, row_codes = np.unique(np.where(pd.isna(sections), "", sections.astype(str)), return_inverse=True)
        sign = signs_for(texts, row_codes)
    elif plan.account_type and plan.account_type in columns.raw.columns:
        type_codes, type_values = columns.factorized(plan.account_type)
        sign = signs_for(np.asarray(type_values, dtype=object), type_codes)
    else:
        sign = signs_for(np.asarray(factorized, dtype=object), codes)
    line = ~excluded & ~candidate & (sign != 0)
    values = np.column_stack([columns.numbers[c].values for c in amount_cols])
    filled = ~np.isnan(values)
    amounts = np.where(filled & line[:, None], values, 0.0)
    difference = np.cumsum(amounts * sign[:, None], axis=0)
    plain = np.cumsum(amounts, axis=0)
    has_both = np.cumsum(line & (sign > 0)) > 0
    has_both &= np.cumsum(line & (sign < 0)) > 0
    own = np.where(filled, values, 0.0)
    at = np.flatnonzero(candidate & has_both & filled.any(axis=1))
    if at.size == 0:
        return None
    close = np.isclose(difference[at], own[at], rtol=1e-9, atol=0.005).all(axis=1)
    close |= np.isclose(plain[at], own[at], rtol=1e-9, atol=0.005).all(axis=1)
    found = np.zeros(len(candidate), dtype=bool)
    found[at[close]] = True
    return found if found.any() else None


def _unlabelled_subtotals(
    columns: Columns,
    plan: Plan,
    amount_cols: list[str],
    *labelled: np.ndarray | None,
) -> np.ndarray | None:
    """Rows with amounts but an empty account cell whose amounts equal, in every amount column, the sum of the
    account lines since the previous subtotal (a group subtotal) or of all account lines above (a grand total).
    Exports from Excel pivots and many ERPs write subtotals this way, with the label only in an outer column.

    At least two lines must add up to it: a blank-account row equal to the single line above it may be a
    genuine line, so it is kept. Vectorised with cumulative sums; a file without blank accounts pays one
    ``isna``."""
    label = plan.account
    if label is None or label not in columns.raw.columns or not amount_cols:
        return None
    blank = columns.raw[label].isna().to_numpy(dtype=bool)
    if not blank.any():
        return None
    values = np.column_stack([columns.numbers[c].values for c in amount_cols])
    filled = ~np.isnan(values)
    breaks = np.zeros(len(blank), dtype=bool)  # rows that end a group: labelled totals and headings
    for mask in labelled:
        if mask is not None:
            breaks |= mask
    candidate = blank & filled.any(axis=1) & ~breaks
    if not candidate.any():
        return None
    line = ~blank & ~breaks
    amounts = np.where(filled & line[:, None], values, 0.0)
    cumulative = np.cumsum(amounts, axis=0)
    lines_so_far = np.cumsum(line)
    rows = np.arange(len(blank))
    last_break = np.maximum.accumulate(np.where(breaks | candidate, rows, -1))
    at = np.flatnonzero(candidate)
    start = np.where(at > 0, last_break[np.maximum(at - 1, 0)], -1)
    start_sum = np.where((start >= 0)[:, None], cumulative[np.maximum(start, 0)], 0.0)
    start_lines = np.where(start >= 0, lines_so_far[np.maximum(start, 0)], 0)
    own = np.where(filled[at], values[at], 0.0)

    def matches(sums: np.ndarray) -> np.ndarray:
        return np.isclose(sums, own, rtol=1e-9, atol=0.005).all(axis=1)

    group = matches(cumulative[at] - start_sum) & (lines_so_far[at] - start_lines >= 2)
    everything = matches(cumulative[at]) & (lines_so_far[at] >= 2)
    found = np.zeros(len(blank), dtype=bool)
    found[at[group | everything]] = True
    return found if found.any() else None


def section_types(columns: Columns, label: str, heading: np.ndarray, total: np.ndarray | None) -> np.ndarray | None:
    """Each row's enclosing P&L section in a QuickBooks-style report: the nearest section heading above it
    ("Income", "Cost of Goods Sold", "Expenses", "Доходы", "Aufwendungen"), until that section's total row
    ("Total Expenses"); ``None`` outside any section. ``None`` for the whole file when it has no such
    headings.

    A section heading is a row without amounts whose ``label`` is a section word; the carry is a forward
    fill over the rows, so nothing loops over them.
    """
    if not heading.any():
        return None
    if not totals.section_kinds(columns.uniques(label))[0].any():
        return None  # (checked on the distinct labels first: no per-row codes for a file without sections)
    codes, factorized = columns.factorized(label)
    opens, closes = totals.section_kinds(list(factorized))  # in the codes' order
    texts = np.array([str(u).strip() for u in factorized] + [""], dtype=object)
    row_opens = np.append(opens, False)[codes] & heading  # code -1 (empty label) picks the trailing False
    if not row_opens.any():
        return None
    marks = pd.Series(np.full(len(codes), None, dtype=object))
    if total is not None:
        row_closes = np.append(closes, False)[codes] & total
        marks[row_closes] = ""  # the section ends at its total row
    marks[row_opens] = texts[codes[row_opens]]
    carried = marks.ffill().to_numpy(dtype=object, copy=True)
    carried[carried == ""] = None
    return carried


def _row_labels(raw: pd.DataFrame, label_cols: list[str], positions: np.ndarray) -> list[str]:
    labels = [""] * len(positions)
    for name in dict.fromkeys(label_cols):
        values = raw[name].to_numpy(dtype=object)[positions]
        labels = [lb or ("" if v is None or v != v else str(v).strip()) for lb, v in zip(labels, values, strict=True)]
    return labels
