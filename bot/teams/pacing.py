"""Teams' per-conversation limits, kept: pacing before every call, and ``Retry-After`` honoured on 429.

Teams limits each bot per conversation: 7 calls a second, 8 per 2 s, 60 per 30 s and 1,800 an hour.
:class:`ConversationPacer` keeps a log of the calls made to each conversation and makes a caller wait until one
more call fits every window (plus a small margin). Teams counts a call when it *arrives*, which is somewhere
between our send and its response: so a call is logged at its send and moved to its response's time when that
comes back (:meth:`ConversationPacer.completed`), and a call still in flight counts as "now". Spacing a new send
a window after an older call's response guarantees the arrivals are a window apart, however slow the network
or the machine. A 429 pauses the conversation until its
``Retry-After`` (or an exponential backoff when Teams sends none) has passed: no call reaches that conversation
before then.

:class:`ThrottleMiddleware` plugs the pacer into the Teams SDK's HTTP client (``Client.use``), so every request
the SDK makes to ``.../v3/conversations/{id}/activities`` is paced, and a 429 is retried here after the wait,
never by the SDK (its own retries ignore ``Retry-After``). A 429 means Teams did not take the activity, so
sending it again cannot post it twice.

With ``REDIS_URL`` (several instances), :class:`SharedConversationPacer` keeps the same windows and the same
in-flight rule for every instance at once: each conversation's call log and its 429 pause live in Redis
(:class:`bot.state.call_log.SharedCallLog`, one atomic script per call), so two instances answering in one
conversation together stay under Teams' limits. When Redis is slow (0.5 s timeout) or down, an instance paces
each conversation by itself against a conservative local share, half of every window (3/1 s, 4/2 s, 30/30 s,
900/h), never unlimited; its own recent calls are in that local log too. What that guarantees: two instances
that both lost Redis together stay under the limits. It does not hold when only one of them lost it: the other
still paces against the full shared window, which does not hold the degraded instance's calls yet, so together
they can pass a window by up to the local share until the degraded instance is back, and three or more
degraded instances can pass it too. Teams then answers 429, which is waited out and the call sent again (nothing
is lost).
An instance tries Redis again after :data:`REDIS_RETRY_S`, and first adds the calls it made meanwhile to the
shared log (kept here until Redis has taken them), so the other instances count them.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import re
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from bot.state.call_log import SharedCallLog
from bot.state.redis_client import REDIS_ERRORS

log = logging.getLogger("variance.teams")

# (calls, seconds) per bot per conversation.
TEAMS_LIMITS: tuple[tuple[int, float], ...] = ((7, 1.0), (8, 2.0), (60, 30.0), (1800, 3600.0))
# Added to every window, for clock granularity.
JITTER_MARGIN_S = 0.15
MAX_BACKOFF_S = 30.0
# How long one call may keep waiting for its conversation (429s and pacing together) before giving up.
MAX_WAIT_S = 600.0
# The share of every window an instance uses on its own while Redis can't answer, and how soon it tries again.
DEGRADED_SHARE = 0.5
REDIS_RETRY_S = 5.0

_CONVERSATION = re.compile(r"/v3/conversations/([^/?#]+)")

Sleep = Callable[[float], Awaitable[None]]


@dataclass(slots=True)
class PacerStats:
    calls: int = 0
    throttled: int = 0  # 429 responses seen
    waited_s: float = 0.0  # total time calls spent waiting for their conversation


class _Conversation:
    __slots__ = ("calls", "paused_until", "strikes")

    def __init__(self) -> None:
        # One entry per call: [time], the send time while in flight (see IN_FLIGHT), then its response's time.
        self.calls: deque[list[float]] = deque()
        self.paused_until = 0.0
        self.strikes = 0  # 429s in a row, for the backoff when Retry-After is missing


class ConversationPacer:
    def __init__(
        self,
        limits: tuple[tuple[int, float], ...] = TEAMS_LIMITS,
        *,
        margin_s: float = JITTER_MARGIN_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._limits = limits
        self._margin = margin_s
        self._clock = clock
        self._sleep = sleep
        self._horizon = max(window for _, window in limits) + margin_s
        self._keep = max(count for count, _ in limits)
        self._conversations: dict[str, _Conversation] = {}
        self.stats = PacerStats()

    def _state(self, key: str) -> _Conversation:
        state = self._conversations.get(key)
        if state is None:
            if len(self._conversations) > 10_000:
                self._forget_idle()
            state = self._conversations[key] = _Conversation()
        return state

    def _forget_idle(self) -> None:
        now = self._clock()
        for key, state in list(self._conversations.items()):
            last = state.calls[-1] if state.calls else None
            if state.paused_until <= now and (last is None or (last[1] and now - last[0] > self._horizon)):
                del self._conversations[key]

    def delay(self, key: str) -> float:
        """Seconds until one more call to ``key`` fits every window (0 when it fits now)."""
        state = self._state(key)
        now = self._clock()
        while state.calls and state.calls[0][1] and now - state.calls[0][0] > self._horizon:
            state.calls.popleft()
        wait = state.paused_until - now
        # A call in flight may arrive at any moment until its response: count it as arriving now.
        times = sorted(now if not done else at for at, done in state.calls)
        for count, window in self._limits:
            if len(times) >= count:
                wait = max(wait, times[-count] + window + self._margin - now)
        return max(0.0, wait)

    async def acquire(self, key: str) -> list[float]:
        """Wait until a call to ``key`` may be made, and count it as made; pass the returned entry to
        :meth:`completed` when the call's response (or failure) comes back."""
        started = self._clock()
        while (wait := self.delay(key)) > 0:
            await self._sleep(wait)
        state = self._state(key)
        entry = [self._clock(), 0.0]
        state.calls.append(entry)
        while len(state.calls) > self._keep and state.calls[0][1]:
            state.calls.popleft()
        self.stats.calls += 1
        self.stats.waited_s += self._clock() - started
        return entry

    def completed(self, entry: list[float]) -> None:
        """The call logged as ``entry`` has its response: Teams counted it at the latest now."""
        entry[0], entry[1] = self._clock(), 1.0

    def throttled(self, key: str, retry_after_s: float | None) -> float:
        """Record a 429 for ``key``: no call until ``retry_after_s`` (or a backoff) has passed; returns the wait."""
        state = self._state(key)
        state.strikes += 1
        self.stats.throttled += 1
        wait = retry_after_s if retry_after_s is not None else min(MAX_BACKOFF_S, 2.0 ** (state.strikes - 1))
        state.paused_until = max(state.paused_until, self._clock() + wait)
        return wait

    def succeeded(self, key: str) -> None:
        self._state(key).strikes = 0

    def note(self, key: str) -> list[float]:
        """Log a call to ``key`` made now without waiting (another log decided it fits); as :meth:`acquire`."""
        state = self._state(key)
        entry = [self._clock(), 0.0]
        state.calls.append(entry)
        while len(state.calls) > self._keep and state.calls[0][1]:
            state.calls.popleft()
        return entry

    # The face the middleware uses (:class:`Pacer`): the shared pacer's calls go to Redis.
    async def release(self, entry: list[float]) -> None:
        self.completed(entry)

    async def pause(self, key: str, retry_after_s: float | None) -> float:
        return self.throttled(key, retry_after_s)


