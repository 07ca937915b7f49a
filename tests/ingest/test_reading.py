"""Encodings, delimiters, preambles and footers, periods, quantities, and every way a file can be
unreadable."""

from __future__ import annotations

import codecs

import numpy as np
import pytest

from analyst.dataset import (
    ACCOUNT_TYPE,
    ACTUAL,
    ACTUAL_QTY,
    PERIOD,
    REFERENCE,
    REFERENCE_QTY,
    IngestError,
    IngestLimits,
)
from analyst.ingest import load_dataset
from analyst.ingest.sniff import detect_encoding, sniff_delimiter

SIMPLE = "Account,Budget,Actual\nRent,100.00,110.50\nTravel,50.00,40.25\n"


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        (SIMPLE.encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF8 + "Статья,План,Факт\nАренда,1,2\n".encode(), "utf-8-sig"),
        ("Статья;План;Факт\nАренда;1;2\nЗарплата;3;4\n".encode("cp1251"), "cp1251"),
        ("Account;Budget;Actual\nCafé Müller;1;2\nGebühren;3;4\n".encode("cp1252"), "cp1252"),
    ],
)
def test_encoding_detection(data: bytes, encoding: str) -> None:
    assert detect_encoding(data) == encoding


def test_utf8_bom_file_reads_its_first_header_cleanly() -> None:
    ds = load_dataset(codecs.BOM_UTF8 + SIMPLE.encode())
    assert ds.roles.account == "Account"
    assert (ds.frame[ACTUAL].sum(), ds.frame[REFERENCE].sum()) == (150.75, 150.0)


def test_excel_unicode_text_is_utf16_with_tabs() -> None:
    text = "Статья\tПлан\tФакт\r\nАренда\t1 000,50\t1 100,25\r\nИтого\t1 000,50\t1 100,25\r\n"
    ds = load_dataset(text.encode("utf-16"))
    assert (ds.source.encoding, ds.source.delimiter) == ("utf-16", "\t")
    assert (ds.frame[ACTUAL].sum(), ds.frame[REFERENCE].sum()) == (1100.25, 1000.5)
    assert [e.label for e in ds.excluded_rows] == ["Итого"]


def test_path_read_falls_back_when_utf8_breaks_in_the_middle(tmp_path) -> None:  # type: ignore[no-untyped-def]
    # Head and tail are plain ASCII; a cp1252 "é" sits in the middle, beyond the sniffed samples.
    rows = [f"Line {i},{i}.00,{i}.50" for i in range(12_000)]
    rows[6_000] = "Café,1.00,2.00"
    path = tmp_path / "mixed.csv"
    path.write_bytes(("Account,Budget,Actual\n" + "\n".join(rows) + "\n").encode("cp1252"))
    ds = load_dataset(path)
    assert ds.source.encoding == "cp1252"
    assert "Café" in set(ds.frame["Account"])
    assert len(ds.frame) == 12_000


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiters(delimiter: str) -> None:
    text = SIMPLE.replace(",", delimiter)
    assert sniff_delimiter(text.splitlines()) == delimiter
    ds = load_dataset(text.encode(), filename="x.csv")
    assert ds.source.delimiter == delimiter
    assert ds.frame[ACTUAL].sum() == 150.75


def test_semicolon_file_with_decimal_commas_is_not_split_on_commas() -> None:
    text = "Konto;Plan;Ist\nMiete;1.000,50;1.100,25\nReise;200,00;150,75\n"
    assert sniff_delimiter(text.splitlines()) == ";"
    ds = load_dataset(text.encode())
    assert (ds.frame[ACTUAL].sum(), ds.frame[REFERENCE].sum()) == (1251.0, 1200.5)


def test_ambiguous_column_follows_the_files_convention() -> None:
    # "1.234" alone could be 1.234 or 1234; the Plan column's "1.500,00" says this file writes decimal commas.
    text = "Konto;Plan;Ist\nMiete;1.500,00;1.234\nReise;2.000,00;2.000\n"
    ds = load_dataset(text.encode())
    assert list(ds.frame[ACTUAL]) == [1234.0, 2000.0]


def test_quoted_thousands_in_comma_file_and_blank_rows_and_columns() -> None:
    text = (
        'Report title\n\n"Account",,"Budget","Actual"\n"Rent",,"1,000.00","1,250.50"\n,,,\n'
        '"Travel",,"(200.00)","300.00"\n\n'
    )
    ds = load_dataset(text.encode())
    assert list(ds.frame.columns) == ["Account", ACTUAL, REFERENCE]
    assert list(ds.frame[REFERENCE]) == [1000.0, -200.0]
    assert ds.source.header_row == 3


