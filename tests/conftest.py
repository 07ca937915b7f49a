"""Fixtures every test area may use: one real redis-server for the session (Debian's ``redis-server``)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.fakes.redis_server import redis_server_path, running_redis


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    if redis_server_path() is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server is missing: .ci/run must install Debian's redis-server")
        pytest.skip("redis-server is not installed (apt-get install redis-server)")
    with running_redis() as url:
        yield url
