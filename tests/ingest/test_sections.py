"""QuickBooks-style section headings ("Income", "Expenses", "Доходы", "Aufwendungen") give the account lines
under them their type when the file has no type column, so favourability follows the report's own grouping
even where an account's name alone says otherwise (rent received, listed under income)."""

from __future__ import annotations

from pathlib import Path

import pytest

from analyst.dataset import ACCOUNT_TYPE, RoleOverrides
from analyst.engine import breakdown
from analyst.ingest import apply_overrides, load_dataset
from analyst.ingest.layout import BLANK_LABEL, SECTION_HEADINGS

DATA = Path(__file__).resolve().parents[1] / "data" / "ingest"
HEADING = "section heading or line without amounts"


def _types(path: str) -> dict[str, str]:
    ds = load_dataset(DATA / path)
    return dict(zip(ds.frame[ds.roles.account or ""], ds.frame[ACCOUNT_TYPE], strict=True))


def _lines(ds_path: str | Path) -> dict[str, dict[str, object]]:
    ds = load_dataset(DATA / ds_path if isinstance(ds_path, str) else ds_path)
    rows = breakdown(ds, [ds.roles.account or ""]).to_dict()["rows"]
    return {row[ds.roles.account or ""]: row for row in rows}


def test_quickbooks_lines_carry_their_section() -> None:
    ds = load_dataset(DATA / "quickbooks_budget_vs_actuals.csv")
    assert ds.roles.account_type == SECTION_HEADINGS
    assert ds.roles.to_dict()["account_type"] == "section headings"
    assert _types("quickbooks_budget_vs_actuals.csv") == {
        "4000 Sales": "Income",
        "4100 Services": "Income",
        "5000 Cost of Goods Sold": "Cost of Goods Sold",
        "6010 Salaries": "Expenses",
        "6020 Payroll Taxes": "Expenses",
        # After "Total 6000 Payroll Expenses" (a group inside the section, not a section) still under Expenses.
        "6100 Advertising": "Expenses",
        "6200 Rent": "Expenses",
        "6300 Travel": "Expenses",
    }
    # The headings themselves are still left out of the sums, and listed as headings.
    excluded = {row.label: row.reason for row in ds.excluded_rows}
    for heading in ("Income", "Cost of Goods Sold", "Expenses", "6000 Payroll Expenses"):
        assert excluded[heading] == HEADING
    lines = [52_340, 18_200.50, 21_450.25, 30_000, 2_295, 4_820.75, 6_000, -150]
    assert ds.frame["actual"].sum() == pytest.approx(sum(lines))


def test_rent_under_expenses_is_an_expense() -> None:
    lines = _lines("quickbooks_budget_vs_actuals.csv")
    assert lines["6200 Rent"]["account_type"] == "expense"
    assert lines["6100 Advertising"]["account_type"] == "expense"
    assert lines["6100 Advertising"]["favourable"] is False  # spent 1,320.75 over budget
    assert lines["4100 Services"]["account_type"] == "revenue"
    assert lines["4100 Services"]["favourable"] is False  # earned 1,799.50 less than budget


def test_the_section_decides_over_the_account_name() -> None:
    """Rent received is income, and a supplier's name says nothing: only the section tells."""
    assert _types("quickbooks_other_sections.csv") == {
        "4000 Management Fees": "Income",
        "6200 Rent": "Expenses",
        "6400 Northwind Partners": "Expenses",
        "7000 Rent": "Other Income",
        "8000 Northwind Partners": "Other Expenses",
    }
    lines = _lines("quickbooks_other_sections.csv")
    assert lines["7000 Rent"]["account_type"] == "revenue"
    assert lines["7000 Rent"]["favourable"] is True  # 600 more rent received than budgeted
    assert lines["6200 Rent"]["account_type"] == "expense"
    assert lines["6400 Northwind Partners"]["account_type"] == "expense"
    assert lines["6400 Northwind Partners"]["favourable"] is False  # 500 over budget
    assert lines["8000 Northwind Partners"]["account_type"] == "expense"


def test_german_and_russian_section_headings() -> None:
    assert _types("quickbooks_sections_de.csv") == {
        "4000 Mieteinnahmen": "Erträge",
        "4100 Miete Stellplätze": "Erträge",
        "6000 Miete Büro": "Aufwendungen",
        "6300 Hausmeister Schulz": "Aufwendungen",
    }
    german = _lines("quickbooks_sections_de.csv")
    assert german["4100 Miete Stellplätze"]["account_type"] == "revenue"  # "Miete" alone reads as a cost
    assert german["6300 Hausmeister Schulz"]["account_type"] == "expense"
    assert german["6300 Hausmeister Schulz"]["favourable"] is False
    assert _types("quickbooks_sections_ru_cp1251.csv") == {
        "Аренда помещений": "Доходы",
        "Услуги": "Доходы",
        "Аренда склада": "Расходы",
        "ИП Петров": "Расходы",
    }
    russian = _lines("quickbooks_sections_ru_cp1251.csv")
    assert russian["Аренда помещений"]["account_type"] == "revenue"
    assert russian["Аренда помещений"]["favourable"] is True
    assert russian["ИП Петров"]["account_type"] == "expense"
    assert russian["ИП Петров"]["favourable"] is False


def test_section_ends_at_its_total_row(tmp_path: Path) -> None:
    path = tmp_path / "sections.csv"
    path.write_text(
        ",Actual,Budget\n"
        "Income,,\n"
        "  4000 Sales,100.00,90.00\n"
        "Total Income,100.00,90.00\n"
        "  9000 Suspense,5.00,0.00\n"
        "Expenses,,\n"
        "  6000 Fees,40.00,50.00\n",
        encoding="utf-8",
    )
    ds = load_dataset(path)
    types = dict(zip(ds.frame["Account"], ds.frame[ACCOUNT_TYPE], strict=True))
    assert types == {"4000 Sales": "Income", "9000 Suspense": BLANK_LABEL, "6000 Fees": "Expenses"}


def test_a_type_column_wins_and_plain_headings_are_not_sections(tmp_path: Path) -> None:
    typed = tmp_path / "typed.csv"
    typed.write_text(
        "Account,Type,Actual,Budget\nExpenses,,,\n6200 Rent,Income,10.00,9.00\n", encoding="utf-8"
    )
    ds = load_dataset(typed)
    assert ds.roles.account_type == "Type"
    assert list(ds.frame[ACCOUNT_TYPE]) == ["Income"]
    # "Ordinary Income/Expense" encloses both kinds, and "Marketing" is a group: neither types its lines.
    plain = tmp_path / "plain.csv"
    plain.write_text(
        ",Actual,Budget\nOrdinary Income/Expense,,\nMarketing,,\n6100 Advertising,10.00,9.00\n", encoding="utf-8"
    )
    ds = load_dataset(plain)
    assert ds.roles.account_type is None
    assert ACCOUNT_TYPE not in ds.frame.columns


def test_sections_survive_role_overrides() -> None:
    ds = load_dataset(DATA / "quickbooks_budget_vs_actuals.csv")
    again = apply_overrides(ds, RoleOverrides(reference="Budget"))
    assert again.roles.account_type == SECTION_HEADINGS
    assert list(again.frame[ACCOUNT_TYPE]) == list(ds.frame[ACCOUNT_TYPE])
