"""Totals, breakdowns, drivers and line detail against values computed by hand."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest

from analyst.engine import (
    AccountType,
    AnalysisError,
    AnalysisOptions,
    Materiality,
    MaterialityMode,
    breakdown,
    line_detail,
    summarize,
    top_drivers,
)
from analyst.engine.materiality import material_mask
from tests.engine.helpers import make_dataset

COLUMNS = ["Department", "Account", "period", "actual", "reference"]
ROWS = [
    ["Sales", "Product revenue", "2025-01", 100_000, 90_000],
    ["Sales", "Product revenue", "2025-02", 110_000, 95_000],
    ["Sales", "Sales discounts", "2025-01", 5_000, 3_000],
    ["Marketing", "Events", "2025-01", 40_000, 20_000],
    ["Marketing", "Events", "2025-02", None, 20_000],
    ["Marketing", "Widgets", "2025-02", 100, 0],
    ["Marketing", "Travel", "2025-01", 0.10, 0.20],
]


# The fixed thresholds (10,000 and 10 %), not the default that scales with the file: these tests are about the
# materiality test itself (test_default_materiality_scales_with_the_file covers the default).
FIXED = AnalysisOptions(materiality=Materiality())


@pytest.fixture
def ds():
    return make_dataset(ROWS, COLUMNS, account="Account")


def by_label(rows: list[dict], key: str) -> dict[str, dict]:
    return {r[key]: r for r in rows}


def test_summary_totals(ds) -> None:
    s = summarize(ds, FIXED)
    assert (s.actual, s.reference, s.variance) == (255_100.10, 228_000.20, 27_099.90)
    assert s.variance_pct == 27_099.90 / 228_000.20 * 100  # full precision: rounding is for display
    assert s.net_impact == 23_000.10  # +25,000 revenue − 2,000 discounts + 0.10 travel saving
    assert s.favourable is None  # an unknown-type line (Widgets) has a variance
    assert (s.lines, s.material_lines, s.favourable_lines, s.unfavourable_lines) == (5, 1, 2, 1)
    assert s.unclassified_lines == 1
    assert (s.missing_actual, s.missing_reference) == (1, 0)
    assert any("empty" in note for note in s.notes)
    assert s.periods == ("2025-01", "2025-02")
    types = {t["account_type"]: t for t in s.by_type}
    assert types["revenue"]["variance"] == 25_000.0 and types["revenue"]["favourable"] is True
    assert types["contra_revenue"]["variance"] == 2_000.0 and types["contra_revenue"]["favourable"] is False
    assert types["unknown"]["variance_pct"] is None
    d = s.to_dict()
    assert d["totals"] == {
        "actual": 255_100.10,
        "reference": 228_000.20,
        "variance": 27_099.90,
        "variance_pct": 27_099.90 / 228_000.20 * 100,
    }


def test_cents_sum_exactly() -> None:
    # 0.1 ten times is 0.9999999999999999 in floats; in cents it is 1.00.
    ds = make_dataset([["x", 0.1, 0.2]] * 10, ["Account", "actual", "reference"])
    s = summarize(ds)
    assert (s.actual, s.reference, s.variance) == (1.0, 2.0, -1.0)


def test_lines_favourability_and_materiality(ds) -> None:
    rows = breakdown(ds, ["Account"], opts=FIXED).to_dict()["rows"]
    lines = by_label(rows, "Account")
    assert lines["Product revenue"]["variance"] == 25_000.0
    assert lines["Product revenue"]["variance_pct"] == pytest.approx(13.5135135, abs=1e-6)
    assert lines["Product revenue"]["favourable"] is True
    assert lines["Product revenue"]["material"] is True
    assert lines["Sales discounts"]["favourable"] is False  # contra-revenue up is bad
    assert lines["Sales discounts"]["material"] is False  # 66.67 % but only 2,000
    assert lines["Events"]["variance"] == 0.0 and lines["Events"]["favourable"] is None
    assert lines["Widgets"]["variance_pct"] is None and lines["Widgets"]["favourable"] is None
    assert lines["Travel"]["variance"] == -0.1 and lines["Travel"]["favourable"] is True  # cost below budget
    assert [r["Account"] for r in rows] == [
        "Product revenue",
        "Sales discounts",
        "Widgets",
        "Travel",
        "Events",
    ]


def test_percent_mode_flags_new_lines(ds) -> None:
    opts = AnalysisOptions(materiality=Materiality(mode=MaterialityMode.PERCENT))
    lines = by_label(breakdown(ds, ["Account"], opts=opts).to_dict()["rows"], "Account")
    assert lines["Widgets"]["material"] is True  # no budget at all: the percent test passes
    assert lines["Events"]["material"] is False  # no variance is never material


@pytest.mark.parametrize(
    ("variance", "reference", "expected"),
    [
        (1_000_000, 10_000_000, {"and": True, "or": True, "amount": True, "percent": True}),  # 10,000 = 10 %
        (999_999, 1_000, {"and": False, "or": True, "amount": False, "percent": True}),
        (5_000_000, 100_000_000, {"and": False, "or": True, "amount": True, "percent": False}),
        (-1_500_000, 2_000_000, {"and": True, "or": True, "amount": True, "percent": True}),
        (0, 0, {"and": False, "or": False, "amount": False, "percent": False}),
    ],
)
def test_materiality_modes(variance: int, reference: int, expected: dict[str, bool]) -> None:
    for mode, flag in expected.items():
        m = Materiality(amount=10_000, percent=10, mode=MaterialityMode(mode))
        assert bool(material_mask(np.array([variance]), np.array([reference]), 100, m)[0]) is flag, mode


def test_breakdown_reconciles_and_caps(ds) -> None:
    b = breakdown(ds, ["department"])  # case-insensitive column name
    assert b.by == ("Department",)
    rows = by_label(b.to_dict()["rows"], "Department")
    assert rows["Sales"]["variance"] == 27_000.0
    assert rows["Marketing"]["actual"] == 40_100.10 and rows["Marketing"]["reference"] == 40_000.20
    capped = breakdown(ds, ["Department", "Account"]).to_dict(max_rows=2)["rows"]
    assert len(capped) == 3 and capped[-1]["Department"] == "3 more" and capped[-1]["more"] == 3
    assert sum(Decimal(str(r["variance"])) for r in capped) == Decimal("27099.90")


def test_breakdown_with_filters_and_limit(ds) -> None:
    b = breakdown(ds, ["Account"], filters={"Department": ["marketing"]}, limit=1)
    d = b.to_dict()
    assert d["total"]["variance"] == 99.90
    assert len(d["rows"]) == 2 and d["rows"][1]["more"] == 2
    by_type = by_label(breakdown(ds, ["account_type"]).to_dict()["rows"], "account_type")
    assert by_type["revenue"]["variance"] == 25_000.0


def test_period_breakdown_is_chronological(ds) -> None:
    rows = breakdown(ds, ["period"]).to_dict()["rows"]
    assert [r["period"] for r in rows] == ["2025-01", "2025-02"]
    assert rows[0]["variance"] == 32_000 - 0.10  # 10,000 + 2,000 + 20,000 − 0.10


def test_bad_requests_name_the_choices(ds) -> None:
    with pytest.raises(AnalysisError, match=r"Unknown column 'Dept'.*Department, Account, period"):
        breakdown(ds, ["Dept"])
    with pytest.raises(AnalysisError, match=r"No rows where Account is 'Rent'.*Events.*Product revenue"):
        breakdown(ds, ["Department"], filters={"Account": "Rent"})
    with pytest.raises(AnalysisError, match="together"):
        breakdown(ds, ["Department"], filters={"Account": "Events", "Department": "Sales"})
    with pytest.raises(AnalysisError, match="break down by"):
        breakdown(ds, [])
    with pytest.raises(AnalysisError, match="which line"):
        line_detail(ds, {})


def test_top_drivers(ds) -> None:
    d = top_drivers(ds, n=1).to_dict()
    assert [r["Account"] for r in d["favourable"]] == ["Product revenue"]
    assert d["favourable"][0]["impact"] == 25_000.0 and d["favourable"][0]["share_pct"] == pytest.approx(25_000 / 25_000.10 * 100)
    assert [r["Account"] for r in d["unfavourable"]] == ["Sales discounts"]
    assert d["unfavourable"][0]["impact"] == -2_000.0
    assert [r["Account"] for r in d["unclassified"]] == ["Widgets"]
    assert d["favourable_total_impact"] == 25_000.10
    by_dept = top_drivers(ds, by=["Department"], n=5).to_dict()
    assert [r["Department"] for r in by_dept["favourable"]] == ["Sales"]  # impact 23,000
    assert by_dept["unclassified"][0]["Department"] == "Marketing"


def test_line_detail(ds) -> None:
    d = line_detail(ds, {"Account": "events"}).to_dict()
    assert d["matched_lines"] == 1 and d["account_type"] == "expense"
    assert d["total"]["variance"] == 0.0 and d["favourable"] is None
    jan, feb = d["by_period"]
    assert (jan["period"], jan["variance"], jan["favourable"], jan["material"]) == (
        "2025-01",
        20_000.0,
        False,
        True,
    )
    # February has a budget but no actual at all: a one-sided period, not a favourable 20,000 saving.
    assert (feb["period"], feb["variance"], feb["favourable"], feb["missing"]) == (
        "2025-02",
        -20_000.0,
        None,
        "actual",
    )
    whole_dept = line_detail(ds, {"Department": "Sales"})
    assert whole_dept.account_type == "mixed" and whole_dept.to_dict()["matched_lines"] == 2


def test_zero_reference_gives_no_percent() -> None:
    ds = make_dataset([["a", 5, 0], ["b", 0, 0]], ["Account", "actual", "reference"])
    s = summarize(ds)
    assert s.variance_pct is None
    rows = by_label(breakdown(ds, ["Account"]).to_dict()["rows"], "Account")
    assert rows["a"]["variance_pct"] is None and rows["b"]["variance_pct"] is None


def test_account_type_override_changes_favourability(ds) -> None:
    widgets = {"Department": "Marketing", "Account": "Widgets"}
    assert line_detail(ds, widgets).favourable is None
    opts = AnalysisOptions().with_account_types({"Widgets": AccountType.REVENUE})
    detail = line_detail(ds, widgets, opts=opts)
    assert detail.account_type == "revenue" and detail.favourable is True
    assert summarize(ds, opts).favourable is True  # now every line with a variance has a type
    assert line_detail(ds, widgets).favourable is None  # the default options are untouched


def test_role_headers_work_as_column_names(ds) -> None:
    # The period is known by its source header too, and case, spaces and underscores do not matter.
    assert breakdown(ds, ["Month"]).by == ("period",)
    assert breakdown(ds, ["ACCOUNT TYPE"]).by == ("account_type",)


def test_no_dimensions_and_no_rows() -> None:
    single = make_dataset([[100.0, 80.0], [50.0, 60.0]], ["actual", "reference"], dims=[])
    s = summarize(single)
    assert (s.lines, s.variance, s.line_keys) == (1, 10.0, ())
    assert top_drivers(single).to_dict()["unclassified"][0]["variance"] == 10.0
    empty = make_dataset([], ["Account", "actual", "reference"])
    e = summarize(empty)
    assert (e.actual, e.reference, e.variance, e.variance_pct, e.lines) == (0.0, 0.0, 0.0, None, 0)
    assert breakdown(empty, ["Account"]).to_dict()["rows"] == []


def test_filters_match_each_value_and_reject_typos(ds) -> None:
    both = breakdown(ds, ["Account"], filters={"Account": ["events", "TRAVEL"]}).to_dict()
    assert {r["Account"] for r in both["rows"]} == {"Events", "Travel"}
    with pytest.raises(AnalysisError, match=r"'Evnts'"):
        breakdown(ds, ["Account"], filters={"Account": ["Events", "Evnts"]})
    costs = breakdown(ds, ["Account"], filters={"account type": "Contra Revenue"}).to_dict()
    assert [r["Account"] for r in costs["rows"]] == ["Sales discounts"]


def test_default_materiality_scales_with_the_file(ds) -> None:
    # Σ|reference| = 228,000.20; 1 % = 2,280 → rounded down to 2,000, below the 10,000 default.
    s = summarize(ds)
    assert s.materiality.amount == 2_000.0 and s.materiality_rule.endswith(": 2,000")
    lines = by_label(breakdown(ds, ["Account"]).to_dict()["rows"], "Account")
    assert lines["Sales discounts"]["material"] is True  # 2,000 and 66.7 %
    # An amount the user gives is used as it is.
    given = AnalysisOptions(materiality=Materiality(amount=5_000))
    assert summarize(ds, given).materiality.amount == 5_000.0
