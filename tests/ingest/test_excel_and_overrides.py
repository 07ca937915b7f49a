"""XLSX workbooks (cached values only, never formulas) and user overrides of the detected roles."""

from __future__ import annotations

import io
from datetime import datetime

import numpy as np
import openpyxl
import pytest

from analyst.dataset import ACTUAL, PERIOD, REFERENCE, IngestError, RoleOverrides
from analyst.ingest import apply_overrides, load_dataset


def workbook_bytes() -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = "BvA"
    sheet.append(["Budget vs Actual — FY2025"])
    sheet.append([])
    sheet.append(["Month", "Department", "Account", "Budget", "Actual", "Forecast"])
    sheet.append([datetime(2025, 1, 31), "Sales", "Revenue", 1000, 1150.5, 1100])
    sheet.append([datetime(2025, 1, 31), "Sales", "Travel", 200, 180.25, 190])
    sheet.append([datetime(2025, 2, 28), "Sales", "Revenue", 1000, 990, 1000])
    # A formula written by a program that never calculated it: no cached value, so it reads as empty.
    sheet.append([datetime(2025, 2, 28), "Sales", "Travel", 200, "=E5*2", 190])
    sheet.append([None, "Total", None, 2400, 2320.75, 2480])  # a total row as Excel saved its values
    notes = book.create_sheet("Notes")
    notes.append(["Prepared by FP&A"])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_xlsx_with_title_row_formula_without_cache_and_second_sheet() -> None:
    ds = load_dataset(workbook_bytes(), filename="bva.xlsx")
    assert (ds.source.file_format, ds.source.sheet, ds.source.header_row) == ("xlsx", "BvA", 3)
    assert (ds.roles.actual, ds.roles.reference, ds.roles.period) == ("Actual", "Budget", "Month")
    assert list(ds.frame[PERIOD].astype(str)) == ["2025-01", "2025-01", "2025-02", "2025-02"]
    assert np.isnan(ds.frame[ACTUAL].iloc[3])  # the uncalculated formula
    # 1150.50 + 180.25 + 990 (the formula cell is missing) / 1000 + 200 + 1000 + 200
    assert round(float(ds.frame[ACTUAL].sum()), 2) == 2320.75
    assert float(ds.frame[REFERENCE].sum()) == 2400.0
    assert [(e.source_row, e.label) for e in ds.excluded_rows] == [(8, "Total")]
    assert ds.scale == 2


def test_first_sheet_without_a_table_is_skipped() -> None:
    book = openpyxl.Workbook()
    cover = book.active
    assert cover is not None
    cover.append(["Cover page"])
    data = book.create_sheet("Data")
    data.append(["Account", "Plan", "Fact"])
    data.append(["Rent", 10, 12])
    out = io.BytesIO()
    book.save(out)
    ds = load_dataset(out.getvalue())
    assert ds.source.sheet == "Data"
    assert ds.roles.reference_kind == "plan"


def test_override_reference_and_reapply_keeps_earlier_choices() -> None:
    ds = load_dataset(workbook_bytes())
    forecast = apply_overrides(ds, RoleOverrides(reference="Forecast"))
    assert forecast.roles.reference == "Forecast"
    assert forecast.roles.reference_kind == "forecast"
    assert "reference" in forecast.roles.overridden
    assert float(forecast.frame[REFERENCE].sum()) == 1100 + 190 + 1000 + 190
    # A later override of another role keeps the reference chosen before.
    again = apply_overrides(forecast, RoleOverrides(dimensions=("Account",)))
    assert again.roles.reference == "Forecast"
    assert again.roles.dimensions == ("Account",)
    assert "Department" not in again.frame.columns


def test_override_at_load_time_and_unknown_column() -> None:
    text = b"Account,Col A,Col B\nRent,100,120\nTravel,50,45\n"
    ds = load_dataset(text, overrides=RoleOverrides(actual="Col B", reference="Col A"))
    assert (ds.roles.actual, ds.roles.reference) == ("Col B", "Col A")
    assert float(ds.frame[ACTUAL].sum()) == 165.0
    with pytest.raises(IngestError) as info:
        apply_overrides(ds, RoleOverrides(actual="Nope"))
    assert "Nope" in str(info.value) and "Account, Col A, Col B" in str(info.value)


def test_override_long_shape_by_scenario_value() -> None:
    text = b"Account,Scenario,Amount\nRent,Actual,10\nRent,Budget,8\nRent,Forecast,9\n"
    ds = load_dataset(text)
    assert ds.roles.reference == "Budget"
    forecast = apply_overrides(ds, RoleOverrides(reference="Forecast"))
    assert float(forecast.frame[REFERENCE].sum()) == 9.0
    assert forecast.roles.reference_kind == "forecast"


def test_override_period_and_unknown_dimension() -> None:
    text = b"When,Account,Budget,Actual\nJan 2025,Rent,1,2\nFeb 2025,Rent,3,4\n"
    ds = load_dataset(text)
    assert ds.roles.period == "When"  # found by its values, though the header says nothing
    no_period = load_dataset(text, overrides=RoleOverrides(dimensions=("When", "Account"), period=None))
    assert no_period.roles.period == "When"  # an override naming dimensions does not unset the period
    with pytest.raises(IngestError, match="Available columns"):
        apply_overrides(ds, RoleOverrides(dimensions=("Account", "Region")))


def test_xlsx_month_headers_typed_as_dates_with_scenario_rows() -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Account", "Version", datetime(2025, 1, 1), datetime(2025, 2, 1), "FY Total"])
    sheet.append(["Revenue", "Budget", 100, 110, 210])
    sheet.append(["Revenue", "Actual", 120, 90.5, 210.5])
    out = io.BytesIO()
    book.save(out)
    ds = load_dataset(out.getvalue())
    assert ds.roles.shape == "wide_by_period"
    assert list(ds.frame[PERIOD].cat.categories) == ["2025-01", "2025-02"]
    assert float(ds.frame[ACTUAL].sum()) == 210.5  # the FY Total column is not a month
    assert float(ds.frame[REFERENCE].sum()) == 210.0


def test_xlsx_numeric_account_codes_become_labels() -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Account", "Budget", "Actual"])
    sheet.append([4000, 10, 12])
    sheet.append([None, 1, 1])
    sheet.append([6100, 5, 4.5])
    out = io.BytesIO()
    book.save(out)
    ds = load_dataset(out.getvalue())
    assert list(ds.frame["Account"]) == ["4000", "(blank)", "6100"]
    assert ds.scale == 1
