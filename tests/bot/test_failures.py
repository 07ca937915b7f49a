"""Every failure ends in a final state (never a stuck "Analyzing"), Stop works, Slack faults lose nothing,
and 20 concurrent answers in one workspace all end with their exact text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.config import Settings
from bot.deps import SHUTDOWN
from bot.listeners.actions import ALREADY_FINISHED
from bot.workers import WorkerPool
from tests.bot.bot_under_test import BotUnderTest, base_env, start_bot
from tests.bot.helpers import (
    DM,
    SMALL_CSV,
    answers_in,
    dm_event,
    example_bytes,
    final_answers,
    is_final,
    last_user_text,
    mention_event,
    shown_text,
    stop_button_value,
)
from tests.fakes.openai_server import FakeOpenAI, RecordedRequest, Turn, error, hang, midstream_error, text
from tests.fakes.slack_server import LOGIN_PAGE, FakeSlack

LONG_ANSWER = " ".join(f"Line {i}: marketing spend moved by {i * 10}.00 against plan." for i in range(120))


async def load_dm_dataset(bot: BotUnderTest) -> None:
    file_obj = bot.slack.add_file(SMALL_CSV, name="q3.csv")
    upload = bot.slack.add_message(DM, files=[file_obj])
    assert await bot.send_event(dm_event(upload.ts, files=[file_obj])) == 200
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, DM)) == 1, timeout=20)


async def ask_in_dm(bot: BotUnderTest, question: str, answers: int) -> str:
    message = bot.slack.add_message(DM, text=question)
    assert await bot.send_event(dm_event(message.ts, question)) == 200
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, DM)) == answers, timeout=20)
    await bot.deps.idle(timeout=10)
    return shown_text(final_answers(bot.slack, DM)[-1]) or ""


@pytest.mark.parametrize(
    "turn",
    [error(500), error(429), midstream_error("Marketing is over budget because", mode="error_event")],
    ids=["model-500", "model-429", "model-midstream"],
)
async def test_model_failures_end_with_an_error_line(bot: BotUnderTest, openai: FakeOpenAI, turn: Turn) -> None:
    await load_dm_dataset(bot)
    openai.script(turn, turn, turn)
    final = await ask_in_dm(bot, "why is marketing over budget?", answers=2)
    assert "⚠️" in final and "⏳" not in final
    if turn.text:
        assert final.startswith("Marketing is over budget because")
    assert len(answers_in(bot.slack, DM)) == 2
    assert (await bot.healthz())["running_answers"] == 0


@pytest.mark.parametrize("env_overrides", [{"VARIANCE_MODEL_TIMEOUT": "0.5"}])
async def test_model_hang_times_out_into_a_final_state(bot: BotUnderTest, openai: FakeOpenAI) -> None:
    await load_dm_dataset(bot)
    openai.script(hang(after_text="Looking at marketing"), hang(), hang())
    final = await ask_in_dm(bot, "why is marketing over budget?", answers=2)
    assert "⚠️" in final and "⏳" not in final


@pytest.mark.parametrize(
    ("content", "name", "expected"),
    [
        (b"just some meeting notes\nnothing tabular here\n", "notes.csv", None),
        (LOGIN_PAGE.encode(), "q3.csv", "sign-in page"),
        (bytes(range(256)) * 40, "q3.csv", "binary"),
        (b"Department,Budget,Actual\nSales,1,2\n", "q3.xlsx", "valid Excel"),
    ],
    ids=["unreadable", "html", "binary", "fake-xlsx"],
)
async def test_bad_files_get_a_clear_final_reply(
    bot: BotUnderTest, openai: FakeOpenAI, content: bytes, name: str, expected: str | None
) -> None:
    file_obj = bot.slack.add_file(content, name=name)
    upload = bot.slack.add_message(DM, files=[file_obj])
    assert await bot.send_event(dm_event(upload.ts, files=[file_obj])) == 200
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, DM)) == 1, timeout=20)
    final = shown_text(final_answers(bot.slack, DM)[0]) or ""
    assert final.startswith("⚠️") and "Traceback" not in final
    if expected:
        assert expected in final
    assert openai.requests == []
    assert bot.deps.store.get(f"T0001:{DM}") is None


@pytest.mark.parametrize("env_overrides", [{"VARIANCE_MAX_FILE_MB": "0.01"}])
async def test_too_large_file_is_refused_before_download(bot: BotUnderTest) -> None:
    file_obj = bot.slack.add_file(example_bytes(), name="budget_vs_actual.csv")
    upload = bot.slack.add_message(DM, files=[file_obj])
    assert await bot.send_event(dm_event(upload.ts, files=[file_obj])) == 200
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, DM)) == 1, timeout=20)
    assert "larger than the 10 KB" in (shown_text(final_answers(bot.slack, DM)[0]) or "")
    assert bot.slack.file_downloads == []


async def test_slack_refusing_the_placeholder_leaves_the_bot_working(bot: BotUnderTest, openai: FakeOpenAI) -> None:
    bot.slack.inject("chat.postMessage", error="channel_not_found")
    file_obj = bot.slack.add_file(SMALL_CSV, name="q3.csv")
    upload = bot.slack.add_message(DM, files=[file_obj])
    assert await bot.send_event(dm_event(upload.ts, files=[file_obj])) == 200
    await bot.slack.wait_for(lambda: len(bot.slack.calls_of("chat.postMessage")) == 1)
    await bot.deps.idle(timeout=10)
    assert answers_in(bot.slack, DM) == []  # the answer's first post (its report: a small file) was refused
    # The next upload is answered normally.
    await load_dm_dataset(bot)


async def test_an_unconfirmed_first_post_is_found_and_ended(bot: BotUnderTest, openai: FakeOpenAI) -> None:
    await load_dm_dataset(bot)
    bot.slack.inject("chat.postMessage", drop_connection=True, apply=True)  # it lands; the client sees a reset
    bot.slack.inject("conversations.history", status=500, times=3)  # and Slack can't say whether it landed
    question = bot.slack.add_message(DM, text="why?")
    assert await bot.send_event(dm_event(question.ts, "why?")) == 200
    await bot.deps.idle(timeout=20)
    placeholder = answers_in(bot.slack, DM)[-1]
    assert is_final(placeholder), placeholder.visible  # not left live
    # The first text rode on that post: found again at the end, it is ended with the answer, not posted twice.
    assert shown_text(placeholder) == "OK."
    assert len(answers_in(bot.slack, DM)) == 2  # the report and this one: nothing posted twice


async def test_slack_refusing_edits_still_ends_the_answer(bot: BotUnderTest, openai: FakeOpenAI) -> None:
    await load_dm_dataset(bot)
    bot.slack.inject("chat.update", error="cant_update_message", times=50)
    openai.script(text("Marketing is over budget.", chunk=4))
    message = bot.slack.add_message(DM, text="why?")
    assert await bot.send_event(dm_event(message.ts, "why?")) == 200
    await bot.slack.wait_for(lambda: len(answers_in(bot.slack, DM)) == 2)
    await bot.deps.idle(timeout=20)
    assert (await bot.healthz())["running_answers"] == 0
    assert len(answers_in(bot.slack, DM)) == 2  # nothing posted twice


async def test_injected_slack_faults_lose_nothing_and_post_nothing_twice(bot: BotUnderTest, openai: FakeOpenAI) -> None:
    await load_dm_dataset(bot)
    bot.slack.inject("chat.postMessage", status=500, apply=True)  # posted, but the client saw a 500
    bot.slack.inject("chat.update", status=503)
    bot.slack.inject("chat.update", error="ratelimited", retry_after=1)
    bot.slack.inject("chat.update", drop_connection=True)
    bot.slack.inject("chat.update", error="internal_error")
    openai.script(text(LONG_ANSWER, chunk=40, delay=0.01))
    final = await ask_in_dm(bot, "walk me through marketing", answers=2)
    assert final == LONG_ANSWER
    assert len(answers_in(bot.slack, DM)) == 2  # the ambiguous post was found, not repeated


async def test_stop_button_cancels_the_run_and_keeps_the_text(bot: BotUnderTest, openai: FakeOpenAI) -> None:
    await load_dm_dataset(bot)
    openai.script(text(LONG_ANSWER, chunk=5, delay=0.02))  # ~300 deltas: several seconds
    question = bot.slack.add_message(DM, text="walk me through marketing")
    assert await bot.send_event(dm_event(question.ts, "walk me through marketing")) == 200

    def live_with_text() -> bool:
        live = [m for m in answers_in(bot.slack, DM) if stop_button_value(m) and "Line 1:" in m.visible]
        return bool(live)

    await bot.slack.wait_for(live_with_text, timeout=20)
    live = next(m for m in answers_in(bot.slack, DM) if stop_button_value(m))
    answer_id = stop_button_value(live)
    assert answer_id
    status, _ = await bot.click("stop_answer", answer_id, channel=DM, message_ts=live.ts)
    assert status == 200
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, DM)) == 2, timeout=20)
    final = shown_text(final_answers(bot.slack, DM)[-1]) or ""
    assert final.endswith("_Stopped._")
    assert final.startswith("Line 0:") and len(final) < len(LONG_ANSWER)
    await openai.wait_for(lambda f: f.requests[-1].disconnected, timeout=10)  # the model call was closed
    await bot.deps.idle(timeout=10)

    # A second click on a finished answer gets a short ephemeral note.
    url_count = len(bot.slack.responses)
    status, _ = await bot.click("stop_answer", answer_id, channel=DM, message_ts=live.ts)
    assert status == 200
    await bot.slack.wait_for(lambda: any(r for r in list(bot.slack.responses.values())[url_count:]))
    (note,) = next(r for r in list(bot.slack.responses.values())[url_count:] if r)
    assert note["text"] == ALREADY_FINISHED


async def test_twenty_concurrent_answers_in_one_workspace(bot: BotUnderTest, openai: FakeOpenAI) -> None:
    """20 people mention the bot at once, each with a file and a question: every answer ends with its exact
    text, no 429 (20 is the workspace's default limit of answers running at once)."""
    channels = [f"C0TEAM{i:02d}" for i in range(20)]

    def answer_for(request: RecordedRequest) -> Turn:
        number = re.search(r"question (\d+)", last_user_text(request.json))
        assert number is not None
        body = " ".join(f"Point {i} for question {number.group(1)}." for i in range(40))
        return text(body, chunk=12, delay=0.01)

    openai.responder = answer_for
    for n, channel in enumerate(channels):
        bot.slack.add_channel(channel)
        file_obj = bot.slack.add_file(SMALL_CSV, name="q3.csv")
        ask = bot.slack.add_message(channel, text=f"<@UBOT> question {n}", files=[file_obj])
        event = mention_event(channel, ask.ts, f"<@UBOT> question {n}", files=[file_obj], user=f"U0ANALYST{n:02d}")
        assert await bot.send_event(event) == 200
    await bot.slack.wait_for(lambda: all(len(final_answers(bot.slack, c)) == 1 for c in channels), timeout=60)
    await bot.deps.idle(timeout=20)
    for n, channel in enumerate(channels):
        (message,) = answers_in(bot.slack, channel)
        expected = " ".join(f"Point {i} for question {n}." for i in range(40))
        assert shown_text(message) == expected
    assert bot.slack.ratelimited == 0
    assert len(openai.requests) == 20


async def test_stop_while_the_file_is_being_read(bot: BotUnderTest, openai: FakeOpenAI) -> None:
    from tests.bot.test_load import ledger_csv

    file_obj = bot.slack.add_file(ledger_csv(8 * 1024 * 1024), name="ledger.csv")
    upload = bot.slack.add_message(DM, text="why is marketing over?", files=[file_obj])
    assert await bot.send_event(dm_event(upload.ts, "why is marketing over?", files=[file_obj])) == 200
    await bot.slack.wait_for(lambda: bool(answers_in(bot.slack, DM)) and len(bot.slack.file_downloads) == 1)
    placeholder = answers_in(bot.slack, DM)[0]
    assert "Reading ledger.csv" in shown_text(placeholder)
    answer_id = stop_button_value(placeholder)
    assert answer_id
    status, _ = await bot.click("stop_answer", answer_id, channel=DM, message_ts=placeholder.ts)
    assert status == 200
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, DM)) == 1, timeout=20)
    assert shown_text(final_answers(bot.slack, DM)[0]) == "_Stopped._"
    await bot.deps.idle(timeout=10)
    assert openai.requests == []


