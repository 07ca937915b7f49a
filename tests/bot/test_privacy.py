"""Retention and privacy: conversation memory is private on disk and expires; ``/variance forget`` and deletions
in Slack remove the text from disk (the database and its WAL), and later answers do not carry it."""

from __future__ import annotations

import json
import sqlite3
import stat
from pathlib import Path

import pytest

from bot.config import Settings
from bot.files import WorkerPool
from tests.bot.bot_under_test import BotUnderTest, base_env, event_envelope, start_bot
from tests.bot.helpers import CHANNEL, DM, SMALL_CSV, TEAM, dm_event, final_answers, mention_event
from tests.fakes.openai_server import FakeOpenAI, text

SECRET_WORDS = "zeppelin hangar"
SECRET_QUESTION = f"why did the {SECRET_WORDS} overrun?"
SECRET_ANSWER = "The Zeppelin hangar overran on helium refills."
OTHER_USER = "U0OTHER"


def data_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


def disk_mentions(folder: Path, word: str) -> list[str]:
    """Files under ``folder`` whose raw bytes contain ``word`` (any case): database, WAL, shm, journal."""
    needle = word.lower().encode()
    return [str(p) for p in data_files(folder) if needle in p.read_bytes().lower()]


def model_inputs(openai: FakeOpenAI) -> list[str]:
    return [json.dumps(r.json.get("input") or r.json.get("messages"), ensure_ascii=False) for r in openai.requests]


async def upload_dm_file(bot: BotUnderTest, answers: int, user: str = "U0USER") -> str:
    file_obj = bot.slack.add_file(SMALL_CSV, name="q3.csv")
    upload = bot.slack.add_message(DM, files=[file_obj], user=user)
    assert await bot.send_event(dm_event(upload.ts, files=[file_obj], user=user)) == 200
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, DM)) == answers, timeout=20)
    return str(file_obj["id"])


async def ask_dm(bot: BotUnderTest, question: str, answers: int) -> str:
    message = bot.slack.add_message(DM, text=question)
    assert await bot.send_event(dm_event(message.ts, question)) == 200
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, DM)) == answers, timeout=20)
    await bot.deps.idle(timeout=10)
    return message.ts


async def forget(bot: BotUnderTest, channel: str, user: str = "U0USER") -> str:
    url = bot.slack.new_response_url()
    status, _ = await bot.send_command("forget", channel=channel, user=user, response_url=url)
    assert status == 200
    await bot.slack.wait_for(lambda: len(bot.slack.responses[url]) == 1, timeout=10)
    response = bot.slack.responses[url][0]
    assert response["response_type"] == "ephemeral"
    return str(response["text"]).replace("\u200b", "")


