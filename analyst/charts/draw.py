"""Drawing the chart specs with matplotlib's Agg canvas: no display, no pyplot state, no network.

Figures are made with :class:`matplotlib.figure.Figure` directly (never pyplot), so nothing global is kept
between charts. Labels come from the file and are plain text: ``text.parse_math`` is off while a figure is built
and saved, so ``$1,000 and $2,000`` is never read as mathtext. Sized for Slack's image preview: 800 × 450 px
(a preview scales the whole picture, so type keeps its size relative to the chart at any resolution), large type,
compact amounts (``1.2M``, ``-45K``) with the unit stated in the subtitle.

Speed (``bench/bench_charts.py``): nearly all of a render is matplotlib rasterising text, so the layout is
computed once from estimates (no tight/constrained layout, no second draw), glyphs are rendered unhinted
(FreeType's hinting is a third of the text cost and buys nothing at this size), the canvas is drawn once and
encoded as an RGB PNG with light compression (the charts are flat colours: a higher level only costs time).
"""

from __future__ import annotations

import io
import math
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from matplotlib import rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LinearSegmentedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator

from analyst.charts.data import BarsSpec, BridgeSpec, Favourable, MonthlySpec, Scope

# One palette for every chart.
FAVOURABLE = "#2e7d4f"
UNFAVOURABLE = "#c0392b"
NEUTRAL = "#8c8c8c"  # favourability not known
TOTAL = "#34495e"
REFERENCE = "#b8c2cc"
TEXT = "#222222"
MUTED = "#666666"

WIDTH_IN, HEIGHT_IN, DPI = 8.0, 4.5, 100
PNG_COMPRESS_LEVEL = 3
LABEL_CHARS = 30
_RC: dict[str, Any] = {
    "text.parse_math": False,
    "font.family": "DejaVu Sans",
    "font.size": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 13,
    "axes.titleweight": "bold",
    "savefig.dpi": DPI,
    "text.hinting": "no_hinting",
}
# matplotlib's font and text caches are shared: one figure is built and saved at a time.
_lock = threading.Lock()


def colour(favourable: Favourable) -> str:
    return {True: FAVOURABLE, False: UNFAVOURABLE, None: NEUTRAL}[favourable]


@contextmanager
def plain_text() -> Iterator[None]:
    with _lock, rc_context(_RC):  # type: ignore[arg-type]
        yield


def truncate(label: str, limit: int = LABEL_CHARS) -> str:
    text = " ".join(str(label).split())  # newlines and tabs from a file would break the layout
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _unit(values: Sequence[float]) -> tuple[float, str, str]:
    """Divisor, suffix and a words for the subtitle, from the largest amount shown."""
    largest = max((abs(v) for v in values if v is not None and math.isfinite(v)), default=0.0)
    if largest >= 10_000_000:
        return 1_000_000.0, "M", "millions"
    if largest >= 10_000:
        return 1_000.0, "K", "thousands"
    return 1.0, "", ""


def compact(value: float, divisor: float, suffix: str, *, signed: bool = False) -> str:
    scaled = value / divisor
    decimals = 0 if divisor == 1 and float(value).is_integer() else (1 if abs(scaled) < 100 else 0)
    if divisor == 1 and not float(value).is_integer():
        decimals = 2 if abs(value) < 100 else 0
    text = f"{scaled:+,.{decimals}f}" if signed else f"{scaled:,.{decimals}f}"
    text = text.replace("-", "−")
    return text + suffix


def _axis_formatter(divisor: float, suffix: str) -> FuncFormatter:
    def fmt(value: float, _pos: int) -> str:
        scaled = value / divisor
        decimals = 0 if abs(scaled) >= 10 or float(scaled).is_integer() else 1
        return f"{scaled:,.{decimals}f}{suffix}".replace("-", "−")

    return FuncFormatter(fmt)


