"""Charts checked through matplotlib's objects: which bars, in which order, which colours, what they add up to."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from analyst.charts import MAX_PNG_BYTES, build_spec, figure_of, render_chart, render_chart_async
from analyst.charts.data import BarsSpec, BridgeSpec, MonthlySpec, bridge_spec
from analyst.charts.draw import FAVOURABLE, NEUTRAL, REFERENCE, TOTAL, UNFAVOURABLE
from analyst.engine import AnalysisError
from tests.charts.ledger import COSTS_CSV, EVENTS, load_csv, load_ledger

FAV, UNFAV, GREY, DARK = (to_rgba(c) for c in (FAVOURABLE, UNFAVOURABLE, NEUTRAL, TOTAL))


@pytest.fixture
def ledger(tmp_path: Path):
    return load_ledger(tmp_path)


def _axes(fig: object):
    assert isinstance(fig, Figure)
    return fig.axes[0]


def _ticks(ax) -> list[str]:
    return [t.get_text() for t in ax.get_yticklabels()]


def test_bridge_of_a_mixed_file_is_of_profit_and_adds_up(ledger) -> None:
    spec = build_spec(ledger, "bridge")
    assert isinstance(spec, BridgeSpec)
    assert spec.basis == "profit"
    assert (spec.start, spec.end) == (1250.0, 1450.0)
    assert [(s.label, s.value) for s in spec.steps] == [
        ("Sales / Subscription revenue", 400.0),
        (f"Marketing / {EVENTS}", -150.0),
        ("Engineering / Salaries", 100.0),
        ("Sales / Services revenue", -100.0),
        ("Sales / Commissions", -30.0),
        ("Engineering / Cloud hosting", -20.0),
    ]
    assert spec.start + sum(s.value for s in spec.steps) == pytest.approx(spec.end)

    ax = _axes(figure_of(spec))
    bars = list(ax.containers[0])
    assert len(bars) == 8
    labels = _ticks(ax)
    assert labels[0] == "Budget profit" and labels[-1] == "Actual profit"
    assert labels[1:3] == ["Sales / Subscription revenue", f"Marketing / {EVENTS}"]
    # Totals end at the reference and actual profit; each step runs from the previous level to the next.
    assert bars[0].get_x() + bars[0].get_width() == pytest.approx(1250.0)
    assert bars[-1].get_x() + bars[-1].get_width() == pytest.approx(1450.0)
    assert (bars[1].get_x(), bars[1].get_width()) == pytest.approx((1250.0, 400.0))
    assert (bars[2].get_x(), bars[2].get_width()) == pytest.approx((1500.0, 150.0))
    colours = [bar.get_facecolor() for bar in bars]
    assert colours == [DARK, FAV, UNFAV, FAV, UNFAV, UNFAV, UNFAV, DARK]


def test_bridge_keeps_the_largest_drivers_and_sums_the_rest_into_other(ledger) -> None:
    spec = bridge_spec(ledger, steps=3)
    assert [s.label for s in spec.steps] == [
        "Sales / Subscription revenue",
        f"Marketing / {EVENTS}",
        "Engineering / Salaries",
        "Other (3 lines)",
    ]
    other = spec.steps[-1]
    assert (other.value, other.favourable, other.lines) == (-150.0, False, 3)
    assert spec.start + sum(s.value for s in spec.steps) == pytest.approx(spec.end)


def test_bridge_by_a_dimension_and_with_a_period_filter(ledger) -> None:
    by_department = bridge_spec(ledger, by=["Department"])
    assert [(s.label, s.value) for s in by_department.steps] == [
        ("Sales", 270.0),
        ("Marketing", -150.0),
        ("Engineering", 80.0),
    ]
    february = bridge_spec(ledger, filters={"period": ["2025-02"]})
    # February has revenue only: the bridge is of revenue, 1,000 -> 1,100.
    assert (february.basis, february.start, february.end) == ("revenue", 1000.0, 1100.0)
    assert february.scope.periods == ("2025-02",)


def test_cost_only_file_bridges_total_costs_with_cost_favourability(tmp_path: Path) -> None:
    ds = load_csv(tmp_path, COSTS_CSV, "costs.csv")
    spec = bridge_spec(ds)
    assert spec.basis == "costs"
    assert (spec.start, spec.end) == (36000.0, 37100.0)
    assert [(s.label, s.value, s.favourable) for s in spec.steps] == [
        ("Facilities costs", 2500.0, False),
        ("IT expenses", -2000.0, True),
        ("Travel", 600.0, False),
    ]
    fig = figure_of(spec)
    ax = _axes(fig)
    assert _ticks(ax)[0] == "Budget costs"
    assert [b.get_facecolor() for b in ax.containers[0]][1:4] == [UNFAV, FAV, UNFAV]


def test_unknown_types_are_grey_and_the_bridge_is_of_the_plain_total(tmp_path: Path) -> None:
    ds = load_csv(tmp_path, "Site,Budget,Actual\nNorth,100,150\nSouth,200,180\n", "sites.csv")
    spec = bridge_spec(ds)
    assert spec.basis == "total"
    assert [s.favourable for s in spec.steps] == [None, None]
    ax = _axes(figure_of(spec))
    assert [b.get_facecolor() for b in ax.containers[0]][1:3] == [GREY, GREY]


def test_bars_split_departments_holding_revenue_and_costs(ledger) -> None:
    spec = build_spec(ledger, "bars")
    assert isinstance(spec, BarsSpec)
    assert spec.by == "Department" and spec.split_by_type
    assert [(g.label, g.reference, g.actual, g.favourable) for g in spec.groups] == [
        ("Sales · revenue", 2500.0, 2800.0, True),
        ("Marketing · costs", 200.0, 350.0, False),
        ("Engineering · costs", 900.0, 820.0, True),
        ("Sales · costs", 100.0, 130.0, False),
        ("G&A · costs", 50.0, 50.0, None),
    ]
    ax = _axes(figure_of(spec))
    reference, actual = ax.containers
    assert [b.get_width() for b in reference] == [2500.0, 200.0, 900.0, 100.0, 50.0]
    assert [b.get_width() for b in actual] == [2800.0, 350.0, 820.0, 130.0, 50.0]
    assert {b.get_facecolor() for b in reference} == {to_rgba(REFERENCE)}
    assert [b.get_facecolor() for b in actual] == [FAV, UNFAV, FAV, UNFAV, GREY]
    assert _ticks(ax)[0] == "Sales · revenue"


def test_bars_top_n_and_other_keep_the_total(ledger) -> None:
    from analyst.charts.data import bars_spec

    spec = bars_spec(ledger, by="Account", top=2)
    assert [g.label for g in spec.groups] == ["Subscription revenue", EVENTS, "Other (5 more)"]
    assert sum(g.actual for g in spec.groups) == pytest.approx(2800.0 + 1350.0)
    assert sum(g.reference for g in spec.groups) == pytest.approx(2500.0 + 1250.0)


def test_monthly_bars_show_the_effect_on_profit_and_its_running_total(ledger) -> None:
    spec = build_spec(ledger, "monthly")
    assert isinstance(spec, MonthlySpec)
    assert spec.measure == "effect on profit"
    assert (spec.periods, spec.values) == (("2025-01", "2025-02"), (100.0, 100.0))
    ax = _axes(figure_of(spec))
    assert [b.get_height() for b in ax.containers[0]] == [100.0, 100.0]
    (line,) = [ln for ln in ax.get_lines() if ln.get_gid() == "cumulative"]
    assert list(line.get_ydata()) == [100.0, 200.0]


def test_monthly_heatmap_cells_are_the_engine_values(ledger) -> None:
    spec = build_spec(ledger, "monthly", by="Department")
    assert isinstance(spec, MonthlySpec)
    assert spec.rows == ("Sales", "Marketing", "Engineering", "G&A")
    assert spec.grid[0] == (170.0, 100.0)  # Sales: +300 −100 −30 in January; +100 in February
    assert spec.grid[1] == (-150.0, None)
    ax = _axes(figure_of(spec))
    image = ax.get_images()[0]
    data = image.get_array()
    assert data[1][0] == -150.0 and bool(data.mask[1][1])
    assert _ticks(ax) == ["Sales", "Marketing", "Engineering", "G&A"]


def test_file_text_is_plain_text_never_mathtext(ledger) -> None:
    chart = render_chart(ledger, "bridge")  # would raise in the mathtext parser if "$...$" were parsed
    fig = figure_of(build_spec(ledger, "bridge"))
    ax = _axes(fig)
    label = next(t for t in ax.get_yticklabels() if "promo" in t.get_text())
    assert label.get_text() == f"Marketing / {EVENTS}"
    assert label.get_parse_math() is False
    assert chart.png.startswith(b"\x89PNG")


def test_long_labels_are_truncated(tmp_path: Path) -> None:
    long_name = "Professional services and consulting fees, external advisers, legal counsel" * 2
    ds = load_csv(tmp_path, f'Account,Budget,Actual\n"{long_name} expense",100,150\nRent expense,10,5\n', "l.csv")
    ax = _axes(figure_of(build_spec(ds, "bridge")))
    longest = max(len(t) for t in _ticks(ax))
    assert longest <= 36
    assert any(t.endswith("…") for t in _ticks(ax))


@pytest.mark.parametrize(("kind", "by"), [("bridge", None), ("bars", None), ("monthly", None), ("monthly", "Account")])
def test_every_chart_renders_a_small_png_with_a_title_naming_the_period(ledger, kind, by) -> None:
    chart = render_chart(ledger, kind, by=by)
    assert chart.png.startswith(b"\x89PNG")
    assert len(chart.png) <= MAX_PNG_BYTES
    assert "2025-01 – 2025-02" in chart.title
    assert chart.filename == f"ledger-{kind}.png"
    from PIL import Image

    with Image.open(io.BytesIO(chart.png)) as image:
        assert image.size == (800, 450)
        assert image.mode == "RGB"


def test_bad_requests_say_what_to_do(tmp_path: Path, ledger) -> None:
    no_periods = load_csv(tmp_path, COSTS_CSV, "costs.csv")
    with pytest.raises(AnalysisError, match="no period"):
        render_chart(no_periods, "monthly")
    with pytest.raises(AnalysisError, match="Choose from"):
        render_chart(ledger, "bars", by="Region")
    with pytest.raises(AnalysisError, match="Unknown chart"):
        render_chart(ledger, "pie")


async def test_rendering_runs_off_the_event_loop(ledger) -> None:
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    try:
        chart = await render_chart_async(ledger, "bridge")
    finally:
        task.cancel()
    assert chart.png.startswith(b"\x89PNG")
    assert ticks > 1  # the loop kept running while the chart was drawn


def test_report_chart_cli_writes_the_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli import main
    from tests.charts.ledger import LEDGER_CSV

    source = tmp_path / "ledger.csv"
    source.write_text(LEDGER_CSV, encoding="utf-8")
    out = tmp_path / "bridge.png"
    assert main(["report", str(source), "--chart", "monthly", "--by", "Department", "-o", str(out)]) == 0
    assert out.read_bytes().startswith(b"\x89PNG")
    assert "Effect on profit by period and Department" in capsys.readouterr().err
    assert main(["report", str(source), "--chart", "bars"]) == 2
    assert "--chart needs -o" in capsys.readouterr().err
    assert main(["report", str(source), "--chart", "bars", "--by", "Region", "-o", str(out)]) == 2
    assert "Unknown column 'Region'" in capsys.readouterr().err


def test_budget_only_months_are_left_out_of_the_bridge_and_bars(tmp_path: Path) -> None:
    # A full-year budget against actuals to January: the bridge compares January with January's budget.
    csv = (
        "Month,Account,Budget,Actual\n"
        "2025-01,Travel expense,100,130\n2025-01,Rent expense,200,190\n"
        "2025-02,Travel expense,100,\n2025-02,Rent expense,200,\n"
    )
    ds = load_csv(tmp_path, csv, "ytd.csv")
    spec = build_spec(ds, "bridge")
    assert isinstance(spec, BridgeSpec)
    assert (spec.start, spec.end) == (300.0, 320.0)
    assert spec.scope.periods == ("2025-01",)
    assert "periods with actuals only" in spec.notes
    bars = build_spec(ds, "bars")
    assert isinstance(bars, BarsSpec)
    assert sum(g.reference for g in bars.groups) == 300.0
    monthly = build_spec(ds, "monthly")
    assert isinstance(monthly, MonthlySpec)
    assert monthly.has_actual == (True, False)  # the monthly chart shows February, marked "no actuals"
    chosen = build_spec(ds, "bridge", filters={"Month": ["2025-02"]})  # periods chosen by the caller are kept
    assert isinstance(chosen, BridgeSpec) and chosen.start == 300.0 and chosen.end == 0.0
