"""The door (``POST /slack/events``): the signature is checked over the raw bytes before anything is parsed;
malformed bodies get 400, unsigned ones 401, never a 500 or a traceback; log fields are capped."""

from __future__ import annotations

import json
import logging
import time

import pytest

from bot.logs import FIELD_LIMIT, JsonFormatter
from tests.bot.bot_under_test import SIGNING_SECRET, BotUnderTest

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


# Signed (so from Slack, or from someone holding the secret) but not shaped as Slack sends them.
ODD_SHAPES = [
    {"type": "event_callback", "event": "x"},
    {"type": "event_callback", "event": {"type": "message", "channel": ["x"], "channel_type": "im", "ts": 5}},
    {"type": "event_callback", "event": {"type": "app_mention", "channel": "C1", "ts": "1.0", "text": ["x"]}},
    {"type": "event_callback", "event": {"type": "message", "subtype": "message_deleted", "deleted_ts": {"a": 1}}},
    {"type": "event_callback", "event": {"type": "file_deleted", "file_id": ["F1"]}},
    {"type": "block_actions", "actions": "x"},
    {"type": "block_actions", "actions": [{"action_id": "stop_answer", "value": 5}], "team": "T", "channel": 3},
    {"command": 5, "text": 7},
    {"command": "/variance", "text": "forget", "team_id": 5, "channel_id": None, "user_id": ["U"]},
    {"type": "url_verification"},
    {"type": "event_callback", "event": {"type": "message", "channel_type": "im", "ts": "1.0", "files": "x"}},
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


@pytest.mark.parametrize("body", ODD_SHAPES, ids=[f"odd{i}" for i in range(len(ODD_SHAPES))])
async def test_signed_bodies_of_odd_shapes_never_fail(
    bot: BotUnderTest, caplog: pytest.LogCaptureFixture, body: dict[str, object]
) -> None:
    caplog.set_level(logging.INFO)
    status, _ = await bot.post_signed(json.dumps(body))
    await bot.deps.idle(timeout=5)
    assert status in (200, 400, 404)
    assert not [r.getMessage() for r in records(caplog) if r.exc_info or r.levelno >= logging.ERROR]
