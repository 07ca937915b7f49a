"""Properties of meaning on QuickBooks-shaped exports: the order of rows, how lines are split into sections and a
correct computed line never change the by-type totals or the effect on profit."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyst.engine import headline
from analyst.ingest import load_dataset

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])

REVENUE = ["Product sales", "Services income", "Licence revenue", "Support revenue"]
COSTS = ["Salaries", "Rent", "Travel", "Software", "Insurance", "Office supplies"]
cents = st.integers(min_value=0, max_value=5_000_000)
line = st.tuples(cents, cents)


def _money(minor: int) -> str:
    return f'"{minor // 100:,}.{minor % 100:02d}"'


def _section(title: str, lines: list[tuple[str, int, int]]) -> list[str]:
    rows = [f"{title},,"]
    rows += [f"   {name},{_money(a)},{_money(b)}" for name, a, b in lines]
    rows.append(f"Total {title},{_money(sum(a for _, a, _ in lines))},{_money(sum(b for _, _, b in lines))}")
    return rows


def _export(sections: list[tuple[str, list[tuple[str, int, int]]]], net_income: bool = False) -> bytes:
    rows = ["Budget vs. Actuals", "Example Co", "", ",Actual,Budget"]
    for title, lines in sections:
        rows += _section(title, lines)
    if net_income:
        revenue = [x for title, lines in sections if title == "Income" for x in lines]
        costs = [x for title, lines in sections if title != "Income" for x in lines]
        actual = sum(a for _, a, _ in revenue) - sum(a for _, a, _ in costs)
        budget = sum(b for _, _, b in revenue) - sum(b for _, _, b in costs)
        sign = lambda v: ("-" if v < 0 else "") + _money(abs(v)).strip('"')  # noqa: E731
        rows.append(f'Net Income,"{sign(actual)}","{sign(budget)}"')
    return ("\n".join(rows) + "\n").encode("utf-8")


def _meaning(data: bytes) -> tuple[dict[str, tuple[float, float]], float, float]:
    ds = load_dataset(data, filename="export.csv")
    h = headline(ds)
    return {p.account_type.value: (p.actual, p.reference) for p in h.parts}, h.value, h.straight_variance


@st.composite
def exports(draw: st.DrawFn) -> tuple[list[tuple[str, int, int]], list[tuple[str, int, int]]]:
    revenue = [(name, *draw(line)) for name in draw(st.lists(st.sampled_from(REVENUE), min_size=1, unique=True))]
    costs = [(name, *draw(line)) for name in draw(st.lists(st.sampled_from(COSTS), min_size=2, unique=True))]
    return revenue, costs


@SETTINGS
@given(exports(), st.randoms(use_true_random=False), st.integers(min_value=1, max_value=5))
def test_permuting_rows_or_splitting_sections_changes_no_total(case, rng, cut: int) -> None:
    revenue, costs = case
    base = _meaning(_export([("Income", revenue), ("Expenses", costs)]))
    shuffled_revenue, shuffled_costs = revenue[:], costs[:]
    rng.shuffle(shuffled_revenue)
    rng.shuffle(shuffled_costs)
    assert _meaning(_export([("Expenses", shuffled_costs), ("Income", shuffled_revenue)])) == base
    # The costs split over two sections ("Cost of Goods Sold" and "Expenses"), each with its own total.
    at = min(cut, len(shuffled_costs) - 1)
    split = [
        ("Income", shuffled_revenue),
        ("Cost of Goods Sold", shuffled_costs[:at]),
        ("Expenses", shuffled_costs[at:]),
    ]
    assert _meaning(_export(split)) == base


@SETTINGS
@given(exports())
def test_a_correct_net_income_line_changes_only_the_exclusions(case) -> None:
    revenue, costs = case
    sections = [("Income", revenue), ("Expenses", costs)]
    without = load_dataset(_export(sections), filename="export.csv")
    with_net = load_dataset(_export(sections, net_income=True), filename="export.csv")
    assert _meaning(_export(sections, net_income=True)) == _meaning(_export(sections))
    assert without.frame.equals(with_net.frame)
    added = {r.label for r in with_net.excluded_rows} - {r.label for r in without.excluded_rows}
    assert added == {"Net Income"}
