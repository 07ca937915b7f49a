"""Variance charts as PNG: the bridge (waterfall), budget vs actual bars, and variance by period.

    from analyst.charts import render_chart, render_chart_async

    chart = render_chart(dataset, "bridge", options)            # a Chart: title, alt text, PNG bytes
    chart = await render_chart_async(dataset, "bars", options, by="Department")  # off the event loop

Platform-free (no Slack, no display, no network): the numbers come from :mod:`analyst.engine` (see
:mod:`analyst.charts.data`), the drawing is matplotlib's Agg canvas (:mod:`analyst.charts.draw`). Bad requests
(an unknown column, a monthly chart of a file without periods) raise :class:`~analyst.engine.AnalysisError`.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal, get_args

from analyst.charts.data import (
    BarsSpec,
    BridgeSpec,
    Filters,
    MonthlySpec,
    bars_spec,
    bridge_spec,
    monthly_spec,
    periods_with_actuals,
)
from analyst.dataset import Dataset
from analyst.engine import AnalysisError, AnalysisOptions

ChartKind = Literal["bridge", "bars", "monthly"]
CHART_KINDS: tuple[str, ...] = get_args(ChartKind)
MAX_PNG_BYTES = 300 * 1024

__all__ = [
    "CHART_KINDS",
    "MAX_PNG_BYTES",
    "BarsSpec",
    "BridgeSpec",
    "Chart",
    "ChartKind",
    "MonthlySpec",
    "build_spec",
    "figure_of",
    "render_chart",
    "render_chart_async",
]


@dataclass(frozen=True, slots=True)
class Chart:
    """One rendered chart.

    ``title`` is what the chart's own title says; ``alt_text`` a one-line description for screen readers and
    upload titles; ``png`` the image (at most about 300 KB); ``filename`` a safe name ending in ``.png``.
    """

    kind: ChartKind
    title: str
    alt_text: str
    png: bytes
    filename: str


def build_spec(
    ds: Dataset,
    kind: str,
    opts: AnalysisOptions | None = None,
    *,
    by: str | None = None,
    filters: Filters | None = None,
) -> BridgeSpec | BarsSpec | MonthlySpec:
    """The chart's numbers from the engine (no drawing)."""
    if kind in ("bridge", "bars"):
        chosen = periods_with_actuals(ds, opts, filters)
        spec: BridgeSpec | BarsSpec = (
            bridge_spec(ds, opts, by=[by] if by else None, filters=chosen)
            if kind == "bridge"
            else bars_spec(ds, opts, by=by, filters=chosen)
        )
        if chosen is not filters:
            spec = replace(spec, notes=(*spec.notes, "periods with actuals only"))
        return spec
    if kind == "monthly":
        return monthly_spec(ds, opts, by=by, filters=filters)
    raise AnalysisError(f"Unknown chart {kind!r}. Choose from: {', '.join(CHART_KINDS)}.")


def figure_of(spec: BridgeSpec | BarsSpec | MonthlySpec) -> object:
    """The matplotlib ``Figure`` of a spec (for tests that inspect bars, colours and labels)."""
    from analyst.charts import draw

    with draw.plain_text():
        return _draw(spec)


def _draw(spec: BridgeSpec | BarsSpec | MonthlySpec) -> object:
    from analyst.charts import draw

    if isinstance(spec, BridgeSpec):
        return draw.bridge_figure(spec)
    if isinstance(spec, BarsSpec):
        return draw.bars_figure(spec)
    return draw.monthly_figure(spec)


def render_chart(
    ds: Dataset,
    kind: str,
    opts: AnalysisOptions | None = None,
    *,
    by: str | None = None,
    filters: Filters | None = None,
) -> Chart:
    """Compute and draw one chart; blocking (use :func:`render_chart_async` on an event loop)."""
    from analyst.charts import draw

    spec = build_spec(ds, kind, opts, by=by, filters=filters)
    with draw.plain_text():
        fig = _draw(spec)
        png = draw.to_png(fig)  # type: ignore[arg-type]
        title = fig.get_suptitle() or kind  # type: ignore[attr-defined]
    return Chart(
        kind=kind,  # type: ignore[arg-type]
        title=title,
        alt_text=_alt_text(spec, title),
        png=png,
        filename=_filename(ds.source.filename, kind),
    )


async def render_chart_async(
    ds: Dataset,
    kind: str,
    opts: AnalysisOptions | None = None,
    *,
    by: str | None = None,
    filters: Filters | None = None,
) -> Chart:
    """:func:`render_chart` in a worker thread, so the event loop keeps serving other answers."""
    return await asyncio.to_thread(render_chart, ds, kind, opts, by=by, filters=filters)


def _alt_text(spec: BridgeSpec | BarsSpec | MonthlySpec, title: str) -> str:
    if isinstance(spec, BridgeSpec):
        names = ", ".join(s.label for s in spec.steps[:3])
        return f"{title}: from {spec.start:,.0f} to {spec.end:,.0f}; largest steps: {names}"[:300]
    if isinstance(spec, BarsSpec):
        return f"{title}: {len(spec.groups)} groups"[:300]
    return f"{title}: {len(spec.periods)} periods"[:300]


def _filename(source: str, kind: str) -> str:
    stem = re.sub(r"\.[A-Za-z0-9]{1,5}$", "", source)
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-")[:40] or "variance"
    return f"{stem}-{kind}.png"


def kinds_text(kinds: Sequence[str] = CHART_KINDS) -> str:
    return ", ".join(kinds)
