"""Where a Teams conversation's dataset came from, shared by every instance (``REDIS_URL``).

The dataset itself stays in the memory of the instance that read it (``ConversationStore``); a follow-up that
reaches another instance finds the *source* here and downloads and reads the file again (then keeps it in its
own cache). One small JSON record per conversation (``va:teams-source:{conversation id}``): the attachment's
download URL (short-lived: Teams signs it for a while), name, Teams file type and unique id, its size, who sent
it, when, and the conversation's overrides on it (column roles and account types by name, never a number). And
per user, the 1:1 chat holding the newest file they sent (``va:teams-latest:{tenant}:{user}``), which their
group-chat mentions use. Nothing of the file's content is stored.

Records expire with the dataset's absolute age cap (``VARIANCE_DATASET_MAX_HOURS``, never past the retention
period), counted from when the file was shared. When Redis cannot answer, a miss stays a miss (the user is asked
for the file again) and a record not written is logged.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import redis.asyncio as aioredis

from bot.state.call_log import REDIS_ERRORS
from bot.state.redis_client import key
from bot.teams.files import TeamsFile

log = logging.getLogger("variance.state")


@dataclass(frozen=True, slots=True)
class TeamsSource:
    """What another instance needs to read a conversation's file again."""

    file: TeamsFile
    size: int  # bytes downloaded when it was shared
    owner: str  # tenant:user who sent it
    shared_at: float  # epoch seconds: the dataset's age counts from here on every instance
    overrides: dict[str, Any] = field(default_factory=dict)  # bot.overrides.overrides_record

    @property
    def age_s(self) -> float:
        return max(0.0, time.time() - self.shared_at)


def _dumps(source: TeamsSource) -> str:
    return json.dumps(asdict(source), separators=(",", ":"))


def _loads(text: object) -> TeamsSource | None:
    try:
        data = json.loads(str(text))
        overrides = data.get("overrides") or {}
        if not isinstance(overrides, dict):
            return None
        return TeamsSource(
            file=TeamsFile(**data["file"]),
            size=int(data["size"]),
            owner=str(data["owner"]),
            shared_at=float(data["shared_at"]),
            overrides=overrides,
        )
    except (TypeError, ValueError, KeyError):
        return None


class RedisTeamsSources:
    def __init__(self, client: aioredis.Redis, *, ttl_seconds: float = 24 * 3600.0) -> None:
        self._client = client
        self._ttl = ttl_seconds

    @staticmethod
    def _source(conversation_id: str) -> str:
        return key("teams-source", conversation_id)

    @staticmethod
    def _latest(user_key: str) -> str:
        return key("teams-latest", user_key)

    def _ttl_ms(self, source: TeamsSource) -> int:
        return int((self._ttl - source.age_s) * 1000)

    async def remember(self, conversation_id: str, source: TeamsSource) -> None:
        """``conversation_id``'s dataset is ``source`` now; it is also its sender's newest file."""
        ttl_ms = self._ttl_ms(source)
        if ttl_ms <= 0:
            return
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.set(self._source(conversation_id), _dumps(source), px=ttl_ms)
                pipe.set(self._latest(source.owner), conversation_id, px=ttl_ms)
                await pipe.execute()
        except REDIS_ERRORS as error:
            log.warning("teams dataset source not shared: %s", type(error).__name__)

    async def source_for(self, conversation_id: str) -> TeamsSource | None:
        try:
            text = await self._client.get(self._source(conversation_id))
        except REDIS_ERRORS as error:
            log.warning("teams dataset source lookup failed: %s", type(error).__name__)
            return None
        return _loads(text) if text else None

    async def latest_for(self, user_key: str) -> str | None:
        """The 1:1 chat holding the newest file ``user_key`` sent (on any instance)."""
        try:
            conversation_id = await self._client.get(self._latest(user_key))
        except REDIS_ERRORS as error:
            log.warning("teams dataset source lookup failed: %s", type(error).__name__)
            return None
        return str(conversation_id) if conversation_id else None

    async def note_overrides(self, conversation_id: str, file_id: str, record: dict[str, Any]) -> None:
        """The conversation's overrides on ``file_id`` are ``record`` now (kept with the source, same expiry)."""
        try:
            text = await self._client.get(self._source(conversation_id))
            source = _loads(text) if text else None
            if source is None or source.file.unique_id != file_id or source.overrides == record:
                return
            updated = TeamsSource(source.file, source.size, source.owner, source.shared_at, record)
            await self._client.set(self._source(conversation_id), _dumps(updated), xx=True, keepttl=True)
        except REDIS_ERRORS as error:
            log.warning("teams overrides not shared: %s", type(error).__name__)

    async def forget(self, conversation_id: str) -> None:
        """Drop the conversation's source (its download link no longer works)."""
        try:
            await self._client.delete(self._source(conversation_id))
        except REDIS_ERRORS as error:
            log.warning("teams dataset source not forgotten: %s", type(error).__name__)


class LocalTeamsSources:
    """One instance keeps its datasets in ``ConversationStore``: a miss there is a miss."""

    async def remember(self, conversation_id: str, source: TeamsSource) -> None:
        return None

    async def source_for(self, conversation_id: str) -> TeamsSource | None:
        return None

    async def latest_for(self, user_key: str) -> str | None:
        return None

    async def note_overrides(self, conversation_id: str, file_id: str, record: dict[str, Any]) -> None:
        return None

    async def forget(self, conversation_id: str) -> None:
        return None