async def test_memory_is_private_on_disk(bot: BotUnderTest, openai: FakeOpenAI, tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    await upload_dm_file(bot, 1)
    openai.script(text("Fine."))
    await ask_dm(bot, "how are we doing?", 2)
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o700
    files = data_files(tmp_path)
    assert any(p.name == "conversations.sqlite3" for p in files)
    for path in files:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


async def test_forget_in_a_dm_deletes_memory_and_dataset_from_disk(
    bot: BotUnderTest, openai: FakeOpenAI, tmp_path: Path
) -> None:
    await upload_dm_file(bot, 1)
    openai.script(text(SECRET_ANSWER))
    await ask_dm(bot, SECRET_QUESTION, 2)
    assert disk_mentions(tmp_path, "zeppelin")  # it was stored

    confirmation = await forget(bot, DM)
    assert "our conversation here (2 stored items)" in confirmation and "q3.csv" in confirmation, confirmation
    assert disk_mentions(tmp_path, "zeppelin") == []
    assert disk_mentions(tmp_path, "helium") == []
    assert (await bot.healthz())["datasets"] == 0

    # The dataset is gone: a question now gets the "send me a file" notice, no model call.
    calls = len(openai.requests)
    message = bot.slack.add_message(DM, text="and now?")
    assert await bot.send_event(dm_event(message.ts, "and now?")) == 200
    await bot.slack.wait_for(lambda: "CSV or XLSX" in (bot.slack.bot_messages(DM)[-1].text or ""))
    assert len(openai.requests) == calls
    # With a file again, the next answer does not carry the forgotten exchange.
    await upload_dm_file(bot, 3)
    openai.script(text("All good."))
    await ask_dm(bot, "what changed?", 4)
    assert "zeppelin" not in model_inputs(openai)[-1].lower() and "helium" not in model_inputs(openai)[-1].lower()
    assert "nothing stored" in await forget(bot, "D0NEVERUSED")


async def test_forget_in_a_channel_removes_only_the_callers_turns(
    bot: BotUnderTest, openai: FakeOpenAI, tmp_path: Path
) -> None:
    file_obj = bot.slack.add_file(SMALL_CSV, name="q3.csv")
    openai.script(text(SECRET_ANSWER))
    first = bot.slack.add_message(CHANNEL, text=f"<@UBOT> {SECRET_QUESTION}", files=[file_obj])
    event = mention_event(CHANNEL, first.ts, f"<@UBOT> {SECRET_QUESTION}", files=[file_obj])
    assert await bot.send_event(event) == 200
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, CHANNEL)) == 1, timeout=20)
    await bot.deps.idle(timeout=10)
    openai.script(text("Walrus budgets are fine."))
    other = bot.slack.add_message(CHANNEL, text="<@UBOT> and the walrus pool?", thread_ts=first.ts, user=OTHER_USER)
    event = mention_event(CHANNEL, other.ts, "<@UBOT> and the walrus pool?", thread_ts=first.ts, user=OTHER_USER)
    assert await bot.send_event(event) == 200
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, CHANNEL)) == 2, timeout=20)
    await bot.deps.idle(timeout=10)
    assert disk_mentions(tmp_path, "zeppelin") and disk_mentions(tmp_path, "walrus")

    # Someone else's forget takes only their own turn.
    confirmation = await forget(bot, CHANNEL, user="U0THIRD")
    assert "nothing stored" in confirmation
    confirmation = await forget(bot, CHANNEL)
    assert "1 conversation" in confirmation and "q3.csv" in confirmation
    assert disk_mentions(tmp_path, "zeppelin") == [] and disk_mentions(tmp_path, "helium") == []
    assert disk_mentions(tmp_path, "walrus")  # the other person's turn stays
    assert bot.deps.store.get(f"{TEAM}:{CHANNEL}:{first.ts}") is None  # the caller's file is dropped


async def test_deleted_message_and_file_drop_what_came_from_them(
    bot: BotUnderTest, openai: FakeOpenAI, tmp_path: Path
) -> None:
    file_id = await upload_dm_file(bot, 1)
    openai.script(text(SECRET_ANSWER), text("Walrus budgets are fine."))
    secret_ts = await ask_dm(bot, SECRET_QUESTION, 2)
    await ask_dm(bot, "and the walrus pool?", 3)
    deleted = {
        "type": "message",
        "subtype": "message_deleted",
        "hidden": True,
        "channel": DM,
        "channel_type": "im",
        "ts": "1800000000.000100",
        "deleted_ts": secret_ts,
        "event_ts": "1800000000.000100",
        "previous_message": {"type": "message", "user": "U0USER", "text": SECRET_QUESTION, "ts": secret_ts},
    }
    assert await bot.send_event(deleted) == 200
    await bot.deps.idle(timeout=10)
    assert disk_mentions(tmp_path, "zeppelin") == [] and disk_mentions(tmp_path, "helium") == []
    assert disk_mentions(tmp_path, "walrus")  # other turns stay
    assert bot.deps.store.get(f"{TEAM}:{DM}") is not None

    status, _ = await bot.post_signed(
        json.dumps(event_envelope({"type": "file_deleted", "file_id": file_id, "event_ts": "1800000001.0"}))
    )
    assert status == 200
    assert bot.deps.store.get(f"{TEAM}:{DM}") is None


async def test_old_conversations_are_purged_at_start(
    slack: object, openai: FakeOpenAI, workers: WorkerPool, tmp_path: Path, bot: BotUnderTest
) -> None:
    await upload_dm_file(bot, 1)
    openai.script(text(SECRET_ANSWER), text("Walrus budgets are fine."))
    await ask_dm(bot, SECRET_QUESTION, 2)
    db = tmp_path / "conversations.sqlite3"
    with sqlite3.connect(db) as conn:  # the first exchange happened 31 days ago
        conn.execute("UPDATE agent_messages SET created_at = datetime('now', '-31 days')")
    await ask_dm(bot, "and the walrus pool?", 3)
    # A restart purges what is older than VARIANCE_RETENTION_DAYS (default 30) before serving.
    settings = Settings.from_env(base_env(bot.slack, openai, tmp_path), mode="http")
    again, runner = await start_bot(settings, bot.slack, workers)
    try:
        assert disk_mentions(tmp_path, "zeppelin") == [] and disk_mentions(tmp_path, "helium") == []
        assert disk_mentions(tmp_path, "walrus")
    finally:
        await again.http.close()
        await runner.cleanup()


