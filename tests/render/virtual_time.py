"""Virtual time for scheduler tests: ``clock``/``sleep`` that jump to the next timer when all is idle."""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class VirtualTime:
    def __init__(self) -> None:
        self.now = 0.0
        self._timers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def clock(self) -> float:
        return self.now

    async def sleep(self, delay: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._timers, (self.now + max(0.0, delay), next(self._seq), fut))
        await fut

    async def run(self, main: Awaitable[T], *, limit: float = 10_000.0) -> T:
        """Run ``main`` to completion, advancing virtual time whenever nothing else can run."""
        task = asyncio.ensure_future(main)
        while not task.done():
            for _ in range(50):  # let every ready callback run before time moves
                await asyncio.sleep(0)
                if task.done():
                    break
            if task.done():
                break
            while self._timers and self._timers[0][2].cancelled():
                heapq.heappop(self._timers)
            if not self._timers:
                task.cancel()
                raise AssertionError("deadlock: every task waits and no timer is set")
            at, _, fut = heapq.heappop(self._timers)
            if at > limit:
                task.cancel()
                raise AssertionError(f"virtual time passed {limit} s")
            self.now = max(self.now, at)
            fut.set_result(None)
        return task.result()

    async def at(self, when: float, action: Callable[[], object]) -> None:
        await self.sleep(when - self.now)
        action()
