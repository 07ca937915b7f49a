"""Where each conversation's dataset came from (the Slack file, who brought it), shared by every instance.

The dataset itself stays in the memory of the instance that read it (``ConversationStore``); a follow-up that
reaches another instance finds the *source* here and downloads and reads the file again (then keeps it in its
own cache). Nothing of the file's content is stored in Redis: the file id, its name, type and private URL (which
needs the bot token), and the Slack user ids of who uploaded it and who brought it into the conversation.

Records expire with the dataset's absolute age cap (``VARIANCE_DATASET_MAX_HOURS``). ``forget`` and
``drop_files`` remove them as ``ConversationStore.forget``/``drop_files`` remove the cached datasets.
When Redis cannot answer, a miss stays a miss (the user is asked to share the file again).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict

import redis.asyncio as aioredis

from bot.files import SlackFile
from bot.state.redis_client import REDIS_ERRORS, key

log = logging.getLogger("variance.state")


def _dumps(file: SlackFile, owner: str | None) -> str:
    return json.dumps({"file": asdict(file), "owner": owner}, separators=(",", ":"))


def _loads(text: object) -> tuple[SlackFile, str | None] | None:
    try:
        data = json.loads(str(text))
        return SlackFile(**data["file"]), data.get("owner")
    except (TypeError, ValueError, KeyError):
        return None


class RedisSources:
    def __init__(self, client: aioredis.Redis, *, ttl_seconds: float = 24 * 3600.0) -> None:
        self._client = client
        self._ttl = max(1, int(ttl_seconds))

    @staticmethod
    def _conversation(conversation_id: str) -> str:
        return key("source", conversation_id)

    @staticmethod
    def _latest(channel: str) -> str:
        return key("source-latest", channel)

    async def remember(self, conversation_id: str, file: SlackFile, *, owner: str | None, channel: str | None) -> None:
        text = _dumps(file, owner)
        try:
            async with self._client.pipeline(transaction=True) as pipe:
                pipe.set(self._conversation(conversation_id), text, ex=self._ttl)
                if channel is not None:
                    pipe.set(self._latest(channel), json.dumps([conversation_id, text]), ex=self._ttl)
                await pipe.execute()
        except REDIS_ERRORS as error:
            log.warning("dataset source not shared: %s", type(error).__name__)

    async def file_for(self, conversation_id: str) -> SlackFile | None:
        try:
            text = await self._client.get(self._conversation(conversation_id))
        except REDIS_ERRORS as error:
            log.warning("dataset source lookup failed: %s", type(error).__name__)
            return None
        loaded = _loads(text) if text else None
        return loaded[0] if loaded else None

    async def latest_in_channel(self, channel: str) -> SlackFile | None:
        try:
            text = await self._client.get(self._latest(channel))
        except REDIS_ERRORS as error:
            log.warning("dataset source lookup failed: %s", type(error).__name__)
            return None
        if not text:
            return None
        try:
            _, inner = json.loads(str(text))
        except (TypeError, ValueError):
            return None
        loaded = _loads(inner)
        return loaded[0] if loaded else None

    async def forget(self, place: str, user: str | None) -> None:
        """Drop the sources of ``place`` (``team:channel`` and its threads): all, or those ``user`` brought."""
        try:
            names = [self._conversation(place)]
            async for name in self._client.scan_iter(match=self._conversation(place) + ":*", count=500):
                names.append(str(name))
            for name in names:
                text = await self._client.get(name)
                loaded = _loads(text) if text else None
                if loaded is not None and (user is None or loaded[1] == user):
                    await self._client.delete(name)
            latest = await self._client.get(self._latest(place))
            if latest:
                conversation_id, _ = json.loads(str(latest))
                if not await self._client.exists(self._conversation(conversation_id)):
                    await self._client.delete(self._latest(place))
        except REDIS_ERRORS as error:
            log.warning("dataset sources not forgotten: %s", type(error).__name__)

    async def drop_files(self, file_ids: set[str]) -> None:
        """Drop every source read from one of ``file_ids`` (a file deleted in Slack)."""
        try:
            for pattern in (key("source", "*"), key("source-latest", "*")):
                async for name in self._client.scan_iter(match=pattern, count=500):
                    text = await self._client.get(name)
                    if text and any(file_id in str(text) for file_id in file_ids):
                        await self._client.delete(name)
        except REDIS_ERRORS as error:
            log.warning("dataset sources not dropped: %s", type(error).__name__)
