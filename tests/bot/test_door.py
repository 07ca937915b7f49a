"""The door (``POST /slack/events``): the signature is checked over the raw bytes before anything is parsed;
malformed bodies get 400, unsigned ones 401, never a 500 or a traceback; log fields are capped. Socket Mode's
``--port`` serves ``/healthz`` only."""

from __future__ import annotations

import json
import logging
import time

import pytest

from bot.app import create_app
from bot.config import Settings
from bot.logs import FIELD_LIMIT, JsonFormatter
from tests.bot.conftest import SIGNING_SECRET, BotUnderTest, base_env, signed_headers
from tests.fakes.slack_server import FakeSlack

MALFORMED = [
    (b"{not json", "application/json"),
    (b"[1]", "application/json"),
    (b'"just a string"', "application/json"),
    (b"payload=%7B", "application/x-www-form-urlencoded"),
    (b"payload=%5B1%5D", "application/x-www-form-urlencoded"),
    ("{\"type\": \"event_callback\", \"team_id\": \"caf\xe9\"}".encode("latin-1"), "application/json"),
    (b"\xff\xfe\x00{", "application/x-www-form-urlencoded"),
    (b'{"type": "event_callback", "event": [1, 2], "team": 5, "authorizations": "x"}', "application/json"),
]


async def post_raw(bot: BotUnderTest, raw: bytes, headers: dict[str, str]) -> tuple[int, str]:
    async with bot.http.post(f"{bot.url}/slack/events", data=raw, headers=headers) as resp:
        return resp.status, await resp.text()


def signed_raw(raw: bytes, content_type: str, *, secret: str = SIGNING_SECRET) -> dict[str, str]:
    import hashlib
    import hmac

    ts = str(int(time.time()))
    digest = hmac.new(secret.encode(), b"v0:" + ts.encode() + b":" + raw, hashlib.sha256).hexdigest()
    return {"Content-Type": content_type, "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return list(caplog.records)


@pytest.mark.parametrize(("raw", "content_type"), MALFORMED, ids=[f"m{i}" for i in range(len(MALFORMED))])
async def test_malformed_signed_bodies_get_400_without_a_traceback(
    bot: BotUnderTest, caplog: pytest.LogCaptureFixture, raw: bytes, content_type: str
) -> None:
    caplog.set_level(logging.DEBUG)
    status, text = await post_raw(bot, raw, signed_raw(raw, content_type))
    assert status == 400, text
    assert "Traceback" not in text
    assert not [r for r in records(caplog) if r.exc_info], [r.getMessage() for r in records(caplog)]
    assert bot.slack.calls_of("chat.postMessage") == []


@pytest.mark.parametrize(("raw", "content_type"), MALFORMED, ids=[f"m{i}" for i in range(len(MALFORMED))])
async def test_malformed_unsigned_bodies_get_401_before_parsing(
    bot: BotUnderTest, caplog: pytest.LogCaptureFixture, raw: bytes, content_type: str
) -> None:
    caplog.set_level(logging.DEBUG)
    for headers in (
        {"Content-Type": content_type},
        signed_raw(raw, content_type, secret="not-the-secret"),
        {"Content-Type": content_type, "X-Slack-Request-Timestamp": "soon", "X-Slack-Signature": "v0=00"},
        {"Content-Type": content_type, "X-Slack-Request-Timestamp": "١٢٣", "X-Slack-Signature": "v0=\u00e9"},
    ):
        status, text = await post_raw(bot, raw, headers)
        assert status == 401, text
    assert not [r for r in records(caplog) if r.exc_info]
    refused = [json.loads(r.getMessage()) for r in records(caplog) if r.getMessage().startswith('{"kind":"request"')]
    assert refused and all(r["status"] == 401 and "refused" in r for r in refused)


async def test_huge_fields_make_short_log_lines(bot: BotUnderTest, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    huge = "A" * 1_500_000
    for body in (
        json.dumps({"type": "event_callback", "team_id": "T1", "event_id": huge, "event": {"type": "x"}}),
        json.dumps({"type": huge, "command": "/variance"}),
        json.dumps({"type": "event_callback", "event": {"type": "app_mention", "channel": huge}}),
    ):
        status, _ = await bot.post_signed(body)
        assert status in (200, 404)
    formatter = JsonFormatter()
    lines = [formatter.format(r) for r in records(caplog)]
    assert any('"kind":"request"' in line for line in lines)
    assert max(len(line) for line in lines) < 20 * FIELD_LIMIT
    for line in lines:
        json.loads(line)


async def test_socket_mode_port_serves_only_healthz(slack: FakeSlack, tmp_path: object) -> None:
    from pathlib import Path

    import aiohttp
    from aiohttp import web

    env = base_env(slack, None, Path(str(tmp_path))) | {"SLACK_APP_TOKEN": "xapp-1-A0-1-test"}
    del env["SLACK_SIGNING_SECRET"]
    settings = Settings.from_env(env, mode="socket", load_agent=False)
    _, web_app = create_app(settings, events_endpoint=False)
    runner = web.AppRunner(web_app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                assert resp.status == 200
            body = json.dumps({"type": "url_verification", "challenge": "abc"})
            headers = signed_headers(body, content_type="application/json", secret="")
            async with http.post(f"http://127.0.0.1:{port}/slack/events", data=body, headers=headers) as resp:
                assert resp.status in (404, 405)
                assert "abc" not in await resp.text()
    finally:
        await runner.cleanup()
