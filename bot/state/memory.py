"""Conversation memory (the agent's history) shared by every instance: the Agents SDK's own ``RedisSession``.

With ``REDIS_URL`` a follow-up answered by another instance replays the earlier turns. Each conversation is
the SDK's keys under ``va:session:{conversation id}`` (a hash and a list of items); what this adds to the SDK:

- **Who said what.** Each stored item is wrapped with the Slack (or Teams) user whose question produced it,
  the chat message asked in, and when it was stored (:class:`bot.state.redis_session.AttributedRedisSession`),
  so ``/variance forget`` and a deleted message remove exactly their turns, as on one instance.
- **Retention.** Every write sets the conversation's TTL to the retention period (``VARIANCE_RETENTION_DAYS``),
  and the hourly purge (:meth:`RedisSessions.purge_older_than`) drops older items of conversations still in use.
- **Deletion.** :meth:`forget_place` / :meth:`forget_source` filter a conversation's list in one script (an
  atomic read-filter-rewrite), and leave a mark, so a run that was going on at the time stores nothing the
  deletion covered when it ends (the SQLite store's "no resurrection" rule).
- **Bounded.** After each question the list is trimmed to what a run may replay (``VARIANCE_HISTORY_ITEMS``).

When Redis cannot answer, a question is answered without its history and the turn is not stored (logged);
forget and purge log the failure (the purge tries again the next hour; the TTL ends everything anyway).
Message text lives in Redis for the retention period: protect Redis as you would the SQLite file (no
persistence, or encrypted disks, and a private network).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis

from analyst.memory import MARK_LIFETIME_SECONDS, Forgotten
from bot.state.redis_client import REDIS_ERRORS, key

if TYPE_CHECKING:
    from agents.memory import Session

log = logging.getLogger("variance.state")

SESSION_PREFIX = key("session")
MARKS_KEY = key("session-marks")

# KEYS: messages list, session hash, counter. ARGV: speaker ('' any), source ('' any), stored before (s, '' any).
# Drops the matching items (each a JSON envelope {i: item, s: speaker, m: source, t: seconds}); keeps the rest
# in order and the list's TTL; deletes the conversation when nothing is left. Returns how many were dropped.
_FILTER = """
local items = redis.call('LRANGE', KEYS[1], 0, -1)
local kept, dropped = {}, 0
local cutoff = tonumber(ARGV[3])
for _, raw in ipairs(items) do
  local ok, env = pcall(cjson.decode, raw)
  local drop = ok and type(env) == 'table'
  if drop and ARGV[1] ~= '' and env['s'] ~= ARGV[1] then drop = false end
  if drop and ARGV[2] ~= '' and env['m'] ~= ARGV[2] then drop = false end
  if drop and cutoff ~= nil and not (tonumber(env['t']) ~= nil and tonumber(env['t']) < cutoff) then drop = false end
  if drop then dropped = dropped + 1 else kept[#kept + 1] = raw end
end
if dropped == 0 then return 0 end
if #kept == 0 then
  redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
  return dropped
end
local ttl = redis.call('PTTL', KEYS[1])
redis.call('DEL', KEYS[1])
for i = 1, #kept, 500 do
  redis.call('RPUSH', KEYS[1], unpack(kept, i, math.min(i + 499, #kept)))
end
if ttl > 0 then redis.call('PEXPIRE', KEYS[1], ttl) end
return dropped
"""


def literal_pattern(text: str) -> str:
    """``text`` matched literally in a SCAN pattern."""
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


def session_keys(conversation_id: str) -> tuple[str, str, str]:
    """The SDK's keys of one conversation: its hash, its list of items, its counter."""
    base = f"{SESSION_PREFIX}:{conversation_id}"
    return base, base + ":messages", base + ":counter"


class RedisSessions:
    """The analyst's :class:`~analyst.agent.session.SessionStore` over Redis, with the deletions the bot's
    privacy rules need (``forget_place``, ``forget_source``, ``purge_older_than``)."""

    def __init__(self, client: aioredis.Redis, *, ttl_seconds: float) -> None:
        self._client = client
        self._ttl = max(1, int(ttl_seconds))
        self._filter = client.register_script(_FILTER)

    async def open(self, conversation_id: str, *, speaker: str | None, source: str | None, limit: int) -> Session:
        # The Agents SDK loads on first use, not when the bot is imported.
        from agents.memory import SessionSettings

        from bot.state.redis_session import AttributedRedisSession

        try:
            opened_ms = await self._server_ms()
        except REDIS_ERRORS as error:
            log.warning("conversation memory unavailable: %s", type(error).__name__)
            opened_ms = None
        return AttributedRedisSession(
            conversation_id,
            redis_client=self._client,
            key_prefix=SESSION_PREFIX,
            ttl=self._ttl,
            session_settings=SessionSettings(limit=limit),
            speaker=speaker,
            source=source,
            opened_ms=opened_ms,
            marks_key=MARKS_KEY,
        )

    async def close(self, session: Session, *, keep: int) -> None:
        _, messages, _ = session_keys(session.session_id)
        try:
            if keep > 0:
                await self._client.ltrim(messages, -keep, -1)
            else:
                await self._client.delete(*session_keys(session.session_id))
        except REDIS_ERRORS as error:  # housekeeping: the next question trims again
            log.warning("conversation memory not trimmed: %s", type(error).__name__)
        try:
            await session.close()  # type: ignore[attr-defined]  # the client is shared: only its own leftovers
        except (*REDIS_ERRORS, RuntimeError) as error:
            log.warning("conversation session not closed: %s", type(error).__name__)

    async def forget_place(self, place: str, *, speaker: str | None = None) -> Forgotten:
        """Delete the memory of a place (``team:channel`` and its threads): everything, or ``speaker``'s turns."""
        return await self._forget(place, speaker=speaker, source=None)

    async def forget_source(self, place: str, source: str) -> Forgotten:
        """Delete the turn a chat message (``source``) produced in a place."""
        return await self._forget(place, speaker=None, source=source)

    async def drop_turn(self, conversation_id: str, source: str) -> int:
        """Delete what the question ``source`` stored in the conversation so far (a dead instance's unfinished
        turn, before a survivor re-runs that question: the history then holds it once). No deletion mark: the
        re-run stores its turn as usual. How many items went."""
        try:
            dropped = await self._filter_one(session_keys(conversation_id)[1], "", source, "")
        except REDIS_ERRORS as error:
            log.warning("unfinished turn not dropped: %s", type(error).__name__)
            return 0
        return dropped.items

    async def purge_older_than(self, seconds: float, *, now: float | None = None) -> Forgotten:
        """Delete every stored item older than ``seconds`` (conversations left empty go)."""
        cutoff = (time.time() if now is None else now) - seconds
        total = Forgotten()
        try:
            async for messages in self._client.scan_iter(match=f"{SESSION_PREFIX}:*:messages", count=500):
                total += await self._filter_one(str(messages), "", "", str(cutoff))
            await self._client.zremrangebyscore(
                MARKS_KEY, "-inf", await self._server_ms() - int(MARK_LIFETIME_SECONDS * 1000)
            )
        except REDIS_ERRORS as error:
            log.warning("conversation memory not purged: %s", type(error).__name__)
        return total

    async def _forget(self, place: str, *, speaker: str | None, source: str | None) -> Forgotten:
        total = Forgotten()
        try:
            mark = json.dumps({"p": place, "s": speaker, "m": source, "n": uuid.uuid4().hex})
            await self._client.zadd(MARKS_KEY, {mark: await self._server_ms()})
            own = session_keys(place)[1]
            threads = f"{literal_pattern(session_keys(place)[0])}:*:messages"
            names = [own] if await self._client.exists(own) else []
            names += [str(name) async for name in self._client.scan_iter(match=threads, count=500)]
            for messages in dict.fromkeys(names):
                total += await self._filter_one(messages, speaker or "", source or "", "")
        except REDIS_ERRORS as error:
            log.warning("conversation memory not forgotten: %s", type(error).__name__)
        return total

    async def _filter_one(self, messages: str, speaker: str, source: str, cutoff: str) -> Forgotten:
        base = messages.removesuffix(":messages")
        dropped = int(
            await self._filter(keys=[messages, base, base + ":counter"], args=[speaker, source, cutoff])
        )
        return Forgotten(conversations=1 if dropped else 0, items=dropped)

    async def _server_ms(self) -> int:
        seconds, micros = await self._client.time()
        return int(seconds) * 1000 + int(micros) // 1000


def covers(mark: Any, session_id: str, speaker: str | None, source: str | None) -> bool:
    """Whether a deletion mark covers what a session (``session_id``, ``speaker``, ``source``) would store."""
    if not isinstance(mark, dict):
        return False
    place = str(mark.get("p") or "")
    if not place or not (session_id == place or session_id.startswith(place + ":")):
        return False
    return mark.get("s") in (None, speaker) and mark.get("m") in (None, source)
