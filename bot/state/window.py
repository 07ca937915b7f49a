"""One rolling Slack budget per workspace x method, shared by every instance (``REDIS_URL``).

Slack counts a method's calls per app per workspace, so two instances that each pace themselves to the tier
would together spend twice the budget and meet 429s. :class:`SharedWindow` is the pacing module's
``RollingWindow`` (``bot/render/pacing.py``) counted in one Redis sorted set per (workspace, method) by an atomic
script, so all instances together stay under the limit. Each instance's scheduler keeps today's priorities over
the shared count (finals first, first texts never starved), reserving room for its own finals and first texts,
not for another instance's. A 429 pauses the (workspace, method) for every instance until ``Retry-After``.

When Redis is slow or down, the window falls back to a local count against ``degraded_share`` of the limit
(default a half: two instances can't overspend), never to unlimited; it goes back to Redis on the next call.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable

import redis.asyncio as aioredis

from bot.state.redis_client import REDIS_ERRORS, key

log = logging.getLogger("variance.state")


# What both scripts below share (KEYS: calls zset, pause key, demand hash, demand expiry zset): Redis' clock, the
# window pruned, each instance's demand (units its scheduler holds for finals and first texts) in a hash whose
# entries expire unless declared again (a dead instance's demand vanishes), and the other instances' total.
_WINDOW_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function prune(window)
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
  for _, gone in ipairs(redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now)) do
    redis.call('HDEL', KEYS[3], gone)
    redis.call('ZREM', KEYS[4], gone)
  end
end
local function declare(me, mine, ttl)
  if mine > 0 then
    redis.call('HSET', KEYS[3], me, mine)
    redis.call('ZADD', KEYS[4], now + ttl, me)
    redis.call('PEXPIRE', KEYS[3], ttl)
    redis.call('PEXPIRE', KEYS[4], ttl)
  else
    redis.call('HDEL', KEYS[3], me)
    redis.call('ZREM', KEYS[4], me)
  end
end
local function others_of(me)
  local others = 0
  local demand = redis.call('HGETALL', KEYS[3])
  for i = 1, #demand, 2 do
    if demand[i] ~= me then others = others + tonumber(demand[i + 1]) end
  end
  return others
end
"""

# The pacing module's RollingWindow over Redis: one sorted set per (workspace, method) shared by every instance.
# ARGV: window_ms, limit (or -1 for none), member (empty: only count), instance, its demand, demand ttl ms,
#       cap on the other instances' demand counted, reserved (1: the call spends a unit its instance declared).
# Returns {counted, ms until the oldest call leaves the window (-1: none), taken (1/0), ms the pause has left,
#          the other instances' demand (capped)}. A call is taken only while counted + others' demand < limit,
#          or, for a reserved call (a final or a first text, itself part of some instance's demand), while
#          counted < limit.
_ACQUIRE = _WINDOW_LUA + """
local window, limit = tonumber(ARGV[1]), tonumber(ARGV[2])
prune(window)
local paused = redis.call('PTTL', KEYS[2])
if paused < 0 then paused = 0 end
local used = redis.call('ZCARD', KEYS[1])
declare(ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]))
local others = math.min(others_of(ARGV[4]), tonumber(ARGV[7]))
local taken = 0
local held = others
if ARGV[8] == '1' then held = 0 end
if ARGV[3] ~= '' and paused == 0 and (limit < 0 or used + held < limit) then
  redis.call('ZADD', KEYS[1], now, ARGV[3])
  redis.call('PEXPIRE', KEYS[1], window)
  used = used + 1
  taken = 1
end
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
local free = -1
if oldest[2] ~= nil then free = math.max(0, tonumber(oldest[2]) + window - now) end
return {used, free, taken, paused, others}
"""