class Pacer(Protocol):
    """What :class:`ThrottleMiddleware` needs: :class:`ConversationPacer` or :class:`SharedConversationPacer`."""

    stats: PacerStats

    async def acquire(self, key: str) -> Any: ...

    async def release(self, entry: Any) -> None: ...

    async def pause(self, key: str, retry_after_s: float | None) -> float: ...

    def succeeded(self, key: str) -> None: ...


def local_share(limits: tuple[tuple[int, float], ...], share: float) -> tuple[tuple[int, float], ...]:
    """``limits`` with each count cut to ``share`` of it (at least one call per window)."""
    return tuple((max(1, int(count * share)), window) for count, window in limits)


@dataclass(slots=True)
class SharedCall:
    """One call logged by :class:`SharedConversationPacer`: in Redis as ``member`` (``None``: Redis could not
    answer), and in the local log as ``local``."""

    key: str
    member: str | None
    local: list[float]
    # Its member once it is added to the shared log later (the same each time: a retried record adds it once).
    unshared_id: str = field(default_factory=lambda: uuid.uuid4().hex)


class SharedConversationPacer:
    """:class:`ConversationPacer` over a :class:`~bot.state.call_log.SharedCallLog`: the windows and the 429
    pause of each conversation are every instance's. Falls back to a local share of the windows when Redis
    can't answer (see the module docstring)."""

    def __init__(
        self,
        log: SharedCallLog,
        limits: tuple[tuple[int, float], ...] = TEAMS_LIMITS,
        *,
        margin_s: float = JITTER_MARGIN_S,
        degraded_share: float = DEGRADED_SHARE,
        retry_s: float = REDIS_RETRY_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self._shared = log
        self._local = ConversationPacer(
            local_share(limits, degraded_share), margin_s=margin_s, clock=clock, sleep=sleep
        )
        self._clock = clock
        self._sleep = sleep
        self._retry_s = retry_s
        self._down_until = 0.0
        self._unshared: dict[str, list[SharedCall]] = {}  # calls made while Redis could not answer
        self._horizon = max(window for _, window in limits) + margin_s
        self.stats = self._local.stats
        self.degraded_calls = 0

    def _redis_failed(self, what: str, error: BaseException) -> None:
        if self._down_until <= self._clock():
            log.warning("teams pacing fell back to a local share (%s): %s", what, type(error).__name__)
        self._down_until = self._clock() + self._retry_s

    async def _share_unshared(self, key: str) -> None:
        calls = self._unshared.get(key)
        if not calls:
            return
        now = self._clock()
        recent = [(call.unshared_id, now - call.local[0]) for call in calls if now - call.local[0] < self._horizon]
        if recent:
            await self._shared.record(key, recent)  # on an error they stay here, for the next try
        # Only now are they the shared log's; calls made meanwhile (still degraded elsewhere) stay.
        recorded = {id(call) for call in calls}
        left = [call for call in self._unshared.get(key, ()) if id(call) not in recorded]
        if left:
            self._unshared[key] = left
        else:
            self._unshared.pop(key, None)

    async def acquire(self, key: str) -> SharedCall:
        """Wait until one more call to ``key`` fits every window for all instances, and count it as in flight."""
        started = self._clock()
        member = uuid.uuid4().hex
        while self._clock() >= self._down_until:
            try:
                await self._share_unshared(key)
                wait = await self._shared.acquire(key, member)
            except REDIS_ERRORS as error:
                self._redis_failed("acquire", error)
                break
            if wait == 0:
                self.stats.calls += 1
                self.stats.waited_s += self._clock() - started
                return SharedCall(key, member, self._local.note(key))
            await self._sleep(wait)
        self.degraded_calls += 1
        call = SharedCall(key, None, await self._local.acquire(key))
        now = self._clock()
        # Only calls still inside the longest window matter to the other instances.
        kept = [c for c in self._unshared.get(key, ()) if now - c.local[0] < self._horizon]
        self._unshared[key] = [*kept, call]
        return call

    async def release(self, entry: SharedCall) -> None:
        self._local.completed(entry.local)
        if entry.member is None:
            return
        try:
            await self._shared.complete(entry.key, entry.member)
        except REDIS_ERRORS as error:  # it stays in flight there until the log gives up on it
            self._redis_failed("complete", error)

    async def pause(self, key: str, retry_after_s: float | None) -> float:
        """A 429: no instance calls ``key`` until ``retry_after_s`` (or the backoff) has passed."""
        wait = self._local.throttled(key, retry_after_s)
        try:
            await self._shared.pause(key, wait)
        except REDIS_ERRORS as error:
            self._redis_failed("pause", error)
        return wait

    def succeeded(self, key: str) -> None:
        self._local.succeeded(key)


def retry_after_seconds(headers: httpx.Headers | dict[str, str]) -> float | None:
    """``Retry-After`` as seconds (a number or an HTTP date, at most ``MAX_WAIT_S``); ``None`` when absent or
    unreadable."""
    raw = headers.get("retry-after") or headers.get("Retry-After")
    if not raw:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(raw).timestamp() - time.time()
        except (TypeError, ValueError):
            return None
    if not math.isfinite(seconds):
        return None
    # Never longer than a call may wait at all: a day-long value would stall the conversation for a day.
    return min(MAX_WAIT_S, max(0.0, seconds))


def conversation_of(url: str) -> str | None:
    match = _CONVERSATION.search(url)
    return match.group(1) if match else None


class ThrottleMiddleware:
    """Teams SDK HTTP middleware: pace every call to a conversation; wait out and resend on 429."""

    def __init__(self, pacer: Pacer, *, max_wait_s: float = MAX_WAIT_S) -> None:
        self.pacer = pacer
        self._max_wait = max_wait_s

    async def send(self, context: Any, next: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
        key = conversation_of(str(context.url))
        if key is None:
            return await next()
        deadline = time.monotonic() + self._max_wait
        while True:
            entry = await self.pacer.acquire(key)
            try:
                response = await next()
            except httpx.HTTPStatusError as error:
                await self.pacer.release(entry)
                if error.response.status_code != 429:
                    raise
                wait = await self.pacer.pause(key, retry_after_seconds(error.response.headers))
                log.info("teams throttled a conversation; waiting %.1f s", wait)
                if time.monotonic() + wait > deadline:
                    raise
                continue
            except BaseException:
                await asyncio.shield(self.pacer.release(entry))
                raise
            await self.pacer.release(entry)
            self.pacer.succeeded(key)
            return response
