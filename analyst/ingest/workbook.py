"""Workbooks: every sheet is scored and the one holding budget-vs-actual data is read.

A real workbook has a date dimension, notes, a chart's source range and the report itself, in any order. Each
sheet is read in turn (:func:`analyst.ingest.excel.iter_sheet_tables`) and taken through the same column
detection as a CSV; a sheet *qualifies* when it yields actual and reference amounts. Among those, a sheet whose
name says budget/actual/variance wins, then the one with the most lines. ``sheet=NAME`` chooses one outright.
When none qualifies, the refusal lists every sheet and why it was not used.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace

from analyst.dataset import Dataset, IngestError, IngestLimits, SourceInfo
from analyst.ingest import excel

_NAME_HINT_RE = re.compile(
    r"budget|actual|variance|bva|bvsa|vs\.?|plan|forecast|p&l|pnl|факт|план|бюджет|отклон|ist|soll|abweichung",
    re.IGNORECASE,
)
_MAX_REASON = 160


def _reason(error: IngestError) -> str:
    text = str(error).split(". ")[0].strip().rstrip(".")
    return text[:_MAX_REASON]


def read_workbook(
    data: bytes,
    filename: str,
    limits: IngestLimits,
    build: Callable[[excel.SheetTable, SourceInfo], Dataset],
    sheet: str | None = None,
) -> Dataset:
    """The dataset of the chosen sheet; ``build`` turns one sheet's table into a Dataset (or raises
    IngestError saying why it cannot)."""
    considered: list[tuple[str, str]] = []
    best: tuple[tuple[int, int], Dataset] | None = None
    names: list[str] = []
    wanted = sheet.strip().casefold() if sheet else None
    for name, table in excel.iter_sheet_tables(data, limits):
        names.append(name)
        if wanted is not None and name.strip().casefold() != wanted:
            continue
        if table is None:
            considered.append((name, "no header row with amounts below it"))
            continue
        info = SourceInfo(filename, "xlsx", None, None, table.header_row, len(table.frame), sheet=name)
        try:
            ds = build(table, info)
        except IngestError as error:
            if wanted is not None:
                raise IngestError(f"Sheet '{name}': {error}", found=error.found) from error
            considered.append((name, _reason(error)))
            continue
        score = (1 if _NAME_HINT_RE.search(name) else 0, len(ds.frame))
        considered.append((name, f"budget-vs-actual data ({len(ds.frame):,} lines)"))
        if best is None or score > best[0]:
            best = (score, ds)
    if wanted is not None and not considered:
        raise IngestError(
            f"There is no sheet '{sheet}' in this workbook. Sheets: {', '.join(repr(n) for n in names)}.",
            found=names,
        )
    if best is None:
        listed = "; ".join(f"'{name}': {why}" for name, why in considered) or "none"
        raise IngestError(
            "No sheet in this workbook holds budget-vs-actual data (a header row with actual and budget, plan or "
            f"forecast amounts). Sheets considered: {listed}. Choose one with --sheet NAME, or put the data on one "
            "sheet with a header row (for example Account, Budget, Actual).",
            found=names,
        )
    chosen = best[1]
    verdicts = tuple(
        (
            name,
            "read"
            if name == chosen.source.sheet
            else (f"not used: {why}" if "budget-vs" not in why else f"also qualifies ({why}); not chosen"),
        )
        for name, why in considered
    )
    chosen.source = replace(chosen.source, sheets_considered=verdicts)
    if len(names) > 1 and wanted is None:
        others = len(names) - 1
        chosen.warnings.insert(
            0,
            f"Read sheet '{chosen.source.sheet}' of {len(names)} (the {others} other sheet"
            f"{'s' if others != 1 else ''} did not hold budget-vs-actual data or held fewer lines); choose another "
            "with --sheet NAME.",
        )
    return chosen
