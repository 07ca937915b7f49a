"""Hostile files through the real app (HTTP mode, fake Slack): each gets a clear final reply, a reader over
its time or memory limit is killed and replaced, Stop and shutdown kill the reading for real, and a file that
has to wait for a free reader says so in its message."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings
from bot.workers import WorkerPool
from tests.bot.bot_under_test import BotUnderTest, base_env, start_bot
from tests.bot.helpers import (
    CHANNEL,
    DM,
    SMALL_CSV,
    answers_in,
    dm_event,
    final_answers,
    final_markdown,
    mention_event,
    stop_button_value,
)
from tests.bot.test_load import ledger_csv
from tests.bot.test_workers import process_alive, wait_until
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import FakeSlack
from tests.ingest.hostile_workbooks import dimension_bomb

XLSX = {"mimetype": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "filetype": "xlsx"}


@pytest.fixture
async def workers(request: pytest.FixtureRequest) -> AsyncIterator[WorkerPool]:
    """A pool of this test's own (``parametrize("workers", [{...}], indirect=True)`` sets its options)."""
    options: dict[str, Any] = {"workers": 1, **getattr(request, "param", {})}
    pool = WorkerPool(**options)
    await pool.warm_up()
    yield pool
    pool.shutdown()


async def upload(bot: BotUnderTest, content: bytes, name: str, **kind: str) -> None:
    file_obj = bot.slack.add_file(content, name=name, **kind)
    message = bot.slack.add_message(DM, files=[file_obj])
    assert await bot.send_event(dm_event(message.ts, files=[file_obj])) == 200


async def final_reply(bot: BotUnderTest, count: int = 1, channel: str = DM) -> str:
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, channel)) >= count, timeout=60)
    return final_markdown(final_answers(bot.slack, channel)[count - 1]) or ""


async def test_the_dimension_bomb_gets_a_clear_reply_and_costs_no_reader(bot: BotUnderTest, openai: FakeOpenAI) -> None:
    content = dimension_bomb()
    assert len(content) < 2048
    await upload(bot, content, "budget.xlsx", **XLSX)
    reply = await final_reply(bot)
    assert reply.startswith("⚠️")
    assert "column XFD" in reply and "500 columns" in reply
    assert bot.deps.workers.replaced == 0  # read within the limits, not killed
    assert openai.requests == []


@pytest.mark.parametrize("workers", [{"job_timeout_s": 0.3}], indirect=True)
async def test_a_file_over_the_time_limit_is_stopped_and_the_reader_replaced(bot: BotUnderTest) -> None:
    pool = bot.deps.workers
    (reader,) = pool.pids
    await upload(bot, ledger_csv(8 * 1024 * 1024), "ledger.csv")
    reply = await final_reply(bot)
    assert "Reading `ledger.csv` took longer than 0.3 seconds, so I stopped." in reply
    assert pool.replaced == 1
    await wait_until(lambda: not process_alive(reader))
    pool.job_timeout_s = 60  # the next, small file is read by the replacement
    await upload(bot, SMALL_CSV, "q3.csv")
    assert "Marketing" in await final_reply(bot, 2)


@pytest.mark.parametrize("workers", [{"memory_limit_mb": 200}], indirect=True)
async def test_a_file_over_the_memory_limit_is_stopped_and_the_reader_replaced(bot: BotUnderTest) -> None:
    pool = bot.deps.workers
    await upload(bot, ledger_csv(8 * 1024 * 1024), "ledger.csv")
    reply = await final_reply(bot)
    assert "Reading `ledger.csv` needed more memory than I allow for one file (200 MB)" in reply
    assert pool.replaced == 1
    await upload(bot, SMALL_CSV, "q3.csv")
    assert "Marketing" in await final_reply(bot, 2)


async def test_stop_while_reading_kills_the_reader(bot: BotUnderTest, openai: FakeOpenAI) -> None:
    pool = bot.deps.workers
    (reader,) = pool.pids
    await upload(bot, ledger_csv(8 * 1024 * 1024), "ledger.csv")
    await wait_until(lambda: pool.state.busy == 1 and bool(answers_in(bot.slack, DM)))
    placeholder = answers_in(bot.slack, DM)[0]
    answer_id = stop_button_value(placeholder)
    assert answer_id
    status, _ = await bot.click("stop_answer", answer_id, channel=DM, message_ts=placeholder.ts)
    assert status == 200
    assert await final_reply(bot) == "_Stopped._"
    await wait_until(lambda: not process_alive(reader))  # killed, not left parsing
    assert pool.replaced == 1
    assert openai.requests == []


async def test_shutdown_kills_the_reading_and_ends_the_answer(
    slack: FakeSlack, openai: FakeOpenAI, tmp_path: Path
) -> None:
    settings = Settings.from_env(base_env(slack, openai, tmp_path) | {"VARIANCE_WORKERS": "1"}, mode="http")
    bot, runner = await start_bot(settings, slack, None)  # type: ignore[arg-type]  # the app owns its pool
    pool = bot.deps.workers
    try:
        await pool.warm_up()
        (reader,) = pool.pids
        await upload(bot, ledger_csv(8 * 1024 * 1024), "ledger.csv")
        await wait_until(lambda: pool.state.busy == 1)
    finally:
        await bot.http.close()
        await runner.cleanup()  # what SIGTERM leads to in `serve`
    await wait_until(lambda: not process_alive(reader))
    (final,) = answers_in(slack, DM)
    assert "The bot is restarting" in (final_markdown(final) or "")
    assert not bot.deps.tasks


async def test_a_file_waiting_for_a_free_reader_says_so(bot: BotUnderTest, openai: FakeOpenAI) -> None:
    pool = bot.deps.workers
    await upload(bot, ledger_csv(8 * 1024 * 1024), "ledger.csv")
    await wait_until(lambda: pool.state.busy == 1)
    file_obj = bot.slack.add_file(SMALL_CSV, name="q3.csv")
    mention = bot.slack.add_message(CHANNEL, text="<@UBOT>", files=[file_obj])
    assert await bot.send_event(mention_event(CHANNEL, mention.ts, "<@UBOT>", files=[file_obj])) == 200

    def shown_waiting() -> bool:
        return any(
            "Waiting for a free reader for q3.csv (1st in line)" in state.visible
            for message in answers_in(bot.slack, CHANNEL)
            for state in message.history
        )

    await bot.slack.wait_for(shown_waiting, timeout=30)
    assert pool.state.waiting == 1
    # Both files are read in turn: the queued one is answered once the reader is free.
    assert "Marketing" in await final_reply(bot, 1, CHANNEL)
    assert not (await final_reply(bot)).startswith("⚠️")
