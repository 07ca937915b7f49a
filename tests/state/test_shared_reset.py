"""``/variance reset`` on an instance that never read the conversation's file: the shared record is cleared for
every instance all the same, and the reply names what was cleared (or says there was nothing to clear)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import redis.asyncio as aioredis

from bot.files import SlackFile
from bot.overrides import reset_message, reset_overrides
from bot.state.datasets import RedisSources
from bot.state.overrides import RedisOverrides

CONVERSATION = "T1:D1"


def instance_without_the_file(client: aioredis.Redis) -> SimpleNamespace:
    return SimpleNamespace(
        store=SimpleNamespace(get=lambda _conversation: None),
        overrides=RedisOverrides(client),
        sources=RedisSources(client),
    )


async def test_reset_without_a_copy_clears_the_shared_overrides(redis_client: aioredis.Redis) -> None:
    # What another instance recorded after making two overrides on file F1.
    made = {"types": {"Advertising": "revenue"}, "roles": {"actual": "Spend"}}
    await redis_client.set("va:overrides:T1:D1", json.dumps({"file": "F1", "overrides": made}))
    dropped = await reset_overrides(instance_without_the_file(redis_client), CONVERSATION)
    assert dropped == ["actual column: Spend", "Advertising counted as revenue"]
    assert reset_message(dropped).startswith("Cleared your overrides (actual column: Spend; Advertising counted")
    shared = json.loads(str(await redis_client.get("va:overrides:T1:D1")))
    assert shared == {"file": "F1", "overrides": {}}  # every instance drops them at its next pull


async def test_reset_without_a_copy_and_without_overrides(redis_client: aioredis.Redis) -> None:
    deps = instance_without_the_file(redis_client)
    assert await reset_overrides(deps, CONVERSATION) is None  # no instance has a file here
    file = SlackFile("F1", "q3.csv", "csv", 120, "https://files.example/q3.csv", False)
    await deps.sources.remember(CONVERSATION, file, owner="U1", channel="T1:D1")
    assert await reset_overrides(deps, CONVERSATION) == []  # a file, but nothing was overridden
    assert "no overrides to clear" in reset_message([])
