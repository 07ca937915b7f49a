"""The pack as an XLSX workbook (openpyxl): Summary, Variance and Exclusions sheets.

Text from the input file (labels, column names, exclusion reasons) and the model's commentary is *data*: a
cell whose text would start a formula in the reader's spreadsheet (``=``, ``+``, ``-``, ``@``, a tab or carriage
return, or their full-width forms) gets a leading apostrophe and is stored as a string with Excel's "quote
prefix", so nothing from a file ever runs. Amounts are numbers with number formats, never text.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from openpyxl import Workbook
from openpyxl.cell.cell import Cell
from openpyxl.drawing.image import Image as SheetImage
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from analyst.pack.data import PackData

# Characters that make a spreadsheet read a cell as a formula (or, with tab/CR, a DDE payload on import).
FORMULA_STARTS = frozenset("=+-@\t\r\n＝＋－＠")
_HEADER_FONT = Font(bold=True, color="FFFFFF")
_HEADER_FILL = PatternFill("solid", fgColor="34495E")
_TITLE_FONT = Font(bold=True, size=14)
_FAV_FONT = Font(color="2E7D4F")
_UNFAV_FONT = Font(color="C0392B")
_WRAP = Alignment(wrap_text=True, vertical="top")


def safe_text(value: object) -> str:
    """Text that no spreadsheet will evaluate: a leading apostrophe before a formula-starting character."""
    text = "" if value is None else str(value)
    stripped = text.lstrip(" \u00a0")
    if text and (text[0] in FORMULA_STARTS or (stripped and stripped[0] in FORMULA_STARTS)):
        return "'" + text
    return text


def _text_cell(sheet: Worksheet, row: int, column: int, value: object) -> Cell:
    cell = sheet.cell(row=row, column=column)
    text = safe_text(value)
    cell.value = text
    cell.data_type = "s"  # openpyxl would otherwise turn a leading "=" into a formula
    if text.startswith("'"):
        cell.quotePrefix = True
    return cell


def _number_cell(sheet: Worksheet, row: int, column: int, value: float | None, number_format: str) -> Cell:
    cell = sheet.cell(row=row, column=column, value=value)
    cell.number_format = number_format
    return cell


def _header(sheet: Worksheet, row: int, titles: list[str]) -> None:
    for column, title in enumerate(titles, 1):
        cell = _text_cell(sheet, row, column, title)
        cell.font = _HEADER_FONT
        cell.fill = _HEADER_FILL
        cell.alignment = Alignment(vertical="center", wrap_text=True)


def _verdict(favourable: bool | None) -> str:
    return {True: "favourable", False: "unfavourable", None: "n/a"}[favourable]


def build_workbook(
    data: PackData,
    bridge_png: bytes | None = None,
    commentary: Mapping[int, str] | None = None,
    commentary_notes: Mapping[int, str] | None = None,
    commentary_status: str = "",
) -> bytes:
    """The workbook's bytes. ``commentary`` maps a line's number to its text; ``commentary_notes`` says why a
    line's commentary was left blank; ``commentary_status`` says what happened overall (no key, drafted ...)."""
    workbook = Workbook()
    summary = workbook.active
    assert summary is not None
    summary.title = "Summary"
    _summary_sheet(summary, data, bridge_png, commentary_status)
    _variance_sheet(workbook.create_sheet("Variance"), data, commentary or {}, commentary_notes or {})
    _exclusions_sheet(workbook.create_sheet("Exclusions"), data)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _money_format(scale: int) -> str:
    return "#,##0" + ("." + "0" * scale if scale else "")


