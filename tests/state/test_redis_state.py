"""The Redis-backed shared state against a real redis-server: claims, limits, the Slack budget, running answers."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from bot.limits import LimitSettings
from bot.state.claims import RedisClaims
from bot.state.limits import RedisLimits
from bot.state.redis_client import connect, redacted
from bot.state.registry import AnswerRecord, RedisRegistry

DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def _redis_ms(time_reply: tuple[int, int]) -> int:
    return int(time_reply[0]) * 1000 + int(time_reply[1]) // 1000


async def test_an_event_is_claimed_once_across_instances(redis_client: aioredis.Redis, redis_url: str) -> None:
    other = connect(redis_url)
    try:
        first, second = RedisClaims(redis_client), RedisClaims(other)
        results = await asyncio.gather(*(c.claim("event:Ev1") for c in (first, second, first, second)))
        assert sorted(results) == [False, False, False, True]
        assert await second.claim("event:Ev2") is True
    finally:
        await other.aclose()


async def test_claims_fall_back_to_local_memory_when_redis_is_down() -> None:
    claims = RedisClaims(connect(DEAD_REDIS))
    assert await claims.claim("event:E") is True
    assert await claims.claim("event:E") is False


async def test_limits_are_counted_across_instances(redis_client: aioredis.Redis, redis_url: str) -> None:
    other = connect(redis_url)
    settings = LimitSettings(user_max_running=2, user_questions_per_min=10, workspace_max_running=3)
    try:
        a, b = RedisLimits(redis_client, settings), RedisLimits(other, settings)
        first = await a.admit("T1", "U1")
        second = await b.admit("T1", "U1")
        third = await a.admit("T1", "U1")
        assert (first.ok, second.ok, third.ok) == (True, True, False)
        assert third.reason == "user_running" and "ask again" in third.message
        other_user = await b.admit("T1", "U2")
        assert other_user.ok
        # The workspace holds 3 running answers: a fourth user waits.
        assert (await a.admit("T1", "U3")).reason == "workspace_running"
        await b.release(second)
        assert (await a.admit("T1", "U1")).ok
    finally:
        await other.aclose()


async def test_questions_per_minute_are_counted_across_instances(redis_client: aioredis.Redis) -> None:
    limits = RedisLimits(redis_client, LimitSettings(user_max_running=0, user_questions_per_min=3))
    admitted = [await limits.admit("T1", "U1") for _ in range(4)]
    assert [x.ok for x in admitted] == [True, True, True, False]
    assert admitted[-1].reason == "user_rate" and 0 < admitted[-1].retry_after_s <= 60


async def test_a_dead_instances_running_answers_stop_counting_when_their_lease_ends(
    redis_client: aioredis.Redis,
) -> None:
    dying = RedisLimits(redis_client, LimitSettings(user_max_running=1), lease_s=0.2)
    assert (await dying.admit("T1", "U1")).ok
    survivor = RedisLimits(redis_client, LimitSettings(user_max_running=1))
    assert not (await survivor.admit("T1", "U1")).ok
    # Wait on Redis' own clock for the lease to end (the admission is never released: its instance "died").
    key = "va:run:T1:user:U1"
    while await redis_client.zcount(key, "-inf", "+inf") and await redis_client.pttl(key) > 0:
        await asyncio.sleep(0.05)
    assert (await survivor.admit("T1", "U1")).ok


async def test_limits_degrade_to_this_instance_when_redis_is_down() -> None:
    limits = RedisLimits(connect(DEAD_REDIS), LimitSettings(user_max_running=1))
    first = await limits.admit("T1", "U1")
    assert first.ok and not (await limits.admit("T1", "U1")).ok
    await limits.release(first)
    assert (await limits.admit("T1", "U1")).ok


async def test_stop_reaches_the_instance_that_runs_the_answer(redis_client: aioredis.Redis, redis_url: str) -> None:
    other = connect(redis_url)
    stopped: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
    runner = RedisRegistry(redis_client, instance="a", on_stop=lambda a, u: stopped.put_nowait((a, u)))
    clicked = RedisRegistry(other, instance="b")
    try:
        await runner.start()
        await runner.add(AnswerRecord("ans1", "a", "T1", "D1", "T1:D1", "dm", user="U1"))
        assert await clicked.request_stop("ans1", "U1") is True
        assert await asyncio.wait_for(stopped.get(), 5) == ("ans1", "U1")
    finally:
        await runner.aclose()
        await other.aclose()


async def _lease_ends(redis_client: aioredis.Redis, answer_id: str) -> None:
    """Wait, on Redis' own clock, until ``answer_id``'s lease has run out."""
    while (await redis_client.zscore("va:answers:leases", answer_id) or 0) > _redis_ms(await redis_client.time()):
        await asyncio.sleep(0.02)


async def test_a_survivor_adopts_an_orphaned_answer_exactly_once(redis_client: aioredis.Redis, redis_url: str) -> None:
    other = connect(redis_url)
    try:
        dying = RedisRegistry(redis_client, instance="dead", lease_s=0.2)
        source = {
            "id": "F1",
            "name": "Q3 «budget».csv",
            "filetype": "csv",
            "size": None,
            "download_url": None,
            "needs_info": True,
        }
        await dying.add(
            AnswerRecord(
                "ans2", "dead", "T1", "C1", "T1:C1:1.0", "mention", question="why is “marketing” over?", source=source
            )
        )
        await dying.placed("ans2", "1700000000.000200")
        live = RedisRegistry(redis_client, instance="live")
        assert await live.orphans() == []  # lease still running
        await _lease_ends(redis_client, "ans2")  # the dying instance stops heartbeating
        survivors = [RedisRegistry(redis_client, instance="s1"), RedisRegistry(other, instance="s2")]
        adopted = await asyncio.gather(*(s.orphans() for s in survivors))
        assert sorted(len(x) for x in adopted) == [0, 1]
        record = next(x for x in adopted if x)[0]
        assert (record.message_ts, record.question, record.channel) == (
            "1700000000.000200",
            "why is “marketing” over?",
            "C1",
        )
        assert record.source == source and record.thread_ts is None and record.extra == {}
        assert record.adoptions == 1 and record.instance in ("s1", "s2") and record.orphaned_ms >= 0
        stored = await live.get("ans2")
        assert stored is not None and stored.instance == record.instance and stored.adoptions == 1
        # The adopter holds a fresh lease: nobody else adopts it while it works on it.
        assert await live.orphans() == []
    finally:
        await other.aclose()


async def test_an_adopter_that_dies_too_leaves_it_to_the_next_counting_adoptions(redis_client: aioredis.Redis) -> None:
    dying = RedisRegistry(redis_client, instance="dead", lease_s=0.1)
    await dying.add(AnswerRecord("ans4", "dead", "T1", "D1", "T1:D1", "dm", question="q"))
    await _lease_ends(redis_client, "ans4")
    first_adopter = RedisRegistry(redis_client, instance="s1", lease_s=0.1)
    [adopted] = await first_adopter.orphans()
    assert adopted.adoptions == 1
    await _lease_ends(redis_client, "ans4")  # s1 dies too: no heartbeat
    [again] = await RedisRegistry(redis_client, instance="s2").orphans()
    assert again.adoptions == 2 and again.instance == "s2"


async def test_a_released_answer_is_adopted_at_once(redis_client: aioredis.Redis) -> None:
    leaving = RedisRegistry(redis_client, instance="leaving", lease_s=60)
    handed: list[str] = []
    await leaving.add(AnswerRecord("ans5", "leaving", "T1", "D1", "T1:D1", "dm"), hand_over=lambda: handed.append("x"))
    survivor = RedisRegistry(redis_client, instance="survivor")
    assert await survivor.orphans() == []
    assert leaving.hand_over_all() == 1 and handed == ["x"]
    await leaving.release("ans5")
    [record] = await survivor.orphans()
    assert record.answer_id == "ans5" and record.adoptions == 1 and record.orphaned_ms < 60_000
    assert leaving.hand_over_all() == 0


def test_records_from_other_versions_load() -> None:
    newer = (
        '{"answer_id":"a","instance":"i","team":"T","channel":"C","conversation_id":"T:C","entry":"dm",'
        '"extra":[],"colour":"blue"}'
    )
    record = AnswerRecord.loads(newer)
    assert record.extra == {} and record.adoptions == 0 and record.source is None


async def test_heartbeats_keep_a_live_answer_from_being_adopted(redis_client: aioredis.Redis) -> None:
    owner = RedisRegistry(redis_client, instance="owner", lease_s=0.3)
    await owner.add(AnswerRecord("ans3", "owner", "T1", "D1", "T1:D1", "dm"))
    other = RedisRegistry(redis_client, instance="other")
    for _ in range(5):
        await owner.heartbeat()
        assert await other.orphans() == []
        await asyncio.sleep(0.1)  # less than the lease, on purpose: the heartbeat must keep it alive
    await owner.remove("ans3")
    assert await other.orphans() == []


def test_redis_urls_lose_their_password_in_messages() -> None:
    assert redacted("redis://user:s3cret@cache.internal:6380/2") == "redis://cache.internal:6380/2"
