"""A full-year budget against actuals to date: the months with budget only must not read as a 100 % underspend."""

from __future__ import annotations

from analyst.engine import period_view, summarize
from analyst.ingest import load_dataset
from analyst.report import build_report

# Jan–Feb on budget (Rent 100/110 + 100/90, Ads 50/40 + 50/60); March has budget only.
FILE = (
    b"Account,Jan Budget,Jan Actual,Feb Budget,Feb Actual,Mar Budget,Mar Actual\n"
    b"Rent,100,110,100,90,100,\nAds,50,40,50,60,50,\n"
)


def test_summary_says_what_the_periods_with_actuals_give() -> None:
    summary = summarize(load_dataset(FILE, filename="fy.csv"))
    # Totals mix 300 of actuals with 450 of budget; over Jan–Feb it is 300 vs 300.
    assert (summary.actual, summary.reference) == (300.0, 450.0)
    note = next(n for n in summary.notes if "no actuals yet" in n)
    assert "(Mar)" in note and "actual 300 vs reference 300, variance 0 (+0.0%)" in note


def test_budget_only_period_has_no_flux_and_shows_no_variance() -> None:
    ds = load_dataset(FILE, filename="fy.csv")
    rows = period_view(ds).to_dict()["periods"]
    march = rows[2]
    assert march["has_actual"] is False and march["flux_actual"] is None and march["flux_variance"] is None
    assert rows[1]["flux_actual"] == 0.0  # Feb 150 vs Jan 150
    text = build_report(ds).to_text()
    march_line = next(line for line in text.splitlines() if line.strip().startswith("Mar "))
    assert "—" in march_line and "-100" not in march_line and "-150" not in march_line


def test_report_compares_the_periods_with_actuals_and_keeps_json_totals() -> None:
    report = build_report(load_dataset(FILE, filename="fy.csv"))
    # Jan–Feb: Rent 110 + 90 = 200 vs 100 + 100; Ads 40 + 60 = 100 vs 50 + 50 → 300 vs 300.
    assert (report.summary.actual, report.summary.reference, report.summary.variance) == (300.0, 300.0, 0.0)
    assert report.headline.value == 0.0
    data = report.to_json_dict()
    # ``totals`` keeps its historical meaning: every period, March's 150 of budget included.
    assert data["totals"] == {"actual": 300.0, "reference": 450.0, "variance": -150.0, "variance_pct": -150 / 450 * 100}
    assert data["headline"]["scope"] == {"to_date": True, "compared": ["Jan", "Feb"], "budget_only": ["Mar"]}
    assert len(data["periods"]["periods"]) == 3  # the by-period view stays complete
    assert "Compared to date: Jan – Feb; Mar has budget only." in report.to_text()


# A full-year budget of 1,000 a month for Rent; actuals of 1,100 for January to March only.
FULL_YEAR = (
    "Month,Account,Budget,Actual\n"
    + "".join(f"2025-{m:02d},Rent,1000,{'1100' if m <= 3 else ''}\n" for m in range(1, 13))
).encode()


def test_actuals_to_march_against_a_full_year_budget_read_as_an_overspend() -> None:
    report = build_report(load_dataset(FULL_YEAR, filename="fy2025.csv"))
    h = report.headline
    # To date: 3 × 1,100 = 3,300 against 3 × 1,000 = 3,000: +300, +10 %, a cost over budget.
    assert (h.value, h.value_pct, h.favourable) == (300.0, 10.0, False)
    drivers = report.drivers.to_dict()
    assert [r["variance"] for r in drivers["unfavourable"]] == [300.0] and drivers["favourable"] == []
    line = report.lines.to_dict()["rows"][0]
    assert (line["actual"], line["reference"], line["material"]) == (3300.0, 3000.0, True)
    text = report.to_text()
    assert "Variance: +300 (+10.0%, unfavourable)" in text
    assert "Compared to date: 2025-01 – 2025-03; 2025-04 – 2025-12 have budget only." in text
    assert "-8,700" not in text and "favourable)" not in text.replace("unfavourable)", "")
    markdown = report.to_markdown()
    assert "Compared to date: 2025-01 – 2025-03" in markdown and "-8,700" not in markdown
    data = report.to_json_dict()
    assert data["totals"] == {"actual": 3300.0, "reference": 12000.0, "variance": -8700.0, "variance_pct": -72.5}
    budget_only = data["headline"]["scope"]["budget_only"]
    assert (budget_only[0], budget_only[-1], len(budget_only)) == ("2025-04", "2025-12", 9)
    assert len(data["periods"]["periods"]) == 12


# A city budget file by fiscal year: FY2024 is adopted (budget) with no actuals yet.
FISCAL_YEARS = (
    b"fiscal_year,department_name,Budget,Actual\n"
    b"FY2023,Parks,500,450\nFY2023,Police,800,880\nFY2024,Parks,550,\nFY2024,Police,900,\n"
)


def test_a_budget_only_fiscal_year_is_left_out_of_the_headline() -> None:
    report = build_report(load_dataset(FISCAL_YEARS, filename="city_cost_only.csv"))
    # FY2023: 450 + 880 = 1,330 vs 500 + 800 = 1,300: +30 (no account column: the type, and so the verdict,
    # is unknown; never a favourable underspend of the whole FY2024 budget).
    assert (report.summary.actual, report.summary.reference) == (1330.0, 1300.0)
    assert (report.headline.value, report.headline.favourable) == (30.0, None)
    data = report.to_json_dict()
    assert data["headline"]["scope"] == {"to_date": True, "compared": ["FY2023"], "budget_only": ["FY2024"]}
    assert data["totals"]["reference"] == 2750.0
