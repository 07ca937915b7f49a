"""End to end, each entry point: DMs with files and questions, channel mentions, ``/variance``.

The real app runs in HTTP mode; Slack is the fake Web API (files served behind the bot token), the model the fake
OpenAI server. Assertions read the fake Slack's recorded messages and their edit histories.
"""

from __future__ import annotations

import time

import pytest

from bot.listeners.commands import HELP, NO_DATASET_HERE, NOT_IN_CHANNEL
from tests.bot.bot_under_test import BotUnderTest
from tests.bot.helpers import (
    CHANNEL,
    DM,
    SMALL_CSV,
    answers_in,
    dm_event,
    example_bytes,
    expected_report,
    final_answers,
    is_final,
    last_user_text,
    mention_event,
    shown_text,
)
from tests.fakes.openai_server import FakeOpenAI, text

ANSWER = (
    "**Marketing** is over budget by **100.00** (+12.5%): advertising spent 650.00 against 500.00.\n\n"
    "- Events came in 50.00 under budget.\n- Actual = `Actual`, reference = `Budget`; positive = over."
)


async def upload_in_dm(bot: BotUnderTest, content: bytes, name: str, text_: str = "", **kw: str) -> str:
    file_obj = bot.slack.add_file(content, name=name)
    upload = bot.slack.add_message(DM, text=text_, files=[file_obj])
    assert await bot.send_event(dm_event(upload.ts, text_, files=[file_obj], **kw)) == 200
    return upload.ts


async def test_dm_file_alone_gets_the_deterministic_report_without_a_model_call(
    bot: BotUnderTest, openai: FakeOpenAI
) -> None:
    await upload_in_dm(bot, example_bytes(), "budget_vs_actual.csv")
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, DM)) == 1, timeout=20)
    await bot.deps.idle(timeout=5)
    (message,) = answers_in(bot.slack, DM)
    assert shown_text(message) == expected_report(example_bytes(), "budget_vs_actual.csv")
    assert message.thread_ts is None  # a top-level DM message: the user wrote at the top level
    assert message.history[0].visible.startswith("⏳")  # the placeholder came first
    assert openai.requests == []


async def test_dm_question_is_answered_about_the_current_dataset(bot: BotUnderTest, openai: FakeOpenAI) -> None:
    await upload_in_dm(bot, SMALL_CSV, "q3.csv")
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, DM)) == 1, timeout=20)
    openai.script(text(ANSWER, chunk=4, delay=0.005))
    question = bot.slack.add_message(DM, text="why is marketing over budget?")
    assert await bot.send_event(dm_event(question.ts, "why is marketing over budget?")) == 200
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, DM)) == 2, timeout=20)
    answer = final_answers(bot.slack, DM)[-1]
    assert shown_text(answer) == ANSWER
    assert len(answer.history) >= 2  # placeholder, then edits
    assert "why is marketing over budget?" in last_user_text(openai.requests[0].json)
    assert len(bot.slack.file_downloads) == 1  # the dataset was kept, not downloaded again


async def test_dm_question_in_a_thread_is_answered_in_that_thread(bot: BotUnderTest, openai: FakeOpenAI) -> None:
    upload_ts = await upload_in_dm(bot, SMALL_CSV, "q3.csv")
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, DM)) == 1, timeout=20)
    openai.script(text("Sales beat the plan by 200.00.", chunk=5))
    reply = bot.slack.add_message(DM, text="and sales?", thread_ts=upload_ts)
    assert await bot.send_event(dm_event(reply.ts, "and sales?", thread_ts=upload_ts)) == 200
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, DM)) == 2, timeout=20)
    answer = final_answers(bot.slack, DM)[-1]
    assert answer.thread_ts == upload_ts
    assert shown_text(answer) == "Sales beat the plan by 200.00."


async def test_dm_file_with_a_question_answers_the_question(bot: BotUnderTest, openai: FakeOpenAI) -> None:
    openai.script(text(ANSWER, chunk=6))
    await upload_in_dm(bot, SMALL_CSV, "q3.csv", "why is marketing over budget?")
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, DM)) == 1, timeout=20)
    assert shown_text(final_answers(bot.slack, DM)[0]) == ANSWER
    assert len(openai.requests) == 1


async def test_dm_question_without_a_dataset_gets_a_friendly_prompt(bot: BotUnderTest, openai: FakeOpenAI) -> None:
    question = bot.slack.add_message(DM, text="how are we doing vs budget?")
    assert await bot.send_event(dm_event(question.ts, "how are we doing vs budget?")) == 200
    await bot.slack.wait_for(lambda: len(bot.slack.bot_messages(DM)) == 1)
    assert "CSV or XLSX" in (bot.slack.bot_messages(DM)[0].text or "")
    assert openai.requests == []


