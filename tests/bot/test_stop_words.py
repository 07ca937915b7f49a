"""Typing "stop" in the thread of a running answer stops it (a native stream has no Stop button), acknowledged
with a reaction; and the :eyes: reaction that acknowledges a question while its answer runs."""

from __future__ import annotations

from typing import Any

import pytest

from bot.listeners.stop_words import NOTHING_TO_STOP, STOPPED_REACTION, is_stop_request
from bot.render import WORKING_REACTION
from tests.bot.helpers import DM, SMALL_CSV, answers_in, dm_event, final_answers, shown_text, stop_button_value
from tests.fakes.openai_server import FakeOpenAI, text

LONG_ANSWER = " ".join(f"Line {i}: marketing spend moved by {i * 10}.00 against plan." for i in range(120))


@pytest.mark.parametrize("typed", ["stop", "Stop!", "cancel", "please stop", "STOP it."])
def test_stop_words(typed: str) -> None:
    assert is_stop_request(typed)


@pytest.mark.parametrize("typed", ["why did marketing stop growing?", "stop loss on travel", "", "cancellations"])
def test_questions_are_not_stop_words(typed: str) -> None:
    assert not is_stop_request(typed)


async def load_dataset(bot: Any) -> None:
    file_obj = bot.slack.add_file(SMALL_CSV, name="q3.csv")
    upload = bot.slack.add_message(DM, files=[file_obj])
    assert await bot.send_event(dm_event(upload.ts, files=[file_obj])) == 200
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, DM)) == 1, timeout=20)
    await bot.deps.idle(timeout=10)


async def test_typing_stop_in_the_thread_stops_a_native_stream(bot: Any, openai: FakeOpenAI) -> None:
    await load_dataset(bot)
    requests_before = len(openai.requests)
    openai.script(text(LONG_ANSWER, chunk=5, delay=0.02))  # several seconds of text
    parent = bot.slack.add_message(DM, text="Q3 questions")
    question = bot.slack.add_message(DM, text="walk me through marketing", thread_ts=parent.ts)
    assert await bot.send_event(dm_event(question.ts, "walk me through marketing", thread_ts=parent.ts)) == 200

    def streaming_with_text() -> bool:
        return any(m.streaming_since is not None and "Line 1:" in m.visible for m in answers_in(bot.slack, DM))

    await bot.slack.wait_for(streaming_with_text, timeout=20)
    live = next(m for m in answers_in(bot.slack, DM) if m.streaming_since is not None)
    assert live.thread_ts == parent.ts and stop_button_value(live) is None  # a live stream has no button
    stop = bot.slack.add_message(DM, text="stop", thread_ts=parent.ts)
    assert await bot.send_event(dm_event(stop.ts, "stop", thread_ts=parent.ts)) == 200
    await bot.slack.wait_for(lambda: live.streaming_since is None and "_Stopped._" in live.visible, timeout=20)
    final = shown_text(live)
    assert final.startswith("Line 0:") and final.endswith("_Stopped._") and len(final) < len(LONG_ANSWER)
    await openai.wait_for(lambda f: f.requests[-1].disconnected, timeout=10)  # the model call was closed
    await bot.deps.idle(timeout=10)
    assert len(openai.requests) == requests_before + 1  # "stop" was never a question to the analyst
    await bot.slack.wait_for(lambda: STOPPED_REACTION in stop.reactions, timeout=10)  # acknowledged
    assert bot.slack.calls_of("chat.postEphemeral") == []


async def test_stop_with_nothing_running_gets_a_short_note(bot: Any, openai: FakeOpenAI) -> None:
    await load_dataset(bot)
    requests_before = len(openai.requests)
    stop = bot.slack.add_message(DM, text="cancel")
    assert await bot.send_event(dm_event(stop.ts, "cancel")) == 200
    await bot.slack.wait_for(lambda: bool(bot.slack.calls_of("chat.postEphemeral")), timeout=10)
    await bot.deps.idle(timeout=10)
    [note] = bot.slack.calls_of("chat.postEphemeral")
    assert note.params["text"] == NOTHING_TO_STOP
    assert len(openai.requests) == requests_before and len(answers_in(bot.slack, DM)) == 1


async def test_a_question_shows_eyes_while_its_answer_runs(bot: Any, openai: FakeOpenAI) -> None:
    await load_dataset(bot)
    openai.script(text("Marketing is over budget by 150.00, all of it in Advertising.", chunk=8, delay=0.01))
    question = bot.slack.add_message(DM, text="why is marketing over budget?")
    assert await bot.send_event(dm_event(question.ts, "why is marketing over budget?")) == 200
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, DM)) == 2, timeout=20)
    await bot.deps.idle(timeout=10)
    await bot.slack.wait_for(lambda: len(question.reaction_log) == 2, timeout=10)
    assert question.reaction_log == [("add", WORKING_REACTION), ("remove", WORKING_REACTION)]
    assert question.reactions == []
    added = next(c for c in bot.slack.calls_of("reactions.add") if c.params.get("timestamp") == question.ts)
    answer = final_answers(bot.slack, DM)[-1]
    assert added.time <= answer.history[0].time  # acknowledged before the answer's first message
    assert bot.slack.ratelimited == 0
