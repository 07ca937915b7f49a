"""Charts the agent drew during a run, waiting for the chat surface to pick them up by tool call id.

The agent's ``make_chart`` tool renders a chart and leaves it here under its tool call id; the surface, on seeing
``ToolFinished(name="make_chart", call_id=...)`` in the run's events, takes it and uploads it. Bounded: a surface
that never collects (the terminal) keeps at most ``capacity`` charts, the oldest dropped first.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from analyst.charts import Chart


class ChartOutbox:
    def __init__(self, capacity: int = 4) -> None:
        self.capacity = capacity
        self._charts: OrderedDict[str, Chart] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, call_id: str, chart: Chart) -> None:
        with self._lock:
            self._charts[call_id] = chart
            while len(self._charts) > self.capacity:
                self._charts.popitem(last=False)

    def take(self, call_id: str) -> Chart | None:
        with self._lock:
            return self._charts.pop(call_id, None)

    def __len__(self) -> int:
        return len(self._charts)
