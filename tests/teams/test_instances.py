"""Two Teams bots on one real Redis (``REDIS_URL``), against the fake Teams (which enforces Teams' real
per-conversation limits and answers 429 with ``Retry-After``) and the fake OpenAI: a redelivered activity that
reaches the other instance is answered once; a follow-up answered by the other instance carries the
conversation's earlier turns to the model and reads the file shared on the first instance again (or, once
Teams' download link has expired, asks for the file); two answers streamed at once into one conversation by the
two instances meet no 429 and lose no text."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from bot.files import WorkerPool
from bot.state.redis_client import connect
from bot.teams.settings import TeamsSettings
from tests.fakes.openai_server import FakeOpenAI, text, tool_call
from tests.fakes.teams_server import FakeTeams
from tests.teams.helpers import RunningBot, start_bot

CHAT = "a:personal-shared"
# A budget-vs-actual export small enough to check by hand (all expenses): budget 40,000.00 + 25,000.00 +
# 80,000.00 = 145,000.00, actual 52,500.00 + 23,750.00 + 80,000.00 = 156,250.00, so spending is 11,250.00
# (7.76%) over budget, which costs profit 11,250.00: Events & Conferences +12,500.00, Advertising -1,250.00.
SMALL_EXPORT = (
    b"Month,Department,Account,Account Type,Budget,Actual\n"
    b'2025-07,Marketing,Events & Conferences,Expense,"$40,000.00","$52,500.00"\n'
    b'2025-07,Marketing,Digital Advertising,Expense,"$25,000.00","$23,750.00"\n'
    b'2025-07,Sales,Salaries & Wages,Expense,"$80,000.00","$80,000.00"\n'
)


@pytest.fixture
async def pair(
    settings: TeamsSettings, workers: WorkerPool, redis_url: str, tmp_path: Path
) -> AsyncIterator[tuple[RunningBot, RunningBot]]:
    client = connect(redis_url)
    await client.flushdb()
    await client.aclose()
    bots, runners = [], []
    for name in ("a", "b"):
        assert settings.agent is not None
        agent = replace(settings.agent, data_dir=tmp_path / name)  # no shared folder: only Redis is shared
        running, runner = await start_bot(replace(settings, redis_url=redis_url, agent=agent), workers)
        bots.append(running)
        runners.append(runner)
    try:
        yield bots[0], bots[1]
    finally:
        for running, runner in zip(bots, runners, strict=True):
            await running.deps.idle(timeout=30)
            await runner.cleanup()


def _finals(teams: FakeTeams) -> list:  # type: ignore[type-arg]
    return [c for c in teams.calls_to(CHAT) if c.kind == "final"]



async def say(teams: FakeTeams, bot: RunningBot, activity: dict, *, finals: int) -> None:  # type: ignore[type-arg]
    """Deliver ``activity`` to ``bot``; wait until the chat shows ``finals`` final answers and ``bot`` is idle."""
    assert await teams.deliver(bot.url, activity) == 200
    await teams.wait_for(lambda t: len(_finals(t)) == finals)
    await bot.deps.idle(timeout=20)


async def test_a_redelivery_to_the_other_instance_is_answered_once(
    teams: FakeTeams, model: FakeOpenAI, pair: tuple[RunningBot, RunningBot], example_csv: bytes
) -> None:
    a, b = pair
    url = teams.host_file("budget_vs_actual.csv", example_csv, "text/csv")
    activity = teams.message("", conversation=CHAT, files=[("budget_vs_actual.csv", url)])
    assert await teams.deliver(a.url, activity) == 200
    assert await teams.deliver(b.url, activity) == 200  # Teams' redelivery, through the load balancer
    await teams.wait_for(lambda t: len(_finals(t)) == 1)
    await a.deps.idle(timeout=20)
    await b.deps.idle(timeout=20)
    assert len(_finals(teams)) == 1
    assert a.deps.answered + b.deps.answered == 1


async def test_a_follow_up_on_the_other_instance_carries_the_earlier_turns(
    teams: FakeTeams, model: FakeOpenAI, pair: tuple[RunningBot, RunningBot], example_csv: bytes
) -> None:
    a, b = pair
    url = teams.host_file("budget_vs_actual.csv", example_csv, "text/csv")
    first = "why is marketing over budget?"
    model.script(text("Events ran over by 193,449.71."), text("Salaries are under plan."))
    files = [("budget_vs_actual.csv", url)]
    await say(teams, a, teams.message(first, conversation=CHAT, files=files), finals=1)
    # Instance b has no copy of the file (datasets stay per instance): the follow-up brings it again.
    follow = "and engineering?"
    await say(teams, b, teams.message(follow, conversation=CHAT, files=files), finals=2)
    sent = json.dumps(model.requests[-1].json["input"])
    assert first in sent and "Events ran over by 193,449.71." in sent and follow in sent


async def test_a_follow_up_on_the_other_instance_reads_the_file_shared_on_the_first(
    teams: FakeTeams, model: FakeOpenAI, pair: tuple[RunningBot, RunningBot]
) -> None:
    a, b = pair
    url = teams.host_file("marketing_july.csv", SMALL_EXPORT, "text/csv")
    model.script(text("Noted."), tool_call("variance_summary", {}), text("Spending is 11,250.00 over budget."))
    files = [("marketing_july.csv", url)]
    await say(teams, a, teams.message("what is in this file?", conversation=CHAT, files=files), finals=1)
    assert len(b.deps.store) == 0  # instance b never saw the file

    # The follow-up carries no file; it reaches b, which reads the file again from the link Teams gave a.
    await say(teams, b, teams.message("why is marketing over budget?", conversation=CHAT), finals=2)
    assert _finals(teams)[-1].text.replace("\u200b", "") == "Spending is 11,250.00 over budget."
    assert len(teams.file_requests) == 2 and len(b.deps.store) == 1
    # The figures the model was given on b come from the file (hand-computed above).
    (output,) = [i["output"] for i in model.requests[-1].json["input"] if i.get("type") == "function_call_output"]
    summary = json.loads(output)
    assert summary["totals"] == {
        "actual": 156250.0,
        "reference": 145000.0,
        "variance": 11250.0,
        "variance_pct": pytest.approx(11250 / 145000 * 100),
    }
    assert summary["net_impact"] == -11250.0 and summary["favourable"] is False
    # A second follow-up on b uses b's own copy: no new download.
    model.script(text("Digital Advertising is 1,250.00 under."))
    await say(teams, b, teams.message("and advertising?", conversation=CHAT), finals=3)
    assert len(teams.file_requests) == 2


async def test_a_follow_up_after_teams_link_expired_asks_for_the_file_again(
    teams: FakeTeams, model: FakeOpenAI, pair: tuple[RunningBot, RunningBot]
) -> None:
    a, b = pair
    url = teams.host_file("marketing_july.csv", SMALL_EXPORT, "text/csv")
    model.script(text("Noted."))
    files = [("marketing_july.csv", url)]
    await say(teams, a, teams.message("what is in this file?", conversation=CHAT, files=files), finals=1)
    teams.expire_file(url)  # Teams' download links are short-lived

    await say(teams, b, teams.message("why is marketing over budget?", conversation=CHAT), finals=2)
    final = _finals(teams)[-1].text.replace("\u200b", "")
    assert final == (
        "The link Teams gave me to marketing_july.csv has expired (Teams' file links only last a short while), so "
        "I can't read the file again. Send marketing_july.csv here once more and ask your question."
    )
    assert "Traceback" not in final and len(model.requests) == 1  # no model call for it
    # The dead link is forgotten: the next follow-up there is simply asked for a file.
    assert await teams.deliver(b.url, teams.message("and now?", conversation=CHAT)) == 200
    await teams.wait_for(lambda t: len(teams.calls_to(CHAT)) > 0 and teams.calls_to(CHAT)[-1].kind == "message")
    await b.deps.idle(timeout=20)
    assert teams.calls_to(CHAT)[-1].text.startswith("I don't have a file to analyse here yet.")
    assert len(teams.file_requests) == 2


def _long_answer(label: str) -> str:
    return " ".join(f"{label} point {n}: Events & Conferences ran 12,500.00 over." for n in range(14))


async def test_two_instances_streaming_into_one_conversation_meet_no_429_and_lose_no_text(
    teams: FakeTeams, model: FakeOpenAI, pair: tuple[RunningBot, RunningBot]
) -> None:
    a, b = pair
    url = teams.host_file("marketing_july.csv", SMALL_EXPORT, "text/csv")
    files = [("marketing_july.csv", url)]
    model.script(text("Noted."))
    await say(teams, a, teams.message("what is in this file?", conversation=CHAT, files=files), finals=1)
    answers = [_long_answer("First"), _long_answer("Second")]
    # Each answer streams for ~3 s, a chunk every 0.2 s on each instance: together more than 7 calls a second.
    model.script(*(text(answer, chunk=6, delay=0.025) for answer in answers))
    questions = [teams.message(q, conversation=CHAT) for q in ("what drives marketing?", "and events?")]
    statuses = await asyncio.gather(teams.deliver(a.url, questions[0]), teams.deliver(b.url, questions[1]))
    assert statuses == [200, 200]
    await teams.wait_for(lambda t: len(_finals(t)) == 3, timeout=60)
    await a.deps.idle(timeout=30)
    await b.deps.idle(timeout=30)

    assert teams.throttled == 0 and teams.ignored_retry_after == 0
    assert sorted(f.text.replace("\u200b", "") for f in _finals(teams)[1:]) == sorted(answers)
    streamed = [c for c in teams.calls_to(CHAT) if c.kind == "streaming"]
    assert len(streamed) >= 10  # enough calls that two unshared pacers would have passed Teams' limits
    assert a.server.pacer.stats.calls > 0 and b.server.pacer.stats.calls > 0


async def test_a_group_mention_on_the_other_instance_uses_the_file_sent_in_the_one_to_one_chat(
    teams: FakeTeams, model: FakeOpenAI, pair: tuple[RunningBot, RunningBot]
) -> None:
    a, b = pair
    url = teams.host_file("marketing_july.csv", SMALL_EXPORT, "text/csv")
    assert await teams.deliver(a.url, teams.message("", conversation=CHAT, files=[("marketing_july.csv", url)])) == 200
    await teams.wait_for(lambda t: len(_finals(t)) == 1)  # the report card, on a
    await a.deps.idle(timeout=20)
    group = "19:group-shared@thread.v2"
    mention = teams.message("report", conversation=group, kind="groupChat", mention_bot=True)
    assert await teams.deliver(b.url, mention) == 200
    await teams.wait_for(lambda t: len(t.calls_to(group)) >= 1)
    await b.deps.idle(timeout=20)
    card = teams.calls_to(group)[0].body["attachments"][0]["content"]
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert facts["Budget"] == "145,000.00" and facts["Actual"] == "156,250.00"
    assert facts["Variance"] == "+11,250.00 (+7.8%)"
    assert len(teams.file_requests) == 2 and model.requests == []


async def test_an_override_made_on_one_instance_holds_on_the_other(
    teams: FakeTeams, model: FakeOpenAI, pair: tuple[RunningBot, RunningBot]
) -> None:
    a, b = pair
    url = teams.host_file("marketing_july.csv", SMALL_EXPORT, "text/csv")
    assignments = {"assignments": [{"label": "Digital Advertising", "type": "revenue"}]}
    model.script(tool_call("set_account_type", assignments), text("Done."))
    files = [("marketing_july.csv", url)]
    asked = teams.message("count advertising as revenue", conversation=CHAT, files=files)
    await say(teams, a, asked, finals=1)

    model.script(tool_call("variance_summary", {}), text("Profit is 13,750.00 below plan."))
    await say(teams, b, teams.message("how is profit?", conversation=CHAT), finals=2)
    outputs = [i["output"] for i in model.requests[-1].json["input"] if i.get("type") == "function_call_output"]
    summary = json.loads(outputs[-1])  # the earlier one is a's set_account_type, from the shared memory
    # Advertising as revenue: revenue 23,750.00 vs 25,000.00 (-1,250.00), costs 132,500.00 vs 120,000.00
    # (+12,500.00), so profit is -1,250.00 - 12,500.00 = -13,750.00 against plan.
    assert summary["net_impact"] == -13750.0
    parts = {p["account_type"]: p["variance"] for p in summary["headline"]["parts"]}
    assert parts == {"revenue": -1250.0, "expense": 12500.0}


async def test_a_newer_file_sent_through_the_other_instance_replaces_the_cached_one(
    teams: FakeTeams, model: FakeOpenAI, pair: tuple[RunningBot, RunningBot], example_csv: bytes
) -> None:
    a, b = pair
    old_url = teams.host_file("budget_vs_actual.csv", example_csv, "text/csv")
    new_url = teams.host_file("marketing_july.csv", SMALL_EXPORT, "text/csv")
    model.script(text("Noted."), text("Noted again."))
    first = teams.message("look at this", conversation=CHAT, files=[("budget_vs_actual.csv", old_url)])
    await say(teams, a, first, finals=1)
    second = teams.message("now this one", conversation=CHAT, files=[("marketing_july.csv", new_url)])
    await say(teams, b, second, finals=2)

    # a still holds the first file; the follow-up it gets is about the newer one.
    model.script(tool_call("variance_summary", {}), text("Spending is 11,250.00 over budget."))
    await say(teams, a, teams.message("how are we doing?", conversation=CHAT), finals=3)
    assert _summary_used(model)["totals"]["reference"] == 145000.0
    assert a.deps.store.get(f"teams:{teams.tenant_id}:{CHAT}").filename == "marketing_july.csv"


def _summary_used(model: FakeOpenAI) -> dict:  # type: ignore[type-arg]
    outputs = [i["output"] for i in model.requests[-1].json["input"] if i.get("type") == "function_call_output"]
    return json.loads(outputs[-1])  # type: ignore[no-any-return]


async def test_a_newer_file_whose_record_was_not_written_is_kept_over_the_older_record(
    teams: FakeTeams, model: FakeOpenAI, pair: tuple[RunningBot, RunningBot], example_csv: bytes
) -> None:
    a, b = pair
    old_url = teams.host_file("budget_vs_actual.csv", example_csv, "text/csv")
    new_url = teams.host_file("marketing_july.csv", SMALL_EXPORT, "text/csv")
    model.script(text("Noted."), text("Noted again."))
    first = teams.message("look at this", conversation=CHAT, files=[("budget_vs_actual.csv", old_url)])
    await say(teams, a, first, finals=1)

    async def not_written(conversation_id: str, source: object) -> None:  # Redis timed out: logged, not raised
        return None

    written = b.deps.sources.remember
    b.deps.sources.remember = not_written
    second = teams.message("now this one", conversation=CHAT, files=[("marketing_july.csv", new_url)])
    await say(teams, b, second, finals=2)
    b.deps.sources.remember = written

    # The shared record still names the first file, but b's own copy was shared after it: b keeps it.
    model.script(tool_call("variance_summary", {}), text("Spending is 11,250.00 over budget."))
    await say(teams, b, teams.message("how are we doing?", conversation=CHAT), finals=3)
    assert _summary_used(model)["totals"]["reference"] == 145000.0
    assert b.deps.store.get(f"teams:{teams.tenant_id}:{CHAT}").filename == "marketing_july.csv"
    assert len(teams.file_requests) == 2  # nothing downloaded again


async def test_an_older_file_read_slowly_never_replaces_the_newer_one_in_the_shared_record(
    teams: FakeTeams, model: FakeOpenAI, pair: tuple[RunningBot, RunningBot], example_csv: bytes
) -> None:
    a, b = pair
    old_url = teams.host_file("budget_vs_actual.csv", example_csv, "text/csv")
    new_url = teams.host_file("marketing_july.csv", SMALL_EXPORT, "text/csv")
    model.script(text("Noted."), text("Noted again."))
    reached, go_on = asyncio.Event(), asyncio.Event()
    remember = a.deps.sources.remember

    async def slow(conversation_id: str, source: object) -> None:  # a's record of the first file lands last
        reached.set()
        await go_on.wait()
        await remember(conversation_id, source)

    a.deps.sources.remember = slow
    first = teams.message("look at this", conversation=CHAT, files=[("budget_vs_actual.csv", old_url)])
    second = teams.message("now this one", conversation=CHAT, files=[("marketing_july.csv", new_url)])
    assert await teams.deliver(a.url, first) == 200
    await asyncio.wait_for(reached.wait(), timeout=20)
    await say(teams, b, second, finals=1)
    go_on.set()
    await teams.wait_for(lambda t: len(_finals(t)) == 2)
    await a.deps.idle(timeout=20)
    a.deps.sources.remember = remember

    # Both instances answer the next follow-ups from the newer file (a reads it again; b keeps its copy).
    for instance in (b, a):
        model.script(tool_call("variance_summary", {}), text("Spending is 11,250.00 over budget."))
        done = len(_finals(teams)) + 1
        assert await teams.deliver(instance.url, teams.message("how are we doing?", conversation=CHAT)) == 200
        await teams.wait_for(lambda t, done=done: len(_finals(t)) == done)  # type: ignore[misc]
        await instance.deps.idle(timeout=20)
        assert _summary_used(model)["totals"]["reference"] == 145000.0
        assert instance.deps.store.get(f"teams:{teams.tenant_id}:{CHAT}").filename == "marketing_july.csv"


async def test_a_group_mention_after_teams_link_expired_asks_for_the_file_in_the_one_to_one_chat(
    teams: FakeTeams, model: FakeOpenAI, pair: tuple[RunningBot, RunningBot]
) -> None:
    a, b = pair
    url = teams.host_file("marketing_july.csv", SMALL_EXPORT, "text/csv")
    await say(teams, a, teams.message("", conversation=CHAT, files=[("marketing_july.csv", url)]), finals=1)
    teams.expire_file(url)
    group = "19:group-expired@thread.v2"
    mention = teams.message("why is marketing over budget?", conversation=group, kind="groupChat", mention_bot=True)
    assert await teams.deliver(b.url, mention) == 200
    await teams.wait_for(lambda t: len(t.calls_to(group)) >= 1)
    await b.deps.idle(timeout=20)
    assert teams.calls_to(group)[-1].text.replace("\u200b", "") == (
        "The link Teams gave me to marketing_july.csv has expired (Teams' file links only last a short while), so "
        "I can't read the file again. Send marketing_july.csv to me once more in our 1:1 chat, then mention me "
        "here again."
    )
    assert model.requests == []


async def test_an_override_made_in_a_group_chat_on_one_instance_holds_on_the_other(
    teams: FakeTeams, model: FakeOpenAI, pair: tuple[RunningBot, RunningBot]
) -> None:
    a, b = pair
    url = teams.host_file("marketing_july.csv", SMALL_EXPORT, "text/csv")
    await say(teams, a, teams.message("", conversation=CHAT, files=[("marketing_july.csv", url)]), finals=1)
    group = "19:group-overrides@thread.v2"
    assignments = {"assignments": [{"label": "Digital Advertising", "type": "revenue"}]}
    model.script(tool_call("set_account_type", assignments), text("Done."))
    asked = teams.message("count advertising as revenue", conversation=group, kind="groupChat", mention_bot=True)
    assert await teams.deliver(a.url, asked) == 200
    await teams.wait_for(lambda t: len(t.calls_to(group)) >= 1)
    await a.deps.idle(timeout=20)

    model.script(tool_call("variance_summary", {}), text("Profit is 13,750.00 below plan."))
    asked = teams.message("how is profit?", conversation=group, kind="groupChat", mention_bot=True)
    assert await teams.deliver(b.url, asked) == 200
    await teams.wait_for(lambda t: len(t.calls_to(group)) >= 2)
    await b.deps.idle(timeout=20)
    # Advertising as revenue (see test_an_override_made_on_one_instance_holds_on_the_other): -13,750.00.
    summary = _summary_used(model)
    assert summary["net_impact"] == -13750.0
    assert {p["account_type"]: p["variance"] for p in summary["headline"]["parts"]} == {
        "revenue": -1250.0,
        "expense": 12500.0,
    }
    # The 1:1 chat's own dataset is untouched by the group thread's override.
    model.script(tool_call("variance_summary", {}), text("Spending is 11,250.00 over budget."))
    await say(teams, b, teams.message("how is profit here?", conversation=CHAT), finals=2)
    assert _summary_used(model)["net_impact"] == -11250.0


async def test_a_group_mention_uses_the_newest_file_even_when_another_instance_received_it(
    teams: FakeTeams, model: FakeOpenAI, pair: tuple[RunningBot, RunningBot], example_csv: bytes
) -> None:
    a, b = pair
    old_url = teams.host_file("budget_vs_actual.csv", example_csv, "text/csv")
    new_url = teams.host_file("marketing_july.csv", SMALL_EXPORT, "text/csv")
    other_chat = "a:personal-second"
    first = teams.message("", conversation=CHAT, files=[("budget_vs_actual.csv", old_url)])
    await say(teams, a, first, finals=1)
    # The same user's newer file, in another 1:1 chat with the bot, reaches b.
    second = teams.message("", conversation=other_chat, files=[("marketing_july.csv", new_url)])
    assert await teams.deliver(b.url, second) == 200
    await teams.wait_for(lambda t: any(c.kind == "final" for c in t.calls_to(other_chat)))
    await b.deps.idle(timeout=20)

    group = "19:group-newest@thread.v2"
    mention = teams.message("report", conversation=group, kind="groupChat", mention_bot=True)
    assert await teams.deliver(a.url, mention) == 200  # a remembers only the first file itself
    await teams.wait_for(lambda t: len(t.calls_to(group)) >= 1)
    await a.deps.idle(timeout=20)
    card = teams.calls_to(group)[0].body["attachments"][0]["content"]
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert facts["Budget"] == "145,000.00" and facts["Actual"] == "156,250.00"