async def test_dm_unsupported_file_gets_a_clear_reply(bot: BotUnderTest) -> None:
    file_obj = bot.slack.add_file(b"\x89PNG\r\n\x1a\n", name="chart.png", mimetype="image/png", filetype="png")
    upload = bot.slack.add_message(DM, files=[file_obj])
    assert await bot.send_event(dm_event(upload.ts, files=[file_obj])) == 200
    await bot.slack.wait_for(lambda: len(bot.slack.bot_messages(DM)) == 1)
    assert "CSV and Excel" in (bot.slack.bot_messages(DM)[0].text or "")
    assert bot.slack.file_downloads == []


async def test_channel_mention_with_a_file_answers_in_the_mention_thread(bot: BotUnderTest, openai: FakeOpenAI) -> None:
    openai.script(text(ANSWER, chunk=7, delay=0.002))
    file_obj = bot.slack.add_file(SMALL_CSV, name="q3.csv")
    mention = bot.slack.add_message(CHANNEL, text="<@UBOT> why is marketing over budget?", files=[file_obj])
    event = mention_event(CHANNEL, mention.ts, "<@UBOT> why is marketing over budget?", files=[file_obj])
    assert await bot.send_event(event) == 200
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, CHANNEL)) == 1, timeout=20)
    (answer,) = answers_in(bot.slack, CHANNEL)
    assert answer.thread_ts == mention.ts
    assert shown_text(answer) == ANSWER
    asked = last_user_text(openai.requests[0].json)
    assert "why is marketing over budget?" in asked and "<@UBOT>" not in asked


async def test_mention_in_a_thread_uses_a_file_posted_earlier_in_the_thread(
    bot: BotUnderTest, openai: FakeOpenAI
) -> None:
    file_obj = bot.slack.add_file(example_bytes(), name="budget_vs_actual.csv")
    parent = bot.slack.add_message(CHANNEL, text="Q3 numbers are in", files=[file_obj])
    bot.slack.add_message(CHANNEL, text="looks like marketing overspent", thread_ts=parent.ts)
    mention = bot.slack.add_message(CHANNEL, text="<@UBOT>", thread_ts=parent.ts)
    assert await bot.send_event(mention_event(CHANNEL, mention.ts, "<@UBOT>", thread_ts=parent.ts)) == 200
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, CHANNEL)) == 1, timeout=20)
    (answer,) = answers_in(bot.slack, CHANNEL)
    assert answer.thread_ts == parent.ts
    # No question: the deterministic report of the thread's file.
    assert shown_text(answer) == expected_report(example_bytes(), "budget_vs_actual.csv")
    assert len(bot.slack.calls_of("conversations.replies")) == 1
    assert openai.requests == []

    # A follow-up question in the same thread reuses the dataset (no new download).
    openai.script(text("Events & Conferences drove most of it.", chunk=9))
    follow = bot.slack.add_message(CHANNEL, text="<@UBOT> what drove marketing?", thread_ts=parent.ts)
    event = mention_event(CHANNEL, follow.ts, "<@UBOT> what drove marketing?", thread_ts=parent.ts)
    assert await bot.send_event(event) == 200
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, CHANNEL)) == 2, timeout=20)
    assert shown_text(final_answers(bot.slack, CHANNEL)[-1]) == "Events & Conferences drove most of it."
    assert len(bot.slack.file_downloads) == 1


async def test_mention_without_any_file_explains_what_to_do(bot: BotUnderTest, openai: FakeOpenAI) -> None:
    mention = bot.slack.add_message(CHANNEL, text="<@UBOT> why are we over budget?")
    assert await bot.send_event(mention_event(CHANNEL, mention.ts, "<@UBOT> why are we over budget?")) == 200
    await bot.slack.wait_for(lambda: len(bot.slack.bot_messages(CHANNEL)) == 1)
    notice = bot.slack.bot_messages(CHANNEL)[0]
    assert notice.thread_ts == mention.ts and "CSV or XLSX" in (notice.text or "")
    assert openai.requests == []


async def load_channel_dataset(bot: BotUnderTest, content: bytes = SMALL_CSV, name: str = "q3.csv") -> None:
    file_obj = bot.slack.add_file(content, name=name)
    mention = bot.slack.add_message(CHANNEL, text="<@UBOT>", files=[file_obj])
    assert await bot.send_event(mention_event(CHANNEL, mention.ts, "<@UBOT>", files=[file_obj])) == 200
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, CHANNEL)) == 1, timeout=20)


async def test_variance_help_is_ephemeral_in_the_ack(bot: BotUnderTest) -> None:
    status, body = await bot.send_command("help")
    assert status == 200
    assert body == HELP  # a plain-text ack: Slack shows it only to the user who typed the command
    status, body = await bot.send_command("")
    assert body == HELP
    assert bot.slack.calls_of("chat.postMessage") == []


