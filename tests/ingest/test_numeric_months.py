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
