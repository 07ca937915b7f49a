"""Workbooks built to exhaust the reader: memory follows the cells really present (never the declared
dimension), and every cap is applied while streaming, with a message that says what to do."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from analyst.dataset import ACTUAL, REFERENCE, IngestError
from analyst.ingest import load_dataset
from tests.ingest.hostile_workbooks import (
    dimension_bomb,
    inline,
    number,
    shared,
    sheet_xml,
    small_table_rows,
    workbook,
)

ROOT = Path(__file__).resolve().parents[2]


def totals(content: bytes) -> tuple[float, float, int]:
    ds = load_dataset(content, filename="bva.xlsx")
    return float(ds.frame[REFERENCE].sum()), float(ds.frame[ACTUAL].sum()), len(ds.frame)


def test_the_dimension_bomb_is_refused_at_once_in_little_memory(tmp_path: Path) -> None:
    """In a child process limited to 400 MB of data (today's reader padded every row to 16,384 columns). Its peak is
    VmHWM: ru_maxrss would carry over the RSS of the test process it was started from."""
    path = tmp_path / "bomb.xlsx"
    path.write_bytes(dimension_bomb())
    assert path.stat().st_size < 2048
    script = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_DATA, (400 << 20, 400 << 20))\n"
        "from analyst.dataset import IngestError\n"
        "from analyst.ingest import load_dataset\n"
        "try:\n"
        f"    load_dataset({str(path)!r})\n"
        "except IngestError as error:\n"
        "    print(error)\n"
        "print('peak_kb', next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')))\n"
    )
    env = dict(os.environ, ARROW_DEFAULT_MEMORY_POOL="system", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    message, peak = done.stdout.strip().splitlines()
    assert message == (
        "The sheet has a filled cell in column XFD (column 16,384); I read at most 500 columns. "
        "Delete the stray cells, or copy just the table into a new workbook."
    )
    assert int(peak.split()[1]) < 300 * 1024  # the interpreter and pandas; nothing for the 16,384 columns


def test_a_table_under_a_huge_declared_dimension_reads_normally() -> None:
    content = workbook([sheet_xml(small_table_rows(), dimension="A1:XFD1048576")])
    assert totals(content) == (1800.0, 2100.0, 3)


def test_blank_rows_up_to_the_last_sheet_row_cost_nothing() -> None:
    note = f'<row r="1048576">{inline("A1048576", "Prepared by FP&A")}</row>'
    content = workbook([sheet_xml(small_table_rows() + note)])
    ds = load_dataset(content, filename="bva.xlsx")
    assert (float(ds.frame[REFERENCE].sum()), float(ds.frame[ACTUAL].sum())) == (1800.0, 2100.0)
    assert ds.source.header_row == 1


def test_rows_keep_their_sheet_numbers_across_gaps() -> None:
    content = workbook([sheet_xml(small_table_rows(first_row=40))])
    ds = load_dataset(content, filename="bva.xlsx")
    assert ds.source.header_row == 40
    assert len(ds.frame) == 3


def test_a_cell_beyond_the_column_limit_is_named() -> None:
    stray = f'<row r="9">{number("SH9", 1)}</row>'  # column 502
    with pytest.raises(IngestError, match=r"column SH \(column 502\); I read at most 500 columns"):
        load_dataset(workbook([sheet_xml(small_table_rows() + stray)]), filename="bva.xlsx")


def test_a_zip_bomb_is_refused_before_it_is_unpacked() -> None:
    padding = " " * (64 << 20)  # 64 MB of whitespace inside the sheet: deflates about 1,000 to 1
    content = workbook([sheet_xml(small_table_rows() + padding)])
    assert len(content) < 1 << 20
    with pytest.raises(IngestError, match="unpacks to 64 MB, which only a damaged or deliberately crafted file"):
        load_dataset(content, filename="bva.xlsx")


def test_a_part_that_understates_its_inflation_is_caught_by_the_whole_archive() -> None:
    """Stored (not compressed) parts can't lie about the ratio; many medium parts add up instead."""
    parts = {f"xl/media/image{i}.bin": b"\0" * (900 << 10) for i in range(200)}  # each under the 1 MB grace
    content = workbook([sheet_xml(small_table_rows())], extra=parts)
    with pytest.raises(IngestError, match="unpacks to"):
        load_dataset(content, filename="bva.xlsx")


def test_thousands_of_sheets_are_refused() -> None:
    content = workbook([sheet_xml("")] * 1_001 + [sheet_xml(small_table_rows())], compression=zipfile.ZIP_STORED)
    with pytest.raises(IngestError, match="This workbook has 1,002 sheets; I read workbooks of up to 1,000"):
        load_dataset(content, filename="bva.xlsx")


def test_a_table_on_a_later_sheet_is_found_after_empty_ones() -> None:
    content = workbook([sheet_xml("")] * 20 + [sheet_xml(small_table_rows())])
    assert totals(content) == (1800.0, 2100.0, 3)


def test_a_shared_string_longer_than_excel_allows_is_refused() -> None:
    rows = small_table_rows() + f'<row r="9">{shared("A9", 0)}{number("B9", 1)}{number("C9", 1)}</row>'
    content = workbook([sheet_xml(rows)], shared_strings=["x" * 40_000])
    with pytest.raises(IngestError, match="A cell holds 40,000 characters, more than Excel itself allows"):
        load_dataset(content, filename="bva.xlsx")


def test_one_long_string_repeated_in_every_row_hits_the_text_cap() -> None:
    """32,000 characters shared by 8,000 cells would be 256 MB of text in the table."""
    rows = small_table_rows() + "".join(
        f'<row r="{r}">{shared(f"D{r}", 0)}</row>' for r in range(5, 8_005)
    )
    content = workbook([sheet_xml(rows)], shared_strings=["y" * 32_000])
    with pytest.raises(IngestError, match="The sheet holds more text than I can read"):
        load_dataset(content, filename="bva.xlsx")


def test_a_shared_string_index_out_of_range_is_damage_not_a_crash() -> None:
    rows = small_table_rows() + f'<row r="9">{shared("A9", 7)}{number("B9", 1)}{number("C9", 1)}</row>'
    with pytest.raises(IngestError, match="damaged"):
        load_dataset(workbook([sheet_xml(rows)], shared_strings=["only one"]), filename="bva.xlsx")


def test_deeply_nested_xml_is_damage() -> None:
    nested = "<x>" * 100 + "</x>" * 100
    content = workbook([sheet_xml(small_table_rows()).replace("<sheetData>", f"<sheetData>{nested}")])
    with pytest.raises(IngestError, match="damaged"):
        load_dataset(content, filename="bva.xlsx")


def test_rows_out_of_order_are_skipped_like_excel_readers_do() -> None:
    late = f'<row r="2">{inline("A2", "Rent")}{number("B2", 999)}{number("C2", 999)}</row>'
    content = workbook([sheet_xml(small_table_rows() + late)])
    assert totals(content) == (1800.0, 2100.0, 3)


def test_a_bad_row_number_is_damage() -> None:
    content = workbook([sheet_xml(small_table_rows().replace('<row r="3">', '<row r="3.5">'))])
    with pytest.raises(IngestError, match="damaged"):
        load_dataset(content, filename="bva.xlsx")
