"""Per-user and per-workspace answer limits counted across instances (the Redis twin of ``bot.limits.RunLimits``).

Running answers are members of sorted sets scored by their lease's end, so an answer whose instance died stops
counting when its lease runs out (:meth:`RedisLimits.renew` extends the leases of this instance's answers). The
per-minute rate is a sorted set of question times. One script decides and records atomically (one round trip),
and one script releases (one round trip).

When Redis cannot answer, the limits fall back to this process's own counts (``RunLimits``) with the same
settings: a user can then run up to the per-user limit on each instance, never without limit.
"""

from __future__ import annotations

import logging
import uuid

import redis.asyncio as aioredis

from bot.limits import Admission, LimitSettings, RunLimits
from bot.state.redis_client import REDIS_ERRORS, key

log = logging.getLogger("variance.state")

# KEYS: user running zset, workspace running zset, user asked zset
# ARGV: lease_ms, user_max, per_min, workspace_max, member
# Returns {code, wait_ms}: code 0 admitted, 1 user_rate, 2 user_running, 3 workspace_running.
_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease, user_max, per_min, ws_max = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now - 60000)
if per_min > 0 and redis.call('ZCARD', KEYS[3]) >= per_min then
  local oldest = redis.call('ZRANGE', KEYS[3], 0, 0, 'WITHSCORES')
  return {1, tonumber(oldest[2]) + 60000 - now}
end
if user_max > 0 and redis.call('ZCARD', KEYS[1]) >= user_max then return {2, 30000} end
if ws_max > 0 and redis.call('ZCARD', KEYS[2]) >= ws_max then return {3, 30000} end
redis.call('ZADD', KEYS[3], now, ARGV[5])
redis.call('ZADD', KEYS[1], now + lease, ARGV[5])
redis.call('ZADD', KEYS[2], now + lease, ARGV[5])
redis.call('PEXPIRE', KEYS[1], lease)
redis.call('PEXPIRE', KEYS[2], lease)
redis.call('PEXPIRE', KEYS[3], 60000)
return {0, 0}
"""

# KEYS: user running zset, workspace running zset. ARGV: member. One round trip for both removals.
_RELEASE = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
"""

_REASONS = {1: "user_rate", 2: "user_running", 3: "workspace_running"}


# How long a running answer's limit slot outlives its instance's last renewal (renew every lease / 4).
LIMIT_LEASE_S = 120.0


class RedisLimits:
    def __init__(
        self, client: aioredis.Redis, settings: LimitSettings | None = None, *, lease_s: float = LIMIT_LEASE_S
    ):
        self.settings = settings or LimitSettings()
        self._client = client
        self._lease_ms = int(lease_s * 1000)
        self._admit = client.register_script(_ADMIT)
        self._release = client.register_script(_RELEASE)
        self._local = RunLimits(self.settings)
        self._held: dict[str, Admission] = {}

    @staticmethod
    def _keys(scope: str, user: str) -> list[str]:
        return [key("run", scope, "user", user), key("run", scope, "all"), key("asked", scope, user)]

    async def admit(self, scope: str, user: str) -> Admission:
        member = uuid.uuid4().hex
        s = self.settings
        try:
            code, wait_ms = await self._admit(
                keys=self._keys(scope, user),
                args=[self._lease_ms, s.user_max_running, s.user_questions_per_min, s.workspace_max_running, member],
            )
        except REDIS_ERRORS as error:
            log.warning("answer limits fell back to this instance: %s", type(error).__name__)
            return await self._local.admit(scope, user)
        if int(code):
            return Admission(False, scope, user, _REASONS[int(code)], int(wait_ms) / 1000.0)  # type: ignore[arg-type]
        admission = Admission(True, scope, user)
        admission.token = member
        self._held[member] = admission
        return admission

    async def release(self, admission: Admission) -> None:
        if not admission.ok or admission.released:
            return
        member = admission.token
        if not member:  # admitted by the local fallback
            await self._local.release(admission)
            return
        admission.released = True
        self._held.pop(member, None)
        user_key, all_key, _ = self._keys(admission.scope, admission.user)
        try:
            await self._release(keys=[user_key, all_key], args=[member])
        except REDIS_ERRORS as error:
            # The lease ends the count on its own.
            log.warning("answer limit not released in Redis: %s", type(error).__name__)

    async def renew(self) -> None:
        """Extend the leases of the answers this instance runs (call every ``lease / 4``)."""
        if not self._held:
            return
        try:
            seconds, micros = await self._client.time()
            until = int(seconds) * 1000 + int(micros) // 1000 + self._lease_ms
            async with self._client.pipeline(transaction=False) as pipe:
                for member, admission in self._held.items():
                    user_key, all_key, _ = self._keys(admission.scope, admission.user)
                    pipe.zadd(user_key, {member: until}, xx=True)
                    pipe.zadd(all_key, {member: until}, xx=True)
                    pipe.pexpire(user_key, self._lease_ms)
                    pipe.pexpire(all_key, self._lease_ms)
                await pipe.execute()
        except REDIS_ERRORS as error:
            log.warning("answer limit leases not renewed: %s", type(error).__name__)
