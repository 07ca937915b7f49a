"""The headline rule: effect on profit when revenue and costs are mixed, the variance otherwise."""

from __future__ import annotations

from analyst.engine import AccountType, headline, headlines_by
from tests.engine.helpers import make_dataset

COLUMNS = ["Account", "period", "actual", "reference"]


def _mixed():
    return make_dataset(
        [
            ["Product sales", "2025-01", 1000, 900],
            ["Salaries", "2025-01", 500, 400],
            ["Product sales", "2025-02", 100, 100],
            ["Rent", "2025-02", 50, 60],
        ],
        COLUMNS,
        account="Account",
    )


def test_mixed_file_leads_with_effect_on_profit_not_the_straight_sum():
    h = headline(_mixed())
    assert h.measure == "effect_on_profit"
    # revenue +100 (good), costs +90 (bad): +10 for profit; the straight sum +190 is not the headline
    assert h.value == 10.0
    assert h.favourable is True
    assert h.straight_variance == 190.0
    assert h.revenue is not None and h.revenue.variance == 100.0 and h.revenue.favourable is True
    assert h.costs is not None and h.costs.variance == 90.0 and h.costs.effect_on_profit == -90.0
    assert h.costs.favourable is False
    # reference profit 1000 - 460 = 540
    assert abs(h.value_pct - 10 / 540 * 100) < 1e-9


def test_per_period_headlines_keep_the_file_measure():
    rows = dict(headlines_by(_mixed(), "period"))
    assert rows["2025-01"].value == 0.0 and rows["2025-01"].favourable is None
    # February holds revenue on budget and one cost line: still an effect on profit, +10
    assert rows["2025-02"].measure == "effect_on_profit" and rows["2025-02"].value == 10.0


def test_cost_only_file_leads_with_the_variance():
    ds = make_dataset(
        [["Travel", 120, 100], ["Software", 80, 90]], ["Account", "actual", "reference"], account="Account"
    )
    h = headline(ds)
    assert h.measure == "variance"
    assert h.value == 10.0 and h.favourable is False
    assert [p.account_type for p in h.parts] == [AccountType.EXPENSE]


def test_unknown_lines_stay_out_of_the_effect_on_profit():
    ds = make_dataset(
        [["Product sales", 1000, 900], ["Salaries", 500, 450], ["Zebra", 70, 10]],
        ["Account", "actual", "reference"],
        account="Account",
    )
    h = headline(ds)
    assert h.measure == "effect_on_profit"
    assert h.value == 50.0
    assert h.unknown_excluded == 60.0
    assert h.part(AccountType.UNKNOWN) is not None and h.part(AccountType.UNKNOWN).favourable is None
