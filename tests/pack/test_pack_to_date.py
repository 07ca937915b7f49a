"""A full-year budget against actuals to March: the pack compares the months with actuals, as its chart does."""

from __future__ import annotations

import io

from openpyxl import load_workbook

from analyst.ingest import load_dataset
from analyst.pack import build_pack, pack_data

# Travel: 1,100 a month actual against 1,000 budget for Jan–Mar; Apr–Dec have budget only.
ROWS = ["Month,Account,Budget,Actual"] + [
    f"2024-{m:02d},Travel expense,1000,{'1100' if m <= 3 else ''}" for m in range(1, 13)
]
FILE = ("\n".join(ROWS) + "\n").encode()


def test_budget_only_months_do_not_turn_an_overspend_into_a_saving() -> None:
    data = pack_data(load_dataset(FILE, filename="fy.csv"))
    # To date: 3,300 against 3,000 is 300 (10%) over: unfavourable, not "−8,700 favourable" against 12,000.
    assert (data.report.summary.actual, data.report.summary.reference) == (3_300.0, 3_000.0)
    (line,) = data.lines
    assert (line.actual, line.reference, line.variance, line.favourable) == (3_300.0, 3_000.0, 300.0, False)
    assert any("2024-04" in note and "no actuals" in note for note in data.notes)


async def test_the_summary_sheet_says_which_months_it_compares() -> None:
    pack = await build_pack(load_dataset(FILE, filename="fy.csv"))
    cells = [
        str(v)
        for row in load_workbook(io.BytesIO(pack.xlsx))["Summary"].iter_rows(values_only=True)
        for v in row
        if v is not None
    ]
    assert any("Actual 3,300 vs budget 3,000" in c for c in cells), cells
    assert not any("12,000" in c for c in cells), cells


def test_the_notes_do_not_call_the_left_out_months_missing_from_the_file() -> None:
    notes = pack_data(load_dataset(FILE, filename="fy.csv")).notes
    assert not any("not in the file" in note for note in notes), notes
