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