def _amount_axis(axis: object, divisor: float, suffix: str) -> None:
    axis.set_major_locator(MaxNLocator(nbins=5))  # type: ignore[attr-defined]
    axis.set_major_formatter(_axis_formatter(divisor, suffix))  # type: ignore[attr-defined]


def _subtitle(scope: Scope, words: str, extra: Sequence[str] = ()) -> str:
    parts = []
    if scope.filter_text:
        parts.append(truncate(scope.filter_text, 60))
    parts.append(f"amounts in {words}" if words else "amounts as in the file")
    parts.extend(extra)
    return truncate(" · ".join(parts), 115)


def _title(what: str, scope: Scope) -> str:
    period = scope.period_text
    return truncate(f"{what}, {period}" if period else what, 70)


def _figure() -> Figure:
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, facecolor="white")
    FigureCanvasAgg(fig)
    return fig


def _margins(fig: Figure, labels: Sequence[str], fontsize: float = 10.0) -> None:
    """Fixed margins, the left one wide enough for the longest label (labels are truncated, so it is bounded).

    Measuring every text for a constrained layout costs a second full draw; an estimate from the label length
    (DejaVu Sans averages about 0.55 em a character) is as good for one line of text and much cheaper.
    """
    longest = max((len(label) for label in labels), default=4)
    label_in = longest * 0.55 * fontsize / 72 + 0.2
    fig.subplots_adjust(left=min(0.45, max(0.08, label_in / WIDTH_IN)), right=0.97, top=0.85, bottom=0.17)


def _header(fig: Figure, ax: object, title: str, subtitle: str) -> None:
    fig.suptitle(title, x=0.01, y=0.975, ha="left", va="top", fontsize=13, fontweight="bold", color=TEXT)
    fig.text(0.01, 0.905, subtitle, ha="left", va="top", fontsize=9, color=MUTED)


def to_png(fig: Figure) -> bytes:
    """The figure as PNG: drawn once on its Agg canvas, encoded by Pillow as RGB (no alpha: the background is
    white), with no metadata."""
    from PIL import Image

    canvas = fig.canvas
    assert isinstance(canvas, FigureCanvasAgg)  # every figure here is made by _figure()
    canvas.draw()
    width, height = canvas.get_width_height()
    image = Image.frombuffer("RGBA", (width, height), canvas.buffer_rgba(), "raw", "RGBA", 0, 1).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="png", compress_level=PNG_COMPRESS_LEVEL)
    return buffer.getvalue()


# ---------------------------------------------------------------------------------------------- bridge

_BASIS_WORDS = {
    "profit": "profit",
    "net revenue": "net revenue",
    "revenue": "revenue",
    "costs": "costs",
    "total": "total",
}


