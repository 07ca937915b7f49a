"""The event that ends a running server: SIGINT and SIGTERM set it, or the caller's own (tests set that one).

Every surface's ``serve`` (Slack, Teams, the web chat) waits on :attr:`StopSignals.event` and calls
:meth:`StopSignals.remove` first thing on the way out, so a second Ctrl-C while it shuts down interrupts the
shutdown as usual instead of being swallowed. Its background loops end through :func:`cancel_and_wait`, which
returns in bounded time.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterable

RECANCEL_S = 0.5


async def cancel_and_wait(tasks: Iterable[asyncio.Task[object] | None], *, timeout: float = 5.0) -> bool:
    """Cancel ``tasks`` and wait for them to end, for at most ``timeout`` seconds; True when all ended.

    A cancellation can be lost: a library call under ``asyncio.timeout`` whose deadline passes as the cancel
    arrives raises ``TimeoutError`` instead, and a loop that treats timeouts as "try again" goes on. So the
    cancel is repeated every ``RECANCEL_S`` until the deadline, and a loop that still runs is left behind rather
    than keeping the process from exiting.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    pending = {task for task in tasks if task is not None and not task.done()}
    while pending:
        for task in pending:
            task.cancel()
        left = deadline - loop.time()
        if left <= 0:
            return False
        _, pending = await asyncio.wait(pending, timeout=min(left, RECANCEL_S))
    return True


class StopSignals:
    """``event`` is ``stop`` when given; otherwise a new event that SIGINT and SIGTERM set until :meth:`remove`."""

    def __init__(self, stop: asyncio.Event | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._installed: list[signal.Signals] = []
        if stop is None:
            stop = asyncio.Event()
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._loop.add_signal_handler(signum, stop.set)
                self._installed.append(signum)
        self.event = stop

    def remove(self) -> None:
        """Give SIGINT and SIGTERM back their default handlers (idempotent)."""
        for signum in self._installed:
            self._loop.remove_signal_handler(signum)
        self._installed.clear()
