"""Finance numbers as people and ERPs write them, parsed a whole column at a time.

Accepted: ``$1,234.56``, ``€1.234,56``, ``1 234,56`` (space, no-break or narrow no-break space thousands),
``1'234.50``, accounting negatives ``(1,234.00)``, trailing minus ``1234-``, unicode minus ``−1``, ``12.5%``
(→ 12.5), ``270K`` / ``1.2M`` / ``3B`` / ``1,5 Mio``; ``-``, ``—`` and empty are missing (NaN).

The decimal mark is decided per column from all of its values (a ``,`` followed by two digits, or both
marks in one value, settle it); a column whose values are all ambiguous (``1.234``) falls back to the
file's convention. Every step is a vectorised ``.str`` operation over the column; nothing loops over cells in Python.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

DecimalMark = Literal[".", ","]

MAX_SCALE = 4
_BLOCK = 1 << 16

# Cell texts that mean "nothing here" in finance exports.
_MISSING = [
    "",
    "-",
    "--",
    "—",
    "–",
    "−",
    "n/a",
    "na",
    "#n/a",
    "nan",
    "none",
    "null",
    "#value!",
    "#div/0!",
    "#ref!",
]

# Spaces of every kind, apostrophe thousands separators and currency marks: removed before parsing.
_NOISE_RE = (
    r"[\s\u00a0\u202f\u2009\u2007'’$€£¥₽₴₸]"
    r"|(?i:\b(?:usd|eur|gbp|chf|rub|rur|uah|kzt|jpy|cny)\b|руб\.?|р\.|грн\.?)"
)

# After the noise is gone: an optional sign, the digits with their marks, an optional magnitude suffix, an
# optional trailing minus (SAP-style negatives).
_CORE_RE = (
    r"^(?P<sign>[-+−–]?)(?P<num>\d[\d.,]*|[.,]\d+)"
    r"(?P<suffix>(?i:k|tsd|thousand|тыс|m|mm|mn|mio|million|млн|b|bn|mrd|billion|млрд)?)\.?"
    r"(?P<trail>[-−–]?)$"
)

_MULTIPLIER = {
    "": 1.0,
    "k": 1e3,
    "tsd": 1e3,
    "thousand": 1e3,
    "тыс": 1e3,
    "m": 1e6,
    "mm": 1e6,
    "mn": 1e6,
    "mio": 1e6,
    "million": 1e6,
    "млн": 1e6,
    "b": 1e9,
    "bn": 1e9,
    "mrd": 1e9,
    "billion": 1e9,
    "млрд": 1e9,
}
_SUFFIX_DIGITS = {1.0: 0, 1e3: 3, 1e6: 6, 1e9: 9}

# Evidence that "," is the decimal mark: ",5" / ",56" / ",5678" at the end (never a thousands group), a "."
# before
# a ",", or two "." (thousands dots). The mirror image for ".".
_COMMA_DECIMAL_RE = r",(?:\d{1,2}|\d{4,})$|\.\d*,|\.\d*\."
_DOT_DECIMAL_RE = r"\.(?:\d{1,2}|\d{4,})$|,\d*\.|,\d*,"
# One mark followed by exactly three digits: a thousands group or three decimals, the column alone can't tell.
_AMBIGUOUS_RE = r"^\d{1,3}[.,]\d{3}$"

# A cell that looks like a finance number (used when sniffing a sample, one cell at a time).
_CURRENCY_CODE = r"(?i:usd|eur|gbp|chf|rub|rur|uah|kzt|jpy|cny)"
NUMBER_PATTERN = (
    rf"^\s*[(]?\s*[-+−–]?\s*(?:[$€£¥₽₴₸]|{_CURRENCY_CODE}\s?)?\s*[-+−–]?\s*(?:\d[\d\s\u00a0\u202f.,'’]*|[.,]\d+)\s*"
    r"(?:%|(?i:k|m|mm|mn|mio|b|bn|mrd|тыс\.?|млн\.?|млрд\.?|руб\.?|р\.|€|₽|₴|₸|£|¥|\$))?\s*"
    rf"{_CURRENCY_CODE}?\s*[)]?\s*[-−]?\s*$"
)


@dataclass(frozen=True, slots=True)
class DecimalEvidence:
    """How many of a column's values prove each decimal mark."""

    comma: int = 0
    dot: int = 0

    def __add__(self, other: DecimalEvidence) -> DecimalEvidence:
        return DecimalEvidence(self.comma + other.comma, self.dot + other.dot)

    def decide(self) -> DecimalMark | None:
        if self.comma > self.dot:
            return ","
        if self.dot > self.comma:
            return "."
        return None