def bridge_figure(spec: BridgeSpec) -> Figure:
    """A horizontal waterfall: the reference total at the top, one bar per driver, the actual total last."""
    ref = spec.scope.reference_word
    basis = _BASIS_WORDS[spec.basis]
    labels = [f"{ref.capitalize()} {basis}", *(truncate(s.label, 36) for s in spec.steps), f"Actual {basis}"]
    levels = [spec.start]
    for step in spec.steps:
        levels.append(levels[-1] + step.value)
    divisor, suffix, words = _unit([s.value for s in spec.steps] or levels)
    left, right, base = _bridge_axis(min(levels), max(levels))

    fig = _figure()
    ax = fig.add_subplot()
    y = list(range(len(labels)))
    starts = [min(base, spec.start)]
    widths = [abs(spec.start - base)]
    colours = [TOTAL]
    for level, step in zip(levels[:-1], spec.steps, strict=True):
        starts.append(min(level, level + step.value))
        widths.append(abs(step.value))
        colours.append(colour(step.favourable))
    starts.append(min(base, spec.end))
    widths.append(abs(spec.end - base))
    colours.append(TOTAL)
    bars = ax.barh(y, widths, left=starts, color=colours, height=0.62, gid="bridge")
    for bar, label in zip(bars, labels, strict=True):
        bar.set_label(label)
    # Connectors: the level after each bar, carried to the next one (one line with gaps: one artist to draw).
    xs: list[float] = []
    ys: list[float] = []
    for i, level in enumerate(levels):
        xs += [level, level, math.nan]
        ys += [i + 0.31, i + 0.69, math.nan]
    ax.plot(xs, ys, color=MUTED, linewidth=0.8, gid="connectors")
    # Value labels beside each bar: to its right when there is room, else to its left.
    pad = 0.01 * (right - left)
    values = [spec.start, *(s.value for s in spec.steps), spec.end]
    for i, (start, width, value) in enumerate(zip(starts, widths, values, strict=True)):
        is_total = i in (0, len(values) - 1)
        text = compact(value, divisor, suffix, signed=not is_total)
        fits_right = start + width + pad + 0.13 * (right - left) <= right
        ax.text(
            start + width + pad if fits_right else start - pad,
            i,
            text,
            va="center",
            ha="left" if fits_right else "right",
            fontsize=10,
            fontweight="bold" if is_total else "normal",
            color=TEXT,
        )
    ax.set_yticks(y, labels)
    _margins(fig, labels)
    ax.invert_yaxis()
    ax.set_xlim(left, right)
    _amount_axis(ax.xaxis, divisor, suffix)
    ax.tick_params(axis="y", length=0, labelsize=10)
    ax.grid(axis="x", color="#e5e5e5", linewidth=0.6)
    ax.set_axisbelow(True)
    used = {s.favourable for s in spec.steps}
    handles = [
        Patch(color=colour(f), label=name)
        for f, name in ((True, "Favourable"), (False, "Unfavourable"), (None, "Type unknown"))
        if f in used
    ]
    _legend(fig, handles)
    change = spec.end - spec.start
    verb = "effect on profit" if spec.basis == "profit" else "change"
    extra = [f"{verb} {compact(change, divisor, suffix, signed=True)}", *spec.notes]
    if base != 0:
        extra.append("axis does not start at 0")
    what = f"{basis.capitalize()}: {ref} to actual"
    _header(fig, ax, _title(what, spec.scope), _subtitle(spec.scope, words, extra))
    return fig


def _bridge_axis(lo: float, hi: float) -> tuple[float, float, float]:
    """The x range and the base totals grow from: 0 when it is near the levels, else an edge of the range.

    Totals dwarf the drivers (a 20M budget, 300K steps), so the axis starts near the levels rather than at 0.
    """
    span = (hi - lo) or max(abs(hi), 1.0)
    if lo >= 0:
        left = 0.0 if lo < 0.8 * span else lo - 0.6 * span
        return left, hi + 0.4 * span, left
    if hi <= 0:
        right = 0.0 if -hi < 0.8 * span else hi + 0.6 * span
        return lo - 0.4 * span, right, right
    return lo - 0.4 * span, hi + 0.4 * span, 0.0


def _legend(fig: Figure, handles: Sequence[object]) -> None:
    fig.legend(
        handles=handles, loc="lower right", bbox_to_anchor=(0.99, 0.0), ncols=len(handles), frameon=False, fontsize=9
    )


# ---------------------------------------------------------------------------------------------- bars


