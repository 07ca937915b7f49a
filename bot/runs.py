"""A base for wrappers around an analyst run: they change or observe its events on the way to the writer, while
Stop and closing go straight to the run they wrap (``bot.overrides.NotedRun``, ``bot.metrics.MeteredRun``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from analyst.events import AnalystEvent


class WrappedRun:
    def __init__(self, run: Any) -> None:
        self._run = run

    def cancel(self) -> None:
        self._run.cancel()

    async def aclose(self) -> None:
        await self._run.aclose()

    def __aiter__(self) -> AsyncIterator[AnalystEvent]:
        return self._events()

    async def _events(self) -> AsyncIterator[AnalystEvent]:  # override: the wrapped run's events, changed
        async for event in self._run:
            yield event
