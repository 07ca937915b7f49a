"""Teams' per-conversation windows counted in one real Redis for every instance (``SharedConversationPacer``): two
pacers calling one conversation at once never pass a window, a call in flight counts as arriving now, a 429 met
by one pauses the other, and a Redis that stops mid-run leaves each instance a local half share, never unlimited.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence

import pytest
import redis.asyncio as aioredis

from bot.state.call_log import SharedCallLog
from bot.state.redis_client import connect, key
from bot.teams.pacing import SharedConversationPacer
from tests.fakes.redis_server import running_redis
from tests.teams.helpers import VirtualClock

# Small windows, so a test sees several of them pass.
LIMITS: tuple[tuple[int, float], ...] = ((3, 0.3), (5, 1.0))
MARGIN_S = 0.02


def _pacer(client: aioredis.Redis, **options: float) -> SharedConversationPacer:
    log = SharedCallLog(client, "teams:bot", LIMITS, margin_s=MARGIN_S)
    return SharedConversationPacer(log, LIMITS, margin_s=MARGIN_S, **options)  # type: ignore[arg-type]


def _busiest(arrivals: Sequence[float], window: float) -> int:
    """The most arrivals inside any ``window`` seconds."""
    times = sorted(arrivals)
    return max((sum(1 for t in times[i:] if t < start + window) for i, start in enumerate(times)), default=0)


async def test_two_pacers_on_one_conversation_never_pass_a_window(redis_client: aioredis.Redis) -> None:
    pacers = [_pacer(redis_client), _pacer(redis_client)]
    arrivals: list[float] = []
    rng = random.Random(7)

    async def call(pacer: SharedConversationPacer, latency: float, arrives_at: float) -> None:
        entry = await pacer.acquire("19:chat")
        await asyncio.sleep(latency * arrives_at)  # Teams counts the call somewhere between send and response
        arrivals.append(time.monotonic())
        await asyncio.sleep(latency * (1 - arrives_at))
        await pacer.release(entry)

    await asyncio.gather(*(call(pacers[i % 2], rng.uniform(0.0, 0.08), rng.random()) for i in range(16)))
    assert len(arrivals) == 16
    for count, window in LIMITS:
        assert _busiest(arrivals, window) <= count, (count, window)
    assert pacers[0].stats.calls == pacers[1].stats.calls == 8
    assert pacers[0].degraded_calls == pacers[1].degraded_calls == 0


async def test_a_call_in_flight_counts_as_arriving_now_for_the_other_instance(redis_client: aioredis.Redis) -> None:
    log_a = SharedCallLog(redis_client, "teams:bot", LIMITS, margin_s=MARGIN_S)
    log_b = SharedCallLog(redis_client, "teams:bot", LIMITS, margin_s=MARGIN_S)
    for n in range(3):
        assert await log_a.acquire("19:chat", f"a{n}") == 0.0
    # Three calls of instance a still in flight: they may arrive any moment, so b waits a whole 0.3 s window
    # (plus the margin) from now, however long ago they were sent.
    wait = await log_b.acquire("19:chat", "b0")
    assert wait == pytest.approx(0.32, abs=0.011)
    assert await redis_client.zcard(key("pace", "teams:bot", "19:chat") + ":flying") == 3
    for n in range(3):
        await log_a.complete("19:chat", f"a{n}")
    # Answered: they count from their responses, a window from now still.
    assert 0.25 < await log_b.acquire("19:chat", "b0") <= 0.32
    assert await redis_client.zcard(key("pace", "teams:bot", "19:chat")) == 3
    assert await log_b.acquire("19:other", "b1") == 0.0  # another conversation has its own windows


async def test_a_call_left_in_flight_by_a_dead_instance_stops_counting_as_now(redis_client: aioredis.Redis) -> None:
    dead = SharedCallLog(redis_client, "teams:bot", LIMITS, margin_s=MARGIN_S, max_flight_s=0.05)
    for n in range(3):
        assert await dead.acquire("19:chat", f"dead{n}") == 0.0
    # Never completed: after the longest a call may take, each counts as arrived then, and its window ends.
    survivor = SharedCallLog(redis_client, "teams:bot", LIMITS, margin_s=MARGIN_S, max_flight_s=0.05)
    wait = await survivor.acquire("19:chat", "s0")
    while wait:
        await asyncio.sleep(wait)
        wait = await survivor.acquire("19:chat", "s0")
    assert await redis_client.zcard(key("pace", "teams:bot", "19:chat") + ":flying") == 1  # only s0


async def test_a_429_on_one_instance_pauses_the_conversation_for_both(redis_client: aioredis.Redis) -> None:
    first, second = _pacer(redis_client), _pacer(redis_client)
    assert await first.pause("19:chat", 2.0) == 2.0
    log = SharedCallLog(redis_client, "teams:bot", LIMITS, margin_s=MARGIN_S)
    assert 1.8 < await log.acquire("19:chat", "probe") <= 2.0
    assert await log.acquire("19:elsewhere", "probe") == 0.0
    assert second.stats.throttled == 0 and first.stats.throttled == 1


async def test_redis_stopped_mid_run_leaves_a_local_half_share_never_unlimited() -> None:
    clock = VirtualClock()
    with running_redis() as url:
        client = connect(url)
        log = SharedCallLog(client, "teams:bot", LIMITS, margin_s=MARGIN_S)
        pacer = SharedConversationPacer(log, LIMITS, margin_s=MARGIN_S, clock=clock, sleep=clock.sleep)
        entry = await pacer.acquire("19:chat")
        await pacer.release(entry)
        assert pacer.degraded_calls == 0
    # Redis is gone: every later call is paced here, against half of each window (1 per 0.3 s, 2 per 1 s),
    # counting the call already made through Redis.
    times = []
    for _ in range(12):
        entry = await pacer.acquire("19:chat")
        times.append(clock.now)
        await pacer.release(entry)
    assert pacer.degraded_calls == 12
    assert _busiest([0.0, *times], 0.3) <= 1 and _busiest([0.0, *times], 1.0) <= 2
    assert times[0] > 0.0  # the call made through Redis counted: the first local one waited for it
    await client.aclose()


async def test_a_slow_redis_falls_back_then_shares_what_was_sent_meanwhile() -> None:
    with running_redis() as url:
        client, admin = connect(url), connect(url)
        patient = aioredis.Redis.from_url(url, socket_timeout=10)
        limits = ((3, 0.3), (5, 30.0))  # the call made meanwhile is still inside the longest window
        log = SharedCallLog(client, "teams:bot", limits, margin_s=MARGIN_S)
        pacer = SharedConversationPacer(log, limits, margin_s=MARGIN_S, retry_s=0.2)
        await admin.execute_command("CLIENT", "PAUSE", 1500, "ALL")  # slower than the client's 0.5 s timeout
        entry = await pacer.acquire("19:chat")
        await pacer.release(entry)
        assert pacer.degraded_calls == 1
        await patient.ping()  # answered once the pause is over (the pacer tries Redis again after retry_s)
        entry = await pacer.acquire("19:chat")
        await pacer.release(entry)
        assert pacer.degraded_calls == 1
        # The call made without Redis is in the shared log too, beside the one made through it.
        assert await patient.zcard(key("pace", "teams:bot", "19:chat")) == 2
        for each in (client, admin, patient):
            await each.aclose()


class BlinkingLog(SharedCallLog):
    """The real shared log, but Redis times out on the first ``acquire`` and on the first ``record``."""

    failures: dict[str, int]  # what times out next, and how often

    def _blink(self, what: str) -> None:
        if self.failures[what]:
            self.failures[what] -= 1
            raise TimeoutError(f"{what} timed out")

    async def acquire(self, conversation: str, member: str) -> float:
        self._blink("acquire")
        return await super().acquire(conversation, member)

    async def record(self, conversation: str, calls: Sequence[tuple[str, float]]) -> None:
        self._blink("record")
        await super().record(conversation, calls)


async def test_calls_made_without_redis_are_kept_until_the_shared_log_has_them(redis_client: aioredis.Redis) -> None:
    limits = ((20, 1.0), (40, 30.0))  # no call waits here: only what is counted matters
    log = BlinkingLog(redis_client, "teams:bot", limits, margin_s=MARGIN_S)
    log.failures = {"acquire": 1, "record": 1}
    pacer = SharedConversationPacer(log, limits, margin_s=MARGIN_S, retry_s=0.0)
    for _ in range(3):
        entry = await pacer.acquire("19:chat")
        await pacer.release(entry)
    # 1st: acquire timed out (local); 2nd: adding the 1st to the shared log timed out (local); 3rd: both added
    # to the shared log, then counted there itself. Every instance sees the three calls.
    assert pacer.degraded_calls == 2
    assert await redis_client.zcard(key("pace", "teams:bot", "19:chat")) == 3
    entry = await pacer.acquire("19:chat")  # nothing is added twice
    await pacer.release(entry)
    assert await redis_client.zcard(key("pace", "teams:bot", "19:chat")) == 4
