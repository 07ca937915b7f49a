"""Delivery modes end to end against the fake Slack: first text on the post, native streams and their fallbacks,
assistant status, feedback buttons, and the outgoing text filter on every payload."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Sequence

from slack_sdk.web.async_client import AsyncWebClient

from analyst.events import AnalystEvent, Done, TextDelta, ToolFinished, ToolStarted
from bot.render import FEEDBACK_ACTION_ID, AnswerWriter, BudgetLimit, SlackBudget, WriterSettings
from tests.fakes.slack_server import FakeSlack

ZWSP = "\u200b"
ANSWER = (
    "**Marketing** is over budget by **$42,300** (+12.4%) in Q3.\n\n"
    "- Paid social: +$30,100\n- Events: +$15,200\n- Agencies: -$3,000\n\n"
    "Actual is `Actual`, reference is `Budget`; variance = actual - budget."
)
LAZY = WriterSettings(placeholder_after=5.0)
STREAM = WriterSettings(placeholder_after=5.0, native_stream=True, feedback_buttons=True)
TEXT_METHODS = {"chat.postMessage", "chat.update", "chat.startStream", "chat.appendStream", "chat.stopStream"}


async def events(
    text: str,
    *,
    chunk: int = 6,
    delay: float = 0.002,
    tools: Sequence[str] = ("Computing variance by Department…",),
    final: str | None = None,
    gate: asyncio.Event | None = None,
    gate_at: int = 0,
) -> AsyncIterator[AnalystEvent]:
    for label in tools:
        yield ToolStarted("tool", "{}", label)
        await asyncio.sleep(delay)
        yield ToolFinished("tool", True)
    for n, i in enumerate(range(0, len(text), chunk)):
        if gate is not None and n == gate_at:
            await gate.wait()
        yield TextDelta(text[i : i + chunk])
        await asyncio.sleep(delay)
    yield Done(final if final is not None else text)


def shown(slack: FakeSlack, channel: str, ts: str) -> str:
    return slack.messages[channel][ts].visible.replace(ZWSP, "")


def methods(slack: FakeSlack) -> list[str]:
    return [c.method for c in slack.calls if c.status == 200 and c.error is None]


async def test_first_text_rides_on_the_post_without_any_edit_before_it(
    slack: FakeSlack, client: AsyncWebClient, budget: SlackBudget
) -> None:
    parent = slack.add_message("C1", text="why is marketing over?")
    writer = AnswerWriter(client, budget, team_id="T0001", channel="C1", thread_ts=parent.ts, settings=LAZY)
    assert await writer.start() == ""
    assert not slack.calls_of("chat.postMessage")  # nothing posted before there is text
    outcome = await writer.write(events(ANSWER))
    assert outcome.delivered and outcome.state == "answered"
    first_post = slack.calls_of("chat.postMessage")[0]
    blocks = json.loads(first_post.params["blocks"]) if isinstance(first_post.params["blocks"], str) else None
    first_text = (blocks or first_post.params["blocks"])[0]["text"]
    assert first_text.startswith("**Marketing** is over")  # the post itself carried text, no placeholder
    assert [shown(slack, "C1", ts) for ts in outcome.message_ts] == [ANSWER]
    assert outcome.time_to_first_text is not None


async def test_slow_first_text_gets_a_placeholder_then_the_text(
    slack: FakeSlack, client: AsyncWebClient, budget: SlackBudget
) -> None:
    parent = slack.add_message("C1", text="q")
    gate = asyncio.Event()
    writer = AnswerWriter(
        client,
        budget,
        team_id="T0001",
        channel="C1",
        thread_ts=parent.ts,
        settings=WriterSettings(placeholder_after=0.05),
    )
    await writer.start(tool_label="Reading q3.csv…")
    task = asyncio.ensure_future(writer.write(events(ANSWER, gate=gate, tools=())))
    await slack.wait_for(lambda: bool(slack.bot_messages("C1")))
    assert "Reading q3" in slack.bot_messages("C1")[0].visible
    gate.set()
    outcome = await task
    assert [shown(slack, "C1", ts) for ts in outcome.message_ts] == [ANSWER]


async def test_native_stream_carries_the_answer_without_edits_and_ends_with_feedback_buttons(
    slack: FakeSlack, client: AsyncWebClient, budget: SlackBudget
) -> None:
    parent = slack.add_message("D1", text="why is marketing over?")
    writer = AnswerWriter(
        client,
        budget,
        team_id="T0001",
        channel="D1",
        thread_ts=parent.ts,
        settings=STREAM,
        conversation_id="T0001:D1",
    )
    await writer.start()
    outcome = await writer.write(events(ANSWER, delay=0.02))
    assert outcome.delivered
    used = methods(slack)
    assert "chat.startStream" in used and "chat.stopStream" in used
    assert "chat.update" not in used and "chat.postMessage" not in used
    [ts] = outcome.message_ts
    msg = slack.messages["D1"][ts]
    assert msg.thread_ts == parent.ts and msg.streaming_since is None
    assert shown(slack, "D1", ts) == ANSWER  # streamed text, exactly once
    feedback = msg.blocks[0]["elements"][0]  # type: ignore[index]
    assert feedback["type"] == "feedback_buttons" and feedback["action_id"] == FEEDBACK_ACTION_ID
    assert feedback["positive_button"]["value"] == f"up|{writer.answer_id}|T0001:D1"


async def test_expired_stream_is_finished_by_an_edit_without_losing_or_repeating_text(
    slack: FakeSlack, client: AsyncWebClient, budget: SlackBudget
) -> None:
    parent = slack.add_message("D1", text="q")
    gate = asyncio.Event()
    writer = AnswerWriter(client, budget, team_id="T0001", channel="D1", thread_ts=parent.ts, settings=STREAM)
    await writer.start()
    task = asyncio.ensure_future(writer.write(events(ANSWER * 3, gate=gate, gate_at=15)))
    await slack.wait_for(lambda: bool(slack.calls_of("chat.startStream")))
    [msg] = slack.bot_messages("D1")
    slack.expire_stream("D1", msg.ts)
    gate.set()
    outcome = await task
    assert outcome.delivered and outcome.message_ts == [msg.ts]
    assert shown(slack, "D1", msg.ts) == ANSWER * 3
    errors = {c.error for c in slack.calls if c.method in {"chat.appendStream", "chat.stopStream"}}
    assert "message_not_in_streaming_state" in errors
    assert slack.calls_of("chat.update")  # the rest went in by an edit


async def test_final_text_different_from_the_stream_replaces_it(
    slack: FakeSlack, client: AsyncWebClient, budget: SlackBudget
) -> None:
    parent = slack.add_message("D1", text="q")
    writer = AnswerWriter(client, budget, team_id="T0001", channel="D1", thread_ts=parent.ts, settings=STREAM)
    await writer.start()
    final = "Corrected: " + ANSWER
    outcome = await writer.write(events(ANSWER, final=final))
    [ts] = outcome.message_ts
    assert shown(slack, "D1", ts) == final
    assert slack.calls_of("chat.update")


async def test_refused_stream_falls_back_to_the_post(
    slack: FakeSlack, client: AsyncWebClient, budget: SlackBudget
) -> None:
    parent = slack.add_message("D1", text="q")
    slack.inject("chat.startStream", error="not_allowed")
    writer = AnswerWriter(client, budget, team_id="T0001", channel="D1", thread_ts=parent.ts, settings=STREAM)
    await writer.start()
    outcome = await writer.write(events(ANSWER))
    assert outcome.delivered
    assert [shown(slack, "D1", ts) for ts in outcome.message_ts] == [ANSWER]
    assert slack.calls_of("chat.postMessage") and not slack.calls_of("chat.appendStream")


async def test_stop_that_keeps_failing_is_resolved_by_stopping_then_editing(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    budget = SlackBudget(
        limits={"chat.update": BudgetLimit(45, 6.0)},
        min_interval=0.05,
        post_rate=20.0,
        post_burst=5,
        scheduler_options={"max_attempts": 2, "backoff_base": 0.01},
    )
    parent = slack.add_message("D1", text="q")
    slack.inject("chat.stopStream", error="internal_error", times=2)
    writer = AnswerWriter(client, budget, team_id="T0001", channel="D1", thread_ts=parent.ts, settings=STREAM)
    await writer.start()
    outcome = await writer.write(events(ANSWER, final=ANSWER + " Done."))
    await budget.aclose()
    [ts] = outcome.message_ts
    assert outcome.delivered
    assert shown(slack, "D1", ts) == ANSWER + " Done."
    assert "streaming_state_conflict" in {c.error for c in slack.calls_of("chat.update")}
    assert slack.messages["D1"][ts].streaming_since is None


async def test_streams_are_admitted_only_while_the_tier_2_windows_have_room(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    budget = SlackBudget(
        limits={"chat.update": BudgetLimit(45, 6.0), "chat.startStream": BudgetLimit(1, 60.0)},
        min_interval=0.05,
        post_rate=20.0,
        post_burst=5,
    )
    outcomes = []
    for channel in ("D1", "D2"):
        parent = slack.add_message(channel, text="q")
        writer = AnswerWriter(client, budget, team_id="T0001", channel=channel, thread_ts=parent.ts, settings=STREAM)
        await writer.start()
        outcomes.append(await writer.write(events(ANSWER)))
    await budget.aclose()
    assert len(slack.calls_of("chat.startStream")) == 1  # the second answer used a post and edits
    assert [c.params["channel"] for c in slack.calls_of("chat.postMessage")] == ["D2"]
    for outcome in outcomes:
        assert [shown(slack, outcome.channel, ts) for ts in outcome.message_ts] == [ANSWER]
    assert slack.ratelimited == 0


async def test_assistant_status_while_tools_run_cleared_by_the_answer(
    slack: FakeSlack, client: AsyncWebClient, budget: SlackBudget
) -> None:
    parent = slack.add_message("D1", text="q")
    settings = WriterSettings(placeholder_after=None, native_stream=True, assistant_status=True)
    writer = AnswerWriter(client, budget, team_id="T0001", channel="D1", thread_ts=parent.ts, settings=settings)
    await writer.start()
    gate = asyncio.Event()
    task = asyncio.ensure_future(writer.write(events(ANSWER, gate=gate, tools=("Ranking drivers by Account…",))))
    thread = slack.assistant_threads[("D1", parent.ts)]
    await slack.wait_for(lambda: "Ranking drivers by Account…" in thread.statuses)
    gate.set()
    outcome = await task
    assert outcome.delivered and thread.status == ""  # the streamed reply cleared it
    assert thread.statuses[0] == "is looking at your numbers…"


HOSTILE = (
    "Heads up <!channel> and <@U123>: see [the details](https://evil.example/steal) "
    "or visit evil.example now. Line <!here|here> done.\n\n" + ANSWER
)


def _texts_sent(slack: FakeSlack) -> list[str]:
    out: list[str] = []
    for call in slack.calls:
        if call.method not in TEXT_METHODS:
            continue
        params = dict(call.params)
        for key in ("text", "markdown_text"):
            if isinstance(params.get(key), str):
                out.append(params[key])
        for field in ("blocks", "chunks"):
            value = params.get(field)
            if isinstance(value, str):
                value = json.loads(value)
            for item in value or []:
                if isinstance(item.get("text"), str):
                    out.append(item["text"])
    return out


async def test_hostile_model_output_never_reaches_slack_live_in_any_mode(
    slack: FakeSlack, client: AsyncWebClient, budget: SlackBudget
) -> None:
    modes = {"C1": WriterSettings(), "C2": LAZY, "D3": STREAM}
    for channel, settings in modes.items():
        parent = slack.add_message(channel, text="q")
        writer = AnswerWriter(client, budget, team_id="T0001", channel=channel, thread_ts=parent.ts, settings=settings)
        await writer.start(tool_label="Reading <@U123> [x](https://evil.example).csv…")
        # The hostile text arrives in pieces that split its markup across deltas.
        outcome = await writer.write(events(HOSTILE, chunk=3, tools=("Filtering to <!channel>…",)))
        assert outcome.delivered
        assert shown(slack, channel, outcome.message_ts[0]).startswith("Heads up <!channel>")  # readable
    sent = _texts_sent(slack)
    assert sent
    assert {"chat.startStream", "chat.appendStream", "chat.stopStream"} <= set(methods(slack))
    # Joined per message as Slack shows it, too: appended pieces must not form markup together.
    whole = sent + [m.visible for ch in modes for m in slack.bot_messages(ch)]
    for text in whole:
        assert "<!channel>" not in text and "<!here" not in text and "<@U123>" not in text
        assert "](https://" not in text and "](" not in text
        assert "evil.example" not in text  # the domain is broken up, so Slack does not autolink it


async def test_append_in_flight_when_the_answer_ends_is_not_repeated_by_the_stop(
    slack: FakeSlack, client: AsyncWebClient, budget: SlackBudget
) -> None:
    parent = slack.add_message("D1", text="q")
    slack.inject("chat.appendStream", delay=0.5)  # the first append is slow: the answer ends meanwhile,
    slack.inject("chat.stopStream", delay=1.0)  # and a stop sent at once would land after it
    writer = AnswerWriter(client, budget, team_id="T0001", channel="D1", thread_ts=parent.ts, settings=STREAM)
    await writer.start()
    gate = asyncio.Event()
    task = asyncio.ensure_future(writer.write(events(ANSWER, chunk=40, delay=0.01, gate=gate, gate_at=3)))
    await slack.wait_for(lambda: bool(slack.calls_of("chat.appendStream")))  # arrived, not yet applied
    gate.set()
    outcome = await task
    [ts] = outcome.message_ts
    assert slack.calls_of("chat.stopStream")
    assert shown(slack, "D1", ts) == ANSWER  # every piece once
