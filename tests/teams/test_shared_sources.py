"""A Teams conversation's dataset source in one real Redis: what is kept (no file content), for how long (the
dataset's age cap counted from when the file was shared), and nothing at all when Redis is down."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

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


NEWER = TeamsFile(
    name="marketing_august.csv",
    file_type="csv",
    download_url="https://files.example.com/download/def?tempauth=signed",
    unique_id="9a8b7c",
)


async def test_a_source_shared_earlier_never_replaces_one_shared_later(redis_client: aioredis.Redis) -> None:
    sources = RedisTeamsSources(redis_client, ttl_seconds=3600.0)
    now = time.time()
    newer = TeamsSource(NEWER, 512, "tenant-1:user-1", now - 10.0)
    older = TeamsSource(FILE, 418, "tenant-1:user-1", now - 60.0)
    await sources.remember("teams:tenant-1:a:chat", newer)
    await sources.remember("teams:tenant-1:a:chat", older)  # read slowly on another instance: lands last
    assert await sources.source_for("teams:tenant-1:a:chat") == newer
    # The user's newest 1:1 chat follows the same order.
    await sources.remember("teams:tenant-1:a:other", TeamsSource(FILE, 418, "tenant-1:user-1", now - 30.0))
    assert await sources.latest_for("tenant-1:user-1") == "teams:tenant-1:a:chat"
    await sources.remember("teams:tenant-1:a:other", TeamsSource(FILE, 418, "tenant-1:user-1", now - 5.0))
    assert await sources.latest_for("tenant-1:user-1") == "teams:tenant-1:a:other"
    # The same source again keeps the overrides recorded on it.
    await sources.note_overrides("teams:tenant-1:a:chat", "9a8b7c", {"types": {"Digital Advertising": "revenue"}})
    await sources.remember("teams:tenant-1:a:chat", newer)
    assert (await sources.source_for("teams:tenant-1:a:chat")).overrides  # type: ignore[union-attr]
    # A later file replaces it, overrides and all.
    latest = TeamsSource(FILE, 418, "tenant-1:user-1", now - 1.0)
    await sources.remember("teams:tenant-1:a:chat", latest)
    assert await sources.source_for("teams:tenant-1:a:chat") == latest


class RacingRedis(aioredis.Redis):
    """A client that lets another instance write right after each of its reads (``between``)."""

    between: Callable[[], Awaitable[None]] | None = None

    async def get(self, name: str) -> Any:  # type: ignore[override]
        value = await super().get(name)
        if self.between is not None:
            step, self.between = self.between, None
            await step()
        return value


async def test_overrides_noted_on_an_older_file_never_land_on_the_newer_files_record(
    redis_client: aioredis.Redis, redis_url: str
) -> None:
    racing = RacingRedis.from_url(redis_url, decode_responses=True)
    sources, other = RedisTeamsSources(racing, ttl_seconds=3600.0), RedisTeamsSources(redis_client, ttl_seconds=3600.0)
    now = time.time()
    await sources.remember("teams:tenant-1:a:chat", TeamsSource(FILE, 418, "tenant-1:user-1", now - 60.0))
    newer = TeamsSource(NEWER, 512, "tenant-1:user-1", now - 10.0)

    async def newer_file_recorded() -> None:
        await other.remember("teams:tenant-1:a:chat", newer)

    racing.between = newer_file_recorded  # between note_overrides' read and its write
    await sources.note_overrides("teams:tenant-1:a:chat", "1f2e3d", {"types": {"Digital Advertising": "revenue"}})
    assert await sources.source_for("teams:tenant-1:a:chat") == newer

    # And a write on the same file in between is kept under the one made after it, not lost to a stale copy.
    async def overrides_changed() -> None:
        await other.note_overrides("teams:tenant-1:a:chat", "9a8b7c", {"types": {"Travel": "revenue"}})

    racing.between = overrides_changed
    await sources.note_overrides("teams:tenant-1:a:chat", "9a8b7c", {"types": {"Digital Advertising": "revenue"}})
    held = await sources.source_for("teams:tenant-1:a:chat")
    assert held is not None and held.file == NEWER and held.overrides == {"types": {"Digital Advertising": "revenue"}}
    await racing.aclose()


async def test_a_group_threads_overrides_start_their_own_record_from_the_one_to_one_file(
    redis_client: aioredis.Redis,
) -> None:
    sources = RedisTeamsSources(redis_client, ttl_seconds=3600.0)
    now = time.time()
    personal = TeamsSource(FILE, 418, "tenant-1:user-1", now - 60.0)
    thread = "teams:tenant-1:19:group@thread.v2:user-1"
    await sources.note_overrides(thread, "1f2e3d", {}, basis=personal)  # nothing to share: nothing written
    assert await sources.source_for(thread) is None
    await sources.note_overrides(thread, "1f2e3d", {"types": {"Travel": "revenue"}}, basis=personal)
    assert await sources.source_for(thread) == TeamsSource(
        FILE, 418, "tenant-1:user-1", personal.shared_at, {"types": {"Travel": "revenue"}}
    )
    assert await sources.latest_for("tenant-1:user-1") is None  # a group thread is never the newest 1:1 chat
    # The user's next file replaces it; an older file's basis never does.
    later = TeamsSource(NEWER, 512, "tenant-1:user-1", now - 5.0)
    await sources.note_overrides(thread, "9a8b7c", {"types": {"Rent": "revenue"}}, basis=later)
    await sources.note_overrides(thread, "1f2e3d", {"types": {"Travel": "expense"}}, basis=personal)
    held = await sources.source_for(thread)
    assert held is not None and held.file == NEWER and held.overrides == {"types": {"Rent": "revenue"}}
