r"""The priority queue that spends one (workspace, method) budget: :class:`UpdateScheduler` and its :class:`Slot`\ s.

Slack counts ``chat.update`` per app, per workspace, per method (Tier 3: about 50 a minute), however many
answers are streaming. The scheduler spends that budget:

- **Rolling window.** At most ``limit`` calls in any ``window`` seconds (default 45 per 60 s, a little under
  Slack's tier).
- **One slot per live message, holding only its newest payload** (coalescing): a message never gets an
  edit that is already out of date, so a slow period costs fewer edits, not a backlog.
- **Priorities**: final > first visible text > intermediate; ties go to the slot served least recently
  (fairness), then to the one waiting longest.
- **Per-message interval**: a message is not edited more than once per ``min_interval`` seconds
  (default 1 s); its first visible text and its final edit do not wait for it.
- **Reservations**: every open slot whose final edit has not gone out holds one unit of the window for it,
  and one more for its first visible text until that has gone out. Finals' reservations come first: a
  first-visible edit may spend whatever the finals' reservations leave (first texts compete among
  themselves by fairness), an intermediate edit (progress, tool status) only what is left after all
  reservations. So when many answers finish at once their finals go out at once instead of queueing behind
  a smooth pacer, early tool-status edits can't eat the budget that every answer's first text needs, and
  however many answers are live (2 units each would exceed the window from ``limit / 2`` answers on), first
  texts still go out. The finals' reservations are capped at ``limit - first_text_floor`` so that even
  with more live answers than the window holds a few first texts get through (finals still outrank them
  whenever both are pending).
- **Paced progress**: intermediate edits, across all slots, also go through a token bucket refilled at
  ``limit / window`` per second (burst ``progress_burst``), so they spread over the window instead of
  spending it in the first seconds: a message that starts later still finds room for its first text.
- **429**: the whole (workspace, method) pauses until ``Retry-After`` has passed; the slot keeps its newest
  payload pending (the failed one, unless something newer came), so nothing is lost and nothing sent twice.
- **Transient failures** (HTTP 5xx, ``internal_error``, ``service_unavailable``, ``fatal_error``,
  ``request_timeout``, connection resets, timeouts) are retried with exponential backoff; an edit is
  idempotent. Anything else is a :class:`DeliveryError`: raised to whoever awaits the final, recorded on the
  slot otherwise.

The clock and the sleep are injectable so the logic can be tested in virtual time.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Generic, TypeVar

from bot.render.delivery import Classified, DeliveryError, FailureClass, classify_slack_error
from bot.render.windows import BudgetLimit, InProcessWindow, RollingWindow
from bot.stop_signals import cancel_and_wait

logger = logging.getLogger(__name__)

P = TypeVar("P")
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
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


class UpdateScheduler(Generic[P]):
    """Spends one (workspace, method) budget across live messages. See the module docstring."""

    def __init__(
        self,
        *,
        limit: int = 45,
        window: float = 60.0,
        min_interval: float = 1.0,
        max_in_flight: int = 16,
        progress_burst: int = 2,
        first_text_floor: int | None = None,
        max_attempts: int = 6,
        backoff_base: float = 0.5,
        backoff_max: float = 8.0,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
        name: str = "chat.update",
        classify: Callable[[BaseException], Classified] = classify_slack_error,
        window_log: RollingWindow | None = None,
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("limit must be >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self.min_interval = min_interval
        self.max_in_flight = max_in_flight
        self.progress_burst = progress_burst
        self._progress_tokens = float(progress_burst)
        # Units of the window the finals' reservations never take from first texts (default a tenth).
        self.first_text_floor = limit // 10 if first_text_floor is None else max(0, min(limit, first_text_floor))
        self._progress_at: float | None = None
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.clock = clock
        self._sleep = sleep
        self.name = name
        self._classify = classify
        self._slots: dict[str, Slot[P]] = {}
        self._window_log = window_log or InProcessWindow("", name, BudgetLimit(limit, window))
        self._paused_until = -math.inf
        self._in_flight = 0
        self._order = itertools.count()
        self._event = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sends: set[asyncio.Task[None]] = set()
        self._closed = False
        self.ratelimited = 0  # 429s seen, for logs
        self.sent = 0

    CLOSE_WAIT_S = 5.0

    # -- public

    def open(self, key: str, send: Send[P]) -> Slot[P]:
        """Register a live message; ``send(payload)`` performs the call. ``key`` must be unique while open."""
        if key in self._slots:
            raise ValueError(f"slot {key!r} is already open")
        slot: Slot[P] = Slot(self, key, send, next(self._order))
        if self._closed:  # shutting down: nothing is sent any more, and a final fails at once
            slot.closed = True
            return slot
        self._slots[key] = slot
        self._ensure_running()
        return slot

    @property
    def reserved(self) -> int:
        """Units claimed for finals and first visible texts (may exceed ``limit``; see :meth:`_reservations`)."""
        return sum(int(s.reserving) + int(s.reserving_first) for s in self._slots.values())

    def _reservations(self) -> tuple[int, int]:
        """(units held for finals, units held for first texts), as the window can honour them.

        Finals come first, but leave ``first_text_floor`` units; first texts take what finals leave.
        """
        finals = sum(1 for s in self._slots.values() if s.reserving)
        firsts = sum(1 for s in self._slots.values() if s.reserving_first)
        finals = min(finals, max(0, self.limit - self.first_text_floor))
        return finals, min(firsts, max(0, self.limit - finals))

    async def used(self, now: float | None = None) -> int:
        """Calls counted in the window now, those in flight included."""
        counted, _ = await self._window_log.usage(self.clock() if now is None else now)
        return counted

    async def room(self) -> int:
        """Units of the window not yet counted nor wanted by a queued payload (negative: oversubscribed)."""
        queued = sum(1 for s in self._slots.values() if s.pending)
        return self.limit - await self.used() - queued

    async def room_beyond_reservations(self) -> int:
        """Units of the window neither counted nor held for a live message's final edit."""
        finals = sum(1 for s in self._slots.values() if s.reserving)
        return self.limit - await self.used() - finals

    async def room_beyond_all_reservations(self) -> int:
        """Units of the window neither counted nor held for a live message's final or first visible text."""
        return self.limit - await self.used() - self.reserved

    async def claim_room(self, units: int, keep: int, *, held: int = 0) -> bool:
        """Whether a new live message may hold ``units`` more of the window: ``keep`` units stay free beyond
        every reservation and the ``held`` units this process decided on but has not reserved in a slot yet.
        A window shared by instances (``claim``) decides for all of them at once and counts the units as this
        instance's demand from that moment, so two instances can't both take the last room."""
        claim = getattr(self._window_log, "claim", None)
        if claim is not None:
            return bool(await claim(units, keep, mine=self.reserved + held))
        return self.limit - await self.used() - self.reserved - held >= keep

    async def final_room(self) -> int:
        """Units left once every final queued now has gone out (negative: some finals wait for the window)."""
        finals = sum(1 for s in self._slots.values() if s.pending and s._priority == Priority.FINAL)
        return self.limit - await self.used() - finals

    async def count_earlier(self, times: list[float]) -> None:
        """Count calls made before this scheduler existed (e.g. by a previous process), at ``times``."""
        for at in times:
            token = await self._window_log.acquire(at, math.inf)
            if token is not None:
                await self._window_log.complete(token, at)

    @property
    def paused_until(self) -> float:
        return self._paused_until

    def pause(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (a 429 seen outside the scheduler's own calls)."""
        self._paused_until = max(self._paused_until, self.clock() + max(0.0, seconds))
        self._wake()

    async def aclose(self) -> None:
        """Close every slot and stop the loop and the calls in flight; returns within about ``CLOSE_WAIT_S``."""
        self._closed = True
        for slot in list(self._slots.values()):
            slot.close()
        tasks = [t for t in (self._task, *self._sends) if t is not None]
        self._task = None
        # The loop also ends by itself at its next look (closed): a cancellation that a window's backend turned
        # into a timeout (asyncio.timeout racing the cancel) must not keep the process from exiting.
        self._event.set()
        await cancel_and_wait(tasks, timeout=self.CLOSE_WAIT_S)

    # -- internals

    def _wake(self) -> None:
        self._event.set()
        self._ensure_running()

    def _release(self, slot: Slot[P]) -> None:
        if self._slots.get(slot.key) is slot:
            del self._slots[slot.key]
        self._event.set()

    def _ensure_running(self) -> None:
        if self._closed:
            return
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name=f"scheduler:{self.name}")

    def _pick(self, now: float, counted: int, window_free_at: float) -> tuple[Slot[P] | None, float]:
        """The slot to serve now (or None) and, if none, when to look again.

        ``counted``: calls in the window now; ``window_free_at``: when the oldest of them leaves it.
        """
        if now < self._paused_until:
            return None, self._paused_until
        if self._in_flight >= self.max_in_flight:
            return None, math.inf  # a finishing send wakes us
        # Calls count from when they complete (no earlier than Slack saw them) and while in flight, so
        # network jitter can't make our window look emptier than Slack's.
        used = counted
        # With a window shared by instances, ``counted`` includes the others' demand (their finals and first
        # texts): it holds back progress, but a final competes for the calls alone (its unit is demand too)
        # and first texts keep ``first_text_floor`` units whatever every instance's finals hold.
        others = int(getattr(self._window_log, "others_seen", 0))
        calls = counted - others
        finals_reserved, firsts_reserved = self._reservations()
        progress_ready_at = self._progress_ready_at(now)
        best: Slot[P] | None = None
        best_key: tuple[int, float, float, int] | None = None
        wake = math.inf
        for slot in self._slots.values():
            if not slot._has_pending or slot._in_flight:
                continue
            ready_at = slot._ready_at()
            if ready_at > now:
                wake = min(wake, ready_at)
                continue
            # A final spends its own reservation, a first text what the finals' reservations leave (first
            # texts share theirs by fairness), anything else only what all reservations leave.
            if slot._priority == Priority.FINAL:
                needed = calls
            elif slot._priority == Priority.FIRST_VISIBLE:
                needed = calls + min(finals_reserved + others, self.limit - self.first_text_floor)
            else:
                needed = used + finals_reserved + firsts_reserved
                if progress_ready_at > now:
                    wake = min(wake, progress_ready_at)
                    continue
            if needed >= self.limit:
                wake = min(wake, window_free_at)
                continue
            key = (-int(slot._priority), slot.last_served, slot._pending_since, slot._order)
            if best_key is None or key < best_key:
                best, best_key = slot, key
        return best, wake

    def _progress_refill(self, now: float) -> None:
        if self._progress_at is not None:
            rate = self.limit / self.window
            self._progress_tokens = min(
                float(self.progress_burst), self._progress_tokens + (now - self._progress_at) * rate
            )
        self._progress_at = now

    def _progress_ready_at(self, now: float) -> float:
        """When the progress bucket has a whole token (``now`` if it has one)."""
        self._progress_refill(now)
        if self._progress_tokens >= 1.0:
            return now
        return now + (1.0 - self._progress_tokens) * self.window / self.limit

    async def _run(self) -> None:
        while not self._closed:
            self._event.clear()
            now = self.clock()
            if now < self._paused_until or self._in_flight >= self.max_in_flight:
                counted, free_at = 0, math.inf  # _pick waits without asking the window
            else:
                counted, free_at = await self._window_log.usage(now)
            slot, wake = self._pick(now, counted, free_at)
            if slot is not None:
                reserved = slot._priority >= Priority.FIRST_VISIBLE
                token = await self._window_log.acquire(now, self.limit, reserved=reserved)
                if token is not None:
                    self._start_send(slot, now, token)
                    continue
                wake = min(free_at, now + 0.05)  # another process took the last unit: look again soon
            renew = getattr(self._window_log, "DEMAND_TTL_S", None)
            if renew is not None and self.reserved:
                # A shared window forgets a demand not declared again within its TTL: look (and declare) again
                # before that, even with nothing to send (a placeholder up while a long tool runs).
                wake = min(wake, now + float(renew) / 3)
            await self._wait(wake - now)

    async def _wait(self, delay: float) -> None:
        if delay <= 0:
            await asyncio.sleep(0)
            return
        waiter = asyncio.ensure_future(self._event.wait())
        if math.isinf(delay):
            await waiter
            return
        sleeper = asyncio.ensure_future(self._sleep(delay))
        try:
            await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (waiter, sleeper):
                if not task.done():
                    task.cancel()
            await asyncio.gather(waiter, sleeper, return_exceptions=True)

    def _start_send(self, slot: Slot[P], now: float, token: object) -> None:
        payload = slot._pending
        seq, priority = slot._seq, slot._priority
        slot._pending = None
        slot._has_pending = False
        slot._in_flight = True
        if priority == Priority.FINAL:
            slot._final_in_flight = True
        elif priority == Priority.FIRST_VISIBLE:
            slot._first_in_flight = True
        else:
            self._progress_refill(now)
            self._progress_tokens -= 1.0
        slot.last_served = now
        self._in_flight += 1
        task = asyncio.get_running_loop().create_task(self._deliver(slot, payload, seq, priority, token))  # type: ignore[arg-type]
        self._sends.add(task)
        task.add_done_callback(self._sends.discard)

    async def _deliver(self, slot: Slot[P], payload: P, seq: int, priority: Priority, token: object) -> None:
        try:
            await slot._send(payload)
        except asyncio.CancelledError:
            self._settle_failure(slot, payload, seq, priority, DeliveryError("cancelled"))
            raise
        except Exception as exc:
            self._on_error(slot, payload, seq, priority, exc)
        else:
            now = self.clock()
            self.sent += 1
            slot.stats.sent += 1
            slot._attempts = 0
            slot._not_before = now + self.min_interval
            if priority == Priority.FIRST_VISIBLE:
                slot._needs_first = False
            if priority == Priority.FINAL and seq >= slot._final_seq and slot._final is not None:
                if not slot._final.done():
                    slot._final.set_result(None)
                slot.closed = True
                self._release(slot)
        finally:
            slot._in_flight = False
            slot._first_in_flight = False
            await self._window_log.complete(token, self.clock())
            self._in_flight -= 1
            self._event.set()

    def _requeue(self, slot: Slot[P], payload: P, seq: int, priority: Priority) -> None:
        """Put a failed payload back unless something newer is already pending."""
        if priority == Priority.FINAL:
            slot._final_in_flight = False
        if slot.closed:
            return
        if not slot._has_pending:
            slot._pending = payload
            slot._has_pending = True
            slot._priority = priority
            slot._pending_since = self.clock()
        else:
            slot._priority = max(slot._priority, priority)

    def _on_error(self, slot: Slot[P], payload: P, seq: int, priority: Priority, exc: Exception) -> None:
        info = self._classify(exc)
        now = self.clock()
        if info.kind == FailureClass.RATE_LIMITED:
            self.ratelimited += 1
            slot.stats.ratelimited += 1
            self._paused_until = max(self._paused_until, now + max(info.retry_after, 0.0))
            logger.warning("slack %s rate limited; pausing %.1f s", self.name, info.retry_after)
            self._requeue(slot, payload, seq, priority)
            return
        if info.kind == FailureClass.TRANSIENT and slot._attempts + 1 < self.max_attempts:
            slot._attempts += 1
            slot.stats.retries += 1
            delay = min(self.backoff_max, self.backoff_base * 2 ** (slot._attempts - 1))
            slot._retry_not_before = now + delay
            logger.info("slack %s transient failure %s; retry in %.1f s", self.name, info.code, delay)
            self._requeue(slot, payload, seq, priority)
            return
        slot.stats.failures += 1
        logger.warning("slack %s failed: %s", self.name, info.code)
        self._settle_failure(slot, payload, seq, priority, DeliveryError(info.code, exc))

    def _settle_failure(self, slot: Slot[P], payload: P, seq: int, priority: Priority, err: DeliveryError) -> None:
        slot._attempts = 0
        if priority == Priority.FINAL:
            slot._final_in_flight = False
            if slot._final is not None and not slot._final.done():
                slot._final.set_exception(err)
                slot._final.exception()  # retrieved here too, so an unawaited final logs no warning
            slot.failure = err
            slot.closed = True
            self._release(slot)
        else:
            slot.failure = err
