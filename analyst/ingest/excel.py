"""Excel ``.xlsx`` workbooks: the first sheet with a table, cell values as Excel last computed them.

openpyxl opens the workbook read-only with ``data_only=True``: a formula cell gives its cached value, and
a formula that was never calculated (no cached value) reads as empty. Formulas are never evaluated.

A workbook is untrusted input, so nothing it declares sizes the work:

- Before openpyxl sees the archive, :func:`check_archive` refuses more parts or sheets than any export has,
  and parts that inflate more than :data:`MAX_INFLATE_RATIO` times (Apache POI's zip-bomb default), each and
  in total, so the declared uncompressed sizes (which :mod:`zipfile` enforces) bound what is decompressed.
- Rows are streamed from the sheet XML cell by cell (:func:`_rows`; openpyxl's own cell parser, but not its
  row reader, which pads every row to the width declared in ``<dimension>``: ``A1:XFD1048576`` made a
  1.6 KB file cost gigabytes). A row holds only its cells up to its last filled one, a run of blank or missing
  rows becomes one blank row, and each finished XML element is dropped at once. So memory follows the cells
  really present, and the caps (columns, rows, filled cells, text) apply while streaming, before any table
  is built.
"""

from __future__ import annotations

import io
import warnings
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from analyst.dataset import IngestError, IngestLimits
from analyst.ingest.sniff import find_header, header_names, is_blank_cell, is_number_cell, name_label_column

SNIFF_ROWS = 200

# Bounds no real export comes near; a workbook beyond them is damaged or built to exhaust the reader.
MAX_PARTS = 10_000  # files inside the .xlsx archive
MAX_SHEETS = 1_000
MAX_INFLATE_RATIO = 100  # uncompressed / compressed size of a part, and of the whole archive
INFLATE_GRACE_BYTES = 1 << 20  # small parts may compress better than that (Excel's own styles, empty sheets)
MAX_WHOLE_PART_BYTES = 128 << 20  # parts openpyxl reads whole (shared strings, styles, workbook)
MAX_CELL_CHARS = 32_767  # Excel's own limit for one cell
MAX_CELLS = 12_000_000  # filled cells kept from one sheet, and cells of the table built from it
MAX_TEXT_CHARS = 200_000_000  # characters of text kept from one sheet
MAX_XML_DEPTH = 64
MAX_CELL_ELEMENTS = 10_000  # XML elements inside one cell (rich-text runs)


@dataclass(frozen=True, slots=True)
class SheetTable:
    sheet: str
    header_row: int  # 1-based sheet row
    frame: pd.DataFrame  # index: 1-based sheet rows


def read_xlsx(data: bytes, limits: IngestLimits) -> SheetTable:
    for _, table in iter_sheet_tables(data, limits):
        if table is not None:
            return table
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
            try:
                table = _read_sheet(worksheet, limits)
            except (SyntaxError, zlib.error, zipfile.BadZipFile, EOFError, OSError) as exc:
                raise IngestError(_DAMAGED) from exc  # malformed sheet XML (SyntaxError: ParseError), bad CRC
            yield str(worksheet.title), table
    finally:
        workbook.close()


def _open_workbook(data: bytes) -> Any:
    check_archive(data)
    try:
        import openpyxl

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # openpyxl warns about styles and extensions it does not read
            return openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except MemoryError:
        raise
    except Exception as exc:  # a damaged part surfaces as any of a dozen types (XML, zlib, openpyxl's own)
        raise IngestError(
            "This Excel file could not be opened (it may be damaged, password-protected or not really "
            ".xlsx). "
            "Open it in Excel and save it again as .xlsx or CSV."
        ) from exc


_DAMAGED = (
    "This Excel file is damaged or was not saved by a spreadsheet program. "
    "Open it in Excel and save it again as .xlsx or CSV."
)


def check_archive(data: bytes) -> None:
    """Refuse an archive whose declared contents no export has (zip bombs, thousands of parts or sheets).

    :mod:`zipfile` never returns more bytes than a part declares, so checking the declared sizes bounds the
    decompression; the whole-archive ratio also catches parts that overstate their compressed size.
    """
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            parts = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise IngestError(
            "This Excel file could not be opened (it may be damaged, password-protected or not really .xlsx). "
            "Open it in Excel and save it again as .xlsx or CSV."
        ) from exc
    if len(parts) > MAX_PARTS:
        raise IngestError(f"This Excel file holds {len(parts):,} parts, far more than a workbook has. " + _DAMAGED)
    sheets = sum(1 for p in parts if p.filename.startswith("xl/worksheets/") and p.filename.endswith(".xml"))
    if sheets > MAX_SHEETS:
        raise IngestError(
            f"This workbook has {sheets:,} sheets; I read workbooks of up to {MAX_SHEETS:,}. "
            "Copy the sheet with the table into a new workbook, or save it as CSV."
        )
    total = 0
    for part in parts:
        total += part.file_size
        inflated = part.file_size > INFLATE_GRACE_BYTES and part.file_size > MAX_INFLATE_RATIO * part.compress_size
        whole = not part.filename.startswith("xl/worksheets/") and part.file_size > MAX_WHOLE_PART_BYTES
        if inflated or whole:
            raise _inflates(len(data), part.file_size)
    if total > INFLATE_GRACE_BYTES and total > MAX_INFLATE_RATIO * len(data):
        raise _inflates(len(data), total)


