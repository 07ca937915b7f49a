"""A conversation's overrides (column roles, account types) shared by every instance (see :mod:`bot.overrides`).

One small JSON record per conversation (``va:overrides:{conversation id}``): the id of the file they were made
on and the column names and account labels the user chose, never any numbers. A record for another file is
ignored (a new file starts without overrides); ``{}`` records "none" (a reset), so an instance holding older
ones drops them. Records expire with the dataset's absolute age cap (``VARIANCE_DATASET_MAX_HOURS``) and go with
``/variance forget`` and a deleted file, as the datasets do. When Redis cannot answer, the instance keeps the
overrides it has (logged).
"""

from __future__ import annotations

import json
import logging

import redis.asyncio as aioredis

from bot.conversations import StoredDataset
from bot.overrides import apply_record, overrides_record
from bot.state.memory import literal_pattern
from bot.state.redis_client import REDIS_ERRORS, key

log = logging.getLogger("variance.state")


class RedisOverrides:
    def __init__(self, client: aioredis.Redis, *, ttl_seconds: float = 24 * 3600.0) -> None:
        self._client = client
        self._ttl = max(1, int(ttl_seconds))

    async def pull(self, conversation_id: str, stored: StoredDataset) -> None:
        """Bring the conversation's context to the overrides recorded for it on this file, if they differ."""
        try:
            text = await self._client.get(key("overrides", conversation_id))
        except REDIS_ERRORS as error:
            log.warning("shared overrides not read: %s", type(error).__name__)
            return
        try:
            shared = json.loads(str(text)) if text else None
        except ValueError:
            return
        if not isinstance(shared, dict) or shared.get("file") != stored.file_id:
            return
        record = shared.get("overrides")
        if not isinstance(record, dict) or record == overrides_record(stored.context):
            return
        try:
            apply_record(stored.context, record)
        except (ValueError, TypeError, KeyError) as error:  # e.g. a column this read of the file does not have
            log.warning("shared overrides not applied: %s", type(error).__name__)

    async def push(self, conversation_id: str, stored: StoredDataset) -> None:
        """Record the conversation's overrides as they stand now, for every instance."""
        shared = {"file": stored.file_id, "overrides": overrides_record(stored.context)}
        try:
            await self._client.set(key("overrides", conversation_id), json.dumps(shared), ex=self._ttl)
        except REDIS_ERRORS as error:
            log.warning("shared overrides not written: %s", type(error).__name__)

    async def clear(self, conversation_id: str) -> dict[str, object] | None:
        """Record "no overrides" on the conversation's file for every instance (an instance without a copy of
        the dataset resets it all the same); the overrides it had, or None when none was recorded or Redis
        cannot answer."""
        name = key("overrides", conversation_id)
        try:
            text = await self._client.get(name)
            shared = json.loads(str(text)) if text else None
            if not isinstance(shared, dict) or not shared.get("file"):
                return None
            before = shared.get("overrides")
            await self._client.set(name, json.dumps({"file": shared["file"], "overrides": {}}), keepttl=True)
        except (*REDIS_ERRORS, ValueError) as error:
            log.warning("shared overrides not cleared: %s", type(error).__name__)
            return None
        return before if isinstance(before, dict) else {}

    async def forget(self, place: str, user: str | None) -> None:
        """Drop the records of a place (``team:channel`` and its threads): all of them, or those of the
        conversations whose dataset ``user`` brought (read before the dataset sources are forgotten)."""
        try:
            names = [key("overrides", place)]
            pattern = literal_pattern(key("overrides", place)) + ":*"
            names += [str(name) async for name in self._client.scan_iter(match=pattern, count=500)]
            for name in names:
                if user is not None:
                    source = await self._client.get(key("source", name.removeprefix(key("overrides") + ":")))
                    if not source or json.loads(str(source)).get("owner") != user:
                        continue
                await self._client.delete(name)
        except (*REDIS_ERRORS, ValueError) as error:
            log.warning("shared overrides not forgotten: %s", type(error).__name__)

    async def drop_files(self, file_ids: set[str]) -> None:
        """Drop the records made on a file deleted in Slack."""
        try:
            async for name in self._client.scan_iter(match=key("overrides", "*"), count=500):
                text = await self._client.get(name)
                if text and json.loads(str(text)).get("file") in file_ids:
                    await self._client.delete(name)
        except (*REDIS_ERRORS, ValueError) as error:
            log.warning("shared overrides not dropped: %s", type(error).__name__)
