"""Fixtures for the web chat's tests: the real aiohttp app on 127.0.0.1 against the fake OpenAI server.

``web_chat`` starts :func:`bot.web.app.create_web_app` as ``variance-bot web`` serves it (handler cancellation on, so
a client that goes away cancels its handler) with the analyst pointed at the fake model server. Tests change
the settings through ``web_settings_overrides``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

from analyst.agent import AgentSettings
from bot.files import WorkerPool
from bot.limits import LimitSettings
from bot.web.settings import WebSettings
from tests.web.helpers import WebUnderTest, start_web


@pytest.fixture
def web_settings_overrides() -> dict[str, Any]:
    return {}


@pytest.fixture
def web_settings(agent_settings: AgentSettings, web_settings_overrides: dict[str, Any]) -> WebSettings:
    settings = WebSettings(
        agent=agent_settings,
        keep_alive_s=5.0,
        limits=LimitSettings(user_max_running=2, user_questions_per_min=100, workspace_max_running=20),
    )
    return replace(settings, **web_settings_overrides)


@pytest.fixture
async def web_chat(web_settings: WebSettings, workers: WorkerPool) -> AsyncIterator[WebUnderTest]:
    server = await start_web(web_settings, workers)
    try:
        yield server
    finally:
        await server.http.close()
        await server.runner.cleanup()
