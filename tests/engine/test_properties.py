"""Properties that must hold for any data: exact reconciliation, PVM identity, order independence."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyst.engine import breakdown, period_view, price_volume_mix, summarize, top_drivers
from analyst.engine import prepared as core
from analyst.engine.options import AnalysisOptions
from tests.engine.helpers import make_dataset

PERIODS = ["2025-01", "2025-02", "2025-03", "2025-04"]
ACCOUNTS = ["Revenue", "Discounts", "Rent", "Widgets", "Salaries"]

cents = st.integers(min_value=-(10**11), max_value=10**11)  # up to ±1 billion
amount = st.one_of(st.none(), cents.map(lambda c: c / 100))
quantity = st.one_of(st.none(), st.integers(min_value=0, max_value=10**6).map(lambda q: q / 4))

row = st.tuples(
    st.sampled_from(["Sales", "Ops", "R&D"]),
    st.sampled_from(ACCOUNTS),
    st.sampled_from(PERIODS),
    amount,
    amount,
    quantity,
    quantity,
)
COLUMNS = ["Department", "Account", "period", "actual", "reference", "actual_qty", "reference_qty"]
PROPERTY_SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def dataset(rows: list[tuple]) -> object:
    return make_dataset(rows, COLUMNS, dims=["Department", "Account"], account="Account", periods=PERIODS)


def exact_cents(values: list[float | None]) -> int:
    return sum(round(Decimal(str(v)) * 100) for v in values if v is not None)


@PROPERTY_SETTINGS
@given(st.lists(row, min_size=1, max_size=40), st.integers(min_value=0, max_value=4))
def test_breakdowns_reconcile_exactly(rows: list[tuple], cap: int) -> None:
    ds = dataset(rows)
    s = summarize(ds)
    # The grand total equals the exact decimal sum of the inputs.
    assert round(Decimal(str(s.actual)) * 100) == exact_cents([r[3] for r in rows])
    assert round(Decimal(str(s.reference)) * 100) == exact_cents([r[4] for r in rows])
    for by in (["Department"], ["Account"], ["period"], ["Department", "Account"], ["account_type"]):
        b = breakdown(ds, by)
        assert int(b.table[core.A].sum()) == round(Decimal(str(s.actual)) * 100)
        assert b.total["variance"] == s.variance
        # Capped output: the "N more" row keeps the sum exact.
        shown = b.to_dict(max_rows=cap)["rows"]
        assert sum(Decimal(str(r["variance"])) for r in shown) == Decimal(str(s.variance))
        assert sum(Decimal(str(r["actual"])) for r in shown) == Decimal(str(s.actual))


@PROPERTY_SETTINGS
@given(st.lists(row, min_size=1, max_size=40))
def test_pvm_parts_sum_to_the_variance(rows: list[tuple]) -> None:
    rows = [r if r[5] is not None or r[6] is not None else (*r[:5], 1.0, None) for r in rows]
    r = price_volume_mix(dataset(rows))
    assert r.price + r.mix + r.quantity == r.variance
    d = r.to_dict()
    assert Decimal(str(d["price_effect"])) + Decimal(str(d["volume_effect"])) == Decimal(str(d["variance"]))
    for item in d["items"]:
        parts = Decimal(str(item["price_effect"])) + Decimal(str(item["mix_effect"]))
        parts += Decimal(str(item["quantity_effect"]))
        assert parts == Decimal(str(item["variance"]))


@PROPERTY_SETTINGS
@given(st.lists(row, min_size=1, max_size=30), st.randoms(use_true_random=False))
def test_shuffling_rows_changes_nothing(rows: list[tuple], rnd) -> None:
    shuffled = list(rows)
    rnd.shuffle(shuffled)
    a, b = dataset(rows), dataset(shuffled)
    assert summarize(a).to_dict() == summarize(b).to_dict()
    for by in (["Department"], ["Account", "period"]):
        assert breakdown(a, by).to_dict() == breakdown(b, by).to_dict()
    assert top_drivers(a, n=3).to_dict() == top_drivers(b, n=3).to_dict()
    assert period_view(a).to_dict() == period_view(b).to_dict()
    if any(r[5] is not None or r[6] is not None for r in rows):
        assert price_volume_mix(a).to_dict() == price_volume_mix(b).to_dict()


@PROPERTY_SETTINGS
@given(st.lists(st.tuples(st.sampled_from(ACCOUNTS), amount), min_size=1, max_size=20))
def test_percent_is_none_exactly_when_reference_is_zero(rows: list[tuple]) -> None:
    ds = make_dataset(
        [(acc, a, 0.0) for acc, a in rows], ["Account", "actual", "reference"], account="Account"
    )
    assert summarize(ds).variance_pct is None
    assert all(r["variance_pct"] is None for r in breakdown(ds, ["Account"]).to_dict()["rows"])
    assert all(
        r["material"] is (r["variance"] != 0 and abs(r["variance"]) >= 10_000)
        for r in breakdown(ds, ["Account"]).to_dict()["rows"]
    )


def test_million_rows_stay_exact() -> None:
    # Float summation of a million cents drifts; integer minor units do not.
    n = 1_000_000
    frame = pd.DataFrame(
        {"Account": np.where(np.arange(n) % 2 == 0, "Rent", "Travel"), "actual": 0.01, "reference": 0.03}
    )
    s = summarize(make_dataset(frame, dims=["Account"]), AnalysisOptions())
    assert (s.actual, s.reference, s.variance) == (10_000.0, 30_000.0, -20_000.0)


@PROPERTY_SETTINGS
@given(st.lists(row.filter(lambda r: r[1] != "Widgets"), min_size=1, max_size=40))
def test_drivers_split_the_net_impact_exactly(rows: list[tuple]) -> None:
    # With every account typed, favourable + unfavourable impact is the whole effect on profit.
    ds = dataset(rows)
    for by in (None, ["Department"], ["period"]):
        d = top_drivers(ds, by=by, n=1).to_dict()
        # One-sided lines (no actual or no reference at all) are listed apart, never ranked: the three add up.
        total = (
            Decimal(str(d["favourable_total_impact"]))
            + Decimal(str(d["unfavourable_total_impact"]))
            + Decimal(str(d["one_sided_total_impact"]))
        )
        assert total == Decimal(str(summarize(ds).net_impact))
