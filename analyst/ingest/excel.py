"""Excel ``.xlsx`` workbooks: the first sheet with a table, cell values as Excel last computed them.

openpyxl opens the workbook read-only with ``data_only=True``: a formula cell gives its cached value, and
a formula that was never calculated (no cached value) reads as empty. Formulas are never evaluated.
"""

from __future__ import annotations

import io
import warnings
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from analyst.dataset import IngestError, IngestLimits
from analyst.ingest.sniff import find_header, header_names, is_blank_cell, is_number_cell, name_label_column

SNIFF_ROWS = 200


@dataclass(frozen=True, slots=True)
class SheetTable:
    sheet: str
    header_row: int  # 1-based sheet row
    frame: pd.DataFrame  # index: 1-based sheet rows


def read_xlsx(data: bytes, limits: IngestLimits) -> SheetTable:
    try:
        import openpyxl

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # openpyxl warns about styles and extensions it does not read
            workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise IngestError(
            "This Excel file could not be opened (it may be damaged, password-protected or not really "
            ".xlsx). "
            "Open it in Excel and save it again as .xlsx or CSV."
        ) from exc
    try:
        for worksheet in workbook.worksheets:
            table = _read_sheet(worksheet, limits)
            if table is not None:
                return table
    finally:
        workbook.close()
    raise IngestError(
        "No sheet in this workbook has a table with a header row and amounts below it. "
        "Put the data on the first sheet with one header row (for example Account, Budget, Actual)."
    )


def iter_sheet_tables(data: bytes, limits: IngestLimits) -> Iterator[tuple[str, SheetTable | None]]:
    """Every sheet of a workbook in order, with its table (``None`` when it has no header row with amounts
    below it). Sheets are read one at a time, so only the caller decides what to keep."""
    workbook = _open_workbook(data)
    try:
        for worksheet in workbook.worksheets:
            yield str(worksheet.title), _read_sheet(worksheet, limits)
    finally:
        workbook.close()


def _open_workbook(data: bytes) -> Any:
    try:
        import openpyxl

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise IngestError(
            "This Excel file could not be opened (it may be damaged, password-protected or not really "
            ".xlsx). "
            "Open it in Excel and save it again as .xlsx or CSV."
        ) from exc


def _rows(worksheet: object, limits: IngestLimits) -> Iterator[tuple[object, ...]]:
    for count, row in enumerate(worksheet.iter_rows(min_row=1, values_only=True), start=1):  # type: ignore[attr-defined]
        if count > limits.max_rows + SNIFF_ROWS:
            raise IngestError(
                f"The sheet has more than {limits.max_rows:,} rows, the limit. Filter the export to fewer rows."
            )
        yield row


def _read_sheet(worksheet: object, limits: IngestLimits) -> SheetTable | None:
    rows = [list(r) for r in _rows(worksheet, limits)]
    header = find_header(rows[:SNIFF_ROWS])
    if header is None:
        return None
    body = rows[header + 1 :]
    width = max([len(rows[header]), *(len(r) for r in body[:SNIFF_ROWS])])
    if width > limits.max_columns:
        raise IngestError(f"The sheet has {width} columns; the limit is {limits.max_columns}.")
    names = header_names(rows, header, width)
    # Footer notes under the table: trailing rows without numbers and with at most one filled cell.
    end = len(body)
    while end > 0:
        row = body[end - 1]
        filled = sum(not is_blank_cell(c) for c in row)
        if filled == 0 or (filled < 2 and not any(is_number_cell(c) for c in row)):
            end -= 1
            continue
        break
    body = body[:end]
    padded = [list(r[:width]) + [None] * (width - len(r)) for r in body]
    index = pd.Index(np.arange(header + 2, header + 2 + len(padded)), name="row")
    columns = {}
    for position, name in enumerate(names):
        values = [r[position] for r in padded]
        columns[name] = _column(values, index)
    text_columns = {n for n, c in columns.items() if c.dtype == "str"}
    renamed = name_label_column(names, text_columns)
    if renamed is not names:
        columns = dict(zip(renamed, columns.values(), strict=True))
    frame = pd.DataFrame(columns, index=index)
    return SheetTable(sheet=str(worksheet.title), header_row=header + 1, frame=frame)  # type: ignore[attr-defined]


def _column(values: list[object], index: pd.Index) -> pd.Series:
    """Numbers stay numbers, dates stay dates, anything mixed becomes text (and is parsed like a CSV cell)."""
    filled = [v for v in values if not is_blank_cell(v)]
    if filled and all(isinstance(v, int | float) and not isinstance(v, bool) for v in filled):
        return pd.Series([np.nan if is_blank_cell(v) else v for v in values], dtype="float64", index=index)
    if filled and all(isinstance(v, datetime | date) for v in filled):
        return pd.Series([None if is_blank_cell(v) else v for v in values], dtype=object, index=index)
    if filled and any(isinstance(v, datetime | date) for v in filled) and all(_is_date_cell(v) for v in filled):
        # Dates where a few cells lost their date format and show Excel's day number (45689 = 2025-02-01).
        return pd.Series([None if is_blank_cell(v) else _as_date(v) for v in values], dtype=object, index=index)
    return pd.Series([None if is_blank_cell(v) else _text(v) for v in values], dtype="str", index=index)


# Excel day numbers for 1954..2119, read as dates only inside a column of dates.
_SERIALS = (20_000, 80_000)
_EXCEL_EPOCH = datetime(1899, 12, 30)


def _is_date_cell(value: object) -> bool:
    if isinstance(value, datetime | date):
        return True
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and float(value).is_integer()
        and _SERIALS[0] <= value <= _SERIALS[1]
    )


def _as_date(value: object) -> object:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _EXCEL_EPOCH + timedelta(days=int(value))
    return value


def _text(value: object) -> str:
    if isinstance(value, float):
        return repr(value) if not value.is_integer() else str(int(value))
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d")
    return str(value).strip()
