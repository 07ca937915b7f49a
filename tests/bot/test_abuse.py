"""Abuse limits, allowlists and who may stop an answer, end to end through the real app in HTTP mode.

One person sending 30 questions at once gets at most 2 answers running; each other question is told, in its own
thread and only to them, when to ask again, and costs no model call. Another person is unaffected. Admissions
are released on every path, so asking again later works. Outside the allowlists the bot refuses politely,
for mentions, DMs, ``/variance`` and the Stop button alike. Only the asker (or a workspace admin) can stop
an answer.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import pytest

from bot.limits import NOT_DIRECT_MESSAGES, NOT_THIS_CHANNEL, NOT_THIS_USER, NOT_THIS_WORKSPACE
from tests.bot.helpers import (
    CHANNEL,
    DM,
    SMALL_CSV,
    TEAM,
    USER,
    answers_in,
    dm_event,
    final_answers,
    final_markdown,
    is_final,
    mention_event,
    stop_button_value,
)
from tests.fakes.openai_server import FakeOpenAI, hang, text

if TYPE_CHECKING:
    from tests.bot.bot_under_test import BotUnderTest
    from tests.fakes.slack_server import FakeMessage

OTHER = "U0OTHER"
# Hung model answers must stay hung until the test stops them, however slow the machine.
PATIENT = {"VARIANCE_MODEL_TIMEOUT": "120"}


async def load_channel_file(bot: BotUnderTest, *, user: str = USER) -> None:
    file_obj = bot.slack.add_file(SMALL_CSV, name="q3.csv")
    message = bot.slack.add_message(CHANNEL, text="<@UBOT>", files=[file_obj], user=user)
    assert await bot.send_event(mention_event(CHANNEL, message.ts, "<@UBOT>", files=[file_obj], user=user)) == 200
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, CHANNEL)) == 1, timeout=20)
    await bot.deps.idle(timeout=10)


async def ask_in_channel(bot: BotUnderTest, question: str, *, user: str = USER) -> str:
    message = bot.slack.add_message(CHANNEL, text=f"<@UBOT> {question}", user=user)
    assert await bot.send_event(mention_event(CHANNEL, message.ts, f"<@UBOT> {question}", user=user)) == 200
    return message.ts


def live_answers(bot: BotUnderTest, channel: str = CHANNEL) -> list[FakeMessage]:
    return [m for m in answers_in(bot.slack, channel) if not is_final(m)]


def ephemerals_to(bot: BotUnderTest, user: str) -> list[dict[str, Any]]:
    return [e for e in bot.slack.ephemerals if e.get("user") == user]


async def stop(bot: BotUnderTest, message: FakeMessage, *, user: str = USER, response_url: str | None = None) -> None:
    answer_id = stop_button_value(message)
    assert answer_id
    status, _ = await bot.click(
        "stop_answer", answer_id, channel=message.channel, message_ts=message.ts, user=user, response_url=response_url
    )
    assert status == 200


def live_in_thread(bot: BotUnderTest, thread_ts: str) -> FakeMessage:
    (message,) = [m for m in live_answers(bot) if m.thread_ts == thread_ts]
    return message


# ------------------------------------------------------------------------------------------- limits


@pytest.mark.parametrize("env_overrides", [PATIENT])
async def test_thirty_questions_at_once_run_two_and_tell_the_rest_when_to_ask(
    bot: BotUnderTest, openai: FakeOpenAI
) -> None:
    await load_channel_file(bot)
    openai.script(hang(), hang(), text("Sales beat the plan by 200.00.", chunk=6))
    asks = [bot.slack.add_message(CHANNEL, text=f"<@UBOT> question {n}") for n in range(30)]
    statuses = await asyncio.gather(
        *(bot.send_event(mention_event(CHANNEL, m.ts, f"<@UBOT> question {n}")) for n, m in enumerate(asks))
    )
    assert statuses == [200] * 30

    await bot.slack.wait_for(lambda: len(ephemerals_to(bot, USER)) == 28 and len(live_answers(bot)) == 2, timeout=30)
    await openai.wait_for(lambda fake: len(fake.requests) == 2, timeout=20)
    refused = ephemerals_to(bot, USER)
    for note in refused:
        assert note["channel"] == CHANNEL
        assert note["text"].startswith("You already have answers in progress. Please ask again")
        assert "in about 30 s" in note["text"]
    running_threads = {m.thread_ts for m in live_answers(bot)}
    refused_threads = {note["thread_ts"] for note in refused}
    # Each question got exactly one response, in its own thread: an answer, or the note.
    assert len(running_threads) == 2 and not running_threads & refused_threads
    assert running_threads | refused_threads == {m.ts for m in asks}
    assert bot.deps.limits.running(TEAM) == 2
    assert len(openai.requests) == 2  # the refused questions cost no model call

    # Another person is unaffected.
    other_ts = await ask_in_channel(bot, "how did sales do?", user=OTHER)
    await bot.slack.wait_for(lambda: any(m.thread_ts == other_ts for m in final_answers(bot.slack, CHANNEL)))
    (other_answer,) = [m for m in final_answers(bot.slack, CHANNEL) if m.thread_ts == other_ts]
    assert final_markdown(other_answer) == "Sales beat the plan by 200.00."
    assert ephemerals_to(bot, OTHER) == []

    # Stopping the two running answers frees their slots: the next question runs.
    for message in live_answers(bot):
        await stop(bot, message)
    await bot.slack.wait_for(lambda: live_answers(bot) == [], timeout=20)
    await bot.deps.idle(timeout=10)
    assert bot.deps.limits.running(TEAM) == 0
    openai.script(text("Marketing is over by 100.00."))
    again = await ask_in_channel(bot, "and marketing?")
    await bot.slack.wait_for(lambda: any(m.thread_ts == again for m in final_answers(bot.slack, CHANNEL)), timeout=20)
    assert len(ephemerals_to(bot, USER)) == 28


@pytest.mark.parametrize(
    "env_overrides", [{"VARIANCE_USER_MAX_RUNNING": "0", "VARIANCE_USER_QUESTIONS_PER_MIN": "3"}]
)
async def test_questions_per_minute_in_a_dm(bot: BotUnderTest, openai: FakeOpenAI) -> None:
    file_obj = bot.slack.add_file(SMALL_CSV, name="q3.csv")
    upload = bot.slack.add_message(DM, files=[file_obj])
    assert await bot.send_event(dm_event(upload.ts, files=[file_obj])) == 200
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, DM)) == 1, timeout=20)
    for n in range(3):
        question = bot.slack.add_message(DM, text=f"question {n}")
        assert await bot.send_event(dm_event(question.ts, f"question {n}")) == 200
        answered = n + 2

        def responded(answered: int = answered) -> bool:
            return len(ephemerals_to(bot, USER)) == 1 or len(final_answers(bot.slack, DM)) == answered

        await bot.slack.wait_for(responded, timeout=20)
    await bot.slack.wait_for(lambda: len(ephemerals_to(bot, USER)) == 1, timeout=20)
    await bot.deps.idle(timeout=10)
    (note,) = ephemerals_to(bot, USER)
    assert note["channel"] == DM
    assert note["text"].startswith("That's a lot of questions in a minute. Please ask again in about ")
    wait = int(note["text"].rsplit("in about ", 1)[1].split(" ")[0])
    assert 1 <= wait <= 60
    assert len(final_answers(bot.slack, DM)) == 3  # the report and two answers
    assert len(openai.requests) == 2


@pytest.mark.parametrize("env_overrides", [PATIENT | {"VARIANCE_WORKSPACE_MAX_RUNNING": "2"}])
async def test_the_workspace_limit_refuses_a_third_person_until_a_slot_frees(
    bot: BotUnderTest, openai: FakeOpenAI
) -> None:
    await load_channel_file(bot)
    openai.script(hang(), hang())
    alice = await ask_in_channel(bot, "first", user="U0ALICE")
    bob = await ask_in_channel(bot, "second", user="U0BOB")
    await bot.slack.wait_for(lambda: len(live_answers(bot)) == 2, timeout=20)
    await openai.wait_for(lambda fake: len(fake.requests) == 2, timeout=20)

    url = bot.slack.new_response_url()
    status, _ = await bot.send_command("why is marketing over?", user="U0CAROL", response_url=url)
    assert status == 200
    await bot.slack.wait_for(lambda: len(bot.slack.responses[url]) == 1)
    (reply,) = bot.slack.responses[url]
    assert reply["response_type"] == "ephemeral"
    assert reply["text"].startswith("I'm answering many questions in this workspace right now. Please ask again")
    assert len(openai.requests) == 2

    await stop(bot, live_in_thread(bot, alice), user="U0ALICE")
    await bot.slack.wait_for(lambda: bot.deps.limits.running(TEAM) == 1, timeout=20)
    openai.script(text("Events came in under plan."))
    status, _ = await bot.send_command("why is marketing over?", user="U0CAROL")
    await bot.slack.wait_for(
        lambda: any(final_markdown(m) == "Events came in under plan." for m in final_answers(bot.slack, CHANNEL)),
        timeout=20,
    )
    await stop(bot, live_in_thread(bot, bob), user="U0BOB")
    await bot.slack.wait_for(lambda: live_answers(bot) == [], timeout=20)


# ------------------------------------------------------------------------------------------- allowlists

ONLY_GENERAL_AND_ONE_USER = {"VARIANCE_ALLOWED_CHANNELS": CHANNEL, "VARIANCE_ALLOWED_USERS": USER}


@pytest.mark.parametrize("env_overrides", [ONLY_GENERAL_AND_ONE_USER])
async def test_allowlists_refuse_politely_everywhere_else(bot: BotUnderTest, openai: FakeOpenAI) -> None:
    await load_channel_file(bot)  # the allowed person in the allowed channel: answered as usual

    bot.slack.add_channel("C0RANDOM", name="random")
    elsewhere = bot.slack.add_message("C0RANDOM", text="<@UBOT> why?")
    assert await bot.send_event(mention_event("C0RANDOM", elsewhere.ts, "<@UBOT> why?")) == 200
    stranger = await ask_in_channel(bot, "why?", user="U0STRANGER")
    in_dm = bot.slack.add_message(DM, text="why?")
    assert await bot.send_event(dm_event(in_dm.ts, "why?")) == 200
    await bot.slack.wait_for(lambda: len(bot.slack.ephemerals) == 3)
    by_thread = {e.get("thread_ts"): e for e in bot.slack.ephemerals}
    assert by_thread[elsewhere.ts]["text"] == NOT_THIS_CHANNEL and by_thread[elsewhere.ts]["user"] == USER
    assert by_thread[stranger]["text"] == NOT_THIS_USER and by_thread[stranger]["user"] == "U0STRANGER"
    assert by_thread[None]["text"] == NOT_DIRECT_MESSAGES and by_thread[None]["channel"] == DM

    url = bot.slack.new_response_url()
    status, _ = await bot.send_command("report", channel="C0RANDOM", response_url=url)
    assert status == 200
    await bot.slack.wait_for(lambda: len(bot.slack.responses[url]) == 1)
    assert bot.slack.responses[url][0] == {"text": NOT_THIS_CHANNEL, "response_type": "ephemeral"}
    url = bot.slack.new_response_url()
    await bot.send_command("reset", user="U0STRANGER", response_url=url)
    await bot.slack.wait_for(lambda: len(bot.slack.responses[url]) == 1)
    assert bot.slack.responses[url][0]["text"] == NOT_THIS_USER

    # Nothing was answered, read or asked of the model outside the lists.
    await bot.deps.idle(timeout=10)
    assert len(final_answers(bot.slack, CHANNEL)) == 1
    assert bot.slack.bot_messages("C0RANDOM") == [] and bot.slack.bot_messages(DM) == []
    assert openai.requests == []


@pytest.mark.parametrize("env_overrides", [{"VARIANCE_ALLOWED_CHANNELS": f"{CHANNEL},dm"}])
async def test_dm_in_the_channel_list_allows_direct_messages(bot: BotUnderTest, openai: FakeOpenAI) -> None:
    file_obj = bot.slack.add_file(SMALL_CSV, name="q3.csv")
    upload = bot.slack.add_message(DM, files=[file_obj])
    assert await bot.send_event(dm_event(upload.ts, files=[file_obj])) == 200
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, DM)) == 1, timeout=20)
    assert bot.slack.ephemerals == []


@pytest.mark.parametrize("env_overrides", [{"VARIANCE_ALLOWED_TEAMS": "T0SOMEWHERE"}])
async def test_another_workspace_is_refused(bot: BotUnderTest, openai: FakeOpenAI) -> None:
    ask = await ask_in_channel(bot, "why?")
    await bot.slack.wait_for(lambda: len(bot.slack.ephemerals) == 1)
    assert bot.slack.ephemerals[0]["text"] == NOT_THIS_WORKSPACE and bot.slack.ephemerals[0]["thread_ts"] == ask
    url = bot.slack.new_response_url()
    await bot.send_command("report", response_url=url)
    await bot.slack.wait_for(lambda: len(bot.slack.responses[url]) == 1)
    assert bot.slack.responses[url][0]["text"] == NOT_THIS_WORKSPACE
    assert bot.slack.calls_of("chat.postMessage") == [] and openai.requests == []


# ------------------------------------------------------------------------------------------- Stop


@pytest.mark.parametrize("env_overrides", [PATIENT])
async def test_only_the_asker_or_an_admin_can_stop(bot: BotUnderTest, openai: FakeOpenAI) -> None:
    bot.slack.add_user("U0ADMIN", is_admin=True)
    await load_channel_file(bot)
    openai.script(hang("Marketing is"))
    await ask_in_channel(bot, "why is marketing over?")
    await bot.slack.wait_for(lambda: len(live_answers(bot)) == 1, timeout=20)
    await openai.wait_for(lambda fake: len(fake.requests) == 1, timeout=20)
    (live,) = live_answers(bot)
    answer_id = stop_button_value(live)
    assert answer_id

    for _ in range(2):  # twice: the second click is answered from the cache (one users.info call)
        url = bot.slack.new_response_url()
        await stop(bot, live, user=OTHER, response_url=url)
        await bot.slack.wait_for(lambda url=url: len(bot.slack.responses[url]) == 1)  # type: ignore[misc]
        (reply,) = bot.slack.responses[url]
        assert reply["text"] == f"Only <@{USER}> (who asked) or a workspace admin can stop this answer."
        assert reply["response_type"] == "ephemeral" and reply["replace_original"] is False
    assert len(bot.slack.calls_of("users.info")) == 1
    assert answer_id in bot.deps.running and len(live_answers(bot)) == 1  # still running

    await stop(bot, live, user="U0ADMIN")
    await bot.slack.wait_for(lambda: live_answers(bot) == [], timeout=20)
    assert final_markdown(final_answers(bot.slack, CHANNEL)[-1]) == "Marketing is\n\n_Stopped._"


async def test_a_notice_refused_with_429_is_posted_after_the_wait(bot: BotUnderTest) -> None:
    """A busy channel (429 on chat.postMessage) delays a notice; it is not lost."""
    bot.slack.inject("chat.postMessage", error="ratelimited", retry_after=1)
    ask = await ask_in_channel(bot, "why are we over budget?")
    await bot.slack.wait_for(lambda: len(bot.slack.bot_messages(CHANNEL)) == 1, timeout=10)
    (notice,) = bot.slack.bot_messages(CHANNEL)
    assert notice.thread_ts == ask and "CSV or XLSX" in (notice.text or "")
    posts = bot.slack.calls_of("chat.postMessage")
    assert [c.status for c in posts] == [429, 200]
    assert posts[1].time - posts[0].time >= 0.9  # it waited as Slack asked