def _inflates(size: int, inflated: int) -> IngestError:
    return IngestError(
        f"This Excel file ({size / 1024:,.0f} KB) unpacks to {inflated / 1_048_576:,.0f} MB, which only a damaged "
        "or deliberately crafted file does, so I did not read it. Save the table again from Excel as .xlsx or CSV."
    )


def _column_letter(column: int) -> str:
    letters = ""
    while column > 0:
        column, rest = divmod(column - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _rows(worksheet: object, limits: IngestLimits) -> Iterator[tuple[int, list[object]]]:
    """``(sheet row, values)`` of a sheet, streamed from its XML: each row holds its values up to its last
    filled cell (no padding to the declared dimension), and a run of blank or missing rows is one blank row.

    Caps, checked while streaming: a filled cell beyond ``limits.max_columns``, more than ``limits.max_rows``
    rows, more than :data:`MAX_CELLS` filled cells, text longer than Excel allows or :data:`MAX_TEXT_CHARS`
    in all; an element nested deeper than a sheet has, or a cell with thousands of parts, is damage.
    """
    from openpyxl.worksheet._reader import CELL_TAG, DATA_TAG, ROW_TAG, VALUE_TAG, WorkSheetParser
    from openpyxl.xml.functions import iterparse

    book = worksheet.parent  # type: ignore[attr-defined]
    parser = WorkSheetParser(
        None,
        worksheet._shared_strings,  # type: ignore[attr-defined]
        data_only=True,
        epoch=book.epoch,
        date_formats=book._date_formats,
        timedelta_formats=book._timedelta_formats,
    )
    max_rows = limits.max_rows + SNIFF_ROWS
    yielded = cells = text = 0
    last_row = 0  # sheet row of the last row yielded
    values: dict[int, object] = {}
    row_number = 0
    stack: list[Any] = []  # open elements; a finished one is removed from its parent at once
    cell_depth = -1  # depth of the open <c>, -1 outside a cell
    cell_elements = 0

    def flush() -> Iterator[tuple[int, list[object]]]:
        nonlocal yielded, cells, last_row
        if not values or row_number <= last_row:  # a blank row, or one out of order (openpyxl skips those too)
            return
        if row_number > last_row + 1 and last_row > 0:
            yielded += 1
            yield last_row + 1, []
        yielded += 1
        if yielded > max_rows:
            raise IngestError(
                f"The sheet has more than {limits.max_rows:,} rows, the limit. Filter the export to fewer rows."
            )
        cells += len(values)
        if cells > MAX_CELLS:
            raise IngestError(
                f"The sheet has more than {MAX_CELLS:,} filled cells, more than I can read. "
                "Filter the export to fewer rows or columns."
            )
        row: list[object] = [None] * max(values)
        for column, value in values.items():
            row[column - 1] = value
        last_row = row_number
        yield row_number, row

    with worksheet._get_source() as source:  # type: ignore[attr-defined]
        for event, element in iterparse(source, events=("start", "end")):
            if event == "start":
                stack.append(element)
                if len(stack) > MAX_XML_DEPTH:
                    raise IngestError(_DAMAGED)
                if cell_depth >= 0:
                    cell_elements += 1
                    if cell_elements > MAX_CELL_ELEMENTS:
                        raise IngestError(_DAMAGED)
                elif element.tag == CELL_TAG:
                    cell_depth, cell_elements = len(stack), 0
                elif element.tag == ROW_TAG:
                    yield from flush()
                    values = {}
                    number = element.get("r")
                    row_number = _row_number(number) if number else row_number + 1
                    parser.row_counter, parser.col_counter = row_number, 0
                continue
            stack.pop()
            depth = len(stack) + 1
            if cell_depth >= 0 and depth > cell_depth:
                continue  # inside a cell: kept until the cell is parsed
            if element.tag == CELL_TAG:
                cell_depth = -1
                parser.row_counter = row_number
                try:
                    column, value = _plain_cell(element, parser, VALUE_TAG) or _cell(parser.parse_cell(element))
                except (ValueError, TypeError, IndexError, KeyError, OverflowError) as exc:
                    raise IngestError(_DAMAGED) from exc
                if not is_blank_cell(value):
                    if column > limits.max_columns:
                        raise IngestError(
                            f"The sheet has a filled cell in column {_column_letter(column)} (column {column:,}); "
                            f"I read at most {limits.max_columns} columns. Delete the stray cells, or copy just "
                            "the table into a new workbook."
                        )
                    if column < 1:
                        raise IngestError(_DAMAGED)
                    if isinstance(value, str):
                        if len(value) > MAX_CELL_CHARS:
                            raise IngestError(
                                f"A cell holds {len(value):,} characters, more than Excel itself allows "
                                f"({MAX_CELL_CHARS:,}). " + _DAMAGED
                            )
                        text += len(value)
                        if text > MAX_TEXT_CHARS:
                            raise IngestError(
                                "The sheet holds more text than I can read. Export only the table's columns."
                            )
                    values[column] = value
            elif element.tag == DATA_TAG:
                yield from flush()
                return  # nothing after the cells matters
            if stack:
                stack[-1].remove(element)
            else:
                element.clear()
    yield from flush()


_COLUMNS: dict[str, int] = {}
_DIGITS = "0123456789"


def _plain_cell(element: Any, parser: Any, value_tag: str) -> tuple[int, object] | None:
    """``(column, value)`` of the cells nearly every sheet is made of (a number without a date format, or a
    shared string, with its reference), read without openpyxl's general parser; ``None`` for any other cell."""
    kind = element.get("t")
    ref = element.get("r")
    if ref is None or (kind is not None and kind != "n" and kind != "s"):
        return None
    style = element.get("s")
    if style is not None and style != "0" and int(style) in parser.date_formats:
        return None
    letters = ref.rstrip(_DIGITS)
    column = _COLUMNS.get(letters)
    if column is None:
        if not letters.isalpha() or not letters.isupper() or len(letters) > 3:
            return None
        column = 0
        for letter in letters:
            column = column * 26 + ord(letter) - 64
        _COLUMNS[letters] = column
    parser.col_counter = column
    text = element.findtext(value_tag)
    if not text:
        return column, None
    if kind == "s":
        return column, parser.shared_strings[int(text)]
    return column, _number(text)


def _number(text: str) -> float | int:
    if "." in text or "E" in text or "e" in text:
        return float(text)
    return int(text)


def _cell(parsed: dict[str, Any]) -> tuple[int, object]:
    return parsed["column"], parsed["value"]


def _row_number(text: str) -> int:
    try:
        number = float(text)
    except ValueError as exc:
        raise IngestError(_DAMAGED) from exc
    if not number.is_integer() or not 0 < number < 1 << 31:
        raise IngestError(_DAMAGED)
    return int(number)


def _read_sheet(worksheet: object, limits: IngestLimits) -> SheetTable | None:
    numbers: list[int] = []
    rows: list[list[object]] = []
    for number, row in _rows(worksheet, limits):
        numbers.append(number)
        rows.append(row)
    # Rows as wide as the sheet's real used range (what Excel's own dimension says of an honest file).
    used = max((len(r) for r in rows), default=0)
    sample = [r + [None] * (used - len(r)) for r in rows[:SNIFF_ROWS]]
    header = find_header(sample)
    if header is None:
        return None
    body = rows[header + 1 :]
    width = max([len(rows[header]), *(len(r) for r in body)])
    if width > limits.max_columns:
        raise IngestError(f"The sheet has {width} columns; the limit is {limits.max_columns}.")
    names = header_names(sample, header, width)
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
    if len(body) * width > MAX_CELLS:
        raise IngestError(
            f"The table is {len(body):,} rows by {width} columns, more than the {MAX_CELLS:,} cells I can read. "
            "Filter the export to fewer rows or columns."
        )
    index = pd.Index(np.asarray(numbers[header + 1 : header + 1 + end], dtype=np.int64), name="row")
    columns = {}
    for position, name in enumerate(names):
        values = [r[position] if position < len(r) else None for r in body]
        columns[name] = _column(values, index)
    text_columns = {n for n, c in columns.items() if c.dtype == "str"}
    renamed = name_label_column(names, text_columns)
    if renamed is not names:
        columns = dict(zip(renamed, columns.values(), strict=True))
    frame = pd.DataFrame(columns, index=index)
    return SheetTable(sheet=str(worksheet.title), header_row=numbers[header], frame=frame)  # type: ignore[attr-defined]


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
