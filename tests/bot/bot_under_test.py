"""The bot under test: the real app in HTTP mode against the fake Slack and the fake OpenAI.

:func:`start_bot` starts ``bot.app.create_app`` on 127.0.0.1 (a random port) with ``SLACK_API_URL`` pointed at the fake
Slack and ``OPENAI_BASE_URL`` at the fake OpenAI, and sends requests signed like Slack signs them (v0,
HMAC-SHA256 over ``v0:{timestamp}:{body}``), with the payload shapes of Slack's Events API docs.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import json
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
from aiohttp import web

from bot.app import DEPS_KEY, create_app
from bot.config import Settings
from bot.deps import BotDeps
from bot.workers import WorkerPool
from tests.bot.helpers import CHANNEL, TEAM, USER
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import FakeSlack

SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
_ids = itertools.count(1)


def slack_signature(body: str, timestamp: int, secret: str = SIGNING_SECRET) -> str:
    base = f"v0:{timestamp}:{body}".encode()
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def signed_headers(
    body: str, *, content_type: str, timestamp: int | None = None, secret: str = SIGNING_SECRET
) -> dict[str, str]:
    ts = int(time.time()) if timestamp is None else timestamp
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": slack_signature(body, ts, secret),
    }


def event_envelope(event: Mapping[str, Any], *, event_id: str | None = None, team: str = TEAM) -> dict[str, Any]:
    """An Events API ``event_callback`` body, as Slack sends it."""
    return {
        "token": "legacy-verification-token",
        "team_id": team,
        "context_team_id": team,
        "api_app_id": "A0VARIANCE",
        "event": dict(event),
        "type": "event_callback",
        "event_id": event_id or f"Ev{next(_ids):08d}",
        "event_time": int(time.time()),
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team,
                "user_id": "UBOT",
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "is_ext_shared_channel": False,
        "event_context": "4-eyJldCI6ImFwcF9tZW50aW9uIn0",
    }


class BotUnderTest:
    """The running app and ways to talk to it like Slack does."""

    def __init__(self, url: str, deps: BotDeps, slack: FakeSlack, http: aiohttp.ClientSession) -> None:
        self.url = url
        self.deps = deps
        self.slack = slack
        self.http = http

    async def post_signed(
        self,
        body: str,
        *,
        content_type: str = "application/json",
        timestamp: int | None = None,
        secret: str = SIGNING_SECRET,
        headers: Mapping[str, str] | None = None,
    ) -> tuple[int, str]:
        all_headers = signed_headers(body, content_type=content_type, timestamp=timestamp, secret=secret)
        all_headers.update(headers or {})
        async with self.http.post(f"{self.url}/slack/events", data=body.encode(), headers=all_headers) as resp:
            return resp.status, await resp.text()

    async def send_event(
        self, event: Mapping[str, Any], *, event_id: str | None = None, retry: int | None = None
    ) -> int:
        body = json.dumps(event_envelope(event, event_id=event_id))
        headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"} if retry else None
        status, _ = await self.post_signed(body, headers=headers)
        return status

    async def send_command(
        self, text: str, *, channel: str = CHANNEL, user: str = USER, response_url: str | None = None
    ) -> tuple[int, str]:
        form = {
            "token": "legacy-verification-token",
            "team_id": TEAM,
            "team_domain": "finance",
            "channel_id": channel,
            "channel_name": "directmessage" if channel.startswith("D") else "general",
            "user_id": user,
            "user_name": "controller",
            "command": "/variance",
            "text": text,
            "api_app_id": "A0VARIANCE",
            "is_enterprise_install": "false",
            "response_url": response_url or self.slack.new_response_url(),
            "trigger_id": f"{next(_ids)}.1.abc",
        }
        return await self.post_signed(urlencode(form), content_type="application/x-www-form-urlencoded")

    async def click(
        self,
        action_id: str,
        value: str,
        *,
        channel: str,
        message_ts: str,
        user: str = USER,
        response_url: str | None = None,
    ) -> tuple[int, str]:
        payload = {
            "type": "block_actions",
            "user": {"id": user, "username": "controller", "name": "controller", "team_id": TEAM},
            "api_app_id": "A0VARIANCE",
            "token": "legacy-verification-token",
            "container": {
                "type": "message",
                "message_ts": message_ts,
                "channel_id": channel,
                "is_ephemeral": False,
            },
            "trigger_id": f"{next(_ids)}.1.def",
            "team": {"id": TEAM, "domain": "finance"},
            "enterprise": None,
            "is_enterprise_install": False,
            "channel": {"id": channel, "name": "general"},
            "message": {"type": "message", "ts": message_ts, "bot_id": "BBOT", "text": "..."},
            "state": {"values": {}},
            "response_url": response_url or self.slack.new_response_url(),
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": "answer_controls",
                    "text": {"type": "plain_text", "text": "Stop", "emoji": True},
                    "value": value,
                    "type": "button",
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        }
        body = urlencode({"payload": json.dumps(payload)})
        return await self.post_signed(body, content_type="application/x-www-form-urlencoded")

    async def healthz(self) -> dict[str, Any]:
        async with self.http.get(f"{self.url}/healthz") as resp:
            assert resp.status == 200
            return dict(await resp.json())


def base_env(slack: FakeSlack, openai: FakeOpenAI | None, data_dir: Path) -> dict[str, str]:
    env = {
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.api_url,
        "VARIANCE_DATA_DIR": str(data_dir),
        "VARIANCE_EDIT_INTERVAL_S": "0.05",
        "VARIANCE_MAX_RETRIES": "0",
        "VARIANCE_MODEL_TIMEOUT": "5",
        "VARIANCE_MODEL": "fake-model",
        "HOME": str(data_dir),
    }
    if openai is not None:
        env.update(OPENAI_API_KEY="sk-test", OPENAI_BASE_URL=openai.base_url)
    return env


async def start_bot(settings: Settings, slack: FakeSlack, workers: WorkerPool) -> tuple[BotUnderTest, web.AppRunner]:
    _, web_app = create_app(settings, workers=workers)
    runner = web.AppRunner(web_app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    http = aiohttp.ClientSession()
    return BotUnderTest(f"http://127.0.0.1:{port}", web_app[DEPS_KEY], slack, http), runner


async def start_serve(
    env: Mapping[str, str], port: int, *, timeout: float = 60.0
) -> tuple[asyncio.subprocess.Process, list[str]]:
    """``variance-bot serve --http`` on ``port`` as a real process, its log on a pipe; returns the process and
    its log lines up to the start line (logged once the port is open and Slack answered). A process that exits
    first, or does not start within ``timeout``, is killed and the test fails with its log."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "serve", "--http", "--host", "127.0.0.1", "--port", str(port),
        env=dict(env),
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    seen: list[str] = []
    try:
        async with asyncio.timeout(timeout):
            while not any('"kind":"start"' in line for line in seen):
                line = (await process.stderr.readline()).decode()
                assert line, f"serve exited early: {''.join(seen)[-2000:]}"
                seen.append(line)
    except BaseException:
        if process.returncode is None:
            process.kill()
            await process.wait()
        raise
    return process, seen
