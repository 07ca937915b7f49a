"""Fixtures for the render tests: a fake Slack with fast (scaled) limits and the real AsyncWebClient."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.render import BudgetLimit, SlackBudget
from tests.fakes.slack_server import FakeSlack, FakeSlackLimits


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    # Slack's Tier 3 ratio (50 per 60 s) scaled 10x faster, and a fast post bucket.
    limits = FakeSlackLimits.scaled(update_limit=50, update_window=6.0, post_per_second=20.0, post_burst=5)
    async with FakeSlack(limits=limits) as fake:
        yield fake


@pytest.fixture
def client(slack: FakeSlack) -> AsyncWebClient:
    return AsyncWebClient(token=slack.bot_token, base_url=slack.api_url, timeout=5)


@pytest.fixture
async def budget() -> AsyncIterator[SlackBudget]:
    b = SlackBudget(
        limits={"chat.update": BudgetLimit(45, 6.0), "chat.delete": BudgetLimit(45, 6.0)},
        min_interval=0.1,
        post_rate=20.0,
        post_burst=5,
    )
    yield b
    await b.aclose()
