"""A year column beside a month column of numbers (1–12, "01") makes real periods, as month names do."""

from __future__ import annotations

import pytest

from analyst.engine import breakdown, period_view
from analyst.ingest import load_dataset


@pytest.mark.parametrize("jan, feb", [("1", "2"), ("01", "02")])
def test_numeric_months_combine_with_the_year(jan: str, feb: str) -> None:
    data = (
        "Year,Month,Account,Type,Budget,Actual\n"
        f"2024,{jan},Sales,Revenue,100,110\n2024,{feb},Sales,Revenue,100,130\n"
        f"2025,{jan},Sales,Revenue,200,190\n2025,{feb},Sales,Revenue,200,260\n"
    ).encode()
    ds = load_dataset(data, filename="sales_by_month.csv")
    rows = period_view(ds).to_dict()["periods"]
    assert [(r["period"], r["actual"], r["reference"]) for r in rows] == [
        ("2024-01", 110.0, 100.0),
        ("2024-02", 130.0, 100.0),
        ("2025-01", 190.0, 200.0),
        ("2025-02", 260.0, 200.0),
    ]
    # The month is no longer a dimension: one line, Sales, 690 vs 600.
    lines = breakdown(ds, ["Account"]).to_dict()["rows"]
    assert [(r["Account"], r["actual"], r["reference"]) for r in lines] == [("Sales", 690.0, 600.0)]
    assert "Month" not in ds.roles.dimensions


def test_a_month_number_out_of_range_is_not_a_month() -> None:
    data = b"Year,Month,Account,Budget,Actual\n2024,1,Rent,10,11\n2024,13,Rent,10,12\n"
    ds = load_dataset(data, filename="odd.csv")
    assert "Month" in ds.roles.dimensions


def _xlsx(rows: list[tuple[object, ...]]) -> bytes:
    import io

    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(list(row))
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def test_xlsx_long_file_with_year_and_month_numbers_over_two_years() -> None:
    # Long format, one row per scenario, as a Power BI or ERP extract writes it; Year and Month are numbers.
    header = ("Year", "Month", "Account", "Scenario", "Amount")
    cells = [
        (2024, 11, "Sales", "Budget", 1000),
        (2024, 11, "Sales", "Actual", 1100),
        (2024, 11, "Rent", "Budget", 300),
        (2024, 11, "Rent", "Actual", 320),
        (2024, 12, "Sales", "Budget", 1000),
        (2024, 12, "Sales", "Actual", 950),
        (2024, 12, "Rent", "Budget", 300),
        (2024, 12, "Rent", "Actual", 300),
        (2025, 1, "Sales", "Budget", 1200),
        (2025, 1, "Sales", "Actual", 1260),
        (2025, 1, "Rent", "Budget", 310),
        (2025, 1, "Rent", "Actual", 305),
        (2025, 2, "Sales", "Budget", 1200),
        (2025, 2, "Sales", "Actual", 1180),
        (2025, 2, "Rent", "Budget", 310),
        (2025, 2, "Rent", "Actual", 330),
    ]
    ds = load_dataset(_xlsx([header, *cells]), filename="extract.xlsx")
    assert ds.roles.shape == "long" and ds.roles.period == "Year + Month"
    rows = period_view(ds).to_dict()["periods"]
    # Per period, actual and budget of Sales + Rent: 1,100 + 320 / 1,000 + 300, and so on. November and December
    # 2024 come before January 2025, and the two Januaries are never one "Jan".
    assert [(r["period"], r["actual"], r["reference"]) for r in rows] == [
        ("2024-11", 1_420.0, 1_300.0),
        ("2024-12", 1_250.0, 1_300.0),
        ("2025-01", 1_565.0, 1_510.0),
        ("2025-02", 1_510.0, 1_510.0),
    ]
    lines = breakdown(ds, ["Account"]).to_dict()["rows"]
    # Sales 1,100 + 950 + 1,260 + 1,180 = 4,490 vs 4,400; Rent 320 + 300 + 305 + 330 = 1,255 vs 1,220.
    assert sorted((r["Account"], r["actual"], r["reference"]) for r in lines) == [
        ("Rent", 1_255.0, 1_220.0),
        ("Sales", 4_490.0, 4_400.0),
    ]
    assert not any("repeat" in w for w in ds.warnings)


def test_month_numbers_without_a_year_over_one_year_are_months() -> None:
    data = (
        b"Month,Account,Budget,Actual\n"
        b"1,Rent,100,110\n2,Rent,100,90\n3,Rent,100,120\n1,Sales,500,550\n2,Sales,500,450\n3,Sales,500,600\n"
    )
    ds = load_dataset(data, filename="q1.csv")
    assert ds.roles.period == "Month" and "Month" not in ds.roles.dimensions
    rows = period_view(ds).to_dict()["periods"]
    # Rent + Sales per month: 110 + 550 / 100 + 500, 90 + 450, 120 + 600.
    assert [(r["period"], r["actual"], r["reference"]) for r in rows] == [
        ("Jan", 660.0, 600.0),
        ("Feb", 540.0, 600.0),
        ("Mar", 720.0, 600.0),
    ]
    assert ds.warnings == []


def test_month_numbers_without_a_year_that_repeat_say_so() -> None:
    # Two Januaries of Rent with no year to tell them apart: added together, and the warning says so.
    data = b"Month,Account,Budget,Actual\n1,Rent,100,110\n2,Rent,100,90\n1,Rent,100,105\n"
    ds = load_dataset(data, filename="two_years.csv")
    assert [(r["period"], r["actual"]) for r in period_view(ds).to_dict()["periods"]] == [
        ("Jan", 215.0),
        ("Feb", 90.0),
    ]
    assert any("months without a year" in w and "1 line(s) repeat a month" in w for w in ds.warnings)


def test_a_fiscal_period_number_is_not_a_calendar_month() -> None:
    # "Period 1" of a fiscal year may be July: numbers under a "Period" header are not read as January.
    data = b"Fiscal Period,Account,Budget,Actual\n1,Rent,100,110\n2,Rent,100,90\n"
    ds = load_dataset(data, filename="fiscal.csv")
    assert ds.roles.period is None and "Fiscal Period" in ds.roles.dimensions
