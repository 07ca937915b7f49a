"""One rolling Slack budget per workspace x method, shared by every instance (``REDIS_URL``).

Slack counts a method's calls per app per workspace, so two instances that each pace themselves to the tier
would together spend twice the budget and meet 429s. Here every call is taken from one Redis sorted set per
(workspace, method) by an atomic script that also applies today's priorities across instances:

- a *final* (the answer's last edit) may take any free call;
- a *first text* may not take the calls that live finals anywhere need, but always keeps a small floor
  (``limit // 10``) so first texts are never starved;
- *progress* takes only what neither finals nor first texts anywhere need.

Each instance declares its demand (finals and first texts waiting) with :meth:`RedisWindow.declare`; a
declaration expires unless renewed, so a dead instance's demand vanishes. A 429 pauses the (workspace, method)
for every instance until ``Retry-After``.

When Redis is slow or down, :meth:`take` falls back to a local window holding ``degraded_share`` of the limit
(default a half: two instances can't overspend), never to unlimited; it goes back to Redis on the next call.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot.state.redis_client import key

log = logging.getLogger("variance.state")


class Urgency(IntEnum):
    PROGRESS = 0
    FIRST = 1
    FINAL = 2


# KEYS: calls zset, pause key, demand hash, demand expiry zset
# ARGV: window_ms, limit, urgency, member, first_floor
# Returns: 0 when a call was taken, else milliseconds to wait before asking again.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window, limit, urgency = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local paused = redis.call('PTTL', KEYS[2])
if paused > 0 then return paused end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local used = redis.call('ZCARD', KEYS[1])
local finals, firsts = 0, 0
if urgency < 2 then
  local gone = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now)
  for _, inst in ipairs(gone) do
    redis.call('HDEL', KEYS[3], inst)
    redis.call('ZREM', KEYS[4], inst)
  end
  local demand = redis.call('HVALS', KEYS[3])
  for _, v in ipairs(demand) do
    local sep = string.find(v, ':')
    finals = finals + tonumber(string.sub(v, 1, sep - 1))
    firsts = firsts + tonumber(string.sub(v, sep + 1))
  end
end
local held = 0
if urgency == 1 then
  held = math.min(finals, limit - tonumber(ARGV[5]))
elseif urgency == 0 then
  held = finals + firsts
end
if used + held < limit then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], window)
  return 0
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if oldest[2] == nil then return 250 end
return math.max(1, tonumber(oldest[2]) + window - now)
"""


@dataclass(frozen=True, slots=True)
class Demand:
    finals: int = 0
    firsts: int = 0


