"""Priorities across instances: each instance declares the units its scheduler holds for finals and first texts,
and the others count them as used, so one instance's progress never takes what another's finals wait for."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from bot.state.window import SharedWindow


def window(client: aioredis.Redis, name: str, demand: list[int], limit: int = 10) -> SharedWindow:
    return SharedWindow(client, "T1", "chat.update", limit, 60.0, instance=name, demand=lambda: demand[0])


async def test_another_instances_finals_hold_room_and_the_window_looks_again_soon(
    redis_client: aioredis.Redis,
) -> None:
    a_demand, b_demand = [0], [6]
    a, b = window(redis_client, "a", a_demand), window(redis_client, "b", b_demand)
    assert await b.usage(0.0) == (0, float("inf"))  # b declares 6 units (its finals waiting)
    counted, _ = await a.usage(0.0)
    assert counted == 6
    taken = [await a.acquire(0.0, 10) for _ in range(5)]
    assert sum(t is not None for t in taken) == 4  # 4 used + 6 held for b = the limit
    # Full only because of b's demand: a looks again within half a second, not when its oldest call ages out.
    counted, free_at = await a.usage(100.0)
    assert counted == 10 and free_at <= 100.5
    # b's own calls are not held back by its own demand.
    assert await b.acquire(0.0, 10) is not None
    # b's finals went out: its demand drops and the room is a's again.
    b_demand[0] = 0
    await b.usage(0.0)
    assert (await a.usage(0.0))[0] == 5


async def test_demand_is_capped_and_a_dead_instances_demand_expires(redis_client: aioredis.Redis) -> None:
    a_demand, b_demand = [0], [100]
    a, b = window(redis_client, "a", a_demand, limit=20), window(redis_client, "b", b_demand, limit=20)
    b.DEMAND_TTL_S = 0.2  # b stops declaring (it died): its demand must vanish on its own
    await b.usage(0.0)
    counted, _ = await a.usage(0.0)
    assert counted == 15  # capped at limit - limit // 4: a is never starved by another instance's demand
    assert await a.acquire(0.0, 20) is not None
    async with asyncio.timeout(10):
        while (await a.usage(0.0))[0] != 1:  # 1 call of a's own, b's demand gone
            await asyncio.sleep(0.05)