def _summary_sheet(sheet: Worksheet, data: PackData, bridge_png: bytes | None, commentary_status: str) -> None:
    report = data.report
    s = report.summary
    ds = report.dataset
    money = _money_format(data.scale)
    ref = data.reference_word.capitalize()
    title = _text_cell(sheet, 1, 1, f"Month-end variance pack: {ds.source.filename}")
    title.font = _TITLE_FONT
    periods = ""
    if s.periods:
        periods = s.periods[0] if len(s.periods) == 1 else f"{s.periods[0]} – {s.periods[-1]}"
    _text_cell(sheet, 2, 1, f"Periods: {periods}" if periods else "No period column")
    _text_cell(sheet, 3, 1, data.headline).font = Font(bold=True)
    row = 5
    _header(sheet, row, ["Account type", "Actual", ref, "Variance", "Variance %", "Favourable"])
    for t in s.by_type:
        row += 1
        _text_cell(sheet, row, 1, str(t["account_type"]).replace("_", "-"))
        _number_cell(sheet, row, 2, t["actual"], money)
        _number_cell(sheet, row, 3, t["reference"], money)
        _number_cell(sheet, row, 4, t["variance"], money)
        _number_cell(sheet, row, 5, t["variance_pct"], '0.0"%"')
        _text_cell(sheet, row, 6, _verdict(t["favourable"]))
    row += 1
    _text_cell(sheet, row, 1, "Total").font = Font(bold=True)
    for column, value in ((2, s.actual), (3, s.reference), (4, s.variance)):
        _number_cell(sheet, row, column, value, money).font = Font(bold=True)
    _number_cell(sheet, row, 5, s.variance_pct, '0.0"%"')
    if any(t["account_type"] != "unknown" for t in s.by_type):
        row += 2
        _text_cell(sheet, row, 1, "Effect on profit").font = Font(bold=True)
        _number_cell(sheet, row, 4, s.net_impact, money).font = Font(bold=True)
        _text_cell(sheet, row, 6, _verdict(s.favourable))
    row += 2
    material = len(data.lines)
    _text_cell(sheet, row, 1, f"Material lines: {material:,} of {s.lines:,} (listed on the Variance sheet)")
    row += 1
    _text_cell(sheet, row, 1, f"Materiality: {report.materiality_rule}")
    if commentary_status:
        row += 1
        _text_cell(sheet, row, 1, commentary_status)
    for note in data.notes:
        row += 1
        _text_cell(sheet, row, 1, f"Note: {note}")
    sheet.column_dimensions["A"].width = 22
    for letter in "BCD":
        sheet.column_dimensions[letter].width = 16
    sheet.column_dimensions["E"].width = 12
    sheet.column_dimensions["F"].width = 14
    if bridge_png:
        image = SheetImage(io.BytesIO(bridge_png))
        image.width, image.height = 720, 405  # 960 × 540 px scaled to fit beside the table
        sheet.add_image(image, f"A{row + 2}")


def _variance_sheet(
    sheet: Worksheet, data: PackData, commentary: Mapping[int, str], notes: Mapping[int, str]
) -> None:
    money = _money_format(data.scale)
    ref = data.reference_word.capitalize()
    keys = list(data.key_columns)
    titles = [*keys, "Account type", "Actual", ref, "Variance", "Variance %", "Favourable", "Commentary"]
    _header(sheet, 1, titles)
    sheet.freeze_panes = "A2"
    first_amount = len(keys) + 2
    for offset, line in enumerate(data.lines):
        row = offset + 2
        for column, value in enumerate(line.keys or ("Total",), 1):
            _text_cell(sheet, row, column, value)
        _text_cell(sheet, row, len(keys) + 1, line.account_type.replace("_", "-"))
        _number_cell(sheet, row, first_amount, line.actual, money)
        _number_cell(sheet, row, first_amount + 1, line.reference, money)
        _number_cell(sheet, row, first_amount + 2, line.variance, money)
        _number_cell(sheet, row, first_amount + 3, line.variance_pct, '0.0"%"')
        verdict = _text_cell(sheet, row, first_amount + 4, _verdict(line.favourable))
        if line.favourable is not None:
            verdict.font = _FAV_FONT if line.favourable else _UNFAV_FONT
        text = commentary.get(line.number) or ""
        if not text and line.number in notes:
            text = f"[{notes[line.number]}]"
        _text_cell(sheet, row, first_amount + 5, text).alignment = _WRAP
    if not data.lines:
        _text_cell(sheet, 2, 1, "No line passes the materiality thresholds.")
    widths = [24] * len(keys) + [14, 16, 16, 16, 11, 13, 70]
    for column, width in enumerate(widths, 1):
        sheet.column_dimensions[get_column_letter(column)].width = width
    if data.lines:
        sheet.auto_filter.ref = f"A1:{get_column_letter(len(titles))}{len(data.lines) + 1}"


def _exclusions_sheet(sheet: Worksheet, data: PackData) -> None:
    excluded = data.report.dataset.excluded_rows
    _header(sheet, 1, ["Source row", "Label", "Why it was left out of the sums"])
    for offset, item in enumerate(excluded):
        row = offset + 2
        sheet.cell(row=row, column=1, value=item.source_row)
        _text_cell(sheet, row, 2, item.label)
        _text_cell(sheet, row, 3, item.reason)
    if not excluded:
        _text_cell(sheet, 2, 2, "No rows were excluded.")
    sheet.column_dimensions["A"].width = 12
    sheet.column_dimensions["B"].width = 40
    sheet.column_dimensions["C"].width = 50


def sheet_rows(sheet: Worksheet) -> list[list[Any]]:
    """Every row's values (used by the CLI's summary line and by readers of the pack)."""
    return [list(row) for row in sheet.iter_rows(values_only=True)]