async def test_variance_report_posts_the_channel_report(bot: BotUnderTest, openai: FakeOpenAI) -> None:
    await load_channel_dataset(bot, example_bytes(), "budget_vs_actual.csv")
    started = time.monotonic()
    status, _ = await bot.send_command("report")
    assert status == 200 and time.monotonic() - started < 3  # acknowledged within Slack's 3 s
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, CHANNEL)) == 2, timeout=20)
    report = final_answers(bot.slack, CHANNEL)[-1]
    assert report.thread_ts is None  # a normal channel message
    assert shown_text(report) == expected_report(example_bytes(), "budget_vs_actual.csv")
    assert openai.requests == []


async def test_variance_question_streams_a_channel_message(bot: BotUnderTest, openai: FakeOpenAI) -> None:
    await load_channel_dataset(bot)
    openai.script(text(ANSWER, chunk=3, delay=0.003))
    started = time.monotonic()
    status, body = await bot.send_command("why is marketing over budget?")
    assert status == 200 and time.monotonic() - started < 3
    assert body == ""  # an empty ack: the answer comes as a channel message
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, CHANNEL)) == 2, timeout=20)
    answer = final_answers(bot.slack, CHANNEL)[-1]
    assert answer.thread_ts is None and shown_text(answer) == ANSWER
    assert len(answer.history) >= 2


async def test_variance_where_the_bot_is_not_a_member_answers_ephemerally(bot: BotUnderTest) -> None:
    bot.slack.add_channel("C0PRIVATE", is_member=False, name="board")
    url = bot.slack.new_response_url()
    status, _ = await bot.send_command("why are we over?", channel="C0PRIVATE", response_url=url)
    assert status == 200
    await bot.slack.wait_for(lambda: len(bot.slack.responses[url]) == 1)
    (response,) = bot.slack.responses[url]
    assert response["text"] == NOT_IN_CHANNEL and response["response_type"] == "ephemeral"
    assert bot.slack.calls_of("chat.postMessage") == []


async def test_variance_without_a_dataset_answers_ephemerally(bot: BotUnderTest) -> None:
    url = bot.slack.new_response_url()
    status, _ = await bot.send_command("report", response_url=url)
    assert status == 200
    await bot.slack.wait_for(lambda: len(bot.slack.responses[url]) == 1)
    assert bot.slack.responses[url][0]["text"] == NO_DATASET_HERE
    assert bot.slack.calls_of("chat.postMessage") == []


@pytest.mark.parametrize("channel", ["D0USERDM"])
async def test_variance_in_the_dm_uses_the_dm_dataset(bot: BotUnderTest, openai: FakeOpenAI, channel: str) -> None:
    await upload_in_dm(bot, SMALL_CSV, "q3.csv")
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, DM)) == 1, timeout=20)
    status, _ = await bot.send_command("report", channel=channel)
    assert status == 200
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, DM)) == 2, timeout=20)
    first, second = final_answers(bot.slack, DM)
    assert shown_text(first) == shown_text(second) == expected_report(SMALL_CSV, "q3.csv")
    assert all(is_final(m) for m in answers_in(bot.slack, DM))


async def test_long_answer_overflows_into_more_messages_in_the_thread(bot: BotUnderTest, openai: FakeOpenAI) -> None:
    from bot.render import split_markdown

    paragraphs = [f"**Driver {i}.** " + "Marketing spend on events rose against plan. " * 12 for i in range(50)]
    long_answer = "\n\n".join(paragraphs)
    assert len(long_answer) > 25_000
    openai.script(text(long_answer, chunk=60))
    file_obj = bot.slack.add_file(SMALL_CSV, name="q3.csv")
    mention = bot.slack.add_message(CHANNEL, text="<@UBOT> explain everything", files=[file_obj])
    assert (
        await bot.send_event(mention_event(CHANNEL, mention.ts, "<@UBOT> explain everything", files=[file_obj])) == 200
    )
    parts = [part.strip() for part in split_markdown(long_answer, 11_000)]
    assert len(parts) >= 3
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, CHANNEL)) == len(parts), timeout=30)
    await bot.deps.idle(timeout=10)
    messages = answers_in(bot.slack, CHANNEL)
    assert [shown_text(m) for m in messages] == parts
    assert all(m.thread_ts == mention.ts for m in messages)


async def test_mention_elsewhere_in_the_channel_uses_the_channel_latest_file(
    bot: BotUnderTest, openai: FakeOpenAI
) -> None:
    await load_channel_dataset(bot)
    openai.script(text("Same file, new thread.", chunk=4))
    mention = bot.slack.add_message(CHANNEL, text="<@UBOT> how did sales do?")
    assert await bot.send_event(mention_event(CHANNEL, mention.ts, "<@UBOT> how did sales do?")) == 200
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, CHANNEL)) == 2, timeout=20)
    answer = final_answers(bot.slack, CHANNEL)[-1]
    assert answer.thread_ts == mention.ts and shown_text(answer) == "Same file, new thread."
    assert len(bot.slack.file_downloads) == 1