class _LocalWindow:
    """The fallback while Redis is unavailable: this process's calls in the last window, against a share."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._calls: dict[tuple[str, str], deque[float]] = {}

    def take(self, scope: str, method: str, limit: int, window_s: float) -> float:
        now = self._clock()
        calls = self._calls.setdefault((scope, method), deque())
        while calls and now - calls[0] >= window_s:
            calls.popleft()
        if len(calls) < limit:
            calls.append(now)
            return 0.0
        return calls[0] + window_s - now


class RedisWindow:
    def __init__(
        self,
        client: aioredis.Redis,
        *,
        instance: str | None = None,
        window_s: float = 60.0,
        degraded_share: float = 0.5,
        demand_ttl_s: float = 15.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self.instance = instance or uuid.uuid4().hex
        self._window_ms = int(window_s * 1000)
        self._window_s = window_s
        self._share = degraded_share
        self._demand_ttl_ms = int(demand_ttl_s * 1000)
        self._take = client.register_script(_TAKE)
        self._local = _LocalWindow(clock)
        self.degraded_calls = 0

    @staticmethod
    def _keys(scope: str, method: str) -> list[str]:
        base = key("budget", scope, method)
        return [base, base + ":pause", base + ":demand", base + ":demand-exp"]

    async def take(self, scope: str, method: str, limit: int, urgency: Urgency) -> float:
        """Take one call of ``method`` in ``scope``'s window: 0.0 when taken, else seconds to wait first."""
        try:
            wait_ms = await self._take(
                keys=self._keys(scope, method),
                args=[self._window_ms, limit, int(urgency), uuid.uuid4().hex, max(1, limit // 10)],
            )
        except (RedisError, OSError, TimeoutError) as error:
            self.degraded_calls += 1
            log.warning("Slack budget fell back to a local share: %s", type(error).__name__)
            share = max(1, int(limit * self._share))
            return self._local.take(scope, method, share, self._window_s)
        return int(wait_ms) / 1000.0

    async def declare(self, scope: str, method: str, demand: Demand) -> None:
        """This instance's waiting finals and first texts for (scope, method); expires unless renewed."""
        keys = self._keys(scope, method)
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                if demand.finals or demand.firsts:
                    pipe.hset(keys[2], self.instance, f"{demand.finals}:{demand.firsts}")
                    pipe.zadd(keys[3], {self.instance: await self._server_ms() + self._demand_ttl_ms})
                else:
                    pipe.hdel(keys[2], self.instance)
                    pipe.zrem(keys[3], self.instance)
                await pipe.execute()
        except (RedisError, OSError, TimeoutError) as error:
            log.warning("Slack budget demand not shared: %s", type(error).__name__)

    async def pause(self, scope: str, method: str, seconds: float) -> None:
        """A 429: no instance calls ``method`` in ``scope`` for ``seconds`` (never shortens a longer pause)."""
        pause_key = self._keys(scope, method)[1]
        ms = max(1, int(seconds * 1000))
        try:
            current = await self._client.pttl(pause_key)
            if current is None or int(current) < ms:
                await self._client.set(pause_key, "1", px=ms)
        except (RedisError, OSError, TimeoutError) as error:
            log.warning("Slack 429 pause not shared: %s", type(error).__name__)

    async def used(self, scope: str, method: str) -> int:
        base = self._keys(scope, method)[0]
        now_ms = await self._server_ms()
        await self._client.zremrangebyscore(base, "-inf", now_ms - self._window_ms)
        return int(await self._client.zcard(base))

    async def _server_ms(self) -> int:
        seconds, micros = await self._client.time()
        return int(seconds) * 1000 + int(micros) // 1000


# The pacing module's RollingWindow over Redis: one sorted set per (workspace, method) shared by every instance.
# KEYS: calls zset, pause key. ARGV: window_ms, limit (or -1 for none), member (empty: only count).
# Returns {counted, ms until the oldest call leaves the window (-1: none), taken (1/0), ms the pause has left}.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local paused = redis.call('PTTL', KEYS[2])
if paused < 0 then paused = 0 end
local used = redis.call('ZCARD', KEYS[1])
local taken = 0
if ARGV[3] ~= '' and paused == 0 and (limit < 0 or used < limit) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  used = used + 1
  taken = 1
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local free = -1
if oldest[2] ~= nil then free = math.max(0, tonumber(oldest[2]) + window - now) end
return {used, free, taken, paused}
"""

# KEYS: calls zset. ARGV: window_ms, member. A finished call counts from when it returned (XX: if still counted).
_COMPLETE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], 'XX', now, ARGV[2])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
return 1
"""


class SharedWindow:
    """``bot.render.pacing.RollingWindow`` for one (workspace, method), counted in Redis for every instance.

    The scheduler keeps its priorities and reservations; the count it reads (:meth:`usage`) and the unit it
    claims (:meth:`acquire`, atomic across instances) are the workspace's, so all instances together never
    pass the limit. A shared 429 pause (:meth:`pause`) reads as a full window until it ends. When Redis cannot
    answer, the window falls back to a local count against ``degraded_share`` of the limit.
    """

    def __init__(
        self, client: aioredis.Redis, team_id: str, method: str, limit: int, window_s: float, *,
        degraded_share: float = 0.5,
    ) -> None:
        self.key = (team_id, method)
        self.window = window_s
        self._client = client
        self._limit = limit
        self._window_ms = int(window_s * 1000)
        self._share = degraded_share
        base = key("budget", team_id, method)
        self._keys = [base, base + ":pause"]
        self._acquire = client.register_script(_ACQUIRE)
        self._complete = client.register_script(_COMPLETE)
        self._local: dict[str, float] = {}  # degraded mode: token -> when it counts from (local clock)
        self.degraded_calls = 0

    def _local_usage(self, now: float) -> tuple[int, float]:
        for token in [t for t, at in self._local.items() if at <= now - self.window]:
            del self._local[token]
        oldest = min(self._local.values(), default=float("inf"))
        # The local share is all this instance may use: report the rest of the window as spent by others.
        hidden = self._limit - max(1, int(self._limit * self._share))
        return len(self._local) + hidden, oldest + self.window

    async def usage(self, now: float) -> tuple[int, float]:
        try:
            used, free_ms, _, paused_ms = await self._acquire(keys=self._keys, args=[self._window_ms, -1, ""])
        except (RedisError, OSError, TimeoutError) as error:
            log.warning("Slack budget fell back to a local share: %s", type(error).__name__)
            return self._local_usage(now)
        if int(paused_ms) > 0:  # another instance met a 429: the window is full until the pause ends
            return max(int(used), self._limit), now + int(paused_ms) / 1000.0
        free_at = float("inf") if int(free_ms) < 0 else now + int(free_ms) / 1000.0
        return int(used), free_at

    async def acquire(self, now: float, limit: float) -> object | None:
        member = uuid.uuid4().hex
        bound = -1 if limit == float("inf") else int(limit)
        try:
            _, _, taken, _ = await self._acquire(keys=self._keys, args=[self._window_ms, bound, member])
        except (RedisError, OSError, TimeoutError) as error:
            self.degraded_calls += 1
            log.warning("Slack budget fell back to a local share: %s", type(error).__name__)
            counted, _ = self._local_usage(now)
            if counted >= min(limit, self._limit):
                return None
            token = "local:" + member
            self._local[token] = now
            return token
        return member if int(taken) else None

    async def complete(self, token: object, now: float) -> None:
        if not isinstance(token, str):
            return
        if token.startswith("local:"):
            if token in self._local:
                self._local[token] = max(self._local[token], now)
            return
        try:
            await self._complete(keys=self._keys[:1], args=[self._window_ms, token])
        except (RedisError, OSError, TimeoutError) as error:
            log.warning("Slack budget call not re-scored: %s", type(error).__name__)

    async def pause(self, seconds: float) -> None:
        """A 429: no instance calls this (workspace, method) for ``seconds`` (never shortens a longer pause)."""
        ms = max(1, int(seconds * 1000))
        try:
            current = await self._client.pttl(self._keys[1])
            if current is None or int(current) < ms:
                await self._client.set(self._keys[1], "1", px=ms)
        except (RedisError, OSError, TimeoutError) as error:
            log.warning("Slack 429 pause not shared: %s", type(error).__name__)


class SharedWindows:
    """The pacing module's ``window_factory`` for ``REDIS_URL``: one :class:`SharedWindow` per (workspace,
    method); :meth:`ratelimited` shares a 429 with every instance (called from the metered Slack client)."""

    def __init__(self, client: aioredis.Redis) -> None:
        self._client = client
        self._windows: dict[tuple[str, str], SharedWindow] = {}
        self._pausing: set[asyncio.Task[None]] = set()

    def __call__(self, team_id: str, method: str, limit: object) -> SharedWindow:
        window = SharedWindow(
            self._client, team_id, method, int(getattr(limit, "limit", 45)), float(getattr(limit, "window", 60.0))
        )
        self._windows[(team_id, method)] = window
        return window

    def ratelimited(self, method: str, retry_after_s: float) -> None:
        """Slack answered ``method`` with 429: pause it for every instance (the token is one workspace's)."""
        for (_team, name), window in list(self._windows.items()):
            if name == method:
                task = asyncio.get_running_loop().create_task(window.pause(retry_after_s), name="share-429")
                self._pausing.add(task)
                task.add_done_callback(self._pausing.discard)
