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
    me = asyncio.current_task()
    await wait_until(
        lambda: not [t for t in asyncio.all_tasks() if t is not me and not t.done()], timeout=3.0
    )
