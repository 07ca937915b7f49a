"""Which text column holds the period: months or dates first, then a year (an annual period; with a column of
month numbers beside it, the months), then month numbers alone, then a column literally named "period"; and the
year column that turns month names into real months."""

from __future__ import annotations

import re

from analyst.dataset import PERIOD
from analyst.ingest import periods
from analyst.ingest.columns import Columns


def detect_period_column(columns: Columns) -> str | None:
    """The text column holding months or dates: one whose header says so first, then any; else a year column
    ("fiscal_year": an annual period); else a column literally named "period", whatever its labels."""
    named = [c for c in columns.text if columns.headers[c].kind == "period" and not columns.headers[c].year]
    period = next((c for c in named if columns.looks_periodic(c)), None)
    if period is None:
        period = next((c for c in columns.text if not columns.headers[c].year and columns.looks_periodic(c)), None)
    if period is None:
        period = next((c for c in columns.text if columns.headers[c].year and _holds_years(columns, c)), None)
        if period is not None:
            # A year column beside a "Month" column of numbers (1–12, "01"): the months are the period, and
            # combine with the year (see :func:`year_for_months`).
            month = next((c for c in named if columns.numeric_months(c)), None)
            period = month or period
    if period is None:
        # Month numbers without a year, under a header that says "month" (a fiscal "Period" 1 may be July): read
        # as month names, one year only if no line repeats a month (the loader warns otherwise).
        period = next((c for c in named if _MONTH_HEADER_RE.search(c) and columns.numeric_months(c)), None)
    if period is None:
        period = next((c for c in columns.text if c.strip().casefold() == PERIOD), None)
    return period


_MONTH_HEADER_RE = re.compile(r"month|monat|месяц|mois|\bmes\b", re.IGNORECASE)


def _holds_years(columns: Columns, name: str) -> bool:
    labels = columns.period_labels(name)
    return bool(labels) and all(label is not None for label in labels)


def year_for_months(columns: Columns, period: str, used: set[str | None]) -> str | None:
    """A year column to combine with ``period`` when ``period`` holds month names without a year."""
    labels = columns.period_label_set(period)
    if not labels or any(label not in periods.MONTHS for label in labels):
        return None
    return next(
        (c for c in columns.text if c not in used and columns.headers[c].year and _holds_years(columns, c)), None
    )
