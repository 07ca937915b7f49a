"""Fixtures for the Teams tests: the real bot (``create_teams_app``, the real Teams SDK) against the fake Teams
(connector, login, keys, TLS file host) and the fake OpenAI server, all on 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from aiohttp import web

from analyst.agent import AgentSettings
from bot.files import WorkerPool
from bot.teams.server import TeamsServer, create_teams_app
from bot.teams.settings import TeamsSettings
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.teams_server import FakeTeams

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "budget_vs_actual.csv"


@dataclass(slots=True)
class RunningBot:
    server: TeamsServer
    url: str  # .../api/messages
    base: str

    @property
    def deps(self):  # type: ignore[no-untyped-def]
        return self.server.deps


@pytest.fixture(scope="session")
def workers() -> Iterator[WorkerPool]:
    pool = WorkerPool(1)
    yield pool
    pool.shutdown()


@pytest.fixture
async def teams() -> AsyncIterator[FakeTeams]:
    async with FakeTeams() as fake:
        yield fake


@pytest.fixture
async def model() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def settings(teams: FakeTeams, model: FakeOpenAI, tmp_path: Path) -> TeamsSettings:
    env = teams.env() | {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": model.base_url}
    base = TeamsSettings.from_env(env, load_agent=False)
    agent = AgentSettings(
        api_key="sk-test",
        base_url=model.base_url,
        model="gpt-test",
        timeout=10.0,
        max_retries=1,
        data_dir=tmp_path / "data",
        max_turns=6,
    )
    return replace(base, agent=agent, chunk_interval_s=0.2)


async def start_bot(settings: TeamsSettings, workers: WorkerPool) -> tuple[RunningBot, web.AppRunner]:
    server = create_teams_app(settings, workers=workers)
    runner = web.AppRunner(server.web_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}"
    return RunningBot(server, f"{base}/api/messages", base), runner


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
