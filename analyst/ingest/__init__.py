"""Reading finance exports (CSV, XLSX) into a :class:`~analyst.dataset.Dataset`.

``load_dataset(source, filename=..., overrides=..., limits=..., sheet=...)`` reads a file (a workbook's
budget-vs-actual sheet is found by :mod:`analyst.ingest.workbook`, or named by ``sheet``);
``apply_overrides(ds, overrides)`` re-derives the column roles from the table already read.
Both raise :class:`~analyst.dataset.IngestError` only.

When a report has no type column but groups its accounts under P&L section headings (QuickBooks: "Income",
"Expenses"; "Доходы", "Aufwendungen"), each line's section is its ``account_type`` and
``ColumnRoles.account_type`` is the text ``"section headings"`` (no column has that name).
"""

from analyst.ingest.loader import apply_overrides, load_dataset

__all__ = ["apply_overrides", "load_dataset"]
