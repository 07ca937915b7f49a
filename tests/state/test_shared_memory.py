"""Conversation memory and overrides in Redis (``bot.state.memory``, ``bot.state.overrides``) against a real
redis-server, through the Agents SDK's own session interface: who said what, forgetting by person or by message,
retention, no resurrection by a run that was going on during a deletion, and overrides that follow the file."""

from __future__ import annotations

import json
from typing import Any

import redis.asyncio as aioredis
from agents.memory import Session

from analyst.dataset import RoleOverrides
from analyst.engine.options import AccountType
from analyst.ingest import load_dataset
from bot.conversations import ConversationStore
from bot.overrides import overrides_record
from bot.state.memory import RedisSessions, session_keys
from bot.state.overrides import RedisOverrides
from bot.state.redis_client import connect

CSV = (
    b"Department,Account,Spend,Budget,Actual\n"
    b"Sales,Revenue,10,1000.00,1200.00\n"
    b"Marketing,Advertising,20,500.00,650.00\n"
    b"Engineering,Salaries,30,2000.00,1950.00\n"
)
DEAD_REDIS = "redis://127.0.0.1:1/0"


def turn(question: str, answer: str) -> list[Any]:
    return [
        {"role": "user", "content": question},
        {"role": "assistant", "content": [{"type": "output_text", "text": answer}]},
    ]


async def store_turn(sessions: RedisSessions, conversation: str, speaker: str, source: str, q: str, a: str) -> None:
    session = await sessions.open(conversation, speaker=speaker, source=source, limit=40)
    await session.add_items(turn(q, a))
    await sessions.close(session, keep=40)


async def history(sessions: RedisSessions, conversation: str) -> list[Any]:
    session: Session = await sessions.open(conversation, speaker=None, source=None, limit=40)
    return await session.get_items()


async def test_turns_are_shared_attributed_and_forgotten_by_person(
    redis_client: aioredis.Redis, redis_url: str
) -> None:
    here, there = RedisSessions(redis_client, ttl_seconds=3600), RedisSessions(connect(redis_url), ttl_seconds=3600)
    await store_turn(here, "T1:C1:1.0", "UA", "1.1", "why is marketing over?", "Advertising.")
    await store_turn(here, "T1:C1:1.0", "UB", "1.2", "and sales?", "Up 200.")
    await store_turn(here, "T1:C1:2.0", "UA", "2.1", "events?", "Under by 50.")
    await store_turn(here, "T1:C9", "UA", "9.1", "other channel", "Kept.")
    # Another instance reads the same history, items as the SDK stored them (no envelope).
    expected = [*turn("why is marketing over?", "Advertising."), *turn("and sales?", "Up 200.")]
    assert await history(there, "T1:C1:1.0") == expected
    raw = await redis_client.lrange(session_keys("T1:C1:1.0")[1], 0, 0)
    assert json.loads(raw[0])["s"] == "UA" and json.loads(raw[0])["m"] == "1.1"
    assert 3500 < await redis_client.ttl(session_keys("T1:C1:1.0")[1]) <= 3600  # the retention period

    forgotten = await there.forget_place("T1:C1", speaker="UA")  # UA's turns in every thread of C1
    assert (forgotten.conversations, forgotten.items) == (2, 4)
    assert await history(here, "T1:C1:1.0") == turn("and sales?", "Up 200.")
    assert await history(here, "T1:C1:2.0") == [] and not await redis_client.exists(*session_keys("T1:C1:2.0"))
    assert await history(here, "T1:C9") == turn("other channel", "Kept.")  # another place is untouched
    assert 3500 < await redis_client.pttl(session_keys("T1:C1:1.0")[1]) / 1000 <= 3600  # the TTL survives


async def test_a_deleted_message_drops_its_turn_and_a_dm_forget_everything(redis_client: aioredis.Redis) -> None:
    sessions = RedisSessions(redis_client, ttl_seconds=3600)
    await store_turn(sessions, "T1:D1", "UA", "1.1", "first", "One.")
    await store_turn(sessions, "T1:D1", "UA", "1.2", "second", "Two.")
    assert (await sessions.forget_source("T1:D1", "1.1")).items == 2
    assert await history(sessions, "T1:D1") == turn("second", "Two.")
    assert (await sessions.forget_place("T1:D1")).items == 2
    assert await redis_client.keys("va:session:*") == []


