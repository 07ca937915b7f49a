"""Quarters, halves and years: derived from a monthly period, usable as a grouping and in filters."""

from __future__ import annotations

import pandas as pd
import pytest

from analyst.dataset import ColumnRoles, Dataset, SourceInfo
from analyst.engine import AnalysisError, breakdown, summarize


def monthly(labels: list[str]) -> Dataset:
    n = len(labels)
    frame = pd.DataFrame(
        {
            "Department": ["Marketing"] * n,
            "period": pd.Categorical(labels, categories=list(dict.fromkeys(labels)), ordered=True),
            # actual = month number × 100, reference = 50 each month: easy to sum by hand.
            "actual": [float(100 * (i + 1)) for i in range(n)],
            "reference": [50.0] * n,
        }
    )
    roles = ColumnRoles(
        shape="wide", dimensions=("Department",), account=None, period="Month", actual="Actual",
        reference="Budget", reference_kind="budget",
    )
    source = SourceInfo("t.csv", "csv", "utf-8", ",", 1, n)
    return Dataset(frame=frame, roles=roles, source=source)


YEAR = [f"2025-{m:02d}" for m in range(1, 13)]


def totals(ds: Dataset, **filters: list[str]) -> tuple[float, float]:
    total = breakdown(ds, ["Department"], filters=filters).to_dict()["total"]
    return total["actual"], total["reference"]


def test_quarter_is_a_grouping_that_reconciles() -> None:
    rows = breakdown(monthly(YEAR), ["quarter"]).to_dict()["rows"]
    by_quarter = {row["quarter"]: row["actual"] for row in rows}
    assert by_quarter == {"2025-Q1": 600.0, "2025-Q2": 1500.0, "2025-Q3": 2400.0, "2025-Q4": 3300.0}
    assert sum(by_quarter.values()) == 7800.0


@pytest.mark.parametrize("value", ["Q3", "q3", "2025-Q3", "Q3 2025", "2025Q3"])
def test_period_and_quarter_filters_accept_quarter_names(value: str) -> None:
    ds = monthly(YEAR)
    assert totals(ds, period=[value]) == (2400.0, 150.0)  # Jul+Aug+Sep = 700+800+900
    assert totals(ds, quarter=[value]) == (2400.0, 150.0)


def test_halves_and_years_select_their_months() -> None:
    ds = monthly(YEAR)
    assert totals(ds, period=["H1"]) == (2100.0, 300.0)
    assert totals(ds, period=["2025"]) == (7800.0, 600.0)


def test_year_is_respected_across_years() -> None:
    ds = monthly(["2024-11", "2024-12", "2025-01", "2025-02"])
    assert totals(ds, period=["2025"]) == (700.0, 100.0)
    assert totals(ds, period=["Q1"]) == (700.0, 100.0)
    assert totals(ds, period=["2024-Q4"]) == (300.0, 100.0)
    with pytest.raises(AnalysisError, match="quarter or half"):
        totals(ds, period=["2023"])


def test_year_less_months_get_year_less_quarters() -> None:
    ds = monthly(["Jan", "Feb", "Mar", "Apr"])
    rows = breakdown(ds, ["quarter"]).to_dict()["rows"]
    assert {row["quarter"]: row["actual"] for row in rows} == {"Q1": 600.0, "Q2": 400.0}


def test_quarter_is_not_a_line_dimension() -> None:
    assert summarize(monthly(YEAR)).to_dict()["line_keys"] == ["Department"]


def test_an_existing_quarter_column_is_left_alone() -> None:
    ds = monthly(YEAR)
    ds.frame["Quarter"] = ["FQ1"] * 12
    ds = Dataset(
        frame=ds.frame,
        roles=ColumnRoles(
            shape="wide", dimensions=("Department", "Quarter"), account=None, period="Month",
            actual="Actual", reference="Budget", reference_kind="budget",
        ),
        source=ds.source,
    )
    rows = breakdown(ds, ["quarter"]).to_dict()["rows"]
    assert [row["Quarter"] for row in rows] == ["FQ1"]
