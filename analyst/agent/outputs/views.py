"""What each read-only tool returns: the engine's answer to one question, shaped as bounded JSON for the model.

Plain functions over an :class:`~analyst.context.AnalysisContext`, so tests and the report can call them without
the SDK's wrappers (:mod:`analyst.agent.tools`). Each returns the JSON text the model receives; an engine error
propagates for the wrapper to turn into a message.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from analyst.agent.outputs.budget import HEADLINE_RULE, MAX_ROWS, bounded, short
from analyst.agent.outputs.scope import names_periods, to_date_scope, with_scope
from analyst.context import AnalysisContext
from analyst.dataset import PERIOD, Dataset


def describe(ctx: AnalysisContext) -> str:
    return bounded(lambda rows: _describe(ctx.dataset, ctx, rows))


def _describe(ds: Dataset, ctx: AnalysisContext, rows: int) -> dict[str, Any]:
    frame = ds.frame
    samples = max(1, min(5, rows // 4))
    dims: list[dict[str, Any]] = []
    for column in list(ds.dimensions)[:rows]:
        if column not in frame.columns:
            continue
        counts = frame[column].value_counts(dropna=True)
        dims.append(
            {
                "column": short(column),
                "distinct": len(counts),
                "top_values": [short(v) for v in counts.index[:samples]],
            }
        )
    periods: list[str] = []
    if ds.has_period:
        categories = [str(c) for c in frame[PERIOD].cat.categories]
        periods = (
            categories if len(categories) <= rows else [*categories[:rows], f"{len(categories) - rows} more"]
        )
    excluded = ds.excluded_rows
    overrides = {short(k): v.value for k, v in list(ctx.options.account_types.items())[:rows]}
    return {
        "source": ds.source.to_dict(),
        "rows": len(frame),
        "roles": ds.roles.to_dict(),
        "sign_convention": "variance = actual - reference; favourable depends on account type",
        "dimensions": dims,
        "more_dimensions": max(0, len(ds.dimensions) - rows),
        "periods": periods,
        "has_quantities": ds.has_quantities,
        "excluded_rows": len(excluded),
        "excluded_examples": [
            {"row": r.source_row, "label": short(r.label), "reason": short(r.reason)} for r in excluded[:3]
        ],
        "warnings": [short(w) for w in ds.warnings[:5]],
        "units": {"unit": ds.unit, "evidence": short(ds.unit_evidence or "")} if ds.unit != 1 else None,
        "headline_rule": HEADLINE_RULE,
        "materiality": _materiality(ctx),
        "account_type_overrides": overrides,
    }


def _materiality(ctx: AnalysisContext) -> dict[str, object]:
    from analyst.engine import summarize

    s = summarize(ctx.dataset, ctx.options)
    return s.materiality.to_dict() | {"rule": s.materiality_rule or "given"}


def summary(ctx: AnalysisContext) -> str:
    from analyst.engine import headline, summarize
    from analyst.engine.to_date import to_date

    # Later periods with a budget only: compare the periods with actuals, as the report does.
    scoped = to_date(ctx.dataset, ctx.options)
    compared = ctx.dataset if scoped is None else scoped.dataset
    result = summarize(compared, ctx.options)
    lead = headline(compared, ctx.options).to_dict()
    if scoped is None:
        lead["scope"] = {"to_date": False, "compared": list(result.periods), "budget_only": []}
    else:
        lead["scope"] = scoped.to_dict() | {"sentence": scoped.sentence()}
    return bounded(lambda rows: {"headline": lead, "headline_rule": HEADLINE_RULE} | result.to_dict(max_rows=rows))


def breakdown_of(
    ctx: AnalysisContext, by: Sequence[str], filters: Mapping[str, list[str]] | None, limit: int | None
) -> str:
    from analyst.engine import breakdown

    cap = MAX_ROWS if limit is None else max(1, min(int(limit), MAX_ROWS))
    scoped, scope = to_date_scope(ctx, filters)
    result = breakdown(ctx.dataset, list(by), filters=scoped, opts=ctx.options, limit=cap)
    return bounded(lambda rows: with_scope(result.to_dict(max_rows=min(rows, cap)), scope))


def drivers_of(
    ctx: AnalysisContext, by: Sequence[str] | None, n: int, filters: Mapping[str, list[str]] | None
) -> str:
    from analyst.engine import top_drivers

    n = max(1, min(int(n), 10))
    # Every group is ranked anyway; asking for all of them lets the lists be cut here, where the groups of
    # unknown account type beyond the cut can be counted ("N more") rather than silently dropped.
    every_group = max(1, len(ctx.dataset.frame))
    by_list = list(by) if by else None
    scoped, scope = to_date_scope(ctx, filters)  # budget-only periods left out, as in the headline
    result = top_drivers(ctx.dataset, by=by_list, n=every_group, filters=scoped, opts=ctx.options)

    def render(rows: int) -> dict[str, Any]:
        data = result.to_dict(max_rows=min(rows, n))
        hidden = len(result.unclassified) - len(data["unclassified"])
        if hidden > 0:
            data["unclassified_more"] = hidden  # groups of unknown account type not listed
        return with_scope(data, scope)

    return bounded(render)


def detail_of(ctx: AnalysisContext, filters: Mapping[str, str]) -> str:
    from analyst.engine import line_detail
    from analyst.engine.to_date import to_date

    # The line's totals compare the periods with actuals, as the headline does, unless a period is named.
    scoped = None if names_periods(ctx, filters) else to_date(ctx.dataset, ctx.options)
    ds = ctx.dataset if scoped is None else scoped.dataset
    result = line_detail(ds, dict(filters), opts=ctx.options)
    scope = to_date_scope(ctx, None)[1] if scoped is not None else None
    return bounded(lambda rows: with_scope(result.to_dict(max_rows=rows), scope))


def trend_of(ctx: AnalysisContext, filters: Mapping[str, list[str]] | None) -> str:
    from analyst.engine import headlines_by, period_view

    result = period_view(ctx.dataset, filters=filters, opts=ctx.options)
    per_period = headlines_by(ctx.dataset, PERIOD, ctx.options, filters=filters)
    mixed = bool(per_period) and per_period[0][1].mixed

    def render(rows: int) -> dict[str, Any]:
        data = result.to_dict(max_rows=rows)
        if ctx.dataset.has_period:
            # Unlike the other tools, the trend keeps the budget-only periods: the full-year projection needs them.
            data = {"scope": {"to_date": False, "periods": "every period; those with a budget only have "
                              "has_actual false and no variance"}, **data}
        if mixed:
            # Revenue and costs per period, and the effect on profit: the per-period headline of a mixed file.
            data["headline_rule"] = HEADLINE_RULE
            data["effect_on_profit_by_period"] = [
                {"period": str(label), "effect_on_profit": h.value, "favourable": h.favourable}
                | {f"{p.account_type.value}_variance": p.variance for p in h.parts}
                for label, h in per_period[-rows:]
            ]
        return data

    return bounded(render)


def pvm_of(ctx: AnalysisContext, by: str | None, filters: Mapping[str, list[str]] | None) -> str:
    from analyst.engine import price_volume_mix

    scoped, scope = to_date_scope(ctx, filters)
    result = price_volume_mix(ctx.dataset, by=by or None, filters=scoped, opts=ctx.options)
    return bounded(lambda rows: with_scope(result.to_dict(max_rows=rows), scope))


