"""What each chart shows, taken from the engine's results: plain numbers and labels, no matplotlib.

Every amount here comes from :mod:`analyst.engine` (``breakdown``, ``top_drivers``, ``period_view``); the only
arithmetic is the bridge's "Other" step (the engine's net change minus the steps shown) and its running levels,
so the bars always add up to the totals the report states.

What the bridge is *of* follows the report's headline rule: a file that mixes revenue and costs is bridged by its
effect on profit (reference profit → drivers by effect on profit → actual profit); a file of one account type
(or of unknown types) is bridged by its plain total.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from analyst.dataset import PERIOD, Dataset
from analyst.engine import AnalysisError, AnalysisOptions, breakdown, period_view, top_drivers
from analyst.engine import prepared as core
from analyst.engine.to_date import periods_with_actuals

Favourable = bool | None
Basis = Literal["profit", "net revenue", "revenue", "costs", "total"]
Filters = Mapping[str, Sequence[str] | str]

BRIDGE_STEPS = 6
BAR_GROUPS = 8
HEATMAP_GROUPS = 8
_COST_TYPES = frozenset({"expense", "contra_revenue"})
_TYPE_WORDS = {"revenue": "revenue", "contra_revenue": "contra-revenue", "expense": "costs", "unknown": "other"}


@dataclass(frozen=True, slots=True)
class Step:
    """One bar of a chart: a label as found in the file (plain text), an amount, and its favourability."""

    label: str
    value: float
    favourable: Favourable
    lines: int = 1  # how many lines it stands for ("Other" stands for many)


@dataclass(frozen=True, slots=True)
class Scope:
    """What every chart's title says: the reference word, the periods covered, the filters, the precision."""

    reference_word: str  # "budget", "forecast", "prior" ...
    periods: tuple[str, ...]
    filters: dict[str, list[str]]
    scale: int
    filename: str

    @property
    def period_text(self) -> str:
        if not self.periods:
            return ""
        if len(self.periods) == 1:
            return self.periods[0]
        return f"{self.periods[0]} – {self.periods[-1]}"

    @property
    def filter_text(self) -> str:
        parts = [", ".join(values) for key, values in self.filters.items() if key != PERIOD]
        return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class BridgeSpec:
    """Reference total → steps (largest first, then "Other") → actual total; ``start + Σ steps == end``."""

    scope: Scope
    basis: Basis
    start: float
    steps: tuple[Step, ...]
    end: float
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class BarGroup:
    label: str
    actual: float
    reference: float
    variance: float
    variance_pct: float | None
    favourable: Favourable
    lines: int = 1


@dataclass(frozen=True, slots=True)
class BarsSpec:
    """Reference and actual per group of ``by`` (largest |variance| first, the rest in one "Other" group)."""

    scope: Scope
    by: str
    groups: tuple[BarGroup, ...]
    split_by_type: bool  # groups mixing revenue and costs were split into their revenue and cost parts
    notes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class MonthlySpec:
    """Variance per period; with ``by``, a grid of groups × periods (a heatmap).

    ``values`` is the effect on profit when the file mixes revenue and costs, else the variance.
    ``has_actual[i]`` is False for a period with reference only (no actuals booked yet).
    """

    scope: Scope
    measure: Literal["effect on profit", "variance"]
    periods: tuple[str, ...]
    values: tuple[float, ...]
    favourable: tuple[Favourable, ...]
    has_actual: tuple[bool, ...]
    by: str | None = None
    rows: tuple[str, ...] = ()
    grid: tuple[tuple[float | None, ...], ...] = ()  # rows × periods; None where the group has no line
    effect: tuple[tuple[float | None, ...], ...] = ()  # the same cells' effect on profit: its sign is favourability
    notes: tuple[str, ...] = ()


# ---------------------------------------------------------------------------------------------- helpers


def _opts(opts: AnalysisOptions | None) -> AnalysisOptions:
    return opts if opts is not None else AnalysisOptions()


def _label(row: Mapping[str, Any], keys: Sequence[str]) -> str:
    parts = [str(row[k]) for k in keys if row.get(k) is not None]
    return " / ".join(parts) if parts else "Total"


