"""Fixtures for the bot's tests: the real app in HTTP mode (``bot``) against the fake Slack and the fake OpenAI
(``openai``, from ``tests/conftest.py``); :mod:`tests.bot.bot_under_test` is how it is started and talked to.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.config import Settings
from bot.workers import WorkerPool
from tests.bot.bot_under_test import BotUnderTest, base_env, start_bot
from tests.bot.helpers import CHANNEL, DM, USER
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import FakeSlack, FakeSlackLimits


@pytest.fixture
def slack_limits() -> FakeSlackLimits:
    return FakeSlackLimits()


@pytest.fixture
async def slack(slack_limits: FakeSlackLimits) -> AsyncIterator[FakeSlack]:
    async with FakeSlack(limits=slack_limits) as fake:
        fake.add_channel(CHANNEL, name="general")
        fake.add_channel(DM, is_im=True, user=USER)
        yield fake


@pytest.fixture
def env_overrides() -> dict[str, str]:
    """Per-test extra environment for the bot (override this fixture or mutate it before ``bot`` starts)."""
    return {}


@pytest.fixture
async def bot(
    slack: FakeSlack, openai: FakeOpenAI, workers: WorkerPool, tmp_path: Path, env_overrides: dict[str, str]
) -> AsyncIterator[BotUnderTest]:
    env = base_env(slack, openai, tmp_path) | env_overrides
    import analyst.agent

    settings = Settings.from_env(env, mode="http", load_agent=hasattr(analyst.agent, "AgentSettings"))
    under_test, runner = await start_bot(settings, slack, workers)
    try:
        yield under_test
    finally:
        await under_test.http.close()
        await runner.cleanup()
