"""Hand-written files shaped like real exports; every expected total was added up by hand from the file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from analyst.dataset import ACTUAL, PERIOD, REFERENCE, Dataset
from analyst.ingest import load_dataset

DATA = Path(__file__).resolve().parents[1] / "data" / "ingest"


def load(name: str) -> Dataset:
    return load_dataset(DATA / name)


def totals(ds: Dataset) -> tuple[float, float]:
    return round(float(ds.frame[ACTUAL].sum()), 2), round(float(ds.frame[REFERENCE].sum()), 2)


def test_quickbooks_budget_vs_actuals() -> None:
    ds = load("quickbooks_budget_vs_actuals.csv")
    assert ds.source.header_row == 6
    assert ds.source.delimiter == ","
    assert ds.roles.shape == "wide"
    assert (ds.roles.actual, ds.roles.reference, ds.roles.reference_kind) == ("Actual", "Budget", "budget")
    assert ds.roles.account == "Account"  # the blank header of the account column
    assert list(ds.frame["Account"]) == [
        "4000 Sales",
        "4100 Services",
        "5000 Cost of Goods Sold",
        "6010 Salaries",
        "6020 Payroll Taxes",
        "6100 Advertising",
        "6200 Rent",
        "6300 Travel",
    ]
    # 52,340.00 + 18,200.50 + 21,450.25 + 30,000 + 2,295 + 4,820.75 + 6,000 − 150 (parenthesised credit)
    assert totals(ds) == (134956.50, 134400.00)
    assert ds.frame.loc[ds.frame["Account"] == "6300 Travel", ACTUAL].item() == -150.0
    assert ds.scale == 2
    excluded = {(e.source_row, e.label): e.reason for e in ds.excluded_rows}
    assert len(excluded) == 11
    assert "total" in excluded[(10, "Total Income")]
    assert "total" in excluded[(19, "Total 6000 Payroll Expenses")]
    assert "computed" in excluded[(14, "Gross Profit")]
    assert "computed" in excluded[(25, "Net Income")]
    assert "heading" in excluded[(7, "Income")]
    assert "heading" in excluded[(16, "6000 Payroll Expenses")]
    assert ds.warnings == []  # "over Budget" agrees with Actual − Budget on every line


def test_quickbooks_by_month_merges_the_month_super_header() -> None:
    ds = load("quickbooks_by_month.csv")
    assert ds.roles.shape == "wide_by_period"
    assert list(ds.frame[PERIOD].cat.categories) == ["2025-01", "2025-02"]
    assert len(ds.frame) == 6  # 3 accounts × 2 months
    # Actual: 10,000 + 8,500.50 + 1,200 + (Feb Advertising empty) + 3,000 + 3,000
    assert totals(ds) == (25700.50, 26000.00)
    feb_ads = ds.frame[(ds.frame["Account"] == "6100 Advertising") & (ds.frame[PERIOD] == "2025-02")]
    assert np.isnan(feb_ads[ACTUAL].item()) and feb_ads[REFERENCE].item() == 1000.0
    assert [e.label for e in ds.excluded_rows] == [
        "Income",
        "Total Income",
        "Expenses",
        "Total Expenses",
        "Net Income",
    ]
    assert any("Total Actual" in w for w in ds.warnings)  # the Total column group is not a month


def test_german_semicolon_export_cp1252() -> None:
    ds = load("german_kostenstellen.csv")
    assert (ds.source.encoding, ds.source.delimiter, ds.source.header_row) == ("cp1252", ";", 4)
    assert (ds.roles.actual, ds.roles.reference, ds.roles.reference_kind) == ("Ist", "Plan", "plan")
    assert ds.roles.account == "Konto"
    assert "Kostenstelle" in ds.roles.dimensions
    assert list(ds.frame["Konto"]) == ["4000", "4400", "6000", "6300", "6600", "6800"]
    assert "Umsatzerlöse" in set(ds.frame["Bezeichnung"])
    # Ist: 126.450,50 − 2.310,20 + 44.120,00 + 1.534,75 + 2.980,40 ("-" for Gebühren is missing)
    assert totals(ds) == (172775.45, 168500.00)
    assert np.isnan(ds.frame.loc[ds.frame["Konto"] == "6800", ACTUAL].item())
    assert [(e.source_row, e.label) for e in ds.excluded_rows] == [(11, "Summe")]


def test_russian_cp1251_with_nbsp_thousands() -> None:
    ds = load("russian_budget_cp1251.csv")
    assert (ds.source.encoding, ds.source.delimiter, ds.source.header_row) == ("cp1251", ";", 4)
    assert (ds.roles.actual, ds.roles.reference, ds.roles.account) == ("Факт", "План", "Статья")
    assert ds.roles.dimensions == ("Статья", "Отдел")
    # Факт: 1 620 350,50 + 935 100,25 + 342 000,00 + 120 000,00 + 95 430,10
    assert totals(ds) == (3112880.85, 2950000.00)
    assert [e.label for e in ds.excluded_rows] == ["Итого расходы", "Всего по отделу Продажи", "ИТОГО"]
    assert ds.warnings == []  # Отклонение = Факт − План on every line


def test_long_shape_with_scenario_column() -> None:
    ds = load("long_scenarios.csv")
    assert ds.roles.shape == "long"
    assert (ds.roles.actual, ds.roles.reference, ds.roles.period) == ("Actual", "Budget", "Month")
    assert len(ds.frame) == 4
    assert totals(ds) == (2660.75, 2500.00)  # 1000 + 250.50 + 1100 + 310.25 / 900 + 300 + 1000 + 300
    assert list(ds.frame[PERIOD].cat.categories) == ["2025-01", "2025-02"]
    assert ds.frame[PERIOD].cat.ordered
    assert any("Forecast" in w for w in ds.warnings)


def test_wide_by_period_pairs_drop_total_row_and_columns() -> None:
    ds = load("wide_by_month_pairs.csv")
    assert ds.roles.shape == "wide_by_period"
    assert len(ds.frame) == 6  # 2 accounts × 3 months
    assert totals(ds) == (4875.00, 4700.00)
    assert list(ds.frame[PERIOD].cat.categories) == ["Jan", "Feb", "Mar"]
    jan = ds.frame[(ds.frame["Account"] == "Revenue") & (ds.frame[PERIOD] == "Jan")]
    assert (jan[ACTUAL].item(), jan[REFERENCE].item()) == (1100.0, 1000.0)
    assert [e.label for e in ds.excluded_rows] == ["Total"]
    assert any("Total Budget" in w for w in ds.warnings)


def test_month_columns_with_scenario_rows() -> None:
    ds = load("months_with_scenario.csv")
    assert ds.roles.shape == "wide_by_period"
    assert len(ds.frame) == 6
    assert totals(ds) == (498.00, 480.00)  # the "Total" column is not a month
    feb_rent = ds.frame[(ds.frame["Account"] == "Rent") & (ds.frame[PERIOD] == "Feb")]
    assert (feb_rent[ACTUAL].item(), feb_rent[REFERENCE].item()) == (55.0, 50.0)
    assert ds.scale == 0
    assert any("Total" in w for w in ds.warnings)


def test_metric_pairs_become_a_metric_dimension() -> None:
    ds = load("metric_pairs.csv")
    assert ds.roles.shape == "metric_pairs"
    assert ds.roles.account == "Metric"
    assert set(ds.frame["Metric"]) == {"Revenue", "COGS"}  # Units are quantities, not a metric
    assert totals(ds) == (4020.75, 4210.00)
    revenue = ds.frame[ds.frame["Metric"] == "Revenue"]
    assert round(float(revenue[ACTUAL].sum()), 2) == 2900.50


@pytest.mark.parametrize("name", sorted(p.name for p in DATA.glob("*.csv")))
def test_every_fixture_is_picklable_and_roles_serialise(name: str) -> None:
    import json
    import pickle

    ds = load(name)
    again = pickle.loads(pickle.dumps(ds))
    assert again.frame.equals(ds.frame)
    json.dumps({"roles": ds.roles.to_dict(), "source": ds.source.to_dict()})