# A new live message's units (a placeholder's first text and final), claimed for all instances at once.
# ARGV: window_ms, limit, instance, its demand now, units claimed, units that must stay free, demand ttl ms.
# Returns 1 (claimed: the units are added to this instance's declared demand at once) or 0. Checked against every
# instance's whole demand (uncapped): two instances deciding at the same moment can't both spend the last room.
_CLAIM = _WINDOW_LUA + """
prune(tonumber(ARGV[1]))
local me, mine = ARGV[3], tonumber(ARGV[4])
local room = tonumber(ARGV[2]) - redis.call('ZCARD', KEYS[1]) - others_of(me) - mine
local claimed = 0
if redis.call('PTTL', KEYS[2]) <= 0 and room >= tonumber(ARGV[6]) then
  mine = mine + tonumber(ARGV[5])
  claimed = 1
end
declare(me, mine, tonumber(ARGV[7]))
return claimed
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
    pass the limit. With each call this instance also declares its demand (``demand()``: the units its scheduler
    holds for finals and first texts), and the other instances' demand counts as used: one instance's progress
    edits and first texts never take the units another instance's finals wait for, and finals everywhere share
    what is left. The others' demand counted is capped (``limit - limit // 4``), so no instance is ever starved.
    A shared 429 pause (:meth:`pause`) reads as a full window until it ends. When Redis cannot answer, the
    window falls back to a local count against ``degraded_share`` of the limit.
    """

    # While the window is full only because of other instances' demand, look again this soon (their finals
    # go out within seconds), not when the oldest call leaves the window.
    DEMAND_RECHECK_S = 0.5
    DEMAND_TTL_S = 10.0

    def __init__(
        self, client: aioredis.Redis, team_id: str, method: str, limit: int, window_s: float, *,
        degraded_share: float = 0.5,
        instance: str = "",
        demand: Callable[[], int] | None = None,
    ) -> None:
        self.key = (team_id, method)
        self.window = window_s
        self._client = client
        self._limit = limit
        self._window_ms = int(window_s * 1000)
        self._share = degraded_share
        base = key("budget", team_id, method)
        self._keys = [base, base + ":pause", base + ":demand", base + ":demand-exp"]
        self._instance = instance or uuid.uuid4().hex
        self._demand = demand
        self._others_cap = limit - limit // 4
        self._acquire = client.register_script(_ACQUIRE)
        self._claim = client.register_script(_CLAIM)
        self._complete = client.register_script(_COMPLETE)
        self._local: dict[str, float] = {}  # degraded mode: token -> when it counts from (local clock)
        self.degraded_calls = 0
        self.others_seen = 0  # the other instances' demand (capped) counted in the last usage()
        # Every script call declares this instance's demand as computed before it is sent: one at a time, so a
        # call computed earlier can't land after a claim and take back the units the claim declared.
        self._declaring = asyncio.Lock()

    def _local_usage(self, now: float) -> tuple[int, float]:
        for token in [t for t, at in self._local.items() if at <= now - self.window]:
            del self._local[token]
        oldest = min(self._local.values(), default=float("inf"))
        # The local share is all this instance may use: report the rest of the window as spent by others.
        hidden = self._limit - max(1, int(self._limit * self._share))
        return len(self._local) + hidden, oldest + self.window

    def _args(self, bound: int, member: str, reserved: bool = False) -> list[int | str]:
        mine = 0
        if self._demand is not None:
            try:
                mine = max(0, int(self._demand()))
            except (KeyError, LookupError):  # the scheduler is not there yet
                mine = 0
        ttl_ms = int(self.DEMAND_TTL_S * 1000)
        return [self._window_ms, bound, member, self._instance, mine, ttl_ms, self._others_cap, int(reserved)]

    async def usage(self, now: float) -> tuple[int, float]:
        try:
            async with self._declaring:
                used, free_ms, _, paused_ms, others = await self._acquire(keys=self._keys, args=self._args(-1, ""))
        except REDIS_ERRORS as error:
            log.warning("Slack budget fell back to a local share: %s", type(error).__name__)
            self.others_seen = 0
            return self._local_usage(now)
        if int(paused_ms) > 0:  # another instance met a 429: the window is full until the pause ends
            self.others_seen = 0  # for finals too: nothing goes out before the pause ends
            return max(int(used), self._limit), now + int(paused_ms) / 1000.0
        self.others_seen = int(others)
        free_at = float("inf") if int(free_ms) < 0 else now + int(free_ms) / 1000.0
        counted = int(used) + int(others)
        if int(others) and counted >= self._limit:
            free_at = min(free_at, now + self.DEMAND_RECHECK_S)
        return counted, free_at

    async def acquire(self, now: float, limit: float, *, reserved: bool = False) -> object | None:
        member = uuid.uuid4().hex
        bound = -1 if limit == float("inf") else int(limit)
        try:
            async with self._declaring:
                _, _, taken, _, _ = await self._acquire(keys=self._keys, args=self._args(bound, member, reserved))
        except REDIS_ERRORS as error:
            self.degraded_calls += 1
            log.warning("Slack budget fell back to a local share: %s", type(error).__name__)
            counted, _ = self._local_usage(now)
            if counted >= min(limit, self._limit):
                return None
            token = "local:" + member
            self._local[token] = now
            return token
        return member if int(taken) else None

    async def claim(self, units: int, keep: int, *, mine: int) -> bool:
        """Whether ``units`` more can be held for a new live message with ``keep`` units left free beyond every
        instance's demand (``mine``: this instance's own now, without the new units); if so they are declared
        as this instance's demand at once, atomically with the check. When Redis cannot answer, the local
        share decides (see :meth:`usage`)."""
        try:
            args: list[int | str] = [
                self._window_ms, self._limit, self._instance, mine, units, keep, int(self.DEMAND_TTL_S * 1000)
            ]
            async with self._declaring:
                return bool(int(await self._claim(keys=self._keys, args=args)))
        except REDIS_ERRORS as error:
            log.warning("Slack budget fell back to a local share: %s", type(error).__name__)
            counted, _ = self._local_usage(asyncio.get_running_loop().time())
            return self._limit - counted - mine >= keep

    async def complete(self, token: object, now: float) -> None:
        if not isinstance(token, str):
            return
        if token.startswith("local:"):
            if token in self._local:
                self._local[token] = max(self._local[token], now)
            return
        try:
            await self._complete(keys=self._keys[:1], args=[self._window_ms, token])
        except REDIS_ERRORS as error:
            log.warning("Slack budget call not re-scored: %s", type(error).__name__)

    async def pause(self, seconds: float) -> None:
        """A 429: no instance calls this (workspace, method) for ``seconds`` (never shortens a longer pause)."""
        ms = max(1, int(seconds * 1000))
        try:
            current = await self._client.pttl(self._keys[1])
            if current is None or int(current) < ms:
                await self._client.set(self._keys[1], "1", px=ms)
        except REDIS_ERRORS as error:
            log.warning("Slack 429 pause not shared: %s", type(error).__name__)


class SharedWindows:
    """The pacing module's ``window_factory`` for ``REDIS_URL``: one :class:`SharedWindow` per (workspace,
    method); :meth:`ratelimited` shares a 429 with every instance (called from the metered Slack client)."""

    def __init__(
        self, client: aioredis.Redis, *, instance: str = "", demand: Callable[[str, str], int] | None = None
    ) -> None:
        """``demand(team_id, method)``: the units this instance's scheduler holds now for finals and first texts
        (``UpdateScheduler.reserved``), declared to the other instances with every call."""
        self._client = client
        self._instance = instance
        self._demand = demand
        self._windows: dict[tuple[str, str], SharedWindow] = {}
        self._pausing: set[asyncio.Task[None]] = set()

    def __call__(self, team_id: str, method: str, limit: object) -> SharedWindow:
        demand = self._demand
        window = SharedWindow(
            self._client, team_id, method, int(getattr(limit, "limit", 45)), float(getattr(limit, "window", 60.0)),
            instance=self._instance,
            demand=None if demand is None else (lambda: demand(team_id, method)),
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
