"""Running answers across instances: who runs each one, where its message is, and a lease that says it is alive.

Each instance records the answers it runs (:meth:`RedisRegistry.add`, then :meth:`~RedisRegistry.placed` once
the message exists) and renews their leases with :meth:`~RedisRegistry.heartbeat` (every few seconds). A Stop
click that reaches any instance is published on one channel; the instance that runs the answer cancels it.

When an instance dies its leases run out. A survivor's :meth:`~RedisRegistry.orphans` finds answers whose lease
ended, claims each one once (``SET NX``, so two survivors never both adopt it) and returns their records, so the
caller can bring the message to a final state (re-run the question into the same message, or a clear note).
Records expire on their own after a day, whatever happens.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot.state.redis_client import key

log = logging.getLogger("variance.state")

RECORD_TTL_S = 24 * 3600
STOP_CHANNEL = key("stop")


@dataclass(slots=True)
class AnswerRecord:
    """What a survivor needs to finish an orphaned answer (no file contents; the question is the user's text)."""

    answer_id: str
    instance: str
    team: str
    channel: str
    conversation_id: str
    entry: str
    user: str = ""
    thread_ts: str | None = None
    message_ts: str | None = None  # the answer's message, once posted
    question: str = ""
    extra: dict[str, str] = field(default_factory=dict)

    def dumps(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def loads(cls, text: str) -> AnswerRecord:
        return cls(**json.loads(text))


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
        self._listener: asyncio.Task[None] | None = None
        self._leases = key("answers", "leases")

    def _record_key(self, answer_id: str) -> str:
        return key("answer", answer_id)

    async def _now_ms(self) -> int:
        seconds, micros = await self._client.time()
        return int(seconds) * 1000 + int(micros) // 1000

    async def add(self, record: AnswerRecord) -> None:
        self._local[record.answer_id] = record
        await self._write(record)

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
        except (RedisError, OSError, TimeoutError) as error:
            log.warning("running answer not shared: %s", type(error).__name__)

    async def remove(self, answer_id: str) -> None:
        self._local.pop(answer_id, None)
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.zrem(self._leases, answer_id)
                pipe.delete(self._record_key(answer_id))
                await pipe.execute()
        except (RedisError, OSError, TimeoutError) as error:
            log.warning("running answer not removed: %s", type(error).__name__)

    async def release(self, answer_id: str) -> None:
        """Hand an answer over (shutdown): end its lease now, so the next sweep of a survivor adopts it."""
        self._local.pop(answer_id, None)
        try:
            await self._client.zadd(self._leases, {answer_id: 0}, xx=True)
        except (RedisError, OSError, TimeoutError) as error:
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
        except (RedisError, OSError, TimeoutError) as error:
            log.warning("answer leases not renewed: %s", type(error).__name__)

    async def request_stop(self, answer_id: str, by_user: str) -> bool:
        """Ask the instance running ``answer_id`` to stop it; True when some instance heard the request."""
        if answer_id in self._local and self._on_stop is not None:
            self._on_stop(answer_id, by_user)
            return True
        try:
            heard = await self._client.publish(STOP_CHANNEL, json.dumps({"answer": answer_id, "user": by_user}))
        except (RedisError, OSError, TimeoutError) as error:
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
                    except (RedisError, OSError, TimeoutError):
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
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
            self._listener = None

    async def orphans(self) -> list[AnswerRecord]:
        """Answers whose lease ran out (their instance died), each claimed by exactly one caller."""
        try:
            now = await self._now_ms()
            expired = await self._client.zrangebyscore(self._leases, "-inf", now)
        except (RedisError, OSError, TimeoutError) as error:
            log.warning("orphan sweep skipped: %s", type(error).__name__)
            return []
        adopted: list[AnswerRecord] = []
        for raw_id in expired:
            answer_id = str(raw_id)
            if answer_id in self._local:
                continue
            claimed = await self._client.set(key("adopt", answer_id), self.instance, nx=True, ex=RECORD_TTL_S)
            if not claimed:
                continue
            text = await self._client.get(self._record_key(answer_id))
            await self._client.zrem(self._leases, answer_id)
            if text:
                adopted.append(AnswerRecord.loads(str(text)))
        return adopted
