"""The agent's function tools: read-only views over the variance engine, plus two conversation overrides.

Each tool reads the conversation's :class:`~analyst.context.AnalysisContext` (the run context), runs the
pandas work in a worker thread (``asyncio.to_thread``) so the event loop never freezes, and returns compact
JSON whose size does not grow with the file: tables are capped at ``MAX_ROWS`` rows plus one "N more" row that
keeps the totals reconciling, and every output is held under ``MAX_OUTPUT_CHARS`` (about 2,500 tokens).

A bad request (unknown column, a filter that matches nothing) or any other failure becomes
``{"error": "..."}``: a short message the model can act on. Failures are logged by tool and exception type,
never with file contents.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal

from agents import FunctionTool, RunContextWrapper, function_tool
from agents.tool_context import ToolContext
from pydantic import BaseModel, Field

from analyst.context import AnalysisContext
from analyst.dataset import PERIOD, Dataset, IngestError, RoleOverrides
from analyst.engine.options import AccountType

logger = logging.getLogger("analyst.agent.tools")

# Each tool's name, written once: the SDK's tool name, the name in logs and the key of its progress label.
DESCRIBE_DATASET = "describe_dataset"
VARIANCE_SUMMARY = "variance_summary"
BREAKDOWN = "breakdown"
TOP_DRIVERS = "top_drivers"
LINE_DETAIL = "line_detail"
PERIOD_TREND = "period_trend"
PRICE_VOLUME_MIX = "price_volume_mix"
SET_COLUMN_ROLES = "set_column_roles"
SET_ACCOUNT_TYPE = "set_account_type"

# What the model is told about the headline, in every output that carries totals.
HEADLINE_RULE = (
    "Lead with 'headline': for a file mixing revenue and costs it is the effect on profit (revenue variance minus "
    "cost variance), then revenue and costs separately; 'totals' is the straight sum of every line and is not the "
    "variance of such a file."
)

MAX_ROWS = 20
MAX_OUTPUT_CHARS = 9_000  # ≈ 2,250 tokens at 4 characters a token
_SHRINK_STEPS = (MAX_ROWS, 10, 5, 2)
_TEXT_CAP = 60  # characters of any one label shown to the model
_STRING_CAP = 200  # characters of any one string in a tool output (a 57 KB header cell stays 200 characters)
# The tools' own fixed guidance is not file text: it is never cut.
_OWN_TEXT = frozenset({HEADLINE_RULE})


class ColumnFilter(BaseModel):
    """Keep rows whose ``column`` is one of ``values``."""

    column: str = Field(description="A dimension column, 'period', 'quarter' or 'account_type'.")
    values: list[str] = Field(
        description="Values to keep, as labels in the data; for 'period' also a year, quarter or half "
        "('2025', 'Q3', '2025-Q3', 'H1')."
    )


class LineFilter(BaseModel):
    column: str
    value: str


class AccountTypeAssignment(BaseModel):
    label: str = Field(description="An account (or metric) label exactly as it appears in the data.")
    type: Literal["revenue", "contra_revenue", "expense"]


# ---------------------------------------------------------------------------------------------- helpers


def _filters(filters: Sequence[ColumnFilter] | None) -> dict[str, list[str]] | None:
    if not filters:
        return None
    merged: dict[str, list[str]] = {}
    for f in filters:
        merged.setdefault(f.column, []).extend(f.values)
    return merged


def _dump(data: Mapping[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)


def _capped(value: Any) -> Any:
    """``value`` with every string (keys included) cut to ``_STRING_CAP`` characters: file text stays bounded data."""
    if isinstance(value, str):
        return value if len(value) <= _STRING_CAP or value in _OWN_TEXT else value[: _STRING_CAP - 1] + "…"
    if isinstance(value, Mapping):
        return {_capped(k) if isinstance(k, str) else k: _capped(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_capped(v) for v in value]
    return value


def _bounded(render: Callable[[int], Mapping[str, Any]]) -> str:
    """Render with fewer rows until the JSON fits the output budget (every string capped first)."""
    text = ""
    for rows in _SHRINK_STEPS:
        text = _dump(_capped(render(rows)))
        if len(text) <= MAX_OUTPUT_CHARS:
            return text
    return _dump({"error": "The result is too large to show; add filters or break down by fewer columns."})


def error_output(message: str) -> str:
    return _dump({"error": message})


def is_error_output(output: object) -> bool:
    """Whether a tool's output reports an error (ours: ``{"error": ...}``; the SDK's: a failure sentence)."""
    if isinstance(output, str):
        text = output.lstrip()
        if text.startswith('{"error"'):
            return True
        return text.startswith("An error occurred while running the tool")
    return isinstance(output, Mapping) and "error" in output


async def _run_tool(name: str, compute: Callable[[], str]) -> str:
    """Run ``compute`` in a worker thread; turn any failure into a short message for the model."""
    from analyst.engine import AnalysisError

    try:
        return await asyncio.to_thread(compute)
    except (AnalysisError, IngestError) as error:  # written for the reader, naming the valid choices
        logger.info("tool %s rejected a request: %s", name, type(error).__name__)
        return error_output(str(error)[:600])
    except Exception as error:
        logger.warning("tool %s failed: %s", name, type(error).__name__)
        logger.debug("tool %s traceback", name, exc_info=True)
        return error_output(
            f"The calculation failed ({type(error).__name__}). Try a different breakdown or fewer filters."
        )


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) <= _TEXT_CAP else text[: _TEXT_CAP - 1] + "…"


# ---------------------------------------------------------------------------------------------- computations
# Plain functions over a context, so tests and the report can call them without the SDK's wrappers.


def describe(ctx: AnalysisContext) -> str:
    return _bounded(lambda rows: _describe(ctx.dataset, ctx, rows))


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
                "column": _short(column),
                "distinct": len(counts),
                "top_values": [_short(v) for v in counts.index[:samples]],
            }
        )
    periods: list[str] = []
    if ds.has_period:
        categories = [str(c) for c in frame[PERIOD].cat.categories]
        periods = (
            categories if len(categories) <= rows else [*categories[:rows], f"{len(categories) - rows} more"]
        )
    excluded = ds.excluded_rows
    overrides = {_short(k): v.value for k, v in list(ctx.options.account_types.items())[:rows]}
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
            {"row": r.source_row, "label": _short(r.label), "reason": _short(r.reason)} for r in excluded[:3]
        ],
        "warnings": [_short(w) for w in ds.warnings[:5]],
        "units": {"unit": ds.unit, "evidence": _short(ds.unit_evidence or "")} if ds.unit != 1 else None,
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
    return _bounded(lambda rows: {"headline": lead, "headline_rule": HEADLINE_RULE} | result.to_dict(max_rows=rows))


_FULL_YEAR_HINT = (
    "Later periods have a budget only and are left out, as in the headline. For the full year, budget-only "
    "periods included, pass the filter {\"column\": \"period\", \"values\": %s}."
)


def _to_date_scope(
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
        chosen = _names_periods(ctx, filters or {})
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


def _names_periods(ctx: AnalysisContext, keys: Iterable[str]) -> bool:
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


def breakdown_of(
    ctx: AnalysisContext, by: Sequence[str], filters: Mapping[str, list[str]] | None, limit: int | None
) -> str:
    from analyst.engine import breakdown

    cap = MAX_ROWS if limit is None else max(1, min(int(limit), MAX_ROWS))
    scoped, scope = _to_date_scope(ctx, filters)
    result = breakdown(ctx.dataset, list(by), filters=scoped, opts=ctx.options, limit=cap)
    return _bounded(lambda rows: _with_scope(result.to_dict(max_rows=min(rows, cap)), scope))


def _with_scope(data: dict[str, Any], scope: dict[str, Any] | None) -> dict[str, Any]:
    return data if scope is None else {"scope": scope, **data}


def drivers_of(
    ctx: AnalysisContext, by: Sequence[str] | None, n: int, filters: Mapping[str, list[str]] | None
) -> str:
    from analyst.engine import top_drivers

    n = max(1, min(int(n), 10))
    # Every group is ranked anyway; asking for all of them lets the lists be cut here, where the groups of
    # unknown account type beyond the cut can be counted ("N more") rather than silently dropped.
    every_group = max(1, len(ctx.dataset.frame))
    by_list = list(by) if by else None
    scoped, scope = _to_date_scope(ctx, filters)  # budget-only periods left out, as in the headline
    result = top_drivers(ctx.dataset, by=by_list, n=every_group, filters=scoped, opts=ctx.options)

    def render(rows: int) -> dict[str, Any]:
        data = result.to_dict(max_rows=min(rows, n))
        hidden = len(result.unclassified) - len(data["unclassified"])
        if hidden > 0:
            data["unclassified_more"] = hidden  # groups of unknown account type not listed
        return _with_scope(data, scope)

    return _bounded(render)


def detail_of(ctx: AnalysisContext, filters: Mapping[str, str]) -> str:
    from analyst.engine import line_detail
    from analyst.engine.to_date import to_date

    # The line's totals compare the periods with actuals, as the headline does, unless a period is named.
    scoped = None if _names_periods(ctx, filters) else to_date(ctx.dataset, ctx.options)
    ds = ctx.dataset if scoped is None else scoped.dataset
    result = line_detail(ds, dict(filters), opts=ctx.options)
    scope = _to_date_scope(ctx, None)[1] if scoped is not None else None
    return _bounded(lambda rows: _with_scope(result.to_dict(max_rows=rows), scope))


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

    return _bounded(render)


def pvm_of(ctx: AnalysisContext, by: str | None, filters: Mapping[str, list[str]] | None) -> str:
    from analyst.engine import price_volume_mix

    scoped, scope = _to_date_scope(ctx, filters)
    result = price_volume_mix(ctx.dataset, by=by or None, filters=scoped, opts=ctx.options)
    return _bounded(lambda rows: _with_scope(result.to_dict(max_rows=rows), scope))


def set_roles(
    ctx: AnalysisContext,
    *,
    actual: str | None,
    reference: str | None,
    period: str | None,
    account: str | None,
    dimensions: Sequence[str] | None,
) -> str:
    overrides = RoleOverrides(
        actual=actual or None,
        reference=reference or None,
        period=period or None,
        account=account or None,
        dimensions=tuple(dimensions) if dimensions else None,
    )
    if overrides.is_empty():
        return error_output("Give at least one of: actual, reference, period, account, dimensions.")
    ctx.override_roles(overrides)
    return _dump(_capped({"ok": True, "roles": ctx.dataset.roles.to_dict(), "rows": len(ctx.dataset.frame)}))


def set_types(ctx: AnalysisContext, assignments: Sequence[tuple[str, str]]) -> str:
    if not assignments:
        return error_output("Give at least one label with its type (revenue, contra_revenue or expense).")
    known = _account_labels(ctx.dataset)
    resolved: dict[str, AccountType] = {}
    unknown: list[str] = []
    for label, kind in assignments:
        match = _match_label(label, known) if known is not None else label
        if match is None:
            unknown.append(label)
        else:
            resolved[match] = AccountType(kind)
    if unknown:
        choices = ", ".join(_short(k) for k in sorted(known or [])[:12])
        return error_output(
            f"Unknown account label(s): {', '.join(map(_short, unknown))}. Labels include: {choices}."
        )
    ctx.options = ctx.options.with_account_types(resolved)
    return _dump({"ok": True, "account_type_overrides": {_short(k): v.value for k, v in resolved.items()}})


def _account_labels(ds: Dataset) -> set[str] | None:
    try:
        from analyst.engine.accounts import label_column

        column = label_column(ds)
    except ImportError:  # pragma: no cover - the engine always ships it
        column = ds.roles.account
    if column is None or column not in ds.frame.columns:
        return None
    return {str(v) for v in ds.frame[column].dropna().unique()}


def _match_label(label: str, known: set[str]) -> str | None:
    if label in known:
        return label
    folded = label.strip().casefold()
    return next((k for k in known if k.strip().casefold() == folded), None)


# ---------------------------------------------------------------------------------------------- the tools


@function_tool(name_override=DESCRIBE_DATASET)
async def describe_dataset(ctx: RunContextWrapper[AnalysisContext]) -> str:
    """Describe the dataset: source file, row count, which columns are actual/reference/period/account,
    dimensions with distinct counts and sample values, periods, excluded total rows, materiality."""
    return await _run_tool(DESCRIBE_DATASET, lambda: describe(ctx.context))


@function_tool(name_override=VARIANCE_SUMMARY)
async def variance_summary(ctx: RunContextWrapper[AnalysisContext]) -> str:
    """The headline to lead with (effect on profit when revenue and costs are mixed, then revenue and costs
    separately), grand totals, totals per account type, counts of material / favourable / unfavourable /
    one-sided lines, periods covered, and the materiality rule in force."""
    return await _run_tool(VARIANCE_SUMMARY, lambda: summary(ctx.context))


@function_tool(name_override=BREAKDOWN)
async def breakdown_tool(
    ctx: RunContextWrapper[AnalysisContext],
    by: list[str],
    filters: list[ColumnFilter] | None = None,
    limit: int | None = None,
) -> str:
    """Variance by one or two columns (dimensions, 'period' or 'account_type'), largest first; the groups add
    up to the filtered total. At most 20 rows are listed, the rest summed in one "N more" row.

    Args:
        by: Columns to group by, e.g. ["Department"] or ["Department", "Account"].
        filters: Optional filters, e.g. [{"column": "Region", "values": ["EMEA"]}].
        limit: Rows to list (1-20, default 20).
    """
    return await _run_tool(BREAKDOWN, lambda: breakdown_of(ctx.context, by, _filters(filters), limit))


@function_tool(name_override=TOP_DRIVERS)
async def top_drivers_tool(
    ctx: RunContextWrapper[AnalysisContext],
    by: list[str] | None = None,
    n: int = 5,
    filters: list[ColumnFilter] | None = None,
) -> str:
    """The largest favourable and unfavourable contributions to the variance (by impact on profit), with each
    one's share of the total.

    Args:
        by: Columns that define a contributor (default: the full line, all dimensions).
        n: How many of each side (1-10, default 5).
        filters: Optional filters, e.g. [{"column": "Department", "values": ["Marketing"]}].
    """
    return await _run_tool(TOP_DRIVERS, lambda: drivers_of(ctx.context, by, n, _filters(filters)))


@function_tool(name_override=LINE_DETAIL)
async def line_detail_tool(ctx: RunContextWrapper[AnalysisContext], filters: list[LineFilter]) -> str:
    """Everything about one line (or the lines a filter picks out): totals, account type, favourable,
    material, the matching lines and the trend by period.

    Args:
        filters: Column = value pairs, e.g. [{"column": "Account", "value": "Travel"}].
    """
    return await _run_tool(
        LINE_DETAIL, lambda: detail_of(ctx.context, {f.column: f.value for f in filters})
    )


@function_tool(name_override=PERIOD_TREND)
async def period_trend(
    ctx: RunContextWrapper[AnalysisContext], filters: list[ColumnFilter] | None = None
) -> str:
    """Variance by period with year-to-date, period-over-period change (flux), run-rate and a full-year
    projection (YTD actual + remaining reference). Needs a period column.

    Args:
        filters: Optional filters, e.g. [{"column": "Department", "values": ["Sales"]}].
    """
    return await _run_tool(PERIOD_TREND, lambda: trend_of(ctx.context, _filters(filters)))


@function_tool(name_override=PRICE_VOLUME_MIX)
async def price_volume_mix_tool(
    ctx: RunContextWrapper[AnalysisContext],
    by: str | None = None,
    filters: list[ColumnFilter] | None = None,
) -> str:
    """Split a sales variance into price, volume (mix + quantity) effects; needs quantity columns.

    Args:
        by: The item column (default: the account / product column).
        filters: Optional filters.
    """
    return await _run_tool(PRICE_VOLUME_MIX, lambda: pvm_of(ctx.context, by, _filters(filters)))


@function_tool(name_override=SET_COLUMN_ROLES)
async def set_column_roles(
    ctx: RunContextWrapper[AnalysisContext],
    actual: str | None = None,
    reference: str | None = None,
    period: str | None = None,
    account: str | None = None,
    dimensions: list[str] | None = None,
) -> str:
    """Override which source columns are actual, reference, period, account or dimensions, for the rest of
    this conversation (when the user says detection was wrong). Leave a role empty to keep it.

    Args:
        actual: Source column holding actuals.
        reference: Source column holding the budget / plan / forecast / prior.
        period: Source column holding the period.
        account: Source column naming the account.
        dimensions: Source columns to use as dimensions.
    """
    return await _run_tool(
        SET_COLUMN_ROLES,
        lambda: set_roles(
            ctx.context,
            actual=actual,
            reference=reference,
            period=period,
            account=account,
            dimensions=dimensions,
        ),
    )


@function_tool(name_override=SET_ACCOUNT_TYPE)
async def set_account_type(
    ctx: RunContextWrapper[AnalysisContext], assignments: list[AccountTypeAssignment]
) -> str:
    """Set the account type of some labels for this conversation (it decides favourable vs unfavourable).

    Args:
        assignments: e.g. [{"label": "Sales returns", "type": "contra_revenue"}].
    """
    pairs = [(a.label, a.type) for a in assignments]
    return await _run_tool(SET_ACCOUNT_TYPE, lambda: set_types(ctx.context, pairs))


@function_tool(name_override="make_chart")
async def make_chart_tool(
    ctx: ToolContext[AnalysisContext],
    kind: Literal["bridge", "bars", "monthly"],
    dimension: str | None = None,
    periods: list[str] | None = None,
) -> str:
    """Draw a chart that is attached to your answer: "bridge" (reference to actual, largest drivers; of profit
    when revenue and costs mix), "bars" (budget vs actual by a dimension) or "monthly" (variance by period; with
    a dimension, a grid of period × dimension). Refer to the chart in your answer; never draw numbers yourself.

    Args:
        kind: "bridge", "bars" or "monthly".
        dimension: Optional column: the bridge's drivers, the bars' groups, the monthly grid's rows.
        periods: Optional periods to keep, e.g. ["Q3"] or ["2025-07", "2025-08"].
    """
    from analyst.charts.tool import chart_for_answer

    call_id = str(ctx.tool_call_id)
    return await _run_tool(
        "make_chart", lambda: chart_for_answer(ctx.context, call_id, kind, dimension, periods)
    )


ANALYST_TOOLS: tuple[FunctionTool, ...] = (
    describe_dataset,
    variance_summary,
    breakdown_tool,
    top_drivers_tool,
    line_detail_tool,
    period_trend,
    price_volume_mix_tool,
    set_column_roles,
    set_account_type,
    make_chart_tool,
)

# ---------------------------------------------------------------------------------------------- labels


def tool_label(name: str, arguments: str) -> str:
    """A human label for a tool call, shown while it runs ("Computing variance by Department…")."""
    try:
        args = json.loads(arguments) if arguments else {}
    except json.JSONDecodeError:
        args = {}
    if not isinstance(args, dict):
        args = {}
    where = _where(args.get("filters"))
    by = _names(args.get("by"))
    labels: dict[str, str] = {
        DESCRIBE_DATASET: "Reading the dataset…",
        VARIANCE_SUMMARY: "Computing the variance summary…",
        BREAKDOWN: f"Computing variance by {by}{where}…" if by else f"Computing the variance breakdown{where}…",
        TOP_DRIVERS: f"Finding the top drivers{where}…",
        LINE_DETAIL: f"Looking at the line{where}…",
        PERIOD_TREND: f"Computing the trend by period{where}…",
        PRICE_VOLUME_MIX: f"Splitting price, volume and mix{where}…",
        SET_COLUMN_ROLES: "Updating the column roles…",
        SET_ACCOUNT_TYPE: "Updating account types…",
        "make_chart": "Drawing the chart…",
    }
    return labels.get(name, f"Running {name}…")


def _names(value: object, joiner: str = " and ") -> str:
    if isinstance(value, str):
        return _short(value)
    if isinstance(value, list):
        shown = joiner.join(_short(v) for v in value[:3])
        return shown + (f" (+{len(value) - 3})" if len(value) > 3 else "")
    return ""


def _where(filters: object) -> str:
    if not isinstance(filters, list) or not filters:
        return ""
    parts = []
    for f in filters[:2]:
        if isinstance(f, dict):
            values = f.get("values", f.get("value"))
            shown = _names(values, ", ") if values is not None else ""
            parts.append(shown or _short(f.get("column", "")))
    shown = "; ".join(p for p in parts if p)
    return f" for {shown}" if shown else ""
