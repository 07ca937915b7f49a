"""One live message's place in an :class:`~bot.render.scheduler.UpdateScheduler`: :class:`Slot`, the
:class:`Priority` of its pending payload, and its counters (:class:`SlotStats`).

A writer submits payloads to its slot; the slot keeps only the newest (coalescing) with the highest priority
asked for since the last send, queues the final with a future that resolves when Slack has it, and holds the
reservations the scheduler counts (see :mod:`bot.render.scheduler`) until its final has gone out.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import TYPE_CHECKING, Generic, TypeVar

from bot.render.delivery import DeliveryError

if TYPE_CHECKING:
    from bot.render.scheduler import UpdateScheduler

P = TypeVar("P")
Send = Callable[[P], Awaitable[object]]


class Priority(IntEnum):
    INTERMEDIATE = 0
    FIRST_VISIBLE = 1
    FINAL = 2


@dataclass
class SlotStats:
    sent: int = 0
    ratelimited: int = 0
    retries: int = 0
    failures: int = 0


class Slot(Generic[P]):
    """One live message's place in a scheduler. Created by :meth:`UpdateScheduler.open`."""

    def __init__(self, scheduler: UpdateScheduler[P], key: str, send: Send[P], order: int) -> None:
        self.key = key
        self.stats = SlotStats()
        self.failure: DeliveryError | None = None
        self._scheduler = scheduler
        self._send = send
        self._order = order
        self._pending: P | None = None
        self._has_pending = False
        self._priority = Priority.INTERMEDIATE
        self._seq = 0
        self._pending_since = 0.0
        self._in_flight = False
        self._final_in_flight = False
        self._not_before = 0.0  # per-message interval
        self._retry_not_before = 0.0  # backoff after a transient failure
        self._attempts = 0
        self.last_served = -math.inf
        self._final: asyncio.Future[None] | None = None
        self._final_seq = -1
        self._needs_first = True  # no first-visible payload delivered yet
        self._first_in_flight = False
        self.closed = False

    # -- used by writers

    def submit(self, payload: P, priority: Priority = Priority.INTERMEDIATE) -> None:
        """Replace the pending payload with ``payload`` (coalescing). No effect once the slot is closed."""
        if self.closed or self._final is not None:
            return
        self._seq += 1
        now = self._scheduler.clock()
        if not self._has_pending:
            self._pending_since = now
            self._priority = priority
        else:
            self._priority = max(self._priority, priority)
        self._pending = payload
        self._has_pending = True
        self._scheduler._wake()

    def submit_final(self, payload: P) -> asyncio.Future[None]:
        """Queue the last payload of this message; the future resolves when it is delivered (or fails)."""
        if self._final is not None:
            return self._final
        loop = asyncio.get_running_loop()
        if self.closed:
            fut: asyncio.Future[None] = loop.create_future()
            fut.set_exception(DeliveryError("slot_closed"))
            return fut
        self.submit(payload, Priority.FINAL)
        self._final = loop.create_future()
        self._final_seq = self._seq
        return self._final

    async def finish(self, payload: P) -> None:
        """Send ``payload`` as this message's final edit and wait until Slack has it. Raises DeliveryError."""
        await asyncio.shield(self.submit_final(payload))

    def withdraw_final(self) -> bool:
        """Take back a final that has not gone out yet (to deliver it another way); closes the slot.

        Returns False, changing nothing, when the final is already in flight or done.
        """
        if self._final is None or self._final.done() or self._in_flight or not self._has_pending:
            return False
        self._final.set_exception(DeliveryError("withdrawn"))
        self._final.exception()  # retrieved: nobody needs to hear about it
        self.close()
        return True

    def close(self) -> None:
        """Give the slot up without a final (drops anything pending and the reservation)."""
        if self.closed:
            return
        self.closed = True
        self._has_pending = False
        self._pending = None
        if self._final is not None and not self._final.done():
            self._final.set_exception(DeliveryError("slot_closed"))
        self._scheduler._release(self)

    def first_shown(self) -> None:
        """Give up the first-text reservation (e.g. a continuation message: the answer is already visible)."""
        self._needs_first = False
        self._scheduler._wake()

    @property
    def pending(self) -> bool:
        return self._has_pending

    # -- used by the scheduler

    @property
    def reserving(self) -> bool:
        """Holds a unit of the window for its final edit: open and the final has not gone out."""
        return not self.closed and not self._final_in_flight

    @property
    def reserving_first(self) -> bool:
        """Holds a unit for its first visible text: open, no final queued, first text not sent yet."""
        return self.reserving and self._final is None and self._needs_first and not self._first_in_flight

    def _ready_at(self) -> float:
        at = self._retry_not_before
        # The first visible text and the final do not wait for the per-message interval.
        if self._priority == Priority.INTERMEDIATE:
            at = max(at, self._not_before)
        return at
