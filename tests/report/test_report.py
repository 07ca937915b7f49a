"""The report: JSON shape and numbers, text and Markdown rendering, on datasets built by hand."""

from __future__ import annotations

from decimal import Decimal

import pytest

from analyst.dataset import ExcludedRow
from analyst.engine import AnalysisError, AnalysisOptions, Materiality, MaterialityMode
from analyst.report import build_report
from tests.engine.helpers import make_dataset

COLUMNS = ["Department", "Account", "period", "actual", "reference"]
ROWS = [
    ["Sales", "Product revenue", "2025-01", 1_000_000, 900_000],
    ["Sales", "Product revenue", "2025-02", 1_100_000, 950_000],
    ["Sales", "Sales discounts", "2025-01", 50_000, 30_000],
    ["Marketing", "Events", "2025-01", 400_000, 200_000],
    ["Marketing", "Events", "2025-02", 150_000, 200_000],
    ["Marketing", "Salaries", "2025-02", 90_000.55, 100_000],
]


@pytest.fixture
def ds():
    return make_dataset(
        ROWS,
        COLUMNS,
        account="Account",
        excluded=[ExcludedRow(source_row=9, label="Total Marketing", reason="subtotal row")],
    )


def test_json_has_the_contract(ds) -> None:
    d = build_report(ds).to_json_dict()
    assert d["totals"] == {
        "actual": 2_790_000.55,
        "reference": 2_380_000.0,
        "variance": 410_000.55,
        "variance_pct": pytest.approx(410_000.55 / 2_380_000 * 100, abs=1e-9),
    }
    assert d["columns"] == ds.roles.to_dict()
    assert d["source"]["filename"] == "test.csv"
    # Default amount: 10,000, since 1 % of the total |reference| (23,800 → 20,000) is above it.
    assert d["materiality"] == {"amount": 10_000.0, "percent": 10.0, "mode": "and", "rule": "the default 10,000"}
    # Revenue +250,000; discounts +20,000 and costs +140,000.55 are bad for profit: +89,999.45, not +410,000.55.
    assert d["headline"]["measure"] == "effect_on_profit"
    assert d["headline"]["value"] == 89_999.45 and d["headline"]["favourable"] is True
    assert d["headline"]["straight_variance"] == 410_000.55
    assert d["excluded_rows"] == [{"row": 9, "label": "Total Marketing", "reason": "subtotal row"}]
    lines = {(r["Department"], r["Account"]): r for r in d["lines"]}
    assert len(lines) == 4
    events = lines[("Marketing", "Events")]
    assert events["variance"] == 150_000.0 and events["variance_pct"] == 37.5
    assert events["favourable"] is False and events["material"] is True
    salaries = lines[("Marketing", "Salaries")]
    assert (
        salaries["variance"] == -9_999.45 and salaries["favourable"] is True and salaries["material"] is False
    )
    for key in ("actual", "reference", "variance", "variance_pct", "favourable", "material"):
        assert all(key in r for r in d["lines"])
    assert [r["Account"] for r in d["top_drivers"]["unfavourable"]] == ["Events", "Sales discounts"]
    assert d["top_drivers"]["favourable"][0]["Account"] == "Product revenue"
    assert isinstance(d["warnings"], list)
    assert [p["period"] for p in d["periods"]["periods"]] == ["2025-01", "2025-02"]


def test_by_groups_reconcile(ds) -> None:
    d = build_report(ds, by=["department"]).to_json_dict()
    assert d["by"] == ["Department"]
    assert {r["Department"] for r in d["lines"]} == {"Sales", "Marketing"}
    assert sum(Decimal(str(r["variance"])) for r in d["lines"]) == Decimal("410000.55")
    with pytest.raises(AnalysisError, match="Choose from"):
        build_report(ds, by=["Region"])


def test_capped_json_still_reconciles(ds) -> None:
    d = build_report(ds).to_json_dict(max_rows=1)
    assert len(d["lines"]) == 2 and d["lines"][1]["more"] == 3
    assert sum(Decimal(str(r["actual"])) for r in d["lines"]) == Decimal("2790000.55")


def test_materiality_options_flow_through(ds) -> None:
    opts = AnalysisOptions(materiality=Materiality(amount=5_000, percent=50, mode=MaterialityMode.OR))
    d = build_report(ds, opts=opts).to_json_dict()
    lines = {(r["Department"], r["Account"]): r for r in d["lines"]}
    assert lines[("Marketing", "Salaries")]["material"] is True  # 9,999.45 ≥ 5,000
    assert d["materiality"]["mode"] == "or"


def test_text_is_readable(ds) -> None:
    text = build_report(ds).to_text()
    assert 'actual = "Actual"' in text and "Dimensions: Department, Account" in text
    # A mixed file leads with the effect on profit (reference profit 1,850,000 − 30,000 − 500,000 = 1,320,000).
    assert "Effect on profit: +89,999.45 (favourable, +6.8% of budgeted profit)" in text
    assert "2,790,000.55" in text and "+410,000.55" not in text
    assert "Top unfavourable" in text and "Marketing / Events: +150,000.00 (+37.5%)  material" in text
    assert 'row 9: "Total Marketing" (subtotal row)' in text
    assert "Material lines (|variance| ≥ 10,000 and |variance %| ≥ 10%; amount: the default 10,000): 3 of 4" in text


def test_markdown_is_short_with_a_table(ds) -> None:
    md = build_report(ds).to_markdown()
    assert md.startswith("**Budget vs actual**")
    assert "| Department / Account | Actual | Budget | Variance | Var % |" in md
    assert "| Marketing / Events | 550,000.00 | 400,000.00 | +150,000.00 | +37.5% |" in md
    assert "1 total/subtotal/computed row excluded" in md
    assert "**Effect on profit: +89,999.45** (favourable" in md and "410,000.55" not in md
    assert len(md) < 3_000