def bars_figure(spec: BarsSpec) -> Figure:
    """Reference (grey) and actual (coloured by favourability) per group, largest variance at the top."""
    ref = spec.scope.reference_word
    groups = spec.groups
    labels = [truncate(g.label) for g in groups]
    divisor, suffix, words = _unit([v for g in groups for v in (g.actual, g.reference)])
    fig = _figure()
    ax = fig.add_subplot()
    y = list(range(len(groups)))
    height = 0.38
    ax.barh(
        [i - height / 2 for i in y],
        [g.reference for g in groups],
        height=height,
        color=REFERENCE,
        label=ref.capitalize(),
        gid="reference",
    )
    ax.barh(
        [i + height / 2 for i in y],
        [g.actual for g in groups],
        height=height,
        color=[colour(g.favourable) for g in groups],
        label="Actual",
        gid="actual",
    )
    v_div, v_suffix, _ = _unit([g.variance for g in groups])
    top = max((max(g.actual, g.reference, 0.0) for g in groups), default=1.0) or 1.0
    bottom = min((min(g.actual, g.reference, 0.0) for g in groups), default=0.0)
    for i, g in enumerate(groups):
        pct = "" if g.variance_pct is None else f" ({g.variance_pct:+.1f}%)".replace("-", "−")
        ax.text(
            max(g.actual, g.reference, 0.0) + 0.01 * (top - bottom),
            i,
            compact(g.variance, v_div, v_suffix, signed=True) + pct,
            va="center",
            ha="left",
            fontsize=9.5,
            color=colour(g.favourable),
            fontweight="bold",
        )
    ax.set_yticks(y, labels)
    _margins(fig, labels)
    ax.invert_yaxis()
    ax.set_xlim(bottom * 1.05, top * 1.32)
    _amount_axis(ax.xaxis, divisor, suffix)
    ax.tick_params(axis="y", length=0, labelsize=10)
    ax.grid(axis="x", color="#e5e5e5", linewidth=0.6)
    ax.set_axisbelow(True)
    handles = [
        Patch(color=REFERENCE, label=ref.capitalize()),
        Patch(color=FAVOURABLE, label="Actual, favourable"),
        Patch(color=UNFAVOURABLE, label="Actual, unfavourable"),
    ]
    _legend(fig, handles)
    what = f"{ref.capitalize()} vs actual by {truncate(spec.by, 30)}"
    extra = ["labels: variance (variance %)", *spec.notes]
    _header(fig, ax, _title(what, spec.scope), _subtitle(spec.scope, words, extra))
    return fig


# ---------------------------------------------------------------------------------------------- monthly


def monthly_figure(spec: MonthlySpec) -> Figure:
    return _heatmap(spec) if spec.by else _period_bars(spec)


def _period_bars(spec: MonthlySpec) -> Figure:
    """Variance per period as bars coloured by favourability, with the cumulative (YTD-style) line."""
    ref = spec.scope.reference_word
    shown = [v if ok else 0.0 for v, ok in zip(spec.values, spec.has_actual, strict=True)]
    cumulative: list[float] = []
    running = 0.0
    last_booked = max((i for i, ok in enumerate(spec.has_actual) if ok), default=-1)
    for i, (v, ok) in enumerate(zip(spec.values, spec.has_actual, strict=True)):
        running += v if ok else 0.0
        cumulative.append(running if i <= last_booked else math.nan)  # no line through months not booked yet
    divisor, suffix, words = _unit([*shown, *(c for c in cumulative if not math.isnan(c))])
    fig = _figure()
    ax = fig.add_subplot()
    x = list(range(len(spec.periods)))
    colours = [colour(f) if ok else REFERENCE for f, ok in zip(spec.favourable, spec.has_actual, strict=True)]
    ax.bar(x, shown, color=colours, width=0.65, gid="periods")
    (line,) = ax.plot(
        x, cumulative, color=TOTAL, marker="o", markersize=3.5, linewidth=1.6, label="Cumulative", gid="cumulative"
    )
    ax.axhline(0, color=MUTED, linewidth=0.8)
    _margins(fig, ["−100.0K"])
    _period_ticks(ax, spec.periods)
    _amount_axis(ax.yaxis, divisor, suffix)
    ax.grid(axis="y", color="#e5e5e5", linewidth=0.6)
    ax.set_axisbelow(True)
    if len(x) <= 12:
        levels = [*shown, *(c for c in cumulative if not math.isnan(c)), 0.0]
        span = (max(levels) - min(levels)) or 1.0
        for i, (v, ok) in enumerate(zip(shown, spec.has_actual, strict=True)):
            if not ok:
                ax.text(i, 0.02 * span, "no actuals", ha="center", va="bottom", fontsize=7.5, color=MUTED, rotation=90)
                continue
            ax.text(
                i,
                v + (0.02 if v >= 0 else -0.02) * span,
                compact(v, divisor, suffix, signed=True),
                ha="center",
                va="bottom" if v >= 0 else "top",
                fontsize=8,
                color=TEXT,
            )
        ax.margins(y=0.12)
    handles = [
        Patch(color=FAVOURABLE, label="Favourable"),
        Patch(color=UNFAVOURABLE, label="Unfavourable"),
        line,
    ]
    _legend(fig, handles)
    measure = "Effect on profit" if spec.measure == "effect on profit" else f"Variance to {ref}"
    _header(fig, ax, _title(f"{measure} by period", spec.scope), _subtitle(spec.scope, words, spec.notes))
    return fig


