"""Numbers that mean what a controller means: one regression test per shape real exports have.

Each fixture under tests/data/meaning is written for these tests in the shape of a real export (QuickBooks Online
"Budget vs. Actuals", a city open-data budget file, a Power BI P&L extract, an FP&A course file, an ERP
workbook); every expected number is worked out by hand in the comment beside it.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from analyst.dataset import IngestError, RoleOverrides
from analyst.engine import breakdown, headline, headlines_by, period_view, summarize, top_drivers
from analyst.engine.options import AccountType
from analyst.ingest import load_dataset
from analyst.report import build_report

DATA = Path(__file__).resolve().parents[1] / "data" / "meaning"


def load(name: str, **kwargs: object):
    return load_dataset(DATA / name, **kwargs)  # type: ignore[arg-type]


def by_type(ds) -> dict[str, tuple[float, float]]:
    return {p.account_type.value: (p.actual, p.reference) for p in headline(ds).parts}


# 1 -------------------------------------------------------------------------------------------------------


def test_1_computed_net_lines_are_excluded_and_expenditures_type_their_accounts() -> None:
    ds = load("qbo_net_revenue.csv")
    # Income 45,200 + 12,800 = 58,000 vs 42,000 + 14,000 = 56,000; Expenditures 21,500 + 18,300 + 6,000 = 45,800
    # vs 20,000 + 19,000 + 6,000 = 45,000. Net Operating Revenue / Net Revenue (12,200 vs 11,000) are not revenue.
    assert by_type(ds) == {"revenue": (58_000.0, 56_000.0), "expense": (45_800.0, 45_000.0)}
    h = headline(ds)
    assert h.measure == "effect_on_profit" and h.value == 1_200.0  # +2,000 revenue − 800 more cost
    reasons = {row.label: row.reason for row in ds.excluded_rows}
    assert "computed line" in reasons["Net Operating Revenue"]
    # "Net Revenue" is net sales in some files: here the arithmetic (58,000 − 45,800) is what excludes it.
    assert "revenue minus costs" in reasons["Net Revenue"]
    assert reasons["Expenditures"].startswith("section heading")
    # The file's own "over Budget" and "% of Budget" columns agree with the amounts: no warning.
    assert not any("disagrees" in w for w in ds.warnings)


@pytest.mark.parametrize("heading", ["Costs", "Outgoings", "Aufwand", "Расходы", "Expenditure"])
def test_1_section_synonyms_type_their_accounts(heading: str) -> None:
    text = (
        ",Actual,Budget\nIncome,,\n Consulting,1000,900\nTotal Income,1000,900\n"
        f"{heading},,\n Line one,300,250\n Line two,200,250\nTotal {heading},500,500\n"
    )
    ds = load_dataset(text.encode("utf-8"), filename="sections.csv")
    assert by_type(ds) == {"revenue": (1_000.0, 900.0), "expense": (500.0, 500.0)}


# 2 -------------------------------------------------------------------------------------------------------


def test_2_type_never_comes_from_a_department_and_a_cost_file_is_all_expense() -> None:
    ds = load("city_cost_only.csv")
    assert ds.roles.account == "expense_category"
    assert [p.account_type for p in headline(ds).parts] == [AccountType.EXPENSE]
    # The "Sales" department overspent in 2023: 125,000 vs 110,000 is unfavourable, not a revenue beat.
    sales = breakdown(ds, ["department_name"], filters={"period": ["2023"]}).to_dict()["rows"]
    row = next(r for r in sales if r["department_name"] == "Sales")
    assert row["variance"] == 15_000.0 and row["favourable"] is False


def test_2_a_type_column_of_channels_is_a_dimension_and_unknown_stays_unknown() -> None:
    ds = load("channel_type.csv")
    assert ds.roles.account_type is None and "Type" in ds.roles.dimensions
    assert sum("not account types" in w for w in ds.warnings) == 1
    s = summarize(ds)
    assert s.favourable is None and s.unclassified_lines == 3  # Filter beans / Direct is on budget
    assert sum("no recognisable account type" in n for n in s.notes) == 1


# 3 -------------------------------------------------------------------------------------------------------


def test_3_year_and_month_names_make_real_periods() -> None:
    ds = load("powerbi_year_month.csv")
    assert ds.roles.period == "Year + Month"
    view = period_view(ds).to_dict()
    # 2023-01: 1,000 − 500 = 500 vs 900 − 450 = 450; 2024-01: 680 vs 600; 2024-02: 770 vs 710.
    assert [(p["period"], p["actual"], p["reference"]) for p in view["periods"]] == [
        ("2023-01", 500.0, 450.0),
        ("2024-01", 680.0, 600.0),
        ("2024-02", 770.0, 710.0),
    ]
    # Costs are stored negative: −1,550 against −1,490 is 60 more cost; revenue 3,500 vs 3,250 is +250.
    h = headline(ds)
    assert h.value == 190.0 and h.favourable is True
    per_period = {label: p.value for label, p in headlines_by(ds, "period")}
    assert per_period == {"2023-01": 50.0, "2024-01": 80.0, "2024-02": 60.0}


def test_3_month_names_without_a_year_stay_months() -> None:
    text = "Month,Account,Actual,Budget\nJan,Rent,100,100\nFeb,Rent,110,100\n"
    ds = load_dataset(text.encode(), filename="months.csv")
    assert ds.roles.period == "Month"
    assert [str(c) for c in ds.frame["period"].cat.categories] == ["Jan", "Feb"]


# 4 -------------------------------------------------------------------------------------------------------


def test_4_a_fiscal_year_column_is_an_annual_period() -> None:
    for ds in (load("city_cost_only.csv"), load("city_cost_only.csv", overrides=RoleOverrides(period="fiscal_year"))):
        view = period_view(ds)
        d = view.to_dict()
        # 2022: 104,000 + 190,000 + 52,500 = 346,500 vs 350,000; 2023: 371,000 vs 365,000; 2024: budget only.
        assert [(p["period"], p["actual"], p["reference"]) for p in d["periods"]] == [
            ("2022", 346_500.0, 350_000.0),
            ("2023", 371_000.0, 365_000.0),
            ("2024", 0.0, 167_000.0),
        ]
        assert view.annual and d["run_rate"] is None
        assert d["periods"][1]["flux_actual"] == 24_500.0  # year over year
        assert any("years" in note for note in view.notes)
    fy = load_dataset(b"FY,Account,Actual,Budget\nFY2023,Travel,10,12\nFY2024,Travel,15,12\n", filename="fy.csv")
    assert [str(c) for c in fy.frame["period"].cat.categories] == ["FY2023", "FY2024"]


# 5 -------------------------------------------------------------------------------------------------------


def test_5_percent_columns_are_checked_as_percents() -> None:
    ds = load("fpa_course_pct.csv")
    # variance_pct = (A − B) / B × 100 and % of Budget = A / B × 100, both exact: no false alarm.
    assert ds.warnings == []
    wrong = "Account,Budget,Actual,variance_pct\nTravel,100,120,5\nRent,200,200,0\n"
    assert any("percent" in w for w in load_dataset(wrong.encode(), filename="w.csv").warnings)


# 6 -------------------------------------------------------------------------------------------------------


def test_6_prices_and_units_are_never_money() -> None:
    ds = load("units_price.csv")
    s = summarize(ds)
    # Revenue 4,840 + 2,790 = 7,630 vs 7,500; COGS 2,310 + 1,395 = 3,705 vs 3,500; prices and units not summed.
    assert (s.actual, s.reference) == (11_335.0, 11_000.0)
    assert by_type(ds) == {"revenue": (7_630.0, 7_500.0), "expense": (3_705.0, 3_500.0)}
    note = next(w for w in ds.warnings if w.startswith("Not money"))
    assert "Actual Price" in note and "Actual Units" in note


# 7 -------------------------------------------------------------------------------------------------------


def test_7_the_headline_is_the_effect_on_profit_everywhere() -> None:
    ds = load("powerbi_year_month.csv")
    report = build_report(ds)
    d = report.to_json_dict()
    assert d["totals"]["variance"] == 190.0  # JSON totals keep their definition
    assert d["headline"]["measure"] == "effect_on_profit" and d["headline"]["value"] == 190.0
    assert [p["value"] for p in d["periods"]["headlines"]] == [50.0, 80.0, 60.0]
    assert [p["ytd_value"] for p in d["periods"]["headlines"]] == [50.0, 80.0, 140.0]
    text = report.to_text()
    assert "Effect on profit: +190" in text and "Revenue var" in text and "Effect on profit" in text
    md = report.to_markdown()
    assert md.split("\n")[2].startswith("**Effect on profit: +190")


def test_7_a_beat_in_the_straight_sum_is_not_presented_as_the_variance() -> None:
    text = "Account,Actual,Budget\nProduct revenue,104742,100000\nSalaries,54890,50000\n"
    report = build_report(load_dataset(text.encode(), filename="mixed.csv"))
    # Straight sum +9,632 (+6.4 %) would read as a beat; revenue +4,742 minus 4,890 more cost is −148.
    assert report.headline.value == -148.0 and report.headline.favourable is False
    out = report.to_text()
    assert "Effect on profit: -148" in out and "+9,632" not in out


# 8 -------------------------------------------------------------------------------------------------------


def _workbook(sheets: dict[str, list[list[object]]]) -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _twenty_sheets() -> dict[str, list[list[object]]]:
    from datetime import date

    sheets: dict[str, list[list[object]]] = {
        "Calendar": [["Date", "Year", "Month", "Quarter"]]
        + [[date(2025, m, 1), 2025, m, (m - 1) // 3 + 1] for m in range(1, 13)],
        "Notes": [["Prepared by finance"], ["Figures unaudited"]],
    }
    for i in range(17):
        sheets[f"Dept {i + 1}"] = [["Headcount", "FTE"], [12, 11.5]]
    sheets["BvA Q1"] = [
        ["Account", "Budget", "Actual"],
        ["Product revenue", 50_000, 52_000],
        ["Salaries", 30_000, 31_500],
        ["Rent", 5_000, 5_000],
    ]
    return sheets


def test_8_every_sheet_is_scored_and_the_budget_vs_actual_one_is_read() -> None:
    data = _workbook(_twenty_sheets())
    ds = load_dataset(data, filename="pack.xlsx")
    assert ds.source.sheet == "BvA Q1" and len(ds.source.sheets_considered) == 20
    assert by_type(ds) == {"revenue": (52_000.0, 50_000.0), "expense": (36_500.0, 35_000.0)}
    assert "Read sheet 'BvA Q1' of 20" in ds.warnings[0]
    assert "sheet 'BvA Q1'" in build_report(ds).to_text()
    with pytest.raises(IngestError) as refused:
        load_dataset(data, filename="pack.xlsx", sheet="Calendar")
    assert "Sheet 'Calendar'" in str(refused.value)
    with pytest.raises(IngestError, match="no sheet 'Nope'"):
        load_dataset(data, filename="pack.xlsx", sheet="Nope")


def test_8_a_refusal_lists_every_sheet_and_why() -> None:
    sheets = _twenty_sheets()
    del sheets["BvA Q1"]
    with pytest.raises(IngestError) as refused:
        load_dataset(_workbook(sheets), filename="pack.xlsx")
    message = str(refused.value)
    assert "'Calendar':" in message and "'Notes': no header row" in message and "'Dept 17':" in message


# 9 -------------------------------------------------------------------------------------------------------


def test_9_a_column_named_period_is_the_period() -> None:
    ds = load("literal_period.csv")
    assert ds.roles.period == "period" and not any("reserved" in w for w in ds.warnings)
    d = period_view(ds).to_dict()
    # P01: 1,200 + 5,000 = 6,200 vs 1,000 + 5,200 = 6,200; P02: 1,100 + 5,600 = 6,700 vs 6,200.
    assert [(p["period"], p["actual"], p["reference"]) for p in d["periods"]] == [
        ("P01", 6_200.0, 6_200.0),
        ("P02", 6_700.0, 6_200.0),
    ]


# 10 ------------------------------------------------------------------------------------------------------


def test_10_one_sided_lines_are_flagged_not_ranked() -> None:
    ds = load("one_sided.csv")
    d = top_drivers(ds, n=10).to_dict()
    ranked = {r["Account"] for r in d["favourable"] + d["unfavourable"]}
    assert ranked == {"Consulting revenue", "Travel", "Software"}
    assert {(r["Account"], r["missing"]) for r in d["one_sided"]} == {
        ("New office fit-out", "reference"),
        ("Trade show", "actual"),
    }
    s = summarize(ds)
    assert (s.no_actual_lines, s.no_reference_lines) == (1, 1)
    assert d["unfavourable"][0]["Account"] == "Software"  # +300, not the 80,000 fit-out


# 11 ------------------------------------------------------------------------------------------------------


def test_11_units_scale_the_default_materiality() -> None:
    ds = load("thousands.csv")
    assert ds.unit == 1_000 and "$000s" in (ds.unit_evidence or "")
    s = summarize(ds)
    assert s.materiality.amount == 10.0 and "thousands" in s.materiality_rule
    lines = {r["Account"]: r for r in breakdown(ds, ["Account"]).to_dict()["rows"]}
    assert lines["Salaries"]["variance"] == -210.0 and lines["Salaries"]["material"] is True  # −14 %
    assert "amount: the default 10,000 currency units = 10" in build_report(ds).to_text()


def test_11_explicit_flags_still_win() -> None:
    from analyst.report.cli import cli_main

    out = io.StringIO()
    import contextlib

    with contextlib.redirect_stdout(out):
        assert cli_main([str(DATA / "thousands.csv"), "--json", "--materiality-amount", "500"]) == 0
    d = json.loads(out.getvalue())
    assert d["materiality"]["amount"] == 500.0 and d["materiality"]["rule"] == "given"
    assert not any(r["material"] for r in d["lines"])


def test_11_a_file_in_billions_without_a_unit_raises_the_default_amount() -> None:
    # No unit anywhere: the amounts are read as written, and nothing says "in $000s".
    data = (
        b"Account,Budget,Actual\n"
        b"Product revenue,4000000000,4100000000\nSalaries,2500000000,2550000000\n"
        b"Travel,30000000,36000000\nSoftware,500000,560000\n"
    )
    ds = load_dataset(data, filename="group_pnl.csv")
    assert ds.unit == 1 and not any("Amounts are in" in w for w in ds.warnings)
    s = summarize(ds)
    # Σ|budget| = 4,000,000,000 + 2,500,000,000 + 30,000,000 + 500,000 = 6,530,500,000; 0.1 % = 6,530,500, rounded
    # down to 5,000,000: above the 10,000 default, which would make a 60,000 software overrun "material".
    assert s.materiality.amount == 5_000_000.0
    assert s.materiality_rule == "the default 10,000, raised to 0.1% of the total |reference| (rounded down): 5,000,000"
    lines = {r["Account"]: r for r in breakdown(ds, ["Account"]).to_dict()["rows"]}
    assert lines["Travel"]["variance"] == 6_000_000.0 and lines["Travel"]["material"] is True  # +20 %
    assert lines["Software"]["variance"] == 60_000.0 and lines["Software"]["material"] is False  # +12 %, small
    assert lines["Salaries"]["material"] is False  # +50,000,000 is +2 %
    text = build_report(ds).to_text()
    assert "|variance| ≥ 5,000,000 and |variance %| ≥ 10%" in text and "raised to 0.1%" in text


def test_11_round_thousands_without_a_unit_are_not_guessed_to_be_thousands() -> None:
    # Every amount a round thousand, no unit marker: the file is in currency units, rounded. Nothing is guessed.
    data = (
        b"Account,Budget,Actual\n"
        b"Revenue,50000000,48000000\nSalaries,20000000,21000000\nTravel,750000,900000\n"
    )
    ds = load_dataset(data, filename="rounded.csv")
    assert ds.unit == 1 and ds.unit_evidence is None
    s = summarize(ds)
    # Σ|budget| = 70,750,000; 0.1 % = 70,750 → 50,000.
    assert s.materiality.amount == 50_000.0 and s.materiality_rule.endswith(": 50,000")
    lines = {r["Account"]: r for r in breakdown(ds, ["Account"]).to_dict()["rows"]}
    assert lines["Travel"]["material"] is True  # +150,000, +20 %
    assert lines["Salaries"]["material"] is False  # +1,000,000 but +5 %
    data = json.loads(json.dumps(build_report(ds).to_json_dict()))
    assert data["materiality"] == {"amount": 50_000.0, "percent": 10.0, "mode": "and", "rule": s.materiality_rule}


# 12 ------------------------------------------------------------------------------------------------------


def test_12_json_keeps_full_precision_and_no_negative_zero() -> None:
    report = build_report(load("qbo_net_revenue.csv"))
    text = json.dumps(report.to_json_dict())
    assert "-0.0" not in text
    lines = {r["Account"]: r for r in report.to_json_dict()["lines"]}
    assert lines["4000 Coffee Sales"]["variance_pct"] == 3_200 / 42_000 * 100  # 7.619047619…, not 7.62
    assert lines["6200 Rent"]["variance"] == 0.0 and str(lines["6200 Rent"]["variance"]) == "0.0"
    assert "(+7.6%)" in report.to_text()  # rounded for display only


def test_3_repeated_month_names_without_a_year_are_called_ambiguous() -> None:
    text = "Month,Account,Actual,Budget\nJan,Rent,100,100\nJan,Rent,120,100\nFeb,Rent,110,100\n"
    ds = load_dataset(text.encode(), filename="months.csv")
    assert any("may be different years" in w for w in ds.warnings)


def test_3_fiscal_years_with_month_names_say_how_they_were_placed() -> None:
    ds = load_dataset(b"FY,Month,Account,Actual,Budget\nFY2024,Jan,Rent,10,10\nFY2024,Feb,Rent,12,10\n", filename="f.csv")
    assert [str(c) for c in ds.frame["period"].cat.categories] == ["2024-01", "2024-02"]
    assert any("fiscal years" in w for w in ds.warnings)
