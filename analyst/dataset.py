"""The contract between ingestion and the variance engine.

Ingestion turns whatever a finance system exported into one :class:`Dataset`: a tidy frame with one row per
line (per period, where a period exists) and a fixed set of role columns, plus an explanation of how the file
was read. The engine, the report and the agent's tools only ever see a ``Dataset``.

Tidy frame columns
------------------
- every dimension column, under its original header (``Department``, ``Account``, ``Статья``, ...), as strings;
- ``period`` (optional): an *ordered* categorical whose category order is chronological (``"2025-01"`` for a
  dated export, ``"Jan"`` .. ``"Dec"`` for a year-less one);
- ``actual`` and ``reference``: float64 amounts, NaN where the cell was empty or ``-``;
- ``actual_qty`` and ``reference_qty`` (optional): float64 quantities, for price/volume/mix;
- ``account_type`` (optional): the raw text of a type column when the file has one (``Income``, ``Expense``,
  ``Доход``...); the engine normalises it.

A ``Dataset`` is picklable: the bot reads large files in a worker process and sends the result back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

Shape = Literal["wide", "long", "wide_by_period", "metric_pairs"]
ReferenceKind = Literal["budget", "plan", "forecast", "target", "prior"]

# Reserved column names of the tidy frame; everything else in it is a dimension.
PERIOD = "period"
ACTUAL = "actual"
REFERENCE = "reference"
ACTUAL_QTY = "actual_qty"
REFERENCE_QTY = "reference_qty"
ACCOUNT_TYPE = "account_type"
ROLE_COLUMNS = frozenset({PERIOD, ACTUAL, REFERENCE, ACTUAL_QTY, REFERENCE_QTY, ACCOUNT_TYPE})


class IngestError(ValueError):
    """A file that cannot be understood, with a message written for a finance person.

    ``str(error)`` says what was found, what is missing and how to fix it; never a pandas traceback.
    """

    def __init__(self, message: str, *, found: list[str] | None = None) -> None:
        super().__init__(message)
        self.found = found or []


@dataclass(frozen=True, slots=True)
class ColumnRoles:
    """Which source columns were taken as what: detected, or overridden by the user."""

    shape: Shape
    dimensions: tuple[str, ...]
    account: str | None
    period: str | None
    actual: str
    reference: str
    reference_kind: ReferenceKind
    # A type column's name, or "section headings" when types come from a QuickBooks-style export's sections.
    account_type: str | None = None
    actual_qty: str | None = None
    reference_qty: str | None = None
    overridden: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "shape": self.shape,
            "dimensions": list(self.dimensions),
            "account": self.account,
            "period": self.period,
            "actual": self.actual,
            "reference": self.reference,
            "reference_kind": self.reference_kind,
            "account_type": self.account_type,
            "actual_qty": self.actual_qty,
            "reference_qty": self.reference_qty,
            "overridden": list(self.overridden),
        }


@dataclass(frozen=True, slots=True)
class RoleOverrides:
    """What the user said about columns; ``None`` leaves detection in charge of that role."""

    actual: str | None = None
    reference: str | None = None
    period: str | None = None
    account: str | None = None
    dimensions: tuple[str, ...] | None = None
    account_type: str | None = None

    def is_empty(self) -> bool:
        return all(getattr(self, name) is None for name in self.__slots__)


@dataclass(frozen=True, slots=True)
class ExcludedRow:
    """A source row left out of the sums, and why (a total, a subtotal, a section heading, a computed line)."""

    source_row: int  # 1-based line number in the file (or sheet row)
    label: str
    reason: str

    def to_dict(self) -> dict[str, object]:
        return {"row": self.source_row, "label": self.label, "reason": self.reason}


@dataclass(frozen=True, slots=True)
class SourceInfo:
    filename: str
    file_format: Literal["csv", "xlsx"]
    encoding: str | None
    delimiter: str | None
    header_row: int  # 1-based
    data_rows: int
    sheet: str | None = None
    # Title lines above the header ("Budget vs. Actuals, in $000s"): read for units, never shown or sent.
    preamble: tuple[str, ...] = ()
    # Workbooks: each sheet looked at and why it was or was not read.
    sheets_considered: tuple[tuple[str, str], ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {
            "filename": self.filename,
            "format": self.file_format,
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "header_row": self.header_row,
            "data_rows": self.data_rows,
            "sheet": self.sheet,
            "sheets_considered": [{"sheet": name, "verdict": why} for name, why in self.sheets_considered],
        }


@dataclass(frozen=True, slots=True)
class IngestLimits:
    max_bytes: int = 50 * 1024 * 1024
    max_rows: int = 2_000_000
    max_columns: int = 500


@dataclass(slots=True)
class Dataset:
    frame: pd.DataFrame
    roles: ColumnRoles
    source: SourceInfo
    excluded_rows: list[ExcludedRow] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    # Decimal places seen in the amounts (0..4): the engine sums in these minor units so totals reconcile exactly.
    scale: int = 2
    # The table as read (header found, values still text where they were text), kept so that role overrides can be
    # applied later without reading the file again.
    raw: pd.DataFrame | None = None
    # The amounts' unit as the file states it: 1, 1,000 ("in $000s", "(000)", "тыс.") or 1,000,000 ("in millions").
    unit: int = 1
    unit_evidence: str | None = None  # the words that said so, e.g. "'Actual ($000)'"

    @property
    def dimensions(self) -> tuple[str, ...]:
        return self.roles.dimensions

    @property
    def has_period(self) -> bool:
        return PERIOD in self.frame.columns

    @property
    def has_quantities(self) -> bool:
        return ACTUAL_QTY in self.frame.columns and REFERENCE_QTY in self.frame.columns
