"""Two Teams bots on one real Redis (``REDIS_URL``), against the fake Teams and the fake OpenAI: a redelivered
activity that reaches the other instance is answered once, and a follow-up answered by the other instance
carries the conversation's earlier turns to the model."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import pytest

from bot.files import WorkerPool
from bot.state.redis_client import connect
from bot.teams.settings import TeamsSettings
from tests.fakes.openai_server import FakeOpenAI, text
from tests.fakes.teams_server import FakeTeams
from tests.teams.helpers import RunningBot, start_bot

CHAT = "a:personal-shared"


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
    assert await teams.deliver(a.url, teams.message(first, conversation=CHAT, files=files)) == 200
    await teams.wait_for(lambda t: len(_finals(t)) == 1)
    await a.deps.idle(timeout=20)
    # Instance b has no copy of the file (datasets stay per instance): the follow-up brings it again.
    follow = "and engineering?"
    assert await teams.deliver(b.url, teams.message(follow, conversation=CHAT, files=files)) == 200
    await teams.wait_for(lambda t: len(_finals(t)) == 2)
    await b.deps.idle(timeout=20)
    sent = json.dumps(model.requests[-1].json["input"])
    assert first in sent and "Events ran over by 193,449.71." in sent and follow in sent
