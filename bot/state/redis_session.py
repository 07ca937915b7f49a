"""The Agents SDK's ``RedisSession`` with attribution, deletion marks and a degraded mode (see
:mod:`bot.state.memory`). Imported when the first question opens a session, so the bot loads the SDK lazily."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from agents.extensions.memory import RedisSession
from agents.items import TResponseInputItem

from bot.state.memory import covers
from bot.state.redis_client import REDIS_ERRORS

log = logging.getLogger("variance.state")


class AttributedRedisSession(RedisSession):
    """One conversation's history in Redis; ``speaker``/``source`` label everything this session stores.

    ``opened_ms`` (Redis' clock when the question came): a deletion marked after it covers what this session
    would store, so it is not written. ``None`` (Redis did not answer at opening): nothing is written.
    """

    def __init__(
        self,
        session_id: str,
        *,
        speaker: str | None,
        source: str | None,
        opened_ms: int | None,
        marks_key: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(session_id, **kwargs)
        self.speaker = speaker
        self.source = source
        self._opened_ms = opened_ms
        self._marks_key = marks_key

    async def _serialize_item(self, item: TResponseInputItem) -> str:
        envelope = {"i": item, "s": self.speaker, "m": self.source, "t": int(time.time())}
        return json.dumps(envelope, separators=(",", ":"))

    async def _deserialize_item(self, item: str) -> TResponseInputItem:
        data = json.loads(item)
        if isinstance(data, dict) and "i" in data and "t" in data:
            return data["i"]  # type: ignore[no-any-return]
        return data  # type: ignore[no-any-return]

    async def get_items(self, limit: int | None = None) -> list[TResponseInputItem]:
        try:
            return await super().get_items(limit)
        except REDIS_ERRORS as error:
            log.warning("conversation history unavailable, answering without it: %s", type(error).__name__)
            return []

    async def add_items(self, items: list[TResponseInputItem]) -> None:
        if not items:
            return
        try:
            if await self._suppressed():
                return
            await super().add_items(items)
        except REDIS_ERRORS as error:
            log.warning("conversation turn not stored: %s", type(error).__name__)

    async def _suppressed(self) -> bool:
        if self._opened_ms is None:
            return True
        marks = await self._redis.zrangebyscore(self._marks_key, self._opened_ms, "+inf")
        for raw in marks:
            try:
                mark = json.loads(str(raw))
            except (TypeError, ValueError):
                continue
            if covers(mark, self.session_id, self.speaker, self.source):
                return True
        return False
