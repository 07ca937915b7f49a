"""Running answers across instances: who runs each one, where its message is, and a lease that says it is alive.

Each instance records the answers it runs (:meth:`RedisRegistry.add`, then :meth:`~RedisRegistry.placed` the
moment the message exists) and renews their leases with :meth:`~RedisRegistry.heartbeat` (every few seconds). A
Stop click that reaches any instance is published on one channel; the instance that runs the answer cancels it.

When an instance dies its leases run out; at shutdown it ends them at once (:meth:`~RedisRegistry.release`). A
survivor's :meth:`~RedisRegistry.orphans` finds answers whose lease ended and claims each one in one atomic step
(a Lua script: the lease must still be over; the record now names the survivor, counts one more adoption and
gets a fresh lease that the survivor's heartbeat renews), so two survivors never both adopt it, and a survivor
that dies while finishing one leaves it to the next. The caller brings the message to a final state: the
question re-run into the same message (first adoption), else a clear note. Records expire after a day.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import redis.asyncio as aioredis

from bot.state.redis_client import REDIS_ERRORS, key
from bot.stop_signals import cancel_and_wait

log = logging.getLogger("variance.state")

RECORD_TTL_S = 24 * 3600
STOP_CHANNEL = key("stop")


@dataclass(slots=True)
class AnswerRecord:
    """What a survivor needs to finish an orphaned answer: where it is, and what to re-run. No file contents:
    the question is the user's text, ``source`` the Slack file's reference (id, name, type, private URL)."""

    answer_id: str
    instance: str
    team: str
    channel: str
    conversation_id: str
    entry: str
    user: str = ""
    thread_ts: str | None = None
    message_ts: str | None = None  # the answer's first message, once posted
    question: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    source: dict[str, Any] | None = None  # the dataset's Slack file (bot.files.SlackFile fields); None: none known
    source_ts: str | None = None  # the user's message that asked
    assistant_thread: bool = False
    asked_at: float = 0.0  # wall clock when it was asked (finding an unconfirmed first post)
    adoptions: int = 0  # how many times survivors adopted it: a re-run only on the first
    orphaned_ms: int = 0  # set on adoption: how long ago its previous owner's lease ended

    def dumps(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def loads(cls, text: str) -> AnswerRecord:
        """Tolerant of records written by an older or newer instance (a rolling deploy): unknown keys are
        dropped, missing ones take their defaults."""
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        record = cls(**{k: v for k, v in data.items() if k in known})
        if not isinstance(record.extra, dict):  # Lua's cjson writes an empty object as []
            record.extra = {}
        return record


# Adopt one orphan atomically: its lease must have ended (by Redis' clock); the record names the adopter, counts
# the adoption, how long it was orphaned, and a fresh lease. Returns the record as JSON, or nil.
_ADOPT = """
local ended = redis.call('ZSCORE', KEYS[1], ARGV[1])
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + math.floor(tonumber(now_parts[2]) / 1000)
if not ended or tonumber(ended) > now then return false end
local text = redis.call('GET', KEYS[2])
if not text then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return false
end
local ok, record = pcall(cjson.decode, text)
if not ok or type(record) ~= 'table' then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return false
end
record['instance'] = ARGV[2]
record['adoptions'] = (tonumber(record['adoptions']) or 0) + 1
record['orphaned_ms'] = now - tonumber(ended)
local out = cjson.encode(record)
redis.call('SET', KEYS[2], out, 'KEEPTTL')
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
return out
"""


class RedisRegistry:
    def __init__(
        self,
        client: aioredis.Redis,
        *,
        instance: str,
        lease_s: float = 20.0,
        on_stop: Callable[[str, str], object] | None = None,
    ) -> None:
        self._client = client
        self.instance = instance
        self._lease_ms = int(lease_s * 1000)
        self._on_stop = on_stop
        self._local: dict[str, AnswerRecord] = {}
        self._handovers: dict[str, Callable[[], object]] = {}
        self._listener: asyncio.Task[None] | None = None
        self._leases = key("answers", "leases")

    def _record_key(self, answer_id: str) -> str:
        return key("answer", answer_id)

    async def _now_ms(self) -> int:
        seconds, micros = await self._client.time()
        return int(seconds) * 1000 + int(micros) // 1000

    async def add(self, record: AnswerRecord, *, hand_over: Callable[[], object] | None = None) -> None:
        """Record an answer this instance runs; ``hand_over()`` (shutdown) ends it so a survivor can take it."""
        self._local[record.answer_id] = record
        if hand_over is not None:
            self._handovers[record.answer_id] = hand_over
        await self._write(record)

    def hand_over_all(self) -> int:
        """Ask every answer still running here to end and be handed over (the shutdown's grace is over)."""
        handovers = list(self._handovers.values())
        self._handovers.clear()
        for hand_over in handovers:
            hand_over()
        return len(handovers)

    async def placed(self, answer_id: str, message_ts: str) -> None:
        record = self._local.get(answer_id)
        if record is not None:
            record.message_ts = message_ts
            await self._write(record)

    async def _write(self, record: AnswerRecord) -> None:
        try:
            until = await self._now_ms() + self._lease_ms
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.set(self._record_key(record.answer_id), record.dumps(), ex=RECORD_TTL_S)
                pipe.zadd(self._leases, {record.answer_id: until})
                await pipe.execute()
        except REDIS_ERRORS as error:
            log.warning("running answer not shared: %s", type(error).__name__)

    async def remove(self, answer_id: str) -> None:
        self._local.pop(answer_id, None)
        self._handovers.pop(answer_id, None)
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.zrem(self._leases, answer_id)
                pipe.delete(self._record_key(answer_id))
                await pipe.execute()
        except REDIS_ERRORS as error:
            log.warning("running answer not removed: %s", type(error).__name__)

    async def release(self, answer_id: str) -> None:
        """Hand an answer over (shutdown): end its lease now, so the next sweep of a survivor adopts it."""
        self._local.pop(answer_id, None)
        self._handovers.pop(answer_id, None)
        try:
            await self._client.zadd(self._leases, {answer_id: await self._now_ms()}, xx=True)
        except REDIS_ERRORS as error:
            log.warning("running answer not handed over: %s", type(error).__name__)

    def local_ids(self) -> list[str]:
        return list(self._local)

    async def get(self, answer_id: str) -> AnswerRecord | None:
        text = await self._client.get(self._record_key(answer_id))
        return AnswerRecord.loads(str(text)) if text else None

    async def heartbeat(self) -> None:
        """Renew the leases of every answer this instance runs."""
        if not self._local:
            return
        try:
            until = await self._now_ms() + self._lease_ms
            await self._client.zadd(self._leases, dict.fromkeys(self._local, until), xx=True)
        except REDIS_ERRORS as error:
            log.warning("answer leases not renewed: %s", type(error).__name__)

    async def request_stop(self, answer_id: str, by_user: str) -> bool:
        """Ask the instance running ``answer_id`` to stop it; True when some instance heard the request."""
        if answer_id in self._local and self._on_stop is not None:
            self._on_stop(answer_id, by_user)
            return True
        try:
            heard = await self._client.publish(STOP_CHANNEL, json.dumps({"answer": answer_id, "user": by_user}))
        except REDIS_ERRORS as error:
            log.warning("stop not published: %s", type(error).__name__)
            return False
        return int(heard) > 0

    async def start(self) -> None:
        """Listen for Stop requests meant for this instance's answers."""
        pubsub = self._client.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(STOP_CHANNEL)

        async def listen() -> None:
            try:
                while True:
                    try:
                        message = await pubsub.get_message(timeout=1.0)
                    except REDIS_ERRORS:
                        await asyncio.sleep(1.0)
                        continue
                    if not message or message.get("type") != "message":
                        continue
                    try:
                        request = json.loads(message["data"])
                    except (TypeError, ValueError):
                        continue
                    answer_id = str(request.get("answer", ""))
                    if answer_id in self._local and self._on_stop is not None:
                        self._on_stop(answer_id, str(request.get("user", "")))
            finally:
                await pubsub.aclose()

        self._listener = asyncio.get_running_loop().create_task(listen(), name="stop-listener")

    async def aclose(self) -> None:
        if self._listener is not None:
            await cancel_and_wait([self._listener])
            self._listener = None

    async def orphans(self) -> list[AnswerRecord]:
        """Answers whose lease ran out (their instance died or handed them over), each adopted by exactly one
        caller. The adopter's heartbeat renews their leases until it removes them (or dies too)."""
        try:
            now = await self._now_ms()
            expired = await self._client.zrangebyscore(self._leases, "-inf", now)
        except REDIS_ERRORS as error:
            log.warning("orphan sweep skipped: %s", type(error).__name__)
            return []
        adopted: list[AnswerRecord] = []
        for raw_id in expired:
            answer_id = str(raw_id)
            if answer_id in self._local:
                continue
            try:
                text = await self._client.eval(
                    _ADOPT, 2, self._leases, self._record_key(answer_id), answer_id, self.instance, self._lease_ms
                )
            except REDIS_ERRORS as error:
                log.warning("orphan not adopted: %s", type(error).__name__)
                continue
            if not text:
                continue  # another survivor was first, or its owner renewed it after all
            try:
                record = AnswerRecord.loads(str(text))
            except (TypeError, ValueError) as error:
                log.warning("orphan record unreadable: %s", type(error).__name__)
                await self.remove(answer_id)
                continue
            self._local[answer_id] = record  # renewed by this instance's heartbeat from now on
            adopted.append(record)
        return adopted