async def test_shutdown_finalises_running_answers(
    slack: FakeSlack, openai: FakeOpenAI, workers: WorkerPool, tmp_path: Path
) -> None:
    settings = Settings.from_env(base_env(slack, openai, tmp_path), mode="http")
    bot, runner = await start_bot(settings, slack, workers)
    try:
        await load_dm_dataset(bot)
        openai.script(text(LONG_ANSWER, chunk=5, delay=0.02))
        question = bot.slack.add_message(DM, text="walk me through it")
        assert await bot.send_event(dm_event(question.ts, "walk me through it")) == 200
        await slack.wait_for(lambda: any("Line 1:" in m.visible for m in answers_in(slack, DM)), timeout=20)
    finally:
        await bot.http.close()
        await runner.cleanup()  # what SIGTERM leads to in `serve`
    final = answers_in(slack, DM)[-1]
    # A restart is not the user pressing Stop: the message says why it ended and what to do.
    assert shown_text(final).endswith(f"⚠️ {SHUTDOWN}")
    assert shown_text(final).startswith("Line 0:")
    assert not bot.deps.tasks
    assert bot.deps.budget.schedulers() == {}  # closed after the answers' final edits


async def test_slack_unreachable_for_lookups_still_gets_a_reply(bot: BotUnderTest) -> None:
    from bot.listeners.commands import SLACK_UNREACHABLE

    bot.slack.inject("conversations.info", drop_connection=True, times=5)
    url = bot.slack.new_response_url()
    status, _ = await bot.send_command("report", response_url=url)
    assert status == 200
    await bot.slack.wait_for(lambda: len(bot.slack.responses[url]) == 1, timeout=10)
    assert bot.slack.responses[url][0]["text"] == SLACK_UNREACHABLE

    bot.slack.inject("conversations.replies", drop_connection=True, times=5)
    parent = bot.slack.add_message("C0GENERAL", text="numbers")
    mention = bot.slack.add_message("C0GENERAL", text="<@UBOT> why?", thread_ts=parent.ts)
    event = mention_event("C0GENERAL", mention.ts, "<@UBOT> why?", thread_ts=parent.ts)
    assert await bot.send_event(event) == 200
    await bot.slack.wait_for(lambda: len(bot.slack.bot_messages("C0GENERAL")) == 1, timeout=10)
    assert "CSV or XLSX" in (bot.slack.bot_messages("C0GENERAL")[0].text or "")
