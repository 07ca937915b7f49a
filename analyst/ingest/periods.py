"""Periods: month words in en/ru/de, header labels like "Jan 2025", and a period column → ordered categorical.

A dated column becomes ``"YYYY-MM"`` labels; month names without a year become ``"Jan"`` .. ``"Dec"``. Parsing
happens on the column's unique values (a 1,000,000-row ledger has a few hundred dates), never per row.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_MONTH_WORDS: dict[str, int] = {}
for _number, _words in enumerate(
    [
        "jan january январь января янв januar jän jänner",
        "feb february февраль февраля фев февр februar",
        "mar march март марта мар märz maerz mär mrz",
        "apr april апрель апреля апр",
        "may май мая mai",
        "jun june июнь июня июн juni",
        "jul july июль июля июл juli",
        "aug august август августа авг",
        "sep sept september сентябрь сентября сен сент",
        "oct october октябрь октября окт oktober okt",
        "nov november ноябрь ноября ноя нояб",
        "dec december декабрь декабря дек dezember dez",
    ],
    start=1,
):
    for _word in _words.split():
        _MONTH_WORDS[_word] = _number

_MONTH_ALT = "|".join(sorted(_MONTH_WORDS, key=len, reverse=True))
_MONTH_LABEL_RE = re.compile(
    rf"^\s*(?:(?P<m1>{_MONTH_ALT})\.?(?:[\s\-/',.]*(?P<y1>(?:19|20)?\d\d))?"
    rf"|(?P<y2>(?:19|20)\d\d)[\s\-/.]*(?P<m2>{_MONTH_ALT})\.?)\s*$",
    re.IGNORECASE,
)
_NUMERIC_MONTH_RE = re.compile(
    r"^\s*(?:(?P<y1>(?:19|20)\d\d)[\s\-/.]+(?P<m1>0?[1-9]|1[0-2])(?:[\s\-/.]+\d\d?(?:[ T][\d:.]+)?)?"
    r"|(?:\d\d?[./])?(?P<m2>0?[1-9]|1[0-2])[\s\-/.]+(?P<y2>(?:19|20)\d\d))\s*$"
)
_DATE_FORMATS = (
    "%Y-%m-%d",
    "%d.%m.%Y",
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%Y/%m/%d",
    "%Y-%m-%d %H:%M:%S",
    "%d.%m.%y",
    "%m/%d/%y",
    "%Y%m%d",
)


def period_label(text: str) -> str | None:
    """``"2025-01"`` or ``"Jan"`` for a month written as a header or a cell ("Jan 2025", "янв.25", "2025-01",
    "Январь"), else ``None``."""
    match = _MONTH_LABEL_RE.match(text)
    if match:
        month = _MONTH_WORDS[(match["m1"] or match["m2"]).lower()]
        year = match["y1"] or match["y2"]
        if year is None:
            return MONTHS[month - 1]
        return f"{_full_year(year)}-{month:02d}"
    match = _NUMERIC_MONTH_RE.match(text)
    if match:
        year = int(match["y1"] or match["y2"])
        month = int(match["m1"] or match["m2"])
        return f"{year}-{month:02d}"
    return None


def _full_year(year: str) -> int:
    return int(year) if len(year) == 4 else 2000 + int(year)


def labels_for_uniques(uniques: Sequence[object]) -> list[str | None]:
    """Canonical period labels for the distinct values of a period column (``None`` where unreadable)."""
    values = list(uniques)
    if not values:
        return []
    if all(hasattr(v, "year") and hasattr(v, "month") for v in values if v is not None and v == v):
        stamps = pd.to_datetime(pd.Series(values, dtype=object), errors="coerce")
        return [None if pd.isna(s) else f"{s.year}-{s.month:02d}" for s in stamps]
    texts = ["" if v is None or v != v else str(v).strip() for v in values]
    labels: list[str | None] = [None] * len(texts)
    # Full dates first, one vectorised parse per format; month words ("Jan 2025", "Январь") after that.
    pending = [i for i, t in enumerate(texts) if t and any(ch.isdigit() for ch in t)]
    if pending:
        series = pd.Series([texts[i] for i in pending], dtype=object)
        best: pd.Series | None = None
        for fmt in _DATE_FORMATS:
            parsed = pd.to_datetime(series, format=fmt, errors="coerce")
            if best is None or parsed.notna().sum() > best.notna().sum():
                best = parsed
            if parsed.notna().all():
                break
        if best is not None and best.notna().any():
            months = best.dt.strftime("%Y-%m")
            for i, label in zip(pending, months, strict=True):
                if isinstance(label, str):
                    labels[i] = label
    for i, text in enumerate(texts):
        if labels[i] is None and text:
            labels[i] = period_label(text)
    return labels


_YEAR_LABEL_RE = re.compile(
    r"^\s*(?P<fy>FY|ФГ|GJ)?\s*[-'’]?\s*(?P<year>(?:19|20)\d\d|\d\d)(?:\.0)?\s*(?:г\.?|год)?\s*$", re.IGNORECASE
)


def year_labels(uniques: Sequence[object]) -> list[str | None]:
    """Annual period labels for the distinct values of a year column: ``"2023"`` for 2023 or "2023.0", and
    ``"FY2023"`` for "FY2023", "FY23" or "FY 2023" (a fiscal year keeps its name); ``None`` for anything else.
    Two-digit years are read only with "FY" ("FY23")."""
    out: list[str | None] = []
    for value in uniques:
        text = "" if value is None or value != value else str(value)
        found = _YEAR_LABEL_RE.match(text)
        if not found or (len(found["year"]) == 2 and not found["fy"]):
            out.append(None)
            continue
        year = _full_year(found["year"])
        out.append(f"FY{year}" if found["fy"] else str(year))
    return out


def year_digits(label: str | None) -> int | None:
    """The calendar digits of an annual label ("FY2024" → 2024)."""
    if label is None:
        return None
    found = re.search(r"(?:19|20)\d\d", label)
    return int(found.group(0)) if found else None


def order_labels(labels: Sequence[str]) -> list[str]:
    """Chronological order of period labels: dated ones by date, month names Jan..Dec, the rest as first
    seen."""
    distinct = list(dict.fromkeys(labels))

    def key(label: str) -> tuple[int, str]:
        if label in MONTHS:
            return (0, f"{MONTHS.index(label):02d}")
        return (1, label)

    return sorted(distinct, key=key)


# A date written "2025-01-31" with a year 1900–2099 and a month 01–12 always has a month label (a valid date
# through its format, any other day through the numeric-month pattern), so a sample of them needs no parse.
_ISO_DATE_RE = re.compile(r"\s*(?:19|20)[0-9][0-9]-(?:0[1-9]|1[0-2])-[0-9][0-9]\s*")


def looks_like_periods(sample: Sequence[object]) -> bool:
    """Most of a sample of distinct values read as months or dates."""
    values = [v for v in dict.fromkeys(sample) if v is not None and v == v and str(v).strip()]
    if not values:
        return False
    if all(isinstance(v, str) and _ISO_DATE_RE.fullmatch(v) for v in values):
        return True
    labels = labels_for_uniques(values)
    return sum(label is not None for label in labels) >= 0.9 * len(values)


def to_period(
    codes: np.ndarray, uniques: Sequence[object] | pd.Index, labels: Sequence[str | None] | None = None
) -> tuple[pd.Categorical, int]:
    """A factorised column as an ordered categorical of period labels, and how many non-empty cells could
    not be read (code -1 is an empty cell). ``labels``: :func:`labels_for_uniques` of ``uniques``, when
    already known."""
    if labels is None:
        labels = labels_for_uniques(list(uniques))
    categories = order_labels([label for label in labels if label is not None])
    position = {label: i for i, label in enumerate(categories)}
    # The codes pandas itself would keep (int8 up to 127 categories): the lookup writes them directly, so
    # nothing converts a million int64 codes afterwards.
    code_type = np.min_scalar_type(-max(len(categories), 1))
    mapping = np.array([position.get(label, -1) if label else -1 for label in labels] + [-1], dtype=code_type)
    period_codes = np.take(mapping, codes)  # code -1 (missing) picks the trailing -1
    unreadable_uniques = np.flatnonzero(mapping[:-1] < 0)
    unreadable = 0
    if unreadable_uniques.size:
        unreadable = int(np.isin(codes, unreadable_uniques).sum())
    # The codes come from a lookup table, so they are in range: skip pandas' check over every row.
    categorical = pd.Categorical.from_codes(
        period_codes, categories=pd.Index(categories, dtype="str"), ordered=True, validate=False
    )
    return categorical, unreadable
