"""One log of calls per conversation, shared by every instance (``REDIS_URL``): Teams' per-conversation limits.

Teams limits each bot per conversation (7 calls a second, 8 per 2 s, 60 per 30 s, 1,800 an hour), whichever
instance makes the call. :class:`SharedCallLog` keeps the calls to one conversation in Redis, where one atomic
script decides whether one more call fits every window and, if so, counts it; so instances that answer in the
same conversation together stay under the limits.

It keeps the local pacer's rule (``bot/teams/pacing.py``): Teams counts a call when it *arrives*, somewhere
between our send and its response, so a call is logged "in flight" at its send and counts as *now* until its
response comes back (:meth:`SharedCallLog.complete`), when it moves to the response's time. A call left in
flight longer than any request may last (its instance died) counts from then on as having arrived at that
limit. A 429 pauses the conversation for every instance (:meth:`SharedCallLog.pause`). Times are Redis' own
clock (``TIME``), so the instances' clocks never need to agree.

Keys (``va:pace:{scope}:{conversation}``, ``...:flying``, ``...:pause``) expire after the longest window.
Errors reach the caller (:data:`REDIS_ERRORS`): the pacer decides how to degrade.
"""

from __future__ import annotations

from collections.abc import Sequence

import redis.asyncio as aioredis

from bot.state.redis_client import key

# KEYS: done zset (member -> when it arrived at the latest), in-flight zset (member -> its send), pause key.
# ARGV: limits as "count,window_ms;count,window_ms", margin_ms, member ('' only measures), the longest a call may
#       stay in flight (ms), how long entries are kept (ms).
# Returns {ms to wait before one more call fits (0: it fits), 1 if ``member`` was counted now else 0}.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local margin, member, stale, keep = tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4]), tonumber(ARGV[5])
local lost = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - stale, 'WITHSCORES')
for i = 1, #lost, 2 do
  redis.call('ZREM', KEYS[2], lost[i])
  redis.call('ZADD', KEYS[1], tonumber(lost[i + 1]) + stale, lost[i])
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - keep)
local wait = redis.call('PTTL', KEYS[3])
if wait < 0 then wait = 0 end
local flying, done = redis.call('ZCARD', KEYS[2]), redis.call('ZCARD', KEYS[1])
for count, window in string.gmatch(ARGV[1], '(%d+),(%d+)') do
  count, window = tonumber(count), tonumber(window)
  if flying + done >= count then
    -- the count-th newest arrival: a call in flight arrives 'now' at the latest, after every finished one
    local at = now
    if count > flying then
      local k = count - flying
      at = tonumber(redis.call('ZRANGE', KEYS[1], -k, -k, 'WITHSCORES')[2])
    end
    wait = math.max(wait, at + window + margin - now)
  end
end
local taken = 0
if wait <= 0 and member ~= '' then
  redis.call('ZADD', KEYS[2], now, member)
  redis.call('PEXPIRE', KEYS[2], keep + stale)
  taken = 1
end
return {math.ceil(math.max(0, wait)), taken}
"""

# KEYS: done zset, in-flight zset. ARGV: member, keep ms. The call's response is here: it arrived by now.
_COMPLETE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 1
"""

# KEYS: done zset. ARGV: keep ms, then (member, ms ago) pairs: calls made while this instance could not reach Redis.
_RECORD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
for i = 2, #ARGV, 2 do
  redis.call('ZADD', KEYS[1], now - tonumber(ARGV[i + 1]), ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
return 1
"""

# KEYS: pause key. ARGV: ms. Never shortens a longer pause; returns the pause's ms left.
_PAUSE = """
local left, ms = redis.call('PTTL', KEYS[1]), tonumber(ARGV[1])
if left < ms then
  redis.call('SET', KEYS[1], '1', 'PX', ms)
  return ms
end
return left
"""


class SharedCallLog:
    """Per-conversation call logs in Redis under ``limits`` ((count, window seconds), ...) for one ``scope`` (the
    bot: its calls are limited together)."""

    def __init__(
        self,
        client: aioredis.Redis,
        scope: str,
        limits: Sequence[tuple[int, float]],
        *,
        margin_s: float,
        max_flight_s: float = 120.0,
    ) -> None:
        self._scope = scope
        self._limits = ";".join(f"{count},{int(window * 1000)}" for count, window in limits)
        self._margin_ms = int(margin_s * 1000)
        self._flight_ms = int(max_flight_s * 1000)
        self._keep_ms = int((max(window for _, window in limits) + margin_s) * 1000) + 1
        self._acquire = client.register_script(_ACQUIRE)
        self._complete = client.register_script(_COMPLETE)
        self._record = client.register_script(_RECORD)
        self._pause = client.register_script(_PAUSE)

    def _keys(self, conversation: str) -> list[str]:
        base = key("pace", self._scope, conversation)
        return [base, base + ":flying", base + ":pause"]

    async def acquire(self, conversation: str, member: str) -> float:
        """Count ``member`` as a call in flight if one more call fits every window now (returns 0), else count
        nothing and return the seconds to wait before asking again."""
        args: list[str | int] = [self._limits, self._margin_ms, member, self._flight_ms, self._keep_ms]
        wait_ms, taken = await self._acquire(keys=self._keys(conversation), args=args)
        return 0.0 if int(taken) else max(0.001, int(wait_ms) / 1000.0)

    async def complete(self, conversation: str, member: str) -> None:
        """``member``'s response came back: it counts from now, not from its send."""
        await self._complete(keys=self._keys(conversation)[:2], args=[member, self._keep_ms])

    async def record(self, conversation: str, calls: Sequence[tuple[str, float]]) -> None:
        """Add calls made without Redis ((member, seconds ago) each), so every instance counts them too."""
        args: list[str | int] = [self._keep_ms]
        for member, ago in calls:
            args += [member, max(0, int(ago * 1000))]
        await self._record(keys=self._keys(conversation)[:1], args=args)

    async def pause(self, conversation: str, seconds: float) -> float:
        """A 429: no instance calls ``conversation`` for ``seconds``; returns how long the shared pause lasts."""
        left = await self._pause(keys=self._keys(conversation)[2:], args=[max(1, int(seconds * 1000))])
        return int(left) / 1000.0