def _type_rows(ds: Dataset, opts: AnalysisOptions, filters: Filters | None) -> list[dict[str, Any]]:
    return breakdown(ds, ["account_type"], filters=filters, opts=opts).to_dict()["rows"]


def _known_types(type_rows: Sequence[Mapping[str, Any]]) -> set[str]:
    return {
        str(r["account_type"])
        for r in type_rows
        if r["account_type"] != "unknown" and (r["actual"] != 0 or r["reference"] != 0)
    }


def _has_unknown(type_rows: Sequence[Mapping[str, Any]]) -> bool:
    return any(r["account_type"] == "unknown" and (r["actual"] != 0 or r["reference"] != 0) for r in type_rows)


def _basis(types: set[str]) -> Basis:
    if "revenue" in types and "expense" in types:
        return "profit"
    if types == {"revenue", "contra_revenue"}:
        return "net revenue"
    if types == {"revenue"}:
        return "revenue"
    if types and types <= _COST_TYPES:
        return "costs"
    return "total"


def _mixed(types: set[str]) -> bool:
    return "revenue" in types and bool(types & _COST_TYPES)


def _periods(ds: Dataset, opts: AnalysisOptions, filters: Filters | None) -> tuple[str, ...]:
    if not ds.has_period:
        return ()
    rows = breakdown(ds, [PERIOD], filters=filters, opts=opts).to_dict()["rows"]
    return tuple(str(r[PERIOD]) for r in rows if r[PERIOD] is not None)


def _scope(ds: Dataset, opts: AnalysisOptions, filters: Filters | None) -> Scope:
    prep = core.prepare(ds, opts)
    return Scope(
        reference_word=ds.roles.reference_kind,
        periods=_periods(ds, opts, filters),
        filters=core.normalise_filters(filters),
        scale=prep.scale,
        filename=ds.source.filename,
    )


def _keys(ds: Dataset, opts: AnalysisOptions, by: Sequence[str] | None) -> list[str]:
    prep = core.prepare(ds, opts)
    if by:
        return core.resolve_keys(prep, list(by))
    dims = [k for k in prep.keys if k not in core.DERIVED_KEYS]
    return dims or ([PERIOD] if PERIOD in prep.keys else [])


def _favourable_of(amount: float) -> Favourable:
    return None if amount == 0 else amount > 0


def _round(value: float, scale: int) -> float:
    return round(value, scale) + 0.0  # + 0.0 turns -0.0 into 0.0


# ---------------------------------------------------------------------------------------------- bridge


def bridge_spec(
    ds: Dataset,
    opts: AnalysisOptions | None = None,
    *,
    by: Sequence[str] | None = None,
    filters: Filters | None = None,
    steps: int = BRIDGE_STEPS,
) -> BridgeSpec:
    """The variance bridge: the ``steps`` largest drivers (lines, or groups of ``by``) plus "Other"."""
    opts = _opts(opts)
    scope = _scope(ds, opts, filters)
    keys = _keys(ds, opts, by)
    type_rows = _type_rows(ds, opts, filters)
    types = _known_types(type_rows)
    basis = "total" if _has_unknown(type_rows) and len(types) < 2 else _basis(types)
    if len(types) > 1:
        return _profit_bridge(ds, opts, scope, keys, filters, type_rows, basis, steps)
    table = breakdown(ds, keys, filters=filters, opts=opts)
    rows = table.to_dict(max_rows=steps)["rows"]
    total = table.total
    shown = [
        Step(
            label=f"Other ({r['more']:,} lines)" if r.get("more") else _label(r, keys),
            value=float(r["variance"]),
            favourable=r["favourable"],
            lines=int(r.get("more") or 1),
        )
        for r in rows
        if r["variance"] != 0 or r.get("more")
    ]
    shown = [s for s in shown if s.value != 0]
    return BridgeSpec(
        scope=scope, basis=basis, start=float(total["reference"]), steps=tuple(shown), end=float(total["actual"])
    )