@dataclass(frozen=True, slots=True)
class ParsedNumbers:
    """One column parsed: float64 values (NaN where missing or unreadable) and what was learnt about it."""

    values: np.ndarray
    decimals: int  # most decimal places seen, 0..MAX_SCALE
    decimal_mark: DecimalMark
    percent: bool  # most values carried a "%"
    missing: int  # empty, "-", "n/a"...
    unreadable: int  # non-empty cells that are not numbers
    unreadable_examples: tuple[str, ...] = ()
    # Values such as "1.234" or "12,500" (one mark, then three digits) read by the fallback convention because
    # nothing in the file settled it: the reader is told which way they were taken.
    ambiguous: int = 0
    ambiguous_example: tuple[str, float] | None = None  # one such cell as written, and the number it became

    @property
    def readable(self) -> int:
        return len(self.values) - self.missing - self.unreadable


def _as_text(column: pd.Series) -> pd.Series:
    return column.astype("str").str.strip()


def _split(text: pd.Series) -> tuple[pd.DataFrame, pd.Series, pd.Series, pd.Series]:
    """Strip noise and split every cell into sign / digits / suffix / trailing minus (vectorised)."""
    lowered = text.str.lower()
    missing = text.isna() | lowered.isin(_MISSING)
    parenthesised = text.str.startswith("(") & text.str.endswith(")")
    percent = text.str.endswith("%")
    core = text.str.replace(_NOISE_RE, "", regex=True).str.replace(r"[()%]", "", regex=True)
    parts = core.str.extract(_CORE_RE)
    return parts, missing, parenthesised, percent


def decimal_evidence(column: pd.Series) -> DecimalEvidence:
    """Count the values of a text column that settle its decimal mark one way or the other."""
    if column.dtype.kind in "biuf":
        return DecimalEvidence()
    return _evidence(_split(_as_text(column))[0]["num"])


def _evidence(num: pd.Series) -> DecimalEvidence:
    return DecimalEvidence(
        comma=int(num.str.contains(_COMMA_DECIMAL_RE, regex=True).fillna(False).sum()),
        dot=int(num.str.contains(_DOT_DECIMAL_RE, regex=True).fillna(False).sum()),
    )


_COMMA_DECIMAL = re.compile(_COMMA_DECIMAL_RE)
_DOT_DECIMAL = re.compile(_DOT_DECIMAL_RE)
_NOISE = re.compile(_NOISE_RE)


def sample_evidence(cells: list[str]) -> DecimalEvidence:
    """:func:`decimal_evidence` for a few hundred sample cells (plain ``re``, no Series to build)."""
    cleaned = [_NOISE.sub("", c).strip("()%-−") for c in cells]
    return DecimalEvidence(
        comma=sum(1 for c in cleaned if _COMMA_DECIMAL.search(c)),
        dot=sum(1 for c in cleaned if _DOT_DECIMAL.search(c)),
    )


def decimals_of_floats(values: np.ndarray) -> int:
    """Decimal places needed to write every value exactly (0..MAX_SCALE): found on a sample, then verified on
    all values in one pass."""
    # One summing pass, no temporary, answers "any NaN?" for the usual column that has none.
    finite = values if np.isfinite(np.add.reduce(values)) or not np.isnan(values).any() else values[~np.isnan(values)]
    if finite.size == 0:
        return 0
    largest = float(max(abs(np.max(finite)), abs(np.min(finite))))
    head = finite[:10_000]
    places = next((p for p in range(MAX_SCALE + 1) if _whole_when_scaled(head, p, largest)), MAX_SCALE)
    while places < MAX_SCALE and not _whole_when_scaled(finite, places, largest):
        places += 1
    return places


# Adding and subtracting 1.5 × 2**52 rounds a float below 2**51 in magnitude to the nearest integer (ties to
# even, like ``np.rint``), and two additions are several times faster than ``np.rint``.
_ROUNDER = 6755399441055744.0
_ROUNDER_LIMIT = 2.0**51


def _whole_when_scaled(values: np.ndarray, places: int, largest: float) -> bool:
    """Every value times 10**places is an integer, up to float noise."""
    factor = 10.0**places
    tolerance = 1e-6 + 1e-12 * largest * factor
    magic = largest * factor < _ROUNDER_LIMIT
    # In cache-sized blocks with reused buffers: whole-column temporaries cost more than the arithmetic itself.
    size = min(_BLOCK, values.size)
    scaled_buffer, rounded_buffer = np.empty(size), np.empty(size)
    for start in range(0, values.size, _BLOCK):
        block = values[start : start + _BLOCK]
        scaled, rounded = scaled_buffer[: block.size], rounded_buffer[: block.size]
        np.multiply(block, factor, out=scaled)
        if magic:
            np.add(scaled, _ROUNDER, out=rounded)
            rounded -= _ROUNDER
        else:
            np.rint(scaled, out=rounded)
        scaled -= rounded
        if float(np.max(scaled)) > tolerance or float(np.min(scaled)) < -tolerance:
            return False
    return True


