"""The file's own variance columns (amounts or percents) checked against actual − reference: a warning only when
they disagree."""

from __future__ import annotations

import re

import numpy as np

from analyst.ingest.columns import Columns
from analyst.ingest.plan import Plan

_PERCENT_HEADER_RE = re.compile(r"%|pct|percent|процент|prozent|ratio", re.IGNORECASE)


def _is_percent_of(stated: np.ndarray, actual: np.ndarray, reference: np.ndarray, decimals: int) -> bool:
    """Whether ``stated`` is a percent of the amounts, as files write them: (A − B) / B or A / B, × 100 or as a
    ratio, either sign, against B or |B|, rounded to the column's own decimals. Rows with B = 0 say nothing."""
    usable = reference != 0
    if not usable.any():
        return False
    a, b, s = actual[usable], reference[usable], stated[usable]
    # Half a unit in the last written decimal, plus room for the "%" parser's own scaling.
    tolerance = 0.5 * 10.0 ** (-max(0, min(decimals, 6))) + 1e-9
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = ((a - b) / b, (a - b) / np.abs(b), (b - a) / np.abs(b), a / b)
        for ratio in ratios:
            for factor in (100.0, 1.0):
                candidate = ratio * factor
                if np.all(np.abs(candidate - s) <= tolerance * max(1.0, factor / 100.0)):
                    return True
    return False


def check_variance(columns: Columns, plan: Plan, keep: np.ndarray | None) -> list[str]:
    """Compare the file's own variance columns with actual − reference; say so when they disagree."""
    actual = columns.numbers[plan.actual].values
    reference = columns.numbers[plan.reference].values
    mask = keep if keep is not None else np.ones(len(actual), dtype=bool)
    warnings = []
    for name in plan.variance:
        parsed = columns.numbers[name]
        stated = parsed.values
        both = mask & ~np.isnan(stated) & ~np.isnan(actual) & ~np.isnan(reference)
        if not both.any():
            continue
        if _is_percent_of(stated[both], actual[both], reference[both], parsed.decimals):
            continue  # the file's own percent (variance % or % of budget): checked as a percent, and it agrees
        if parsed.percent or _PERCENT_HEADER_RE.search(name):
            warnings.append(
                f"The file's '{name}' column (a percent) disagrees with ({plan.actual} − {plan.reference}) / "
                f"{plan.reference}; the percents here are recomputed from the amounts."
            )
            continue
        ours = actual[both] - reference[both]
        tolerance = 0.011 + 1e-9 * np.abs(ours)
        if np.all(np.abs(ours - stated[both]) <= tolerance):
            continue
        if np.all(np.abs(-ours - stated[both]) <= tolerance):
            warnings.append(
                f"The file's '{name}' column is {plan.reference} − {plan.actual} (the opposite sign); "
                f"variances here are {plan.actual} − {plan.reference}."
            )
            continue
        wrong = int((np.abs(ours - stated[both]) > tolerance).sum())
        warnings.append(
            f"The file's '{name}' column disagrees with {plan.actual} − {plan.reference} on {wrong} row(s); "
            "the variances here are recomputed from the amounts."
        )
    return warnings
