"""A Teams conversation's dataset source in one real Redis: what is kept (no file content), for how long (the
dataset's age cap counted from when the file was shared), and nothing at all when Redis is down."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from bot.state.redis_client import connect, key
from bot.state.teams_datasets import RedisTeamsSources, TeamsSource
from bot.teams.files import TeamsFile

FILE = TeamsFile(
    name="marketing_july.csv",
    file_type="csv",
    download_url="https://files.example.com/download/abc?tempauth=signed",
    unique_id="1f2e3d",
)


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    client = connect(redis_url)
    await client.flushdb()
    yield client
    await client.aclose()


async def test_a_source_lives_as_long_as_the_dataset_may_from_when_it_was_shared(
    redis_client: aioredis.Redis,
) -> None:
    sources = RedisTeamsSources(redis_client, ttl_seconds=3600.0)
    shared_20_minutes_ago = TeamsSource(FILE, 418, "tenant-1:user-1", time.time() - 1200.0)
    await sources.remember("teams:tenant-1:a:chat", shared_20_minutes_ago)

    ttl = await redis_client.pttl(key("teams-source", "teams:tenant-1:a:chat"))
    assert 2390_000 < ttl <= 2400_000  # 60 minutes from the share, 20 of them gone
    assert await sources.source_for("teams:tenant-1:a:chat") == shared_20_minutes_ago
    assert await sources.latest_for("tenant-1:user-1") == "teams:tenant-1:a:chat"
    record = json.loads(await redis_client.get(key("teams-source", "teams:tenant-1:a:chat")))
    assert set(record) == {"file", "size", "owner", "shared_at", "overrides"}  # a link and names, no content

    await sources.note_overrides("teams:tenant-1:a:chat", "1f2e3d", {"types": {"Digital Advertising": "revenue"}})
    assert (await sources.source_for("teams:tenant-1:a:chat")).overrides == {  # type: ignore[union-attr]
        "types": {"Digital Advertising": "revenue"}
    }
    assert await redis_client.pttl(key("teams-source", "teams:tenant-1:a:chat")) <= ttl  # the expiry is kept
    await sources.note_overrides("teams:tenant-1:a:chat", "another-file", {})  # made on another file: ignored
    assert (await sources.source_for("teams:tenant-1:a:chat")).overrides  # type: ignore[union-attr]

    too_old = TeamsSource(FILE, 418, "tenant-1:user-2", time.time() - 7200.0)
    await sources.remember("teams:tenant-1:a:old", too_old)
    assert await sources.source_for("teams:tenant-1:a:old") is None

    await sources.forget("teams:tenant-1:a:chat")
    assert await sources.source_for("teams:tenant-1:a:chat") is None


async def test_with_redis_down_a_source_is_a_miss_not_an_error() -> None:
    client = connect("redis://127.0.0.1:1/0")  # nothing listens there
    sources = RedisTeamsSources(client)
    await sources.remember("teams:t:a:chat", TeamsSource(FILE, 418, "t:u", time.time()))
    assert await sources.source_for("teams:t:a:chat") is None
    assert await sources.latest_for("t:u") is None
    await client.aclose()
