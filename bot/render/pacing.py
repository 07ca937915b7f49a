"""The shared Slack budget: one :class:`~bot.render.scheduler.UpdateScheduler` per (workspace, method), shared
by every live answer, plus post pacing per channel and the admission of native streams and answers in parts.

:class:`SlackBudget` is the registry (one scheduler per ``(team_id, method)``) and also paces
``chat.postMessage`` per channel (:meth:`SlackBudget.post_turn`), which Slack limits at about one a second per
channel with short bursts. Calls are made by the caller-supplied ``send`` coroutine (the writer's
``AsyncWebClient`` call), never retried inside slack_sdk: don't pass a client with
``AsyncRateLimitErrorRetryHandler`` (it sleeps inside the call, blocking the scheduler).

One budget per (workspace, method), shared by every answer (:data:`DEFAULT_LIMITS`): ``chat.update`` and
``chat.delete`` (Tier 3), ``chat.startStream``/``chat.stopStream`` (Tier 2), ``chat.appendStream`` (Tier 4),
``assistant.threads.setStatus``, ``reactions.add``/``reactions.remove`` (Tier 3); posts are paced per channel.
The planner (:mod:`bot.render.planner`) decides which of them carries an answer's next visible change. How a
window is counted is behind :class:`~bot.render.windows.RollingWindow` (in this process, or shared by every
instance through Redis: :attr:`SlackBudget.window_factory`).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Any

from bot.render.delivery import Classified, DeliveryError, FailureClass, classify_slack_error
from bot.render.scheduler import Clock, Sleep, UpdateScheduler
from bot.render.slots import Priority, Slot, SlotStats
from bot.render.windows import (
    DEFAULT_LIMITS,
    PLACEHOLDER_UNITS,
    BudgetLimit,
    InProcessWindow,
    RollingWindow,
    WindowFactory,
)

__all__ = [
    "DEFAULT_LIMITS",
    "BudgetLimit",
    "Classified",
    "DeliveryError",
    "FailureClass",
    "InProcessWindow",
    "Priority",
    "RollingWindow",
    "SlackBudget",
    "Slot",
    "SlotStats",
    "UpdateScheduler",
    "WindowFactory",
    "classify_slack_error",
]


@dataclass
class _PostBucket:
    tokens: float
    at: float
    paused_until: float = -math.inf


@dataclass
class SlackBudget:
    """All of one bot's Slack budgets: one :class:`UpdateScheduler` per ``(team_id, method)``, plus
    ``chat.postMessage`` pacing per ``(team_id, channel)`` (a token bucket: ``post_rate`` per second,
    ``post_burst`` at once).

    ``limits`` overrides the per-method windows (default :data:`DEFAULT_LIMITS`, 45/60 s for ``chat.update``).
    Share one instance across the whole process; it could later be backed by Redis to share between instances.
    """

    limits: dict[str, BudgetLimit] = field(default_factory=lambda: dict(DEFAULT_LIMITS))
    min_interval: float = 1.0
    post_rate: float = 1.0
    post_burst: int = 3
    clock: Clock = time.monotonic
    sleep: Sleep = asyncio.sleep
    scheduler_options: dict[str, Any] = field(default_factory=dict)
    # How each (workspace, method) window is counted: in this process, or (later) shared through Redis.
    window_factory: WindowFactory = InProcessWindow
    _schedulers: dict[tuple[str, str], UpdateScheduler[Any]] = field(default_factory=dict, init=False)
    _posts: dict[tuple[str, str], _PostBucket] = field(default_factory=dict, init=False)
    _post_locks: dict[tuple[str, str], asyncio.Lock] = field(default_factory=dict, init=False)
    _live_streams: dict[str, int] = field(default_factory=dict, init=False)
    _live_parts: dict[str, int] = field(default_factory=dict, init=False)
    _reactions: dict[str, int] = field(default_factory=dict, init=False)
    _claim_locks: dict[str, asyncio.Lock] = field(default_factory=dict, init=False)
    # Posts a workspace's answers in parts may make per second together (Slack also caps a workspace's posts).
    parts_posts_per_second: float = 5.0

    def scheduler(self, team_id: str, method: str = "chat.update") -> UpdateScheduler[Any]:
        key = (team_id, method)
        sched = self._schedulers.get(key)
        if sched is None:
            lim = self.limits.get(method, BudgetLimit(45, 60.0))
            sched = UpdateScheduler(
                limit=lim.limit,
                window=lim.window,
                min_interval=self.min_interval,
                clock=self.clock,
                sleep=self.sleep,
                name=f"{method}@{team_id}",
                window_log=self.window_factory(team_id, method, lim),
                **self.scheduler_options,
            )
            self._schedulers[key] = sched
        return sched

    async def admit_stream(self, team_id: str) -> bool:
        """Whether a native stream may start now in this workspace; if so its start is counted.

        A stream costs a ``chat.startStream`` now and a ``chat.stopStream`` later, both Tier 2: admit one only
        while the start window has room and the stop window has room for every live stream's stop too.
        """
        start = self.scheduler(team_id, "chat.startStream")
        stop = self.scheduler(team_id, "chat.stopStream")
        now = self.clock()
        live = self._live_streams.get(team_id, 0)
        if await start.used(now) >= start.limit or await stop.used(now) + live >= stop.limit:
            return False
        if await start._window_log.acquire(now, start.limit) is None:
            return False
        self._live_streams[team_id] = live + 1
        return True

    def stream_ended(self, team_id: str) -> None:
        """A stream admitted by :meth:`admit_stream` has stopped (or never started)."""
        self._live_streams[team_id] = max(0, self._live_streams.get(team_id, 0) - 1)

    def reactions_on(self, team_id: str) -> int:
        """Acknowledgement reactions on questions now (each will need a ``reactions.remove``)."""
        return self._reactions.get(team_id, 0)

    def reaction_placed(self, team_id: str, delta: int) -> None:
        self._reactions[team_id] = max(0, self._reactions.get(team_id, 0) + delta)

    def live_started(self, team_id: str, how: str) -> None:
        """An answer in this workspace went live ``how`` ("parts", "reposts"; see :mod:`bot.render.planner`)."""
        self._live_parts[f"{team_id}:{how}"] = self._live_parts.get(f"{team_id}:{how}", 0) + 1

    def live_ended(self, team_id: str, how: str) -> None:
        key = f"{team_id}:{how}"
        self._live_parts[key] = max(0, self._live_parts.get(key, 0) - 1)

    def live_in(self, team_id: str, how: str) -> int:
        """Answers live ``how`` in this workspace now."""
        return self._live_parts.get(f"{team_id}:{how}", 0)

    async def claim_placeholder(self, team_id: str, keep: int) -> bool:
        """Whether a placeholder may be posted now: the ``chat.update`` window can pay for its first text and
        its final with ``keep`` units left beyond every reservation (every instance's, with a shared window).
        If so it counts as held (:meth:`placeholder_units`) until :meth:`live_ended` ``(team_id,
        "placeholders")``, when its slot holds the reservations. This process's claims go one at a time, so
        two answers deciding at once can't both take the last room."""
        lock = self._claim_locks.setdefault(team_id, asyncio.Lock())
        async with lock:
            updates = self.scheduler(team_id, "chat.update")
            claimed = await updates.claim_room(PLACEHOLDER_UNITS, keep, held=self.placeholder_units(team_id))
            if claimed:
                self.live_started(team_id, "placeholders")
            return claimed

    def placeholder_units(self, team_id: str) -> int:
        """``chat.update`` units held by placeholders decided and not yet posted (each: first text and final)."""
        return PLACEHOLDER_UNITS * self.live_in(team_id, "placeholders")

    def demand(self, team_id: str, method: str) -> int:
        """Units of (workspace, method) this process holds now for finals, first texts and placeholders about
        to be posted: what it declares to the other instances sharing the window."""
        held = self.placeholder_units(team_id) if method == "chat.update" else 0
        return self.scheduler(team_id, method).reserved + held

    def part_interval(self, team_id: str, base: float) -> float:
        """How often one answer in parts may post: ``base``, stretched so that all of the workspace's answers
        in parts post at most ``parts_posts_per_second`` together."""
        return max(base, self.live_in(team_id, "parts") / self.parts_posts_per_second)

    def schedulers(self) -> dict[tuple[str, str], UpdateScheduler[Any]]:
        return dict(self._schedulers)

    @contextlib.asynccontextmanager
    async def post_turn(self, team_id: str, channel: str) -> Any:
        """Wait for this channel's ``chat.postMessage`` turn; posts to one channel go one at a time.

        The post is charged to the bucket when it completes (no earlier than Slack received it), so the
        pacing seen by Slack is never tighter than ours.
        """
        key = (team_id, channel)
        lock = self._post_locks.setdefault(key, asyncio.Lock())
        async with lock:
            bucket = self._posts.setdefault(key, _PostBucket(float(self.post_burst), self.clock()))
            while True:
                now = self.clock()
                refill = (now - bucket.at) * self.post_rate
                bucket.tokens = min(float(self.post_burst), bucket.tokens + refill)
                bucket.at = now
                wait = max(bucket.paused_until - now, (1.0 - bucket.tokens) / self.post_rate)
                if wait <= 0:
                    break
                await self.sleep(wait)
            try:
                yield
            finally:
                now = self.clock()
                refill = (now - bucket.at) * self.post_rate
                bucket.tokens = min(float(self.post_burst), bucket.tokens + refill) - 1.0
                bucket.at = now

    def post_ratelimited(self, team_id: str, channel: str, retry_after: float) -> None:
        """Record a 429 on ``chat.postMessage`` so the channel's next turn waits ``retry_after``."""
        bucket = self._posts.setdefault((team_id, channel), _PostBucket(0.0, self.clock()))
        bucket.tokens = 0.0
        bucket.paused_until = max(bucket.paused_until, self.clock() + retry_after)

    @property
    def ratelimited(self) -> int:
        return sum(s.ratelimited for s in self._schedulers.values())

    async def aclose(self) -> None:
        for sched in self._schedulers.values():
            await sched.aclose()
        self._schedulers.clear()
