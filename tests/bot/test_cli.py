"""``variance-bot serve --http --port N`` as a real process: starts, serves /healthz and signed events, logs a
start line (no secrets), and exits 0 on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.bot.conftest import SIGNING_SECRET, base_env, signed_headers
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import FakeSlack


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.timeout(60)
async def test_serve_http_process(tmp_path: Path) -> None:
    async with FakeSlack() as slack, FakeOpenAI() as openai:
        port = free_port()
        env = {**os.environ, **base_env(slack, openai, tmp_path)}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "serve",
            "--http",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            env=env,
            stderr=asyncio.subprocess.PIPE,
        )
        assert process.stderr is not None
        seen: list[str] = []
        try:
            async with asyncio.timeout(45):  # the start line comes once the port is open and Slack answered
                while not any('"kind":"start"' in line for line in seen):
                    line = (await process.stderr.readline()).decode()
                    assert line, f"serve exited early: {''.join(seen)}"
                    seen.append(line)
            start = json.loads(next(line for line in seen if '"kind":"start"' in line))
            assert start["mode"] == "http" and start["port"] == port and start["team"] == slack.team_id
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    assert resp.status == 200 and (await resp.json())["ok"] is True
                body = json.dumps({"type": "url_verification", "challenge": "abc123", "token": "t"})
                headers = signed_headers(body, content_type="application/json")
                async with http.post(f"http://127.0.0.1:{port}/slack/events", data=body, headers=headers) as resp:
                    assert resp.status == 200 and (await resp.json()) == {"challenge": "abc123"}
        finally:
            process.send_signal(signal.SIGTERM)
            rest = await asyncio.wait_for(process.stderr.read(), timeout=20)
            code = await asyncio.wait_for(process.wait(), timeout=20)
        assert code == 0
        output = "".join(seen) + rest.decode()
        assert slack.bot_token not in output and SIGNING_SECRET not in output
        assert any('"kind":"request"' in line for line in output.splitlines())
