"""An ambiguous chat.startStream failure (5xx or timeout after which the stream may exist) is looked up, so one
answer is never two messages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from slack_sdk.web.async_client import AsyncWebClient

from analyst.events import AnalystEvent, Done, TextDelta
from bot.render import AnswerWriter, SlackBudget, WriterSettings
from tests.fakes.slack_server import FakeSlack

ZWSP = "\u200b"
ANSWER = (
    "**Marketing** is over budget by **$42,300** (+12.4%) in Q3.\n\n"
    "- Paid social: +$30,100\n- Events: +$15,200\n- Agencies: -$3,000\n\n"
    "Actual is `Actual`, reference is `Budget`; variance = actual - budget."
)
STREAM = WriterSettings(placeholder_after=5.0, native_stream=True, lookup_settle=0.0)


async def events(text: str, *, chunk: int = 6, delay: float = 0.005) -> AsyncIterator[AnalystEvent]:
    for i in range(0, len(text), chunk):
        yield TextDelta(text[i : i + chunk])
        await asyncio.sleep(delay)
    yield Done(text)


def visible_answers(slack: FakeSlack, channel: str) -> list[str]:
    return [m.visible.replace(ZWSP, "") for m in slack.bot_messages(channel) if not m.deleted]


async def test_a_stream_that_started_although_the_call_failed_is_found_and_used(
    slack: FakeSlack, client: AsyncWebClient, budget: SlackBudget
) -> None:
    parent = slack.add_message("D1", text="why is marketing over?")
    slack.inject("chat.startStream", status=500, apply=True)  # it started; the client saw a 500
    writer = AnswerWriter(client, budget, team_id="T0001", channel="D1", thread_ts=parent.ts, settings=STREAM)
    await writer.start()
    outcome = await writer.write(events(ANSWER))
    assert outcome.delivered
    assert visible_answers(slack, "D1") == [ANSWER]  # one message: the stream, found again
    [msg] = slack.bot_messages("D1")
    assert outcome.message_ts == [msg.ts] and msg.streaming_since is None
    assert slack.calls_of("conversations.replies")  # it was looked up
    assert not slack.calls_of("chat.postMessage") and len(slack.calls_of("chat.startStream")) == 1


async def test_a_stream_that_did_not_start_falls_back_to_a_post(
    slack: FakeSlack, client: AsyncWebClient, budget: SlackBudget
) -> None:
    parent = slack.add_message("D1", text="q")
    slack.inject("chat.startStream", status=503)  # not applied: no stream exists
    writer = AnswerWriter(client, budget, team_id="T0001", channel="D1", thread_ts=parent.ts, settings=STREAM)
    await writer.start()
    outcome = await writer.write(events(ANSWER))
    assert outcome.delivered and visible_answers(slack, "D1") == [ANSWER]
    assert slack.calls_of("conversations.replies") and slack.calls_of("chat.postMessage")


async def test_a_stream_slack_could_not_confirm_is_deleted_at_the_end(
    slack: FakeSlack, client: AsyncWebClient, budget: SlackBudget
) -> None:
    parent = slack.add_message("D1", text="q")
    slack.inject("chat.startStream", status=500, apply=True)
    slack.inject("conversations.replies", status=500, times=3)  # the first lookup can't tell
    writer = AnswerWriter(client, budget, team_id="T0001", channel="D1", thread_ts=parent.ts, settings=STREAM)
    await writer.start()
    outcome = await writer.write(events(ANSWER))
    assert outcome.delivered
    assert visible_answers(slack, "D1") == [ANSWER]  # the stream that did start was deleted
    assert [m.ts for m in slack.bot_messages("D1") if not m.deleted] == outcome.message_ts
    assert any(m.deleted for m in slack.bot_messages("D1"))
