"""The agent's function tools: the Agents SDK wrappers around :mod:`analyst.agent.outputs`, and the tool list.

Each tool reads the conversation's :class:`~analyst.context.AnalysisContext` (the run context), runs its
computation in a worker thread (``asyncio.to_thread``) so the event loop never freezes, and returns the
computation's compact JSON. Read-only views over the variance engine, plus two conversation overrides and
``make_chart``. Tool names come from :mod:`analyst.agent.tool_names`.

A bad request (unknown column, a filter that matches nothing) or any other failure becomes
``{"error": "..."}``: a short message the model can act on. Failures are logged by tool and exception type,
never with file contents.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Literal

from agents import FunctionTool, RunContextWrapper, function_tool
from agents.tool_context import ToolContext
from pydantic import BaseModel, Field

from analyst.agent.outputs import (
    breakdown_of,
    describe,
    detail_of,
    drivers_of,
    error_output,
    pvm_of,
    set_roles,
    set_types,
    summary,
    trend_of,
)
from analyst.agent.tool_names import (
    BREAKDOWN,
    DESCRIBE_DATASET,
    LINE_DETAIL,
    MAKE_CHART,
    PERIOD_TREND,
    PRICE_VOLUME_MIX,
    SET_ACCOUNT_TYPE,
    SET_COLUMN_ROLES,
    TOP_DRIVERS,
    VARIANCE_SUMMARY,
)
from analyst.context import AnalysisContext
from analyst.dataset import IngestError

logger = logging.getLogger("analyst.agent.tools")


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


def _filters(filters: Sequence[ColumnFilter] | None) -> dict[str, list[str]] | None:
    if not filters:
        return None
    merged: dict[str, list[str]] = {}
    for f in filters:
        merged.setdefault(f.column, []).extend(f.values)
    return merged


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


@function_tool(name_override=MAKE_CHART)
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
    return await _run_tool(MAKE_CHART, lambda: chart_for_answer(ctx.context, call_id, kind, dimension, periods))


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
