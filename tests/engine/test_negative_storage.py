"""Files that write some account types as negative numbers (a trial balance's credit revenue, a signed P&L's
costs, returns shown as −150 under income): favourable or not is judged on the size of the amounts."""

from __future__ import annotations

from analyst.engine import breakdown, summarize
from analyst.ingest import load_dataset


def favourable_by_account(data: bytes) -> dict[str, bool | None]:
    rows = breakdown(load_dataset(data, filename="pl.csv"), ["Account"]).to_dict()["rows"]
    return {r["Account"]: r["favourable"] for r in rows}


def test_signed_pnl_costs_and_returns() -> None:
    data = b"Account,Budget,Actual\nSales,1000,900\nRent,-400,-500\nSales returns,-50,-80\n"
    # Rent cost 500 vs 400: 100 over budget; returns 80 vs 50: 30 more returns; sales 100 short.
    assert favourable_by_account(data) == {"Sales": False, "Rent": False, "Sales returns": False}
    summary = summarize(load_dataset(data, filename="pl.csv"))
    assert summary.net_impact == -230.0  # −100 − 100 − 30
    assert any("written as negative numbers" in n for n in summary.notes)


def test_trial_balance_credit_revenue() -> None:
    data = b"Account,Type,Budget,Actual\nSales,revenue,-1000,-900\nRent,expense,400,500\nPower,expense,100,90\n"
    assert favourable_by_account(data) == {"Sales": False, "Rent": False, "Power": True}
    assert summarize(load_dataset(data, filename="tb.csv")).net_impact == -190.0  # −100 − 100 + 10


def test_one_refund_line_does_not_flip_its_type() -> None:
    data = b"Account,Budget,Actual\nRent,400,500\nTravel,0,-30\n"  # an unbudgeted travel refund
    assert favourable_by_account(data) == {"Rent": False, "Travel": True}