def test_date_column_becomes_monthly_ordered_period() -> None:
    text = "Date,Dept,Budget,Actual\n2025-02-14,A,1,2\n2025-01-03,A,3,4\n2025-01-30,B,5,6\n2025-12-01,B,7,8\n"
    ds = load_dataset(text.encode())
    assert ds.roles.period == "Date"
    assert list(ds.frame[PERIOD].cat.categories) == ["2025-01", "2025-02", "2025-12"]
    assert list(ds.frame[PERIOD].astype(str)) == ["2025-02", "2025-01", "2025-01", "2025-12"]


def test_european_dates_and_russian_month_names() -> None:
    ds = load_dataset(b"Datum;Konto;Plan;Ist\n31.01.2025;A;1;2\n28.02.2025;A;3;4\n")
    assert list(ds.frame[PERIOD].astype(str)) == ["2025-01", "2025-02"]
    ds = load_dataset("Месяц;Статья;План;Факт\nЯнварь;А;1;2\nФевраль;А;3;4\nМарт;Б;5;6\n".encode())
    assert list(ds.frame[PERIOD].cat.categories) == ["Jan", "Feb", "Mar"]


def test_quantities_and_account_type() -> None:
    text = (
        "Product,Account Type,Budget Qty,Actual Qty,Budget,Actual\n"
        "Widget,Income,10,12,1000,1260\nGadget,Income,5,4,500,420\nFreight,Expense,,,80,95\n"
    )
    ds = load_dataset(text.encode())
    assert (ds.roles.actual_qty, ds.roles.reference_qty) == ("Actual Qty", "Budget Qty")
    assert ds.roles.account_type == "Account Type"
    assert list(ds.frame[ACTUAL_QTY][:2]) == [12.0, 4.0]
    assert list(ds.frame[REFERENCE_QTY][:2]) == [10.0, 5.0]
    assert list(ds.frame[ACCOUNT_TYPE]) == ["Income", "Income", "Expense"]
    assert ds.has_quantities


def test_variance_column_disagreeing_is_warned_about() -> None:
    text = "Account,Budget,Actual,Variance\nRent,100,110,10\nTravel,50,40,-10\nMeals,20,30,99\n"
    ds = load_dataset(text.encode())
    assert any("Variance" in w and "1 row" in w for w in ds.warnings)
    flipped = "Account,Budget,Actual,Variance\nRent,100,110,-10\nTravel,50,40,10\n"
    ds = load_dataset(flipped.encode())
    assert any("opposite sign" in w for w in ds.warnings)


def test_several_references_pick_budget_and_say_so() -> None:
    text = "Account,Forecast,Budget,Prior Year,Actual\nRent,1,2,3,4\n"
    ds = load_dataset(text.encode())
    assert (ds.roles.reference, ds.roles.reference_kind) == ("Budget", "budget")
    assert any("Forecast" in w for w in ds.warnings)


def test_footer_with_more_cells_than_the_header() -> None:
    text = "Account,Budget,Actual\nRent,100,110\n\nPrinted by,someone,on,a,Monday\n"
    ds = load_dataset(text.encode())
    assert len(ds.frame) == 1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"   \n\n", "empty"),
        (b"<!DOCTYPE html><html><body>Sign in to Slack</body></html>", "web page"),
        (bytes(range(256)) * 20, "not text"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, ".xls"),
        (b"PK\x03\x04garbage", "Excel"),
        (b"just a sentence without any table in it\n", "separators"),
        (b"Account,Department,Owner\nRent,Ops,Ann\nTravel,Sales,Bob\n", "header row"),
        (b"Account,Budget,Actual\n", "header row"),
    ],
)
def test_unreadable_files_raise_one_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(IngestError) as info:
        load_dataset(data, filename="upload.csv")
    assert message in str(info.value)
    assert "Traceback" not in str(info.value)


def test_no_actual_or_reference_says_what_was_found_and_how_to_fix() -> None:
    with pytest.raises(IngestError) as info:
        load_dataset(b"Account,Q1,Q2\nRent,1,2\nTravel,3,4\n")
    message = str(info.value)
    assert "Account, Q1, Q2" in message
    assert "--actual" in message and "--reference" in message
    assert info.value.found == ["Account", "Q1", "Q2"]