def _profit_bridge(
    ds: Dataset,
    opts: AnalysisOptions,
    scope: Scope,
    keys: list[str],
    filters: Filters | None,
    type_rows: Sequence[Mapping[str, Any]],
    basis: Basis,
    steps: int,
) -> BridgeSpec:
    # Reference profit from the totals per type: revenue counts up, costs and contra-revenue down, each by its
    # size (a file may write costs, or a trial balance's revenue, as negative numbers). The change to actual
    # profit is the engine's effect on profit, so the bridge ends where the report's headline says.
    start = 0.0
    for row in type_rows:
        kind = row["account_type"]
        if kind == "revenue":
            start += abs(row["reference"])
        elif kind in _COST_TYPES:
            start -= abs(row["reference"])
    every = max(1, len(ds.frame))
    drivers = top_drivers(ds, by=keys, n=every, filters=filters, opts=opts)
    net = drivers.favourable_total + drivers.unfavourable_total
    data = drivers.to_dict(max_rows=steps)
    candidates = [*data["favourable"], *data["unfavourable"]]
    candidates.sort(key=lambda r: (-abs(r["impact"]), _label(r, keys)))
    chosen = candidates[:steps]
    moving = len(drivers.favourable) + len(drivers.unfavourable)
    shown = [Step(label=_label(r, keys), value=float(r["impact"]), favourable=r["favourable"]) for r in chosen]
    rest = _round(net - sum(s.value for s in shown), scope.scale)
    if moving > len(shown):
        others = moving - len(shown)
        shown.append(
            Step(
                label=f"Other ({others:,} {'line' if others == 1 else 'lines'})",
                value=rest,
                favourable=_favourable_of(rest),
                lines=others,
            )
        )
    notes = []
    if len(drivers.unclassified):
        count = len(drivers.unclassified)
        notes.append(
            f"{count:,} {'line' if count == 1 else 'lines'} of unknown account type "
            f"{'is' if count == 1 else 'are'} not in the profit figures"
        )
    start = _round(start, scope.scale)
    return BridgeSpec(
        scope=scope,
        basis=basis,
        start=start,
        steps=tuple(shown),
        end=_round(start + net, scope.scale),
        notes=tuple(notes),
    )


# ---------------------------------------------------------------------------------------------- bars


def default_dimension(ds: Dataset, opts: AnalysisOptions | None = None) -> str:
    """The dimension bars and heatmaps use when none is asked for: the first that is not the account."""
    prep = core.prepare(ds, _opts(opts))
    dims = [k for k in prep.keys if k not in core.DERIVED_KEYS]
    non_account = [d for d in dims if d != ds.roles.account]
    if non_account:
        return non_account[0]
    if dims:
        return dims[0]
    if PERIOD in prep.keys:
        return PERIOD
    raise AnalysisError("This file has no column to chart by (no dimension and no period).")


def bars_spec(
    ds: Dataset,
    opts: AnalysisOptions | None = None,
    *,
    by: str | None = None,
    filters: Filters | None = None,
    top: int = BAR_GROUPS,
) -> BarsSpec:
    """Budget vs actual per group of ``by``: the ``top`` largest |variance| groups, then "Other".

    In a file mixing revenue and costs, a group holding both (a department with sales and salaries) is split
    into its revenue and cost parts: adding revenue to costs would give a "total" that means nothing.
    """
    opts = _opts(opts)
    scope = _scope(ds, opts, filters)
    prep = core.prepare(ds, opts)
    column = core.resolve_key(prep, by) if by else default_dimension(ds, opts)
    table = breakdown(ds, [column], filters=filters, opts=opts)
    rows = table.to_dict()["rows"]
    types = _known_types(_type_rows(ds, opts, filters))
    split = _mixed(types) and column != "account_type" and any(r["account_type"] == "mixed" for r in rows)
    keys = [column]
    if split:
        keys = [column, "account_type"]
        table = breakdown(ds, keys, filters=filters, opts=opts)
    data = table.to_dict(max_rows=top)["rows"]
    groups = []
    for r in data:
        if r.get("more"):
            label = f"Other ({r['more']:,} more)"
        elif split:
            label = f"{r[column]} · {_TYPE_WORDS.get(str(r['account_type']), r['account_type'])}"
        else:
            label = _label(r, [column])
        groups.append(
            BarGroup(
                label=label,
                actual=float(r["actual"]),
                reference=float(r["reference"]),
                variance=float(r["variance"]),
                variance_pct=r["variance_pct"],
                favourable=r["favourable"],
                lines=int(r.get("more") or 1),
            )
        )
    notes = ("groups split into revenue and costs",) if split else ()
    return BarsSpec(scope=scope, by=column, groups=tuple(groups), split_by_type=split, notes=notes)


