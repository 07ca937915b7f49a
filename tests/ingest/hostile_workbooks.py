"""Hand-built .xlsx archives with the shapes an attacker (or a broken exporter) produces: the parts Excel
writes, but with a declared dimension, sizes or counts that no real export has."""

from __future__ import annotations

import io
import zipfile
from xml.sax.saxutils import escape

MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG_REL = "http://schemas.openxmlformats.org/package/2006/relationships"
SHEET_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"
HEADER = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'


def inline(ref: str, text: str) -> str:
    return f'<c r="{ref}" t="inlineStr"><is><t>{escape(text)}</t></is></c>'


def number(ref: str, value: float | int) -> str:
    return f'<c r="{ref}"><v>{value}</v></c>'


def shared(ref: str, index: int) -> str:
    return f'<c r="{ref}" t="s"><v>{index}</v></c>'


def sheet_xml(rows: str, dimension: str | None = None) -> str:
    dim = f'<dimension ref="{dimension}"/>' if dimension else ""
    return f'{HEADER}<worksheet xmlns="{MAIN}">{dim}<sheetData>{rows}</sheetData></worksheet>'


def workbook(
    sheets: list[str],
    *,
    shared_strings: list[str] | None = None,
    extra: dict[str, bytes] | None = None,
    compression: int = zipfile.ZIP_DEFLATED,
) -> bytes:
    """An .xlsx with these sheet XMLs (named Sheet1, Sheet2, ...) and, optionally, a shared-string table."""
    overrides = "".join(
        f'<Override PartName="/xl/worksheets/sheet{i}.xml" ContentType="{SHEET_TYPE}"/>'
        for i in range(1, len(sheets) + 1)
    )
    if shared_strings is not None:
        overrides += (
            '<Override PartName="/xl/sharedStrings.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
        )
    content_types = (
        f'{HEADER}<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        f"{overrides}</Types>"
    )
    root_rels = (
        f'{HEADER}<Relationships xmlns="{PKG_REL}"><Relationship Id="rId1" '
        f'Type="{REL}/officeDocument" Target="xl/workbook.xml"/></Relationships>'
    )
    sheet_entries = "".join(
        f'<sheet name="Sheet{i}" sheetId="{i}" r:id="rId{i}"/>' for i in range(1, len(sheets) + 1)
    )
    book = f'{HEADER}<workbook xmlns="{MAIN}" xmlns:r="{REL}"><sheets>{sheet_entries}</sheets></workbook>'
    rels = "".join(
        f'<Relationship Id="rId{i}" Type="{REL}/worksheet" Target="worksheets/sheet{i}.xml"/>'
        for i in range(1, len(sheets) + 1)
    )
    if shared_strings is not None:
        rels += f'<Relationship Id="rIdS" Type="{REL}/sharedStrings" Target="sharedStrings.xml"/>'
    book_rels = f'{HEADER}<Relationships xmlns="{PKG_REL}">{rels}</Relationships>'
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression) as archive:
        archive.writestr("[Content_Types].xml", content_types)
        archive.writestr("_rels/.rels", root_rels)
        archive.writestr("xl/workbook.xml", book)
        archive.writestr("xl/_rels/workbook.xml.rels", book_rels)
        for i, xml in enumerate(sheets, start=1):
            archive.writestr(f"xl/worksheets/sheet{i}.xml", xml)
        if shared_strings is not None:
            items = "".join(f"<si><t>{escape(s)}</t></si>" for s in shared_strings)
            archive.writestr(
                "xl/sharedStrings.xml",
                f'{HEADER}<sst xmlns="{MAIN}" count="{len(shared_strings)}" '
                f'uniqueCount="{len(shared_strings)}">{items}</sst>',
            )
        for name, data in (extra or {}).items():
            archive.writestr(name, data)
    return out.getvalue()


def dimension_bomb() -> bytes:
    """1.6 KB: declares ``A1:XFD1048576``; a header row and one cell in the sheet's very last cell."""
    header = "".join(inline(f"{c}1", t) for c, t in zip("ABC", ["Account", "Budget", "Actual"], strict=True))
    rows = f'<row r="1">{header}</row><row r="1048576">{number("XFD1048576", 1)}</row>'
    return workbook([sheet_xml(rows, dimension="A1:XFD1048576")])


def small_table_rows(first_row: int = 1) -> str:
    """Account, Budget, Actual with three lines (Marketing 500 → 650, Sales 1,000 → 1,200, Travel 300 → 250)."""
    lines = [("Marketing", 500, 650), ("Sales", 1000, 1200), ("Travel", 300, 250)]
    rows = [
        f'<row r="{first_row}">'
        + "".join(inline(f"{c}{first_row}", t) for c, t in zip("ABC", ["Account", "Budget", "Actual"], strict=True))
        + "</row>"
    ]
    for offset, (account, budget, actual) in enumerate(lines, start=1):
        r = first_row + offset
        rows.append(f'<row r="{r}">{inline(f"A{r}", account)}{number(f"B{r}", budget)}{number(f"C{r}", actual)}</row>')
    return "".join(rows)
