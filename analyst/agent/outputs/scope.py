"""Which periods a tool's figures compare: to date (the periods with actuals, as the headline), said in the output.

A file whose later periods carry a budget only is compared over the periods with actuals, unless the caller's own
filter names the periods; every output that is so limited states its ``scope`` and how to ask for the full year.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from analyst.agent.outputs.budget import MAX_ROWS
from analyst.context import AnalysisContext
from analyst.dataset import PERIOD

_FULL_YEAR_HINT = (
    "Later periods have a budget only and are left out, as in the headline. For the full year, budget-only "
    "periods included, pass the filter {\"column\": \"period\", \"values\": %s}."
)


def to_date_scope(
    ctx: AnalysisContext, filters: Mapping[str, list[str]] | None
) -> tuple[Mapping[str, Sequence[str] | str] | None, dict[str, Any] | None]:
    """``filters`` limited to the periods with actuals, as the headline compares them, and the scope to state in
    the output (``None`` for a file without periods). The caller's own period filter is kept as it is."""
    from analyst.engine.to_date import periods_with_actuals

    ds = ctx.dataset
    if not ds.has_period:
        return filters, None
    scoped = periods_with_actuals(ds, ctx.options, filters)
    every = [str(c) for c in ds.frame[PERIOD].cat.categories]
    if scoped is filters or not scoped:
        chosen = names_periods(ctx, filters or {})
        return filters, {"to_date": False, "periods": "as filtered" if chosen else _listed(every)}
    compared = [str(p) for p in scoped[PERIOD]]
    budget_only = [p for p in every if p not in set(compared)]
    scope = {
        "to_date": True,
        "compared": _listed(compared),
        "budget_only": _listed(budget_only),
        "full_year": _FULL_YEAR_HINT % json.dumps(_whole_years(every), ensure_ascii=False),
    }
    return scoped, scope


def with_scope(data: dict[str, Any], scope: dict[str, Any] | None) -> dict[str, Any]:
    """``data`` led by its ``scope`` (unchanged for a file without periods)."""
    return data if scope is None else {"scope": scope, **data}


def names_periods(ctx: AnalysisContext, keys: Iterable[str]) -> bool:
    """Whether a filter names the periods itself (the period column under any of its names, or quarters)."""
    from analyst.engine import prepared

    prep = prepared.prepare(ctx.dataset, ctx.options)
    return any(prepared.resolve_key(prep, key) in (PERIOD, prepared.QUARTER_KEY) for key in keys)


def _listed(periods: Sequence[str]) -> list[str]:
    """Period labels, the middle of a long list said in one entry."""
    if len(periods) <= MAX_ROWS:
        return list(periods)
    return [*periods[:3], f"… {len(periods) - 6} more …", *periods[-3:]]


def _whole_years(periods: Sequence[str]) -> list[str]:
    """The years that name every period ("2025" for "2025-01" .. "2025-12"), else the periods themselves."""
    years = list(dict.fromkeys(p[:4] for p in periods))
    if all(len(p) == 7 and p[:4].isdigit() and p[4] == "-" for p in periods):
        return years
    return list(periods) if len(periods) <= MAX_ROWS else [*periods[:MAX_ROWS], "…"]
