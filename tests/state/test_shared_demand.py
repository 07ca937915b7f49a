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
    # A final or first text of a's (itself part of a's demand) is not held back by b's demand: it competes for
    # the calls alone, so two busy instances don't leave each other's finals waiting.
    assert await a.acquire(0.0, 10) is None
    assert await a.acquire(0.0, 10, reserved=True) is not None
    # b's own calls are not held back by its own demand.
    assert await b.acquire(0.0, 10) is not None
    # b's finals went out: its demand drops and the room is a's again.
    b_demand[0] = 0
    await b.usage(0.0)
    assert (await a.usage(0.0))[0] == 6


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


async def test_placeholders_claimed_at_once_by_two_instances_never_overcommit_the_window(
    redis_client: aioredis.Redis,
) -> None:
    # Each claim holds 2 units (a placeholder's first text and final) and must leave 3 free: with a limit of 20
    # and 5 calls made, (20 - 5 - 3) // 2 + 1 = 7 placeholders fit for both instances together, however the
    # claims interleave; each instance's declared demand is what it claimed (as its budget would declare it).
    held = {"a": [0], "b": [0]}
    a, b = window(redis_client, "a", held["a"], limit=20), window(redis_client, "b", held["b"], limit=20)
    for _ in range(5):
        assert await a.acquire(0.0, 20) is not None

    async def one_instance(name: str, shared: SharedWindow) -> int:
        """An instance claims one at a time (its budget serialises its own claims), concurrently with the other."""
        claimed = 0
        for _ in range(10):
            if await shared.claim(2, 3, mine=held[name][0]):
                held[name][0] += 2
                claimed += 1
        return claimed

    claimed = await asyncio.gather(one_instance("a", a), one_instance("b", b))
    assert sum(claimed) == 7 and held["a"][0] + held["b"][0] == 14
    # b's claims count for a at once (no call of b's needed to declare them).
    counted, _ = await a.usage(0.0)
    assert counted == 5 + held["b"][0]


async def test_an_instances_finals_go_out_while_another_instance_holds_demand(redis_client: aioredis.Redis) -> None:
    """Both instances busy: b holds 8 units of a 10-unit window for its own live answers. a's finals (its own
    demand) still go out as long as fewer than 10 calls are counted (a's progress is what yields to b's)."""
    from bot.render.scheduler import UpdateScheduler

    b = window(redis_client, "b", [8])
    await b.usage(0.0)  # b declares its demand
    sent: list[str] = []

    async def send(payload: str) -> None:
        sent.append(payload)

    a = UpdateScheduler[str](limit=10, window=60.0, min_interval=0.0, window_log=window(redis_client, "a", [6]))
    try:
        slots = [a.open(f"m{i}", send) for i in range(6)]
        finals = [slot.submit_final(f"final {i}") for i, slot in enumerate(slots)]
        async with asyncio.timeout(10):  # held back by b's demand, they would wait for the 60 s window
            await asyncio.gather(*finals)
        assert sorted(sent) == [f"final {i}" for i in range(6)]
    finally:
        await a.aclose()


async def test_during_a_shared_pause_nothing_counts_as_sendable(redis_client: aioredis.Redis) -> None:
    """Another instance met a 429: the window reads as full for finals too (not as full only because of demand),
    so the scheduler sleeps until the pause ends instead of asking Redis again and again."""
    a, b = window(redis_client, "a", [0]), window(redis_client, "b", [5])
    await b.usage(0.0)
    await b.pause(3.0)
    counted, free_at = await a.usage(100.0)
    assert counted >= 10 and a.others_seen == 0 and 102.0 < free_at <= 103.0


async def test_an_idle_scheduler_keeps_declaring_what_it_holds(redis_client: aioredis.Redis) -> None:
    """A placeholder is up and a long tool runs: nothing to send, but its final and first text stay declared to
    the other instances past the declaration's lifetime."""
    from bot.render.pacing import SlackBudget
    from bot.state.window import SharedWindows

    budget = SlackBudget()
    windows = SharedWindows(redis_client, instance="a", demand=budget.demand)
    budget.window_factory = windows
    sched = budget.scheduler("T9", "chat.update")
    try:
        window_of_a = windows._windows[("T9", "chat.update")]
        window_of_a.DEMAND_TTL_S = 0.6

        async def send(_payload: str) -> None:
            return None

        slot = sched.open("placeholder", send)  # holds its final and its first text, nothing pending
        assert sched.reserved == 2 and not slot.pending
        key_ = "va:budget:T9:chat.update:demand"
        async with asyncio.timeout(5):  # its first look declares it
            while await redis_client.hget(key_, "a") != "2":
                await asyncio.sleep(0.02)
        loop = asyncio.get_running_loop()
        until = loop.time() + 4 * window_of_a.DEMAND_TTL_S
        while loop.time() < until:  # observed over several lifetimes of a declaration
            declared = await redis_client.hget(key_, "a")
            assert declared == "2"
            await asyncio.sleep(0.1)
    finally:
        await budget.aclose()
