"""The agent's tool names, each written once, and the label a person sees while a tool runs.

A name here is the SDK tool's name (what the model calls), the name in logs and in
:class:`~analyst.events.ToolStarted` / :class:`~analyst.events.ToolFinished`, and the key of its progress label.
The instructions name the tools through these constants too, so renaming a tool is a one-line change.
"""

from __future__ import annotations

import json

DESCRIBE_DATASET = "describe_dataset"
VARIANCE_SUMMARY = "variance_summary"
BREAKDOWN = "breakdown"
TOP_DRIVERS = "top_drivers"
LINE_DETAIL = "line_detail"
PERIOD_TREND = "period_trend"
PRICE_VOLUME_MIX = "price_volume_mix"
SET_COLUMN_ROLES = "set_column_roles"
SET_ACCOUNT_TYPE = "set_account_type"
MAKE_CHART = "make_chart"

# Every tool the analyst agent has, in the order the tool list offers them.
TOOL_NAMES = (
    DESCRIBE_DATASET,
    VARIANCE_SUMMARY,
    BREAKDOWN,
    TOP_DRIVERS,
    LINE_DETAIL,
    PERIOD_TREND,
    PRICE_VOLUME_MIX,
    SET_COLUMN_ROLES,
    SET_ACCOUNT_TYPE,
    MAKE_CHART,
)

_LABEL_CAP = 60  # characters of any one argument shown in a label


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
        MAKE_CHART: "Drawing the chart…",
    }
    return labels.get(name, f"Running {name}…")


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) <= _LABEL_CAP else text[: _LABEL_CAP - 1] + "…"


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
