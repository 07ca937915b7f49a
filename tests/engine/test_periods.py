"""By period, YTD, flux, run-rate and full-year projection against hand-computed values."""

from __future__ import annotations

import pytest

from analyst.engine import AnalysisError, period_view
from analyst.engine.periods import periods_per_year
from tests.engine.helpers import make_dataset

MONTHS = [f"2025-{m:02d}" for m in range(1, 13)]


@pytest.fixture
def ds():
    # One cost line: budget 100 a month for the year, actuals for Jan–Mar only (120 in Feb, 110 in Mar).
    actuals = [100, 120, 110] + [None] * 9
    rows = [["Travel", month, actual, 100] for month, actual in zip(MONTHS, actuals, strict=True)]
    return make_dataset(rows, ["Account", "period", "actual", "reference"], account="Account", periods=MONTHS)


def test_ytd_flux_run_rate_projection(ds) -> None:
    view = period_view(ds)
    d = view.to_dict()
    rows = d["periods"]
    assert [r["period"] for r in rows] == MONTHS
    jan, feb, mar, apr = rows[:4]
    assert (feb["ytd_actual"], feb["ytd_reference"], feb["ytd_variance"]) == (220.0, 200.0, 20.0)
    assert mar["ytd_variance_pct"] == 10.0  # 330 vs 300
    assert jan["flux_actual"] is None and jan["flux_variance"] is None
    assert (feb["flux_actual"], feb["flux_actual_pct"], feb["flux_variance"]) == (20.0, 20.0, 20.0)
    assert (mar["flux_actual"], mar["flux_variance"]) == (-10.0, -10.0)
    # April has budget only: no actuals booked yet is not a fall of 110 in the actuals.
    assert apr["flux_actual"] is None and apr["flux_variance"] is None and apr["has_actual"] is False
    assert feb["favourable"] is False  # a cost above budget
    assert view.periods_so_far == ("2025-01", "2025-02", "2025-03")
    assert view.periods_in_year == 12
    assert view.ytd_actual == 330.0 and view.ytd_reference == 300.0
    assert view.run_rate == 1_320.0  # 330 / 3 × 12
    assert view.full_year_projection == 1_230.0  # 330 + 9 × 100
    assert view.full_year_reference == 1_200.0
    assert view.projection_variance == 30.0
    assert d["year"] == "2025" and d["notes"] == []


def test_capped_periods_keep_the_latest_and_reconcile(ds) -> None:
    rows = period_view(ds).to_dict(max_rows=3)["periods"]
    assert rows[0]["period"] == "9 earlier" and rows[0]["actual"] == 330.0 and rows[0]["reference"] == 900.0
    assert [r["period"] for r in rows[1:]] == MONTHS[-3:]


def test_ytd_resets_each_year() -> None:
    periods = ["2024-11", "2024-12", "2025-01", "2025-02"]
    rows = [["Rent", p, 10, 8] for p in periods]
    ds = make_dataset(rows, ["Account", "period", "actual", "reference"], periods=periods)
    d = period_view(ds).to_dict()
    assert [r["ytd_actual"] for r in d["periods"]] == [10.0, 20.0, 10.0, 20.0]
    assert d["year"] == "2025" and d["ytd_actual"] == 20.0 and d["run_rate"] == 120.0


def test_no_period_column() -> None:
    ds = make_dataset([["Rent", 1, 2]], ["Account", "actual", "reference"])
    with pytest.raises(AnalysisError, match="no period column"):
        period_view(ds)


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        (["2025-01", "2025-02"], 12),
        (["Jan", "Feb", "Mär"], 12),
        (["Январь", "Февраль"], 12),
        (["01.2025", "02.2025"], 12),
        (["Q1 2025", "Q2 2025"], 4),
        (["2025-Q1", "2025-Q2"], 4),
        (["Week 1", "Week 2"], None),
    ],
)
def test_periods_per_year(labels: list[str], expected: int | None) -> None:
    assert periods_per_year(labels) == expected
