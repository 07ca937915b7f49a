"""The shared answer limits sit on every question's path: admit and release are one Redis round trip each."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis

from bot.limits import LimitSettings
from bot.state.limits import RedisLimits


class CountingRedis(aioredis.Redis):
    """The asyncio client, recording every command it sends (each is one round trip)."""

    sent: list[str]

    async def execute_command(self, *args: Any, **options: Any) -> Any:
        self.sent.append(str(args[0]))
        return await super().execute_command(*args, **options)


async def test_admit_and_release_are_one_round_trip_each(redis_url: str, redis_client: aioredis.Redis) -> None:
    client = CountingRedis.from_url(redis_url, decode_responses=True)
    client.sent = []
    try:
        limits = RedisLimits(client, LimitSettings(user_max_running=1))
        await limits.release(await limits.admit("T1", "U1"))  # the first use loads the scripts
        client.sent.clear()

        admission = await limits.admit("T1", "U1")
        assert admission.ok and client.sent == ["EVALSHA"]
        await limits.release(admission)
        assert client.sent == ["EVALSHA", "EVALSHA"]
        # Released for real: the user's single slot is free again, for another instance too.
        assert (await RedisLimits(redis_client, LimitSettings(user_max_running=1)).admit("T1", "U1")).ok
    finally:
        await client.aclose()