@pytest.mark.parametrize("env_overrides", [{"VARIANCE_RETENTION_DAYS": "0.5"}])
async def test_retention_days_is_configurable(
    bot: BotUnderTest, openai: FakeOpenAI, workers: WorkerPool, tmp_path: Path
) -> None:
    await upload_dm_file(bot, 1)
    openai.script(text(SECRET_ANSWER))
    await ask_dm(bot, SECRET_QUESTION, 2)
    with sqlite3.connect(tmp_path / "conversations.sqlite3") as conn:
        conn.execute("UPDATE agent_messages SET created_at = datetime('now', '-13 hours')")
    env = base_env(bot.slack, openai, tmp_path) | {"VARIANCE_RETENTION_DAYS": "0.5"}
    again, runner = await start_bot(Settings.from_env(env, mode="http"), bot.slack, workers)
    try:
        assert disk_mentions(tmp_path, "zeppelin") == []
    finally:
        await again.http.close()
        await runner.cleanup()


def test_dataset_max_hours_setting() -> None:
    env = {"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s", "VARIANCE_DATASET_MAX_HOURS": "2"}
    assert Settings.from_env(env, load_agent=False).dataset_max_age_seconds == 7200
    env.pop("VARIANCE_DATASET_MAX_HOURS")
    assert Settings.from_env(env, load_agent=False).dataset_max_age_seconds == 24 * 3600


async def test_forget_during_a_running_answer_keeps_it_from_being_stored(
    bot: BotUnderTest, openai: FakeOpenAI, tmp_path: Path
) -> None:
    # Someone else's turn comes first in the thread, so what follows it is history worth keeping.
    file_obj = bot.slack.add_file(SMALL_CSV, name="q3.csv")
    openai.script(text("Walrus budgets are fine."))
    first = bot.slack.add_message(CHANNEL, text="<@UBOT> and the walrus pool?", files=[file_obj], user=OTHER_USER)
    event = mention_event(CHANNEL, first.ts, "<@UBOT> and the walrus pool?", files=[file_obj], user=OTHER_USER)
    assert await bot.send_event(event) == 200
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, CHANNEL)) == 1, timeout=20)
    await bot.deps.idle(timeout=10)
    # My question streams; I ask the bot to forget me while it does.
    openai.script(text(" ".join(f"Zeppelin line {i}." for i in range(200)), chunk=4, delay=0.01))
    mine = bot.slack.add_message(CHANNEL, text=f"<@UBOT> {SECRET_QUESTION}", thread_ts=first.ts)
    event = mention_event(CHANNEL, mine.ts, f"<@UBOT> {SECRET_QUESTION}", thread_ts=first.ts)
    assert await bot.send_event(event) == 200
    await bot.slack.wait_for(lambda: "line 1." in bot.slack.bot_messages(CHANNEL)[-1].visible, timeout=20)
    assert "1 conversation" in await forget(bot, CHANNEL)
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, CHANNEL)) == 2, timeout=30)
    await bot.deps.idle(timeout=10)
    assert disk_mentions(tmp_path, "zeppelin") == []  # the answer that ended after the forget was not stored
    assert disk_mentions(tmp_path, "walrus")


async def test_retention_purge_also_runs_periodically(bot: BotUnderTest, openai: FakeOpenAI, tmp_path: Path) -> None:
    import asyncio

    from bot.retention import purge_loop

    await upload_dm_file(bot, 1)
    openai.script(text(SECRET_ANSWER))
    await ask_dm(bot, SECRET_QUESTION, 2)
    with sqlite3.connect(tmp_path / "conversations.sqlite3") as conn:
        conn.execute("UPDATE agent_messages SET created_at = datetime('now', '-31 days')")
    loop = asyncio.create_task(purge_loop(bot.deps, interval=0.01))
    try:
        await bot.slack.wait_for(lambda: disk_mentions(tmp_path, "zeppelin") == [], timeout=10)
    finally:
        loop.cancel()