# ---------------------------------------------------------------------------------------------- monthly


def monthly_spec(
    ds: Dataset,
    opts: AnalysisOptions | None = None,
    *,
    by: str | None = None,
    filters: Filters | None = None,
    top: int = HEATMAP_GROUPS,
) -> MonthlySpec:
    """Variance (or effect on profit) per period; with ``by``, also a grid of the ``top`` groups × periods."""
    opts = _opts(opts)
    if not ds.has_period:
        raise AnalysisError("This file has no period column (month, quarter), so there is no monthly chart.")
    scope = _scope(ds, opts, filters)
    types = _known_types(_type_rows(ds, opts, filters))
    profit = len(types) > 1
    measure: Literal["effect on profit", "variance"] = "effect on profit" if profit else "variance"
    view = period_view(ds, filters=filters, opts=opts).to_dict()
    rows = view["periods"]
    periods = tuple(str(r[PERIOD]) for r in rows)
    values = tuple(float(r["impact"] if profit else r["variance"]) for r in rows)
    favourable = tuple(r["favourable"] for r in rows)
    has_actual = tuple(bool(r.get("has_actual", True)) for r in rows)
    notes: list[str] = []
    if not all(has_actual):
        notes.append("periods without actuals yet are left empty")
    if not by:
        return MonthlySpec(
            scope=scope,
            measure=measure,
            periods=periods,
            values=values,
            favourable=favourable,
            has_actual=has_actual,
            notes=tuple(notes),
        )
    prep = core.prepare(ds, opts)
    column = core.resolve_key(prep, by)
    if column == PERIOD:
        raise AnalysisError("Choose a column other than the period for the monthly grid.")
    # Rank over the periods with actuals: a budget-only month would rank groups by their budget, not variance.
    ranked = breakdown(ds, [column], filters=periods_with_actuals(ds, opts, filters), opts=opts)
    ranked_rows = _records_with_impact(ranked)
    measure_key = "impact" if profit else "variance"
    ranked_rows.sort(key=lambda r: (-abs(r[measure_key]), str(r[column])))
    names = [str(r[column]) for r in ranked_rows[:top]]
    cells = _records_with_impact(breakdown(ds, [column, PERIOD], filters=filters, opts=opts))
    lookup = {(str(r[column]), str(r[PERIOD])): (float(r[measure_key]), float(r["impact"])) for r in cells}

    def cells_of(name: str, which: int) -> tuple[float | None, ...]:
        out: list[float | None] = []
        for p, ok in zip(periods, has_actual, strict=True):
            found = lookup.get((name, p))
            out.append(found[which] if ok and found is not None else None)
        return tuple(out)

    grid = tuple(cells_of(name, 0) for name in names)
    effect = tuple(cells_of(name, 1) for name in names)
    if len(ranked_rows) > top:
        notes.append(f"top {top} of {len(ranked_rows):,} {column} values")
    return MonthlySpec(
        scope=scope,
        measure=measure,
        periods=periods,
        values=values,
        favourable=favourable,
        has_actual=has_actual,
        by=column,
        rows=tuple(names),
        grid=grid,
        effect=effect,
        notes=tuple(notes),
    )


def _records_with_impact(result: Any) -> list[dict[str, Any]]:
    """A breakdown's groups with their effect on profit (the engine's records, impact included)."""
    return core.records(result.table, result.by, result.prep, result.materiality, with_impact=True)
