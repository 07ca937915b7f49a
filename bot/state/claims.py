"""Claim a key once across instances: an event id, or a message's channel + ts (``SET NX`` with a TTL).

When Redis cannot answer, the claim falls back to this process's own memory: a retry that reaches the same
instance is still answered once; one that reaches another instance while Redis is down may be answered twice,
which is preferred to answering none.
"""

from __future__ import annotations

import logging

import redis.asyncio as aioredis

from bot.conversations import Deduplicator
from bot.state.redis_client import REDIS_ERRORS, key

log = logging.getLogger("variance.state")


class RedisClaims:
    def __init__(self, client: aioredis.Redis, *, ttl_seconds: float = 3600.0) -> None:
        self._client = client
        self._ttl_ms = int(ttl_seconds * 1000)
        self._local = Deduplicator(ttl_seconds=ttl_seconds)

    async def claim(self, name: str) -> bool:
        """True for the first instance (and the first time) that claims ``name``; False for every repeat."""
        local_first = self._local.first_time(name)
        try:
            claimed = await self._client.set(key("claim", name), "1", nx=True, px=self._ttl_ms)
        except REDIS_ERRORS as error:
            log.warning("claim fell back to local memory: %s", type(error).__name__)
            return local_first
        return bool(claimed)
