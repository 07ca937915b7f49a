"""Helpers shared by the agent's tests: collect a run's events and check the stream's invariants."""

from __future__ import annotations

import asyncio

from analyst.agent import AnalystRun
from analyst.events import AnalystEvent, Done, Failed, TextDelta
from tests.agent.conftest import wait_until


async def collect(run: AnalystRun, timeout: float = 10.0) -> list[AnalystEvent]:
    events: list[AnalystEvent] = []
    async with asyncio.timeout(timeout):
        async for event in run:
            events.append(event)
    return events


def terminal(events: list[AnalystEvent]) -> Done | Failed:
    """Exactly one terminal event, and it is the last one."""
    ends = [e for e in events if isinstance(e, Done | Failed)]
    assert len(ends) == 1, events
    assert events[-1] is ends[0]
    return ends[0]


def streamed_text(events: list[AnalystEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


async def no_other_tasks() -> None:
    """Wait (with a deadline) until no task but the current one is running: nothing of a run lingers."""
    me = asyncio.current_task()

    def others() -> list[asyncio.Task[object]]:
        # The fake server's own connection handlers idle on keep-alive connections: not part of a run.
        return [
            t
            for t in asyncio.all_tasks()
            if t is not me and not t.done() and getattr(t.get_coro(), "__qualname__", "") != "RequestHandler.start"
        ]

    try:
        await wait_until(lambda: not others(), timeout=3.0)
    except TimeoutError:
        raise AssertionError(f"tasks still running: {[t.get_coro() for t in others()]}") from None
