"""The event that ends a running server: SIGINT and SIGTERM set it, or the caller's own (tests set that one).

Every surface's ``serve`` (Slack, Teams, the web chat) waits on :attr:`StopSignals.event` and calls
:meth:`StopSignals.remove` first thing on the way out, so a second Ctrl-C while it shuts down interrupts the
shutdown as usual instead of being swallowed.
"""

from __future__ import annotations

import asyncio
import signal


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