def test_limits(tmp_path) -> None:  # type: ignore[no-untyped-def]
    big = tmp_path / "big.csv"
    big.write_bytes(SIMPLE.encode() * 10)
    with pytest.raises(IngestError, match="limit is"):
        load_dataset(big, limits=IngestLimits(max_bytes=100))
    with pytest.raises(IngestError, match="rows"):
        load_dataset(("Account,Budget,Actual\n" + "Rent,1,2\n" * 50).encode(), limits=IngestLimits(max_rows=10))
    with pytest.raises(IngestError, match="columns"):
        load_dataset(SIMPLE.encode(), limits=IngestLimits(max_columns=2))


def test_missing_values_are_nan_not_zero() -> None:
    ds = load_dataset(b"Account,Budget,Actual\nRent,-,100\nTravel,50,\nMeals,n/a,5\n")
    assert np.isnan(ds.frame[REFERENCE][0]) and np.isnan(ds.frame[ACTUAL][1])
    assert ds.frame[ACTUAL].sum() == 105.0


def test_long_shape_with_quantities_in_russian() -> None:
    text = (
        "Месяц;Товар;Тип;Кол-во;Сумма\n"
        "Январь;Чай;Факт;12;1 260,00\nЯнварь;Чай;План;10;1 000,00\n"
        "Январь;Кофе;Факт;4;420,00\nЯнварь;Кофе;План;5;500,00\n"
        "Январь;Итого;Факт;16;1 680,00\n"
    )
    ds = load_dataset(text.encode("cp1251"))
    assert ds.roles.shape == "long"
    assert (ds.roles.actual, ds.roles.reference, ds.roles.reference_kind) == ("Факт", "План", "plan")
    assert ds.has_quantities
    assert list(ds.frame[ACTUAL_QTY]) == [12.0, 4.0]
    assert list(ds.frame[REFERENCE_QTY]) == [10.0, 5.0]
    assert (ds.frame[ACTUAL].sum(), ds.frame[REFERENCE].sum()) == (1680.0, 1500.0)
    assert [e.label for e in ds.excluded_rows] == ["Итого"]


def test_period_pairs_with_two_reference_kinds_use_budget() -> None:
    text = (
        "Account,Jan Actual,Jan Budget,Jan Forecast,Feb Actual,Feb Budget,Feb Forecast\n"
        "Rent,10,9,11,12,9,13\nTravel,5,6,4,7,6,8\n"
    )
    ds = load_dataset(text.encode())
    assert ds.roles.shape == "wide_by_period" and ds.roles.reference_kind == "budget"
    assert (ds.frame[ACTUAL].sum(), ds.frame[REFERENCE].sum()) == (34.0, 30.0)
    assert any("forecast" in w for w in ds.warnings)


def test_one_metric_pair_is_a_plain_wide_file() -> None:
    ds = load_dataset(b"Department,Actual Cost,Budget Cost\nOps,10,12\nIT,5,4\n")
    assert ds.roles.shape == "wide"
    assert (ds.roles.actual, ds.roles.reference) == ("Actual Cost", "Budget Cost")
    assert ds.roles.dimensions == ("Department",)


def test_percent_columns_are_never_amounts() -> None:
    text = b"Account,Budget,Actual,Actual share\nRent,100,110,55.0%\nTravel,50,90,45.0%\n"
    ds = load_dataset(text)
    assert ds.roles.actual == "Actual"
    with pytest.raises(IngestError):
        load_dataset(b"Account,Budget,Actual\nRent,100,12.5%\nTravel,50,40%\n")


def test_title_line_with_a_year_and_more_cells_than_the_table() -> None:
    text = b"Report,for,Acme,Inc,2025,Q1,extra\n\nAccount,Budget,Actual\nRent,1,2\nTravel,3,4\nTotal,4,6\n"
    ds = load_dataset(text)
    assert ds.source.header_row == 3
    assert list(ds.frame["Account"]) == ["Rent", "Travel"]
    assert [(e.source_row, e.label) for e in ds.excluded_rows] == [(6, "Total")]


def test_units_row_under_the_header_is_not_the_header() -> None:
    ds = load_dataset(b"Account,Budget,Actual\n,USD,USD\nRent,100,110\nTravel,50,40\n")
    assert ds.source.header_row == 1
    assert (ds.roles.actual, ds.roles.reference) == ("Actual", "Budget")
    assert (ds.frame[ACTUAL].sum(), ds.frame[REFERENCE].sum()) == (150.0, 150.0)


def test_numeric_account_codes_stay_labels() -> None:
    ds = load_dataset(b"GL Account,Budget,Actual\n4000,10,12\n,1,1\n6100,5,4\n")
    assert list(ds.frame["GL Account"]) == ["4000", "(blank)", "6100"]
