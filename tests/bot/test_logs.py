"""One structured JSON line per request and per answer, with ids, timings and outcome; never a secret or data."""

from __future__ import annotations

import json
import logging

import pytest

from tests.bot.bot_under_test import SIGNING_SECRET, BotUnderTest
from tests.bot.helpers import DM, SMALL_CSV, dm_event, final_answers
from tests.fakes.openai_server import FakeOpenAI, text


async def test_request_and_answer_lines(
    bot: BotUnderTest, openai: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    file_obj = bot.slack.add_file(SMALL_CSV, name="q3.csv")
    upload = bot.slack.add_message(DM, files=[file_obj])
    assert await bot.send_event(dm_event(upload.ts, files=[file_obj]), event_id="Ev0LOG1") == 200
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, DM)) == 1, timeout=20)
    openai.script(text("Marketing overspent on advertising.", chunk=5))
    question = bot.slack.add_message(DM, text="confidential question about payroll")
    assert await bot.send_event(dm_event(question.ts, "confidential question about payroll"), event_id="Ev0LOG2") == 200
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, DM)) == 2, timeout=20)
    await bot.deps.idle(timeout=10)

    records = [
        json.loads(r.getMessage())
        for r in caplog.records
        if r.name == "variance.bot" and r.getMessage().startswith("{")
    ]
    requests = [r for r in records if r["kind"] == "request"]
    answers = [r for r in records if r["kind"] == "answer"]
    assert {r.get("event_id") for r in requests} >= {"Ev0LOG1", "Ev0LOG2"}
    assert all(r["status"] == 200 and r["ms"] >= 0 and r["team"] == "T0001" for r in requests)
    assert [a["outcome"] for a in answers] == ["answered", "answered"]
    report, answer = answers
    assert report["entry"] == "dm" and report["rows"] == 4 and report["file_bytes"] == len(SMALL_CSV)
    assert answer["event_id"] == "Ev0LOG2" and answer["channel"] == DM and answer["edits"] == 0  # one post
    assert answer["total_s"] >= 0 and answer["messages"] == 1

    everything = "\n".join(r.getMessage() for r in caplog.records)
    for secret in (bot.slack.bot_token, SIGNING_SECRET, "confidential question", "Marketing,Advertising", "payroll"):
        assert secret not in everything


def test_every_library_line_is_json_without_secrets_or_data() -> None:
    from bot.logs import configure_logging, register_secrets

    secret = "s3cr3t-signing-value-abcdef"
    register_secrets([secret])
    root = logging.getLogger()
    saved = root.handlers[:], root.level, logging.getLogger("variance.bot").level
    try:
        configure_logging()
        check_lines(secret)
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        logging.getLogger("variance.bot").setLevel(saved[2])


def check_lines(secret: str) -> None:
    import io

    from bot.logs import JsonFormatter

    stream = io.StringIO()
    logging.getLogger().handlers[0].setStream(stream)  # type: ignore[attr-defined]
    assert isinstance(logging.getLogger().handlers[0].formatter, JsonFormatter)
    try:
        raise ValueError("could not convert string to float: 'CONFIDENTIAL PAYROLL 1,234'")
    except ValueError:
        logging.getLogger("slack_bolt.App").exception("Failed to run listener function (token xoxb-1-2-abc)")
    logging.getLogger("slack_sdk.web.async_base_client").warning("Received: Bearer xoxb-999-888-secret %s", secret)
    logging.getLogger("aiohttp.server").error("Error handling request " + "X" * 50_000)
    logging.getLogger("asyncio").warning("Task exception was never retrieved %s", {"key": "sk-abcdefghijklmnop"})
    lines = stream.getvalue().splitlines()
    assert len(lines) == 4
    records = [json.loads(line) for line in lines]
    assert [r["logger"] for r in records] == [
        "slack_bolt.App",
        "slack_sdk.web.async_base_client",
        "aiohttp.server",
        "asyncio",
    ]
    bolt = records[0]
    assert bolt["level"] == "error" and bolt["exc_type"] == "ValueError" and "test_logs.py" in bolt["traceback"]
    text = stream.getvalue()
    for leaked in ("CONFIDENTIAL", "xoxb-", secret, "sk-abcdefghijklmnop", "Traceback"):
        assert leaked not in text
    assert max(len(line) for line in lines) < 2_000
