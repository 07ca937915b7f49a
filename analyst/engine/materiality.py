"""Materiality: which lines are *material*, and the default amount threshold for a file.

The default amount is 10,000 currency units, written in the file's declared units (10 in a file "in $000s"), then
fitted to the size of the data, whose unit is never guessed from the numbers: at most 1 % of the total |reference|
(a small file, or one in thousands without a marker, still has material lines) and at least 0.1 % of it (in a file
of billions, a 10,000 variance is noise). Both bounds are rounded down to 1, 2 or 5 × a power of ten, and the rule
that gave the amount is stated with it in every report.
"""

from __future__ import annotations

import numpy as np

from analyst.dataset import Dataset
from analyst.engine.options import DEFAULT_AMOUNT, Materiality, MaterialityMode


def amount_text(amount: float) -> str:
    """A threshold as a reader writes it: "5,000,000", "2,000", "0.01" (never "5e+06")."""
    if float(amount).is_integer():
        return f"{amount:,.0f}"
    return f"{amount:,.6f}".rstrip("0").rstrip(".")


def _nice_floor(value: float) -> float:
    """The largest 1, 2 or 5 × 10^k not above ``value`` (0 for 0)."""
    if value <= 0:
        return 0.0
    power = 10.0 ** np.floor(np.log10(value))
    for step in (5.0, 2.0, 1.0):
        if step * power <= value:
            return float(step * power)
    return float(power)


def default_amount(ds: Dataset, total_abs_reference: int, scale: int) -> tuple[float, str]:
    """The default materiality amount for a file, and the rule, in words, that gave it.

    10,000 currency units, written in the file's declared units (÷ 1,000 for a file in thousands); at most 1 % of
    the total |reference| (a small file, or one in $000s without a marker, still has material lines) and at least
    0.1 % of it (in a file of billions a 10,000 variance is noise), each rounded down to 1, 2 or 5 × a power of
    ten. ``total_abs_reference`` is in minor units (``10**scale`` to a currency unit)."""
    unit = max(int(getattr(ds, "unit", 1) or 1), 1)
    base = DEFAULT_AMOUNT / unit
    unit_words = {1_000: "thousands", 1_000_000: "millions"}.get(unit)
    rule = "the default 10,000"
    if unit_words:
        rule += f" currency units = {amount_text(base)} in this file's {unit_words}"
    if total_abs_reference <= 0:
        return base, rule
    total = total_abs_reference / 10**scale
    cap = max(_nice_floor(0.01 * total), 10.0**-scale)
    if cap < base:
        return cap, f"{rule}, capped at 1% of the total |reference| (rounded down): {amount_text(cap)}"
    floor = _nice_floor(0.001 * total)
    if floor > base:
        return floor, f"{rule}, raised to 0.1% of the total |reference| (rounded down): {amount_text(floor)}"
    return base, rule


def material_mask(variance: np.ndarray, reference: np.ndarray, unit: int, m: Materiality) -> np.ndarray:
    """Lines that pass the materiality test, on minor units (a reference of 0 passes the percent test)."""
    variance = np.asarray(variance, dtype=np.int64)
    reference = np.asarray(reference, dtype=np.int64)
    size = np.abs(variance)
    by_amount = size >= round(m.amount * unit)
    by_percent = np.where(
        reference == 0, True, size.astype(np.float64) * 100.0 >= m.percent * np.abs(reference)
    )
    if m.mode is MaterialityMode.AND:
        passed = by_amount & by_percent
    elif m.mode is MaterialityMode.OR:
        passed = by_amount | by_percent
    elif m.mode is MaterialityMode.AMOUNT:
        passed = by_amount
    else:
        passed = by_percent
    return np.asarray(passed & (variance != 0), dtype=bool)
