"""Months and quarters of period labels: the derived "quarter" key, and years, quarters or halves named in a
filter ("2025", "Q3", "2025-Q3", "H1 2025")."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_YEAR_MONTH_RE = re.compile(r"^(\d{4})-(\d{2})$")


def _month_of(label: str) -> tuple[str, int] | None:
    """(year or "", month 1..12) of a period label "YYYY-MM" or "Jan".."Dec"; None for anything else."""
    found = _YEAR_MONTH_RE.match(label)
    if found and 1 <= int(found.group(2)) <= 12:
        return found.group(1), int(found.group(2))
    word = label.strip().casefold()[:3]
    if word in _MONTH_NAMES and len(label.strip()) <= 9:
        return "", _MONTH_NAMES.index(word) + 1
    return None


def quarter_column(period: pd.Series) -> pd.Categorical[str] | None:
    """Quarter labels ("2025-Q3", or "Q3" without a year) for a monthly period, mapped through its categories."""
    labels = [str(c) for c in period.cat.categories]
    months = [m for m in map(_month_of, labels) if m is not None]
    if not labels or len(months) != len(labels):
        return None
    names = [f"{year}-Q{(month - 1) // 3 + 1}" if year else f"Q{(month - 1) // 3 + 1}" for year, month in months]
    order = list(dict.fromkeys(names))
    lookup = np.array([order.index(n) for n in names] + [-1], dtype=np.int64)
    codes = lookup[period.cat.codes.to_numpy()]  # a missing period (-1) picks the trailing -1
    return pd.Categorical.from_codes(codes, categories=pd.Index(order), ordered=True)


_PERIOD_GROUP_RE = re.compile(
    r"^(?:(?P<y1>\d{4})[\s\-/]*)?(?P<kind>[QH])(?P<n>[1-4])(?:[\s\-/]*(?P<y2>\d{4}))?$|^(?P<year>\d{4})$",
    re.IGNORECASE,
)


def period_group_hits(labels: Sequence[str], value: str) -> list[int]:
    """The period labels inside a year, quarter or half named by ``value`` ("2025", "Q3", "2025-Q3", "H1 2025")."""
    found = _PERIOD_GROUP_RE.match(value.strip())
    if not found:
        return []
    year = found.group("year") or found.group("y1") or found.group("y2") or ""
    kind, n = (found.group("kind") or "").upper(), int(found.group("n") or 0)
    hits: list[int] = []
    for i, label in enumerate(labels):
        month = _month_of(label)
        if month is None:
            return []
        label_year, number = month
        if year and label_year != year:
            continue
        if (kind == "Q" and (number - 1) // 3 + 1 != n) or (kind == "H" and (number - 1) // 6 + 1 != n):
            continue
        hits.append(i)
    return hits


def quarter_hits(labels: Sequence[str], value: str) -> list[int]:
    """Quarter labels matching "Q3" in any year, or "Q3 2025" / "2025Q3" written another way."""
    found = _PERIOD_GROUP_RE.match(value.strip())
    if not found or (found.group("kind") or "").upper() != "Q":
        return []
    year = found.group("y1") or found.group("y2") or ""
    wanted = f"Q{found.group('n')}"
    return [i for i, label in enumerate(labels) if label.endswith(wanted) and (not year or label.startswith(year))]
