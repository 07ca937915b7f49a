"""Fixtures for the agent's tests: settings pointing at the fake OpenAI server (``fake``), a small dataset."""

from __future__ import annotations

from dataclasses import replace

import pytest

from analyst.agent import AgentSettings
from analyst.context import AnalysisContext
from tests.agent.helpers import make_dataset


@pytest.fixture
def settings(agent_settings: AgentSettings) -> AgentSettings:
    return replace(agent_settings, history_items=40)


@pytest.fixture
def context() -> AnalysisContext:
    return AnalysisContext(dataset=make_dataset(100))
