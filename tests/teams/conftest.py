"""Fixtures for the Teams tests: the real bot (``create_teams_app``, the real Teams SDK) against the fake Teams
(connector, login, keys, TLS file host) and the fake OpenAI server, all on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from analyst.agent import AgentSettings
from bot.files import WorkerPool
from bot.teams.settings import TeamsSettings
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.teams_server import FakeTeams
from tests.teams.helpers import EXAMPLE, RunningBot, start_bot


@pytest.fixture
async def teams() -> AsyncIterator[FakeTeams]:
    async with FakeTeams() as fake:
        yield fake


@pytest.fixture
def settings(teams: FakeTeams, model: FakeOpenAI, agent_settings: AgentSettings) -> TeamsSettings:
    env = teams.env() | {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": model.base_url}
    base = TeamsSettings.from_env(env, load_agent=False)
    agent = replace(agent_settings, timeout=10.0, max_retries=1)
    return replace(base, agent=agent, chunk_interval_s=0.2)


@pytest.fixture
async def bot(settings: TeamsSettings, workers: WorkerPool) -> AsyncIterator[RunningBot]:
    running, runner = await start_bot(settings, workers)
    try:
        yield running
    finally:
        await running.deps.idle(timeout=30)
        await runner.cleanup()


@pytest.fixture
def example_csv() -> bytes:
    return EXAMPLE.read_bytes()
