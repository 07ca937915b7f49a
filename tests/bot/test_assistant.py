"""The assistant container end to end: greeting and prompts, title, status while tools run, the answer streamed in
the thread from the context channel's latest file, and 👍/👎 votes logged with the conversation and answer ids."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import pytest

from bot.render import FEEDBACK_ACTION_ID
from tests.bot.helpers import SMALL_CSV, final_answers, shown_text
from tests.fakes.openai_server import FakeOpenAI, text, tool_call

TEAM = "T0001"
USER = "U0USER"
ASSISTANT_DM = "D0ASSIST"
VIEWING = "C0GENERAL"  # the channel the user has open next to the assistant
ANSWER = "Marketing is over budget by 150.00, all of it in Advertising."


def assistant_thread_started(thread_ts: str, context_channel: str | None = VIEWING) -> dict[str, Any]:
    context = {"channel_id": context_channel, "team_id": TEAM, "enterprise_id": None} if context_channel else {}
    return {
        "type": "assistant_thread_started",
        "assistant_thread": {
            "user_id": USER,
            "context": context,
            "channel_id": ASSISTANT_DM,
            "thread_ts": thread_ts,
        },
        "event_ts": f"{time.time():.6f}",
    }


def user_message(ts: str, thread_ts: str, text_: str) -> dict[str, Any]:
    return {
        "type": "message",
        "user": USER,
        "text": text_,
        "ts": ts,
        "thread_ts": thread_ts,
        "channel": ASSISTANT_DM,
        "event_ts": ts,
        "channel_type": "im",
        "team": TEAM,
    }


async def open_thread(bot: Any) -> str:
    root = bot.slack.add_message(ASSISTANT_DM, text="", user=USER)
    assert await bot.send_event(assistant_thread_started(root.ts)) == 200
    await bot.slack.wait_for(lambda: bool(bot.slack.assistant_threads[(ASSISTANT_DM, root.ts)].prompts))
    return str(root.ts)


async def test_new_thread_gets_a_greeting_and_suggested_prompts(bot: Any, openai: FakeOpenAI) -> None:
    thread_ts = await open_thread(bot)
    thread = bot.slack.assistant_threads[(ASSISTANT_DM, thread_ts)]
    titles = [p["title"] for p in thread.prompts]
    assert len(titles) >= 3 and "Summarise the variance" in titles and "Top 5 drivers" in titles
    [greeting] = bot.slack.bot_messages(ASSISTANT_DM)
    assert greeting.thread_ts == thread_ts and "budget vs actual" in greeting.visible
    assert openai.requests == []


async def test_question_uses_the_context_channel_file_streams_with_status_and_title(
    bot: Any, openai: FakeOpenAI
) -> None:
    file_obj = bot.slack.add_file(SMALL_CSV, name="q3.csv")
    bot.slack.add_message(VIEWING, text="Q3 numbers", files=[file_obj])
    thread_ts = await open_thread(bot)
    openai.script(tool_call("breakdown", {"by": ["Department"]}), text(ANSWER, chunk=4, delay=0.01))
    question = bot.slack.add_message(ASSISTANT_DM, text="Why is marketing over budget?", thread_ts=thread_ts)
    assert await bot.send_event(user_message(question.ts, thread_ts, "Why is marketing over budget?")) == 200
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, ASSISTANT_DM)) == 1, timeout=20)
    await bot.deps.idle(timeout=10)
    answer = final_answers(bot.slack, ASSISTANT_DM)[-1]
    assert answer.thread_ts == thread_ts and shown_text(answer) == ANSWER
    assert bot.slack.file_downloads == [(file_obj["id"], True)]  # the context channel's latest file
    methods = {c.method for c in bot.slack.calls if c.error is None}
    assert {"chat.startStream", "chat.stopStream"} <= methods  # streamed natively in the thread
    thread = bot.slack.assistant_threads[(ASSISTANT_DM, thread_ts)]
    assert thread.title == "Why is marketing over budget?"
    assert "Computing variance by Department…" in thread.statuses  # the tool's label while it ran
    assert thread.status == ""  # cleared by the answer


async def test_ordinary_dm_threads_still_reach_the_dm_listener(bot: Any, openai: FakeOpenAI) -> None:
    file_obj = bot.slack.add_file(SMALL_CSV, name="q3.csv")
    upload = bot.slack.add_message("D0PLAIN", text="", files=[file_obj])
    event = user_message(upload.ts, upload.ts, "")
    event.update(channel="D0PLAIN", subtype="file_share", files=[file_obj])
    del event["thread_ts"]
    assert await bot.send_event(event) == 200
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, "D0PLAIN")) == 1, timeout=20)
    openai.script(text(ANSWER, chunk=5))
    reply = bot.slack.add_message("D0PLAIN", text="and marketing?", thread_ts=upload.ts)
    reply_event = user_message(reply.ts, upload.ts, "and marketing?")
    reply_event["channel"] = "D0PLAIN"
    assert await bot.send_event(reply_event) == 200
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, "D0PLAIN")) == 2, timeout=20)
    assert shown_text(final_answers(bot.slack, "D0PLAIN")[-1]) == ANSWER
    assert not bot.slack.assistant_threads  # no assistant calls for an ordinary thread


async def test_feedback_votes_are_logged_with_conversation_and_answer_ids(
    bot: Any, openai: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    file_obj = bot.slack.add_file(SMALL_CSV, name="q3.csv")
    thread_ts = await open_thread(bot)
    openai.script(text(ANSWER, chunk=6))
    question = bot.slack.add_message(ASSISTANT_DM, text="why?", thread_ts=thread_ts, files=[file_obj])
    event = user_message(question.ts, thread_ts, "why?")
    event.update(subtype="file_share", files=[file_obj])
    assert await bot.send_event(event) == 200
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, ASSISTANT_DM)) == 1, timeout=20)
    await bot.deps.idle(timeout=10)
    answer = final_answers(bot.slack, ASSISTANT_DM)[-1]
    [feedback] = [b for b in answer.blocks or [] if b.get("type") == "context_actions"]
    buttons = feedback["elements"][0]
    down = buttons["negative_button"]["value"]
    vote, answer_id, conversation_id = down.split("|")
    assert vote == "down" and answer_id and conversation_id == f"{TEAM}:{ASSISTANT_DM}:{thread_ts}"
    caplog.set_level(logging.INFO, logger="variance.bot")
    status, _ = await bot.click(FEEDBACK_ACTION_ID, down, channel=ASSISTANT_DM, message_ts=answer.ts)
    assert status == 200
    votes = [
        json.loads(r.getMessage())
        for r in caplog.records
        if r.name == "variance.bot" and '"kind":"feedback"' in r.getMessage()
    ]
    assert votes and votes[-1]["vote"] == "down"
    assert votes[-1]["answer_id"] == answer_id and votes[-1]["conversation_id"] == conversation_id
    assert votes[-1]["channel"] == ASSISTANT_DM
