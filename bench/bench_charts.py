"""Chart benchmark: warm render time and PNG size per chart, beside a bare matplotlib bar chart, same run.

    python bench/bench_charts.py                 # the bundled example and a generated 200,000-row export, 7 rounds
    python bench/bench_charts.py --rows 1000000 --rounds 5

For each chart (bridge, bars, monthly, monthly heatmap) it prints the median and best wall time of a warm
render (the engine's numbers + drawing + PNG encoding; target < 300 ms on a 2-core machine), the median CPU time
of the rendering thread (the work itself: on a shared machine wall time also counts waiting for a core), the part
spent drawing and encoding, and the PNG size (target ≤ 300 KB). For an A/B of two versions of the code, run this
file against each (``python bench/bench_charts.py`` with the other checkout's root first on ``PYTHONPATH``)
under ``farm-bench --vs``. The baseline is the cheapest possible chart of the
same size: eight bars, no labels, saved as PNG; what we add over it is layout, labels and the engine.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analyst.charts import build_spec, render_chart  # noqa: E402
from analyst.charts.draw import DPI, HEIGHT_IN, WIDTH_IN, plain_text, to_png  # noqa: E402
from analyst.ingest import load_dataset  # noqa: E402
from bench.ledger import ledger  # noqa: E402

CHARTS = [("bridge", None), ("bars", None), ("monthly", None), ("monthly", "Department")]


def baseline_png() -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI)
    FigureCanvasAgg(fig)
    fig.add_subplot().bar(range(8), [3, 1, 4, 1, 5, 9, 2, 6])
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return buffer.getvalue()


def timed(fn: Callable[[], object], rounds: int, cpu: list[float] | None = None) -> tuple[list[float], object]:
    fn()  # warm: fonts, caches, the engine's prepared frame
    times, result = [], None
    for _ in range(rounds):
        started, started_cpu = time.perf_counter(), time.thread_time()
        result = fn()
        times.append(time.perf_counter() - started)
        if cpu is not None:
            cpu.append(time.thread_time() - started_cpu)
    return times, result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    example = ROOT / "examples" / "budget_vs_actual.csv"
    datasets = [
        (f"example ({example.name})", load_dataset(str(example), filename=example.name)),
        (f"generated export, {args.rows:,} rows", ledger(args.rows)),
    ]
    times, png = timed(baseline_png, args.rounds)
    print(f"canvas {WIDTH_IN * DPI:.0f} x {HEIGHT_IN * DPI:.0f} px")
    print(f"{'chart':<34}{'median ms':>10}{'best ms':>9}{'cpu ms':>8}{'draw+png ms':>12}{'PNG KB':>8}")
    print(f"{'baseline: 8 bare bars':<34}{statistics.median(times) * 1000:>10.0f}{min(times) * 1000:>9.0f}"
          f"{'':>8}{'':>12}{len(png) / 1024:>8.0f}")  # type: ignore[arg-type]
    for name, ds in datasets:
        print(f"-- {name}")
        for kind, by in CHARTS:
            label = kind + (f" by {by}" if by else "")
            cpu: list[float] = []
            times, chart = timed(lambda ds=ds, kind=kind, by=by: render_chart(ds, kind, by=by), args.rounds, cpu)
            spec = build_spec(ds, kind, by=by)

            def draw(spec: object = spec) -> bytes:
                from analyst.charts import _draw

                with plain_text():
                    return to_png(_draw(spec))  # type: ignore[arg-type]

            draw_times, _ = timed(draw, args.rounds)
            size = len(chart.png)  # type: ignore[attr-defined]
            print(
                f"{label:<34}{statistics.median(times) * 1000:>10.0f}{min(times) * 1000:>9.0f}"
                f"{statistics.median(cpu) * 1000:>8.0f}{statistics.median(draw_times) * 1000:>12.0f}{size / 1024:>8.0f}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
