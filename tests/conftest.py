"""Fixtures every test folder shares: the fake OpenAI server, the analyst's settings pointing at it, one pool
of reader processes, and one real redis-server for the session (Debian's ``redis-server``).

A folder's own ``conftest.py`` keeps only what is its own (its surface running against the fakes). Helpers live
in importable modules (``tests/<folder>/helpers.py`` and the like), never in a conftest.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import redis.asyncio as aioredis

from bot.state.redis_client import connect
from bot.workers import WorkerPool
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.redis_server import redis_server_path, running_redis

if TYPE_CHECKING:
    from analyst.agent import AgentSettings


@pytest.fixture(scope="session")
def workers() -> Iterator[WorkerPool]:
    """One pool for the whole run: starting reader processes costs more than most tests."""
    pool = WorkerPool(2)
    yield pool
    pool.shutdown()


@pytest.fixture
async def openai() -> AsyncIterator[FakeOpenAI]:
    """A fresh fake OpenAI server on 127.0.0.1 (Responses and Chat Completions, real errors and limits)."""
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
def fake(openai: FakeOpenAI) -> FakeOpenAI:
    """The fake OpenAI server, under the name the agent and web tests use (``openai`` is the SDK there)."""
    return openai


@pytest.fixture
def model(openai: FakeOpenAI) -> FakeOpenAI:
    """The fake OpenAI server, under the name the Teams tests use."""
    return openai


@pytest.fixture
def agent_settings(openai: FakeOpenAI, tmp_path: Path) -> AgentSettings:
    """The analyst pointed at the fake OpenAI server, its memory under ``tmp_path``: each surface's tests start
    from these (the agents SDK is imported here, not for every test folder)."""
    from analyst.agent import AgentSettings

    return AgentSettings(
        api_key="sk-test",
        base_url=openai.base_url,
        model="gpt-test",
        timeout=5.0,
        max_retries=2,
        data_dir=tmp_path / "data",
        max_turns=6,
    )


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A real redis-server on a free loopback port for the whole run (flush what a test needs clean)."""
    if redis_server_path() is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is missing: .ci/run must install Debian's redis-server")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    with running_redis() as url:
        yield url


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A client of the session's redis-server, flushed before the test."""
    client = connect(redis_url)
    await client.flushdb()
    yield client
    await client.aclose()