def _period_ticks(ax: Any, periods: Sequence[str]) -> None:
    """Period labels that never overlap: every n-th when there are many, slanted when more than six."""
    step = max(1, math.ceil(len(periods) / 12))
    positions = list(range(0, len(periods), step))
    labels = [truncate(periods[i], 10) for i in positions]
    if len(positions) > 6:
        ax.set_xticks(positions, labels, fontsize=8.5, rotation=40, ha="right", rotation_mode="anchor")
        ax.figure.subplots_adjust(bottom=0.24)  # room for slanted labels above the legend
    else:
        ax.set_xticks(positions, labels, fontsize=9)


def _heatmap(spec: MonthlySpec) -> Figure:
    """Groups × periods, each cell coloured by favourability and its size, annotated when there is room."""
    ref = spec.scope.reference_word
    values = [v for row in spec.grid for v in row if v is not None]
    divisor, suffix, words = _unit(values)
    # Colour by the effect on profit (positive is favourable; 0 where the type is unknown); label by the measure.
    signed = spec.effect
    limit = max((abs(v) for row in signed for v in row if v is not None), default=1.0) or 1.0
    cmap = LinearSegmentedColormap.from_list("variance", [UNFAVOURABLE, "#f7f7f7", FAVOURABLE]).with_extremes(
        bad="#ffffff"
    )
    matrix = [[math.nan if v is None else v for v in row] for row in signed]
    fig = _figure()
    ax = fig.add_subplot()
    image = ax.imshow(matrix, cmap=cmap, vmin=-limit, vmax=limit, aspect="auto", interpolation="nearest")
    image.set_gid("heatmap")
    row_labels = [truncate(r, 24) for r in spec.rows]
    ax.set_yticks(range(len(spec.rows)), row_labels, fontsize=9.5)
    _margins(fig, row_labels, 9.5)
    _period_ticks(ax, spec.periods)
    ax.tick_params(length=0)
    for side in ("left", "bottom"):
        ax.spines[side].set_visible(False)
    if len(spec.periods) <= 12 and len(spec.rows) <= 10:
        for r, row in enumerate(spec.grid):
            for c, v in enumerate(row):
                if v is None:
                    continue
                strong = abs(signed[r][c] or 0.0) > 0.6 * limit
                ax.text(
                    c,
                    r,
                    compact(v, divisor, suffix, signed=True),
                    ha="center",
                    va="center",
                    fontsize=7.5,
                    color="white" if strong else TEXT,
                )
    measure = "Effect on profit" if spec.measure == "effect on profit" else f"Variance to {ref}"
    _legend(fig, [Patch(color=FAVOURABLE, label="Favourable"), Patch(color=UNFAVOURABLE, label="Unfavourable")])
    what = f"{measure} by period and {truncate(spec.by or '', 24)}"
    _header(fig, ax, _title(what, spec.scope), _subtitle(spec.scope, words, spec.notes))
    return fig
