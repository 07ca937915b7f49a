"""One asyncio Redis client per process, with short timeouts so a slow Redis degrades the bot instead of stalling it."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis
from redis.exceptions import RedisError

# A budget or limit check sits on the answer's hot path: a Redis slower than this counts as unavailable.
SOCKET_TIMEOUT_S = 0.5
CONNECT_TIMEOUT_S = 1.0
PREFIX = "va:"
# What a Redis call raises when Redis is down, slow (the socket timeout) or refuses: every caller degrades on it.
REDIS_ERRORS = (RedisError, OSError, TimeoutError)


def connect(url: str) -> aioredis.Redis:
    return aioredis.Redis.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT_S,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        health_check_interval=30,
        decode_responses=True,
    )


def redacted(url: str) -> str:
    """``url`` without its userinfo (a password), for messages and logs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def key(*parts: str) -> str:
    return PREFIX + ":".join(parts)
