"""Fixtures for the agent's tests: the fake OpenAI server, settings pointing at it, a small dataset."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from analyst.agent import AgentSettings
from analyst.context import AnalysisContext
from tests.agent.helpers import make_dataset
from tests.fakes.openai_server import FakeOpenAI


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
def settings(fake: FakeOpenAI, tmp_path: Path) -> AgentSettings:
    return AgentSettings(
        api_key="sk-test",
        base_url=fake.base_url,
        model="gpt-test",
        timeout=5.0,
        max_retries=2,
        data_dir=tmp_path / "data",
        max_turns=6,
        history_items=40,
    )


@pytest.fixture
def context() -> AnalysisContext:
    return AnalysisContext(dataset=make_dataset(100))