def parse_numbers(column: pd.Series, *, fallback: DecimalMark = ".") -> ParsedNumbers:
    """Parse a column of finance numbers; ``fallback`` is the decimal mark when the column alone can't
    tell."""
    n = len(column)
    if column.dtype.kind in "biuf":
        values = column.to_numpy(dtype="float64", na_value=np.nan)
        return ParsedNumbers(
            values=values,
            decimals=decimals_of_floats(values),
            decimal_mark=fallback,
            percent=False,
            missing=0 if np.isfinite(np.add.reduce(values)) else int(np.count_nonzero(np.isnan(values))),
            unreadable=0,
        )
    text = _as_text(column)
    parts, missing, parenthesised, percent = _split(text)
    num = parts["num"]
    decided = _evidence(num).decide()
    mark = decided or fallback
    ambiguous_mask = None if decided else num.str.contains(_AMBIGUOUS_RE, regex=True).to_numpy(bool, na_value=False)
    if mark == ",":
        normalised = num.str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
    else:
        normalised = num.str.replace(",", "", regex=False)
    magnitude = pd.to_numeric(normalised, errors="coerce").to_numpy(dtype="float64", na_value=np.nan, copy=True)
    suffix = parts["suffix"].str.lower().fillna("")
    multiplier = suffix.map(_MULTIPLIER).to_numpy(dtype="float64", na_value=1.0)
    negative = (
        parts["sign"].isin(["-", "−", "–"]).to_numpy(dtype=bool)
        | parts["trail"].isin(["-", "−", "–"]).to_numpy(dtype=bool)
        | parenthesised.to_numpy(dtype=bool, na_value=False)
    )
    point = normalised.str.find(".").to_numpy(dtype="float64", na_value=-1.0)
    length = normalised.str.len().to_numpy(dtype="float64", na_value=0.0)
    written_places = np.where(point >= 0, length - point - 1, 0.0)
    shift = pd.Series(multiplier).map(_SUFFIX_DIGITS).to_numpy(dtype="float64", na_value=0.0)
    scaled = multiplier != 1.0
    if scaled.any():
        # "1050.9B" is 10509 × 10^8: shift the decimal point in the digits instead of multiplying 1050.9 (not
        # exact in binary) by 1e9, so the result is the float nearest the written number.
        digits = pd.to_numeric(normalised[scaled].str.replace(".", "", regex=False), errors="coerce").to_numpy(
            dtype="float64", na_value=np.nan
        )
        exponent = shift[scaled] - written_places[scaled]
        magnitude[scaled] = np.where(
            exponent >= 0, digits * 10.0 ** np.maximum(exponent, 0), digits / 10.0 ** np.maximum(-exponent, 0)
        )
    values = np.where(negative, -magnitude, magnitude)
    missing_mask = missing.to_numpy(dtype=bool, na_value=True)
    values[missing_mask] = np.nan
    readable = ~np.isnan(values)
    unreadable_mask = ~missing_mask & ~readable
    places = np.clip(written_places - shift, 0, MAX_SCALE)
    decimals = int(places[readable].max()) if readable.any() else 0

    readable_count = int(readable.sum())
    is_percent = readable_count > 0 and int(percent.to_numpy(dtype=bool, na_value=False)[readable].sum()) * 2 > (
        readable_count
    )
    examples = tuple(text[unreadable_mask].head(3).astype(str).tolist()) if unreadable_mask.any() else ()
    return ParsedNumbers(
        values=values.astype("float64", copy=False),
        decimals=decimals,
        decimal_mark=mark,
        percent=is_percent,
        missing=int(missing_mask.sum()),
        unreadable=int(n - missing_mask.sum() - readable_count),
        unreadable_examples=examples,
        ambiguous=0 if ambiguous_mask is None else int(ambiguous_mask.sum()),
        ambiguous_example=_first_example(text, values, ambiguous_mask),
    )


def _first_example(text: pd.Series, values: np.ndarray, mask: np.ndarray | None) -> tuple[str, float] | None:
    if mask is None or not mask.any():
        return None
    at = int(np.argmax(mask))
    return str(text.iloc[at]), float(values[at])
