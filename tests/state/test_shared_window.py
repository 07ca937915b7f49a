"""The pacing module's rolling window over Redis: two instances' windows on one workspace x method share one count,
a 429 met by one pauses the other, and a Redis that is down leaves a local share, never an unlimited window."""

from __future__ import annotations

import math

import redis.asyncio as aioredis

from bot.state.redis_client import connect
from bot.state.window import SharedWindow, SharedWindows


async def test_two_instances_share_one_count(redis_client: aioredis.Redis) -> None:
    first = SharedWindow(redis_client, "T1", "chat.update", 5, 60.0)
    second = SharedWindow(redis_client, "T1", "chat.update", 5, 60.0)
    tokens = [await (first if i % 2 else second).acquire(0.0, 5) for i in range(8)]
    assert sum(t is not None for t in tokens) == 5  # whoever asks, five in the window
    counted, free_at = await first.usage(100.0)
    assert counted == 5 and 100.0 < free_at <= 160.0
    await second.complete(tokens[0], 1.0)
    other_method = SharedWindow(redis_client, "T1", "chat.delete", 5, 60.0)
    assert await other_method.acquire(0.0, 5) is not None  # a separate (workspace, method) window


async def test_a_429_pauses_every_instance(redis_client: aioredis.Redis) -> None:
    factory_a, factory_b = SharedWindows(redis_client), SharedWindows(redis_client)
    window_a, window_b = factory_a("T2", "chat.update", None), factory_b("T2", "chat.update", None)
    await window_a.pause(30.0)
    counted, free_at = await window_b.usage(10.0)
    assert counted >= 45 and 39.0 < free_at <= 40.0
    assert await window_b.acquire(10.0, 45) is None


async def test_redis_down_leaves_a_local_share() -> None:
    client = connect("redis://127.0.0.1:1/0")  # nothing listens there
    window = SharedWindow(client, "T3", "chat.update", 10, 60.0)
    taken = [await window.acquire(float(i), 10) for i in range(10)]
    assert sum(t is not None for t in taken) == 5 and window.degraded_calls == 10
    counted, free_at = await window.usage(20.0)
    assert counted == 10 and math.isfinite(free_at)
    await client.aclose()
