"""Charts for the web chat: the page fetches each PNG from ``GET /api/charts/<id>.png``.

Two kinds reach the page: the bridge chart shown beside a fresh upload's report summary (drawn on the page's
request, once per dataset) and the charts the agent's ``make_chart`` tool draws during an answer (taken from the
conversation's outbox when the tool finishes, announced as ``event: chart``). Both are kept in a
:class:`ChartStore` under an unguessable id, bounded in bytes and in count, the oldest dropped first: a chart is
for the page that is showing it now, not an archive.

Drawing happens in a worker thread (:func:`analyst.charts.render_chart_async`), never on the event loop, as on
the Slack side. Alt text is the chart's own description, neutralised like every text the web chat sends, since
labels come from the file.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.textfilter import neutralise

if TYPE_CHECKING:
    from analyst.charts import Chart
    from analyst.context import AnalysisContext

CHART_URL = "/api/charts/{id}.png"
DEFAULT_MAX_ITEMS = 200


@dataclass(frozen=True, slots=True)
class StoredChart:
    """One chart the page may fetch: its PNG and the neutralised alt text and title."""

    id: str
    png: bytes
    alt: str
    title: str

    @property
    def url(self) -> str:
        return CHART_URL.format(id=self.id)

    def event(self) -> dict[str, Any]:
        """The ``event: chart`` payload (and the report chart's JSON): where the PNG is and what it shows."""
        return {"url": self.url, "alt": self.alt, "title": self.title}


class ChartStore:
    """Charts by id, at most ``max_bytes`` of PNG and ``max_items`` charts; the least recently used go first.

    ``key`` (e.g. a dataset's id) names a chart that is drawn once and reused: the report's bridge chart.
    """

    def __init__(self, max_bytes: int, max_items: int = DEFAULT_MAX_ITEMS) -> None:
        self.max_bytes = max_bytes
        self.max_items = max_items
        self._charts: OrderedDict[str, StoredChart] = OrderedDict()
        self._keys: dict[str, str] = {}  # key -> chart id
        self._bytes = 0
        self._lock = threading.Lock()
        self._drawing: dict[str, asyncio.Future[StoredChart | str]] = {}

    def __len__(self) -> int:
        return len(self._charts)

    @property
    def bytes(self) -> int:
        return self._bytes

    def add(self, chart: Chart, *, key: str | None = None) -> StoredChart:
        stored = StoredChart(
            id=uuid.uuid4().hex, png=chart.png, alt=neutralise(chart.alt_text), title=neutralise(chart.title)
        )
        with self._lock:
            self._charts[stored.id] = stored
            self._bytes += len(stored.png)
            if key is not None:
                self._keys[key] = stored.id
            while len(self._charts) > 1 and (self._bytes > self.max_bytes or len(self._charts) > self.max_items):
                dropped_id, dropped = self._charts.popitem(last=False)
                self._bytes -= len(dropped.png)
                for name in [k for k, v in self._keys.items() if v == dropped_id]:
                    del self._keys[name]
        return stored

    def get(self, chart_id: str) -> StoredChart | None:
        with self._lock:
            stored = self._charts.get(chart_id)
            if stored is not None:
                self._charts.move_to_end(chart_id)
            return stored

    def find(self, key: str) -> StoredChart | None:
        with self._lock:
            chart_id = self._keys.get(key)
        return self.get(chart_id) if chart_id is not None else None

    def take_from_outbox(self, context: AnalysisContext, call_id: str | None) -> StoredChart | None:
        """The chart ``make_chart`` left in the conversation's outbox under ``call_id``, now stored here."""
        if not call_id:
            return None
        chart = context.charts.take(call_id)
        return self.add(chart) if chart is not None else None

    async def report_chart(self, key: str, context: AnalysisContext) -> StoredChart | str:
        """The bridge chart of a dataset (drawn once, off the loop), or a readable reason there is none."""
        found = self.find(key)
        if found is not None:
            return found
        drawing = self._drawing.get(key)
        if drawing is None:  # concurrent requests for the same dataset share one drawing
            drawing = asyncio.ensure_future(self._draw_bridge(key, context))
            self._drawing[key] = drawing
            drawing.add_done_callback(lambda _f: self._drawing.pop(key, None))
        return await asyncio.shield(drawing)

    async def _draw_bridge(self, key: str, context: AnalysisContext) -> StoredChart | str:
        from analyst.charts import render_chart_async
        from analyst.engine import AnalysisError

        try:
            chart = await render_chart_async(context.dataset, "bridge", context.options)
        except AnalysisError as error:  # nothing to bridge (no amounts): the report alone says so
            return neutralise(str(error))
        return self.add(chart, key=key)
