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
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import math
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

log = logging.getLogger("variance.teams")

# (calls, seconds) per bot per conversation.
TEAMS_LIMITS: tuple[tuple[int, float], ...] = ((7, 1.0), (8, 2.0), (60, 30.0), (1800, 3600.0))
# Added to every window, for clock granularity.
JITTER_MARGIN_S = 0.15
MAX_BACKOFF_S = 30.0
# How long one call may keep waiting for its conversation (429s and pacing together) before giving up.
MAX_WAIT_S = 600.0

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

    def __init__(self, pacer: ConversationPacer, *, max_wait_s: float = MAX_WAIT_S) -> None:
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
                self.pacer.completed(entry)
                if error.response.status_code != 429:
                    raise
                wait = self.pacer.throttled(key, retry_after_seconds(error.response.headers))
                log.info("teams throttled a conversation; waiting %.1f s", wait)
                if time.monotonic() + wait > deadline:
                    raise
                continue
            except BaseException:
                self.pacer.completed(entry)
                raise
            self.pacer.completed(entry)
            self.pacer.succeeded(key)
            return response
