"""Files a finance person really has, where a naive reader gets the number wrong: thousands dots in a
";" export with no decimals anywhere, accounts whose names contain a total word, and subtotals whose account
cell is empty. Expected totals are computed by hand in the comments."""

from __future__ import annotations

import pytest

from analyst.dataset import ACTUAL, REFERENCE, Dataset
from analyst.ingest import load_dataset
from analyst.ingest.totals import COMPUTED_RE, TOTAL_RE


def sums(ds: Dataset) -> tuple[float, float]:
    return float(ds.frame[ACTUAL].sum()), float(ds.frame[REFERENCE].sum())


def test_german_export_with_only_thousands_dots_reads_thousands_and_says_so() -> None:
    data = "Konto;Plan;Ist\nMiete;1.234;1.500\nGehalt;12.500;13.000\nReise;2.000;1.750\n".encode("cp1252")
    ds = load_dataset(data, filename="kst.csv")
    # Plan 1234 + 12500 + 2000 = 15734; Ist 1500 + 13000 + 1750 = 16250 (not 15.734 / 16.25).
    assert sums(ds) == (16250.0, 15734.0)
    assert any("1.500 = 1500" in w for w in ds.warnings)


def test_us_export_with_only_thousands_commas_reads_thousands() -> None:
    data = b'Account,Budget,Actual\nRent,"1,234","1,500"\nSalary,"12,500","13,000"\n'
    ds = load_dataset(data, filename="us.csv")
    assert sums(ds) == (14500.0, 13734.0)


def test_decimal_comma_values_in_a_german_export() -> None:
    ds = load_dataset(b"Konto;Plan;Ist\nMiete;1,5;2,25\nGehalt;3,75;4\n", filename="de.csv")
    assert sums(ds) == (6.25, 5.25)
    assert not any("thousands or decimals" in w for w in ds.warnings)


@pytest.mark.parametrize("label", ["Total Rewards", "Total Rewards Program", "Totalizer maintenance", "Gesamtbank"])
def test_accounts_named_with_a_total_word_are_lines(label: str) -> None:
    assert not TOTAL_RE.search(label)


@pytest.mark.parametrize("label", ["Net Income Tax", "Net income taxes", "Operating Income Tax"])
def test_tax_accounts_are_not_computed_lines(label: str) -> None:
    assert not COMPUTED_RE.search(label)


@pytest.mark.parametrize(
    "label",
    ["Total Marketing", "TOTAL RENT", "Salaries Total", "Total for Rewards", "Total - Marketing", "Итого по разделу"],
)
def test_real_totals_still_found(label: str) -> None:
    assert TOTAL_RE.search(label)


def test_real_accounts_with_total_words_count_in_the_totals() -> None:
    data = (
        b"Account,Budget,Actual\nTotal Rewards,100,110\nTotalizer maintenance,50,40\nNet Income Tax,30,35\n"
        b"Income,1000,1200\nSummer campaign,20,25\nTotal,1200,1410\n"
    )
    ds = load_dataset(data, filename="pl.csv")
    # Every line but "Total": actual 110 + 40 + 35 + 1200 + 25 = 1410; budget 100 + 50 + 30 + 1000 + 20 = 1200.
    assert sums(ds) == (1410.0, 1200.0)
    assert [r.label for r in ds.excluded_rows] == ["Total"]


def test_subtotals_with_an_empty_account_cell_are_not_double_counted() -> None:
    data = (
        b"Dept,Account,Budget,Actual\n"
        b"Mkt,Ads,100,110\nMkt,Events,50,40\nMkt,,150,150\n"  # Mkt subtotal, account cell empty
        b"Ops,Rent,30,35\nOps,Power,10,\nOps,,40,35\n"  # Ops subtotal (empty actual counts as 0)
        b",,190,185\n"  # grand total
        b"HR,,5,5\n"  # a genuine line with no account: nothing above adds up to it
    )
    ds = load_dataset(data, filename="pivot.csv")
    # Lines: actual 110 + 40 + 35 + 5 = 190; budget 100 + 50 + 30 + 10 + 5 = 195.
    assert sums(ds) == (190.0, 195.0)
    assert [r.source_row for r in ds.excluded_rows] == [4, 7, 8]
    assert all(r.reason.startswith("subtotal without a label") for r in ds.excluded_rows)