async def test_a_run_going_on_during_a_forget_stores_nothing_it_covered(redis_client: aioredis.Redis) -> None:
    sessions = RedisSessions(redis_client, ttl_seconds=3600)
    running = await sessions.open("T1:C1:1.0", speaker="UA", source="1.5", limit=40)
    other = await sessions.open("T1:C1:1.0", speaker="UB", source="1.6", limit=40)
    await sessions.forget_place("T1:C1", speaker="UA")  # while both runs were going
    await running.add_items(turn("mine", "Gone."))
    await other.add_items(turn("theirs", "Kept."))
    assert await history(sessions, "T1:C1:1.0") == turn("theirs", "Kept.")
    # A run opened after the deletion stores as usual.
    await store_turn(sessions, "T1:C1:1.0", "UA", "1.7", "again", "Stored.")
    assert len(await history(sessions, "T1:C1:1.0")) == 4


async def test_retention_drops_old_items_and_the_history_stays_bounded(redis_client: aioredis.Redis) -> None:
    sessions = RedisSessions(redis_client, ttl_seconds=3600)
    for i in range(5):
        await store_turn(sessions, "T1:D2", "UA", f"1.{i}", f"question {i}", f"Answer {i}.")
    session = await sessions.open("T1:D2", speaker="UA", source="1.9", limit=40)
    await sessions.close(session, keep=4)  # what a run may replay: the newest 4 items
    assert await history(sessions, "T1:D2") == [*turn("question 3", "Answer 3."), *turn("question 4", "Answer 4.")]
    assert (await sessions.purge_older_than(3600)).items == 0
    purged = await sessions.purge_older_than(0, now=2**40)  # every item is older than "now - 0"
    assert (purged.conversations, purged.items) == (1, 4) and await redis_client.keys("va:session:*") == []


async def test_redis_down_answers_without_history_and_stores_nothing() -> None:
    sessions = RedisSessions(connect(DEAD_REDIS), ttl_seconds=3600)
    session = await sessions.open("T1:D3", speaker="UA", source="1.1", limit=40)
    assert await session.get_items() == []
    await session.add_items(turn("lost", "Not stored."))  # logged, never raised
    await sessions.close(session, keep=40)
    assert (await sessions.forget_place("T1:D3")).items == 0


async def test_overrides_follow_the_conversation_and_its_file(redis_client: aioredis.Redis, redis_url: str) -> None:
    dataset = load_dataset(CSV, filename="q3.csv")
    here_store, there_store = (ConversationStore(memory_cap_bytes=10**9, idle_seconds=3600) for _ in range(2))
    here, there = RedisOverrides(redis_client), RedisOverrides(connect(redis_url))
    mine = here_store.put("T1:D1", dataset, file_id="F1", filename="q3.csv")
    theirs = there_store.put("T1:D1", dataset, file_id="F1", filename="q3.csv")
    mine.context.options = mine.context.options.with_account_types({"Advertising": AccountType.REVENUE})
    mine.context.override_roles(RoleOverrides(actual="Spend"))
    await here.push("T1:D1", mine)

    await there.pull("T1:D1", theirs)
    assert overrides_record(theirs.context) == {
        "roles": {"actual": "Spend"}, "types": {"Advertising": "revenue"}
    }
    assert theirs.context.override_notes() == mine.context.override_notes()
    # The same conversation with another file starts without them.
    other_file = there_store.put("T1:D1", dataset, file_id="F2", filename="q4.csv")
    await there.pull("T1:D1", other_file)
    assert overrides_record(other_file.context) == {}
    # A reset on one instance (an empty record) clears them on the other.
    mine.context.reset()
    await here.push("T1:D1", mine)
    theirs_again = there_store.put("T1:D1", dataset, file_id="F1", filename="q3.csv")
    theirs_again.context.options = theirs_again.context.options.with_account_types({"Salaries": AccountType.REVENUE})
    await there.pull("T1:D1", theirs_again)
    assert overrides_record(theirs_again.context) == {}
    # A deleted file takes its records along.
    await here.drop_files({"F1"})
    assert await redis_client.keys("va:overrides:*") == []
