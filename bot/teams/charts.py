"""The report's bridge chart in Teams: a small PNG sent inline, as a second message after the report card.

Bots send small images to Teams as an attachment whose ``contentUrl`` is a ``data:image/png;base64,...`` URI (no
file hosting needed). Teams refuses an activity larger than about 256 KB (``413 MessageSizeTooBig``), and base64
adds a third, so a chart is sent only when its PNG is at most :data:`MAX_INLINE_PNG_BYTES`; a larger one is left
out (logged), and the report card stands alone. The chart goes in its own activity, after the card was delivered,
so the card never waits for the drawing and never grows past the limit because of it.

Drawing happens in a worker thread (:func:`analyst.charts.render_chart_async`), never on the event loop.
"""

from __future__ import annotations

import base64
import logging
from typing import TYPE_CHECKING, Any

from bot.logs import log_line

if TYPE_CHECKING:
    from analyst.context import AnalysisContext

log = logging.getLogger("variance.teams")

# Teams' activity limit is ~256 KB; base64 makes 180 KB of PNG about 240 KB, which leaves room for the rest.
MAX_INLINE_PNG_BYTES = 180 * 1024
IMAGE_TYPE = "image/png"


def image_attachment(png: bytes, name: str) -> dict[str, Any]:
    """An inline image attachment (a data URI), as Teams shows it in the chat."""
    return {
        "contentType": IMAGE_TYPE,
        "contentUrl": f"data:{IMAGE_TYPE};base64,{base64.b64encode(png).decode('ascii')}",
        "name": name,
    }


async def bridge_chart_message(context: AnalysisContext) -> tuple[str, dict[str, Any]] | None:
    """(the chart's title, its image attachment) for the report's bridge chart, or None when there is none to
    send (nothing to bridge, or too large for one Teams activity)."""
    from analyst.charts import render_chart_async
    from analyst.engine import AnalysisError

    try:
        chart = await render_chart_async(context.dataset, "bridge", context.options)
    except AnalysisError as error:  # nothing to bridge (no amounts): the card alone says so
        log.info("no bridge chart for the report: %s", type(error).__name__)
        return None
    if len(chart.png) > MAX_INLINE_PNG_BYTES:
        log_line("chart", surface="teams", outcome="too_large", bytes=len(chart.png))
        return None
    return chart.title, image_attachment(chart.png, chart.filename)