def test_a_blank_account_row_equal_to_one_line_is_kept() -> None:
    ds = load_dataset(b"Dept,Account,Budget,Actual\nMkt,Ads,100,110\nMkt,,100,110\nOps,Rent,30,35\n", filename="x.csv")
    assert sums(ds) == (255.0, 230.0)
    assert ds.excluded_rows == []


def test_amounts_with_currency_codes_in_every_cell() -> None:
    data = b"Account;Budget;Actual\nRent;CHF 1'234.50;CHF 1'500.00\nSalary;CHF 200.00;CHF 300.25\n"
    assert sums(load_dataset(data, filename="ch.csv")) == (1800.25, 1434.5)
    data = b'Account,Budget,Actual\nRent,"USD 1,234.00","USD 1,500.00"\nSalary,"USD 12,500.00",(USD 2.00)\n'
    assert sums(load_dataset(data, filename="us.csv")) == (1498.0, 13734.0)


def test_long_rows_repeating_a_line_are_added_and_the_warning_says_so() -> None:
    data = (
        b"Account,Scenario,Amount\n"
        b"Rent,Budget,100\nRent,Actual,60\nRent,Actual,50\nAds,Actual,30\nTravel,Budget,20\n"
    )
    ds = load_dataset(data, filename="long.csv")
    frame = ds.frame.set_index("Account")
    assert frame.loc["Rent", ACTUAL] == 110.0 and frame.loc["Rent", REFERENCE] == 100.0  # 60 + 50
    assert frame[ACTUAL].isna().tolist() == [False, False, True]  # Travel: budget only, kept, actual missing
    assert sums(ds) == (140.0, 120.0)
    assert any(w.startswith("1 'Actual' row(s) repeat a line") for w in ds.warnings)
    assert not any("'Budget' row(s)" in w for w in ds.warnings)


def test_month_super_header_over_budget_actual_with_the_account_header_merged_down() -> None:
    import io

    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Account", "Jan", None, "Feb", None])
    sheet.merge_cells("A1:A2")
    sheet.merge_cells("B1:C1")
    sheet.merge_cells("D1:E1")
    sheet.append([None, "Budget", "Actual", "Budget", "Actual"])
    sheet.append(["Rent", 100, 110, 100, 90])
    sheet.append(["Ads", 50, 40, 50, 60])
    sheet.append(["Gesamt", 150, 150, 150, 150])
    buffer = io.BytesIO()
    workbook.save(buffer)
    csv = (
        b"Account,Jan,,Feb,\n,Budget,Actual,Budget,Actual\n"
        b"Rent,100,110,100,90\nAds,50,40,50,60\nGesamt,150,150,150,150\n"
    )
    for data, name in ((buffer.getvalue(), "by_month.xlsx"), (csv, "by_month.csv")):
        ds = load_dataset(data, filename=name)
        # Both months count: actual 110 + 40 + 90 + 60 = 300, budget 100 + 50 + 100 + 50 = 300.
        assert sums(ds) == (300.0, 300.0), name
        assert ds.roles.shape == "wide_by_period" and ds.roles.account == "Account"
        assert sorted(ds.frame["period"].astype(str).unique()) == ["Feb", "Jan"]


def test_xlsx_month_column_with_day_numbers_and_text_amounts() -> None:
    import io
    from datetime import datetime

    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(["Account", "Month", "Budget", "Actual"])
    sheet.append(["Rent", datetime(2025, 1, 1), "1,234.50", 1300])  # an amount typed as text
    sheet.append(["Ads", datetime(2025, 1, 1), "500", "450.25"])
    sheet.append(["Rent", 45689, 1234.5, 1200])  # 45689 is 2025-02-01 without its date format
    sheet.append(["Ads", 45689, 500, 550])
    sheet.append(["Total", None, 3469, 3500.25])
    sheet.row_dimensions[6].hidden = True
    buffer = io.BytesIO()
    workbook.save(buffer)
    ds = load_dataset(buffer.getvalue(), filename="ledger.xlsx")
    assert ds.roles.period == "Month"
    assert ds.frame["period"].astype(str).tolist() == ["2025-01", "2025-01", "2025-02", "2025-02"]
    # Actual 1300 + 450.25 + 1200 + 550 = 3500.25; budget 1234.5 + 500 + 1234.5 + 500 = 3469.
    assert sums(ds) == (3500.25, 3469.0)
    assert [r.label for r in ds.excluded_rows] == ["Total"]
