"""The agent's ``make_chart`` tool body: draw a chart of the conversation's dataset for the answer's thread.

The chart goes to the context's outbox under the tool call id; the surface uploads it next to the answer. The
model gets back what the chart shows (title, kind, the largest steps) so it can refer to it: it never draws or
states numbers of its own.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from analyst.charts import render_chart
from analyst.context import AnalysisContext
from analyst.dataset import PERIOD


def chart_for_answer(
    ctx: AnalysisContext, call_id: str, kind: str, dimension: str | None, periods: Sequence[str] | None
) -> str:
    filters = {PERIOD: list(periods)} if periods else None
    chart = render_chart(ctx.dataset, kind, ctx.options, by=dimension or None, filters=filters)
    ctx.charts.put(call_id, chart)
    return json.dumps(
        {
            "chart": chart.title,
            "kind": chart.kind,
            "shows": chart.alt_text,
            "delivery": "The chart is attached to this answer's thread. Refer to it in one sentence (e.g. "
            "'see the bridge chart below'); do not describe numbers that no tool returned.",
        },
        ensure_ascii=False,
    )
