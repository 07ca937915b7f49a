"""What the analyst agent is told: the rules of the answer, plus a short, fixed-size header about the dataset.

The header's size does not depend on the file's size (names of roles and dimensions, a row count), so a
1,000,000-row file costs the model the same instruction tokens as a 100-row one.
"""

from __future__ import annotations

from typing import Any

from agents import Agent, RunContextWrapper

from analyst.context import AnalysisContext
from analyst.engine.options import MaterialityMode

RULES = """\
You are Variance Analyst, a careful FP&A analyst. You explain budget-vs-actual variances in one dataset that \
the user uploaded. The numbers come only from your tools, which compute them exactly.

Rules:
- Use the tools for every figure. Never state, estimate or compute a number that no tool returned; if a tool \
did not give it, say you cannot tell and which question would answer it. Do not do arithmetic yourself.
- Say which columns were used as actual and as reference (budget/plan/forecast/prior), and the sign \
convention: variance = actual − reference; favourable/unfavourable depends on the account type (revenue \
above reference is favourable, cost above reference is unfavourable; contra-revenue behaves like cost).
- Flag material lines (the tools mark them) and say the materiality rule once.
- If the user says a column or an account type was detected wrongly, fix it with set_column_roles or \
set_account_type, then recompute.
- If a tool returns an error, correct the request (it names the valid columns/values) and try again.
- Answer in the language of the user's question (Russian question → Russian answer).
- Write standard Markdown: a one-sentence answer first, then short paragraphs, bullets, and small tables (at \
most ~10 rows). Round for readability but keep the figures the tools gave. Be concise; no preamble.
"""


def dataset_header(context: AnalysisContext) -> str:
    """A few lines about the dataset (roles, dimensions, size); bounded whatever the file's size."""
    ds = context.dataset
    roles = ds.roles
    dims = list(roles.dimensions)
    shown_dims = ", ".join(dims[:12]) + (f" (+{len(dims) - 12} more)" if len(dims) > 12 else "")
    lines = [
        f"Dataset: {ds.source.filename[:80]} ({ds.source.file_format}), {len(ds.frame):,} lines.",
        f"Actual column: {roles.actual[:60]}; "
        f"reference column: {roles.reference[:60]} ({roles.reference_kind}).",
        f"Dimensions: {shown_dims or 'none'}.",
        f"Period column: {roles.period[:60] if roles.period else 'none'}.",
        f"Quantities for price/volume/mix: {'yes' if ds.has_quantities else 'no'}.",
    ]
    if ds.excluded_rows:
        lines.append(f"{len(ds.excluded_rows)} total/subtotal rows were excluded from sums.")
    lines.append(f"Materiality: {materiality_rule(context)}.")
    return "\n".join(lines)


def materiality_rule(context: AnalysisContext) -> str:
    m = context.options.materiality
    amount, percent = f"|variance| ≥ {m.amount:,.0f}", f"|variance %| ≥ {m.percent:g}%"
    if m.mode is MaterialityMode.AMOUNT:
        return amount
    if m.mode is MaterialityMode.PERCENT:
        return percent
    return f"{amount} {'AND' if m.mode is MaterialityMode.AND else 'OR'} {percent}"


def instructions(run_context: RunContextWrapper[AnalysisContext], _agent: Agent[Any]) -> str:
    """The agent's instructions for this run: the rules plus the current dataset header."""
    return f"{RULES}\n{dataset_header(run_context.context)}\n"
