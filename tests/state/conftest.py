"""One real redis-server for the state tests, flushed before each test."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
import redis.asyncio as aioredis

from bot.state.redis_client import connect
from tests.fakes.redis_server import redis_server_path, running_redis


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    if redis_server_path() is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is missing: .ci/run must install Debian's redis-server")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    with running_redis() as url:
        yield url


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = connect(redis_url)
    await client.flushdb()
    yield client
    await client.aclose()
