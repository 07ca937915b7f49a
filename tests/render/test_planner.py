"""The delivery planner against the fake Slack: parts when the edit window is spent, finals by post + delete."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import time
from collections.abc import AsyncIterator

from slack_sdk.web.async_client import AsyncWebClient

from analyst.events import AnalystEvent, Done, Failed, FailureKind, TextDelta
from bot.render import AnswerWriter, BudgetLimit, SlackBudget, WriterSettings
from bot.render.markdown import last_block_cut
from tests.bot.helpers import stop_button_value
from tests.fakes.slack_server import FakeMessage, FakeSlack

PARAGRAPHS = [
    "## Q3 variance\n\n",
    "**Marketing** is over budget by **$42,300** (+12.4%), mostly paid social campaigns that ran longer.\n\n",
    "- Paid social: +$30,100\n- Events: +$15,200\n- Agencies: −$3,000\n\n",
    "| Department | Actual | Budget |\n|---|---:|---:|\n| Marketing | 412,300 | 370,000 |\n\n",
    "Travel came in lower than planned and partly offset the overspend in the other lines.\n\n",
    "Actual is `Actual`, reference is `Budget`; variance = actual − budget.",
]
ANSWER = "".join(PARAGRAPHS)


def reassembles(parts: list[str], doc: str) -> bool:
    pattern = r"\s*" + r"\s*".join(re.escape(p) for p in parts) + r"\s*"
    return re.fullmatch(pattern, doc, flags=re.DOTALL) is not None


async def deltas(
    text: str, *, chunk: int = 5, delay: float = 0.01, end: AnalystEvent | None = None
) -> AsyncIterator[AnalystEvent]:
    for i in range(0, len(text), chunk):
        yield TextDelta(text[i : i + chunk])
        await asyncio.sleep(delay)
    yield end if end is not None else Done(text)


def quick_budget(updates: int = 45, window: float = 60.0) -> SlackBudget:
    """A budget with ``updates`` chat.update and 45 chat.delete per ``window``, and quick per-message pacing."""
    return SlackBudget(
        limits={"chat.update": BudgetLimit(updates, window), "chat.delete": BudgetLimit(45, window)},
        min_interval=0.1,
        post_rate=20.0,
        post_burst=5,
    )


async def spent_budget(team: str, limit: int = 45, window: float = 6.0, deletes_spent: int = 40) -> SlackBudget:
    """A budget whose chat.update window (and most of the chat.delete one) was spent a moment ago."""
    budget = quick_budget(limit, window)
    now = time.monotonic()
    await budget.scheduler(team, "chat.update").count_earlier([now - 0.5] * limit)
    await budget.scheduler(team, "chat.delete").count_earlier([now - 0.5] * deletes_spent)
    return budget


async def test_spent_edit_window_posts_the_answer_in_parts_without_edits_or_deletes(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    budget = await spent_budget("T0001")
    parent = slack.add_message("D1", text="why is marketing over budget?")
    settings = WriterSettings(placeholder_after=1.5, part_interval=0.15, feedback_buttons=True)
    writer = AnswerWriter(client, budget, team_id="T0001", channel="D1", thread_ts=parent.ts, settings=settings)
    await writer.start()
    outcome = await writer.write(deltas(ANSWER))
    await budget.aclose()
    assert outcome.state == "answered" and outcome.delivered
    assert slack.calls_of("chat.update") == [] and slack.calls_of("chat.delete") == []
    assert slack.ratelimited == 0
    msgs = [slack.messages["D1"][ts] for ts in outcome.message_ts]
    assert len(msgs) >= 3, "the answer went out in several parts while it was written"
    assert [m.ts for m in slack.bot_messages("D1")] == outcome.message_ts  # nothing else was posted
    assert all(m.thread_ts == parent.ts and len(m.history) == 1 for m in msgs)  # each part posted once, final
    assert reassembles([m.visible for m in msgs], ANSWER)
    # parts are whole blocks: the table and the list are never split across two messages
    assert any("| Marketing | 412,300 | 370,000 |" in m.visible and "| Department" in m.visible for m in msgs)
    assert any("- Paid social" in m.visible and "- Agencies" in m.visible for m in msgs)
    # no Stop button on a part (nothing could take it away); 👍/👎 under the last one only
    assert all(m.markdown_text is not None for m in msgs[:-1])
    last_blocks = msgs[-1].blocks or []
    assert [b["type"] for b in last_blocks] == ["markdown", "context_actions"]
    assert outcome.time_to_first_text is not None and outcome.time_to_first_text < 1.0


async def test_stop_while_in_parts_ends_the_thread_with_the_stopped_line(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    budget = await spent_budget("T0001")
    parent = slack.add_message("D2", text="question")
    settings = WriterSettings(placeholder_after=1.5, part_interval=0.1)
    writer = AnswerWriter(client, budget, team_id="T0001", channel="D2", thread_ts=parent.ts, settings=settings)
    partial = "".join(PARAGRAPHS[:3]) + "Travel came in"
    end = Failed(FailureKind.CANCELLED, "Stopped.", partial_text=partial)
    outcome = await writer.write(deltas(partial, end=end))
    await budget.aclose()
    assert outcome.state == "stopped" and outcome.delivered
    texts = [slack.messages["D2"][ts].visible for ts in outcome.message_ts]
    assert texts[-1].endswith("_Stopped._")
    assert reassembles(texts, partial + "\n\n_Stopped._")
    assert slack.calls_of("chat.update") == []


async def test_final_ready_before_any_text_rides_on_the_first_post(slack: FakeSlack, client: AsyncWebClient) -> None:
    budget = await spent_budget("T0001")
    parent = slack.add_message("D3", text="question")
    writer = AnswerWriter(
        client, budget, team_id="T0001", channel="D3", thread_ts=parent.ts, settings=WriterSettings(placeholder_after=5)
    )
    outcome = await writer.write(deltas("Short answer.", chunk=50))
    await budget.aclose()
    assert [slack.messages["D3"][ts].visible for ts in outcome.message_ts] == ["Short answer."]
    assert len(slack.calls_of("chat.postMessage")) == 1 and slack.calls_of("chat.update") == []


async def test_a_final_the_edit_window_cannot_take_is_reposted_at_once(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    """The live message's final would wait for the spent edit window: post it anew, delete the live one."""
    budget = quick_budget(3)
    parent = slack.add_message("C1", text="question")
    settings = WriterSettings(placeholder_after=0.0, repost_final_after=60.0, feedback_buttons=True)
    writer = AnswerWriter(client, budget, team_id="T0001", channel="C1", thread_ts=parent.ts, settings=settings)
    placeholder = await writer.start()
    gate = asyncio.Event()

    async def events() -> AsyncIterator[AnalystEvent]:
        yield TextDelta("Thinking about the marketing line…")
        await gate.wait()
        yield Done(ANSWER)

    task = asyncio.create_task(writer.write(events()))
    await budget.scheduler("T0001", "chat.update").count_earlier([time.monotonic()] * 3)  # others spent it
    gate.set()
    outcome = await asyncio.wait_for(task, timeout=20)  # not the 60 s of repost_final_after
    await budget.aclose()
    assert outcome.delivered and outcome.deletes == 1
    assert slack.messages["C1"][placeholder].deleted
    live = [m for m in slack.bot_messages("C1") if not m.deleted]
    assert [m.ts for m in live] == outcome.message_ts and live[0].visible == ANSWER.strip()
    assert live[0].history[0].blocks is not None and live[0].history[0].blocks[-1]["type"] == "context_actions"
    assert slack.ratelimited == 0


async def test_spent_edit_window_with_deletes_to_spare_reposts_one_live_message(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    budget = await spent_budget("T0001", deletes_spent=0)
    parent = slack.add_message("D4", text="why is marketing over budget?")
    settings = WriterSettings(placeholder_after=1.5, repost_interval=0.15, feedback_buttons=True)
    writer = AnswerWriter(client, budget, team_id="T0001", channel="D4", thread_ts=parent.ts, settings=settings)
    await writer.start()
    outcome = await writer.write(deltas(ANSWER, delay=0.004))
    await budget.aclose()
    assert outcome.state == "answered" and outcome.delivered
    assert slack.calls_of("chat.update") == [] and slack.ratelimited == 0
    msgs = slack.bot_messages("D4")
    live = [m for m in msgs if not m.deleted]
    assert [m.ts for m in live] == outcome.message_ts and live[0].visible == ANSWER.strip()  # one message
    replaced = [m for m in msgs if m.deleted]
    assert len(replaced) >= 3, "the live message changed while the edit window was spent"
    for m in replaced:  # each was a live message with the Stop button, showing a growing prefix
        assert m.blocks is not None and any(b["type"] == "actions" for b in m.blocks)
    shown = [m.visible for m in replaced]
    assert all(len(a) <= len(b) for a, b in itertools.pairwise(shown))
    assert outcome.deletes == len(replaced)


def test_last_block_cut_keeps_tables_lists_and_code_whole() -> None:
    text = "Intro paragraph.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n- one\n- tw"
    cut = last_block_cut(text)
    assert cut is not None and text[cut:] == "- tw"  # the last list item is still being written
    assert last_block_cut("Intro paragraph.\n\n| a | b |\n|---|---|\n| 1 ") == len("Intro paragraph.\n\n")
    assert last_block_cut("```\ncode\n\nmore code") is None  # inside an open code block: no cut
    assert last_block_cut("Only one paragraph so far") is None
    assert last_block_cut("## Title\n\nBody", min_chars=40) is None  # too little before the cut


async def test_a_repost_whose_post_failed_ambiguously_is_found_not_posted_twice(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    budget = await spent_budget("T0001", deletes_spent=0)
    parent = slack.add_message("D5", text="question")
    settings = WriterSettings(placeholder_after=1.5, repost_interval=0.15, lookup_settle=0.0)
    writer = AnswerWriter(client, budget, team_id="T0001", channel="D5", thread_ts=parent.ts, settings=settings)
    await writer.start()
    gate = asyncio.Event()

    async def events() -> AsyncIterator[AnalystEvent]:
        half = len(ANSWER) // 2
        async for event in deltas(ANSWER[:half], end=TextDelta("")):
            yield event
        await gate.wait()
        async for event in deltas(ANSWER[half:], end=Done(ANSWER)):
            yield event

    task = asyncio.create_task(writer.write(events()))
    await slack.wait_for(lambda: len(slack.bot_messages("D5")) >= 1, timeout=10)
    slack.inject("chat.postMessage", status=500, apply=True)  # the next post lands, the client sees a 500
    gate.set()
    outcome = await asyncio.wait_for(task, timeout=20)
    await budget.aclose()
    assert outcome.delivered
    failed = [c for c in slack.calls_of("chat.postMessage") if c.status == 500]
    assert failed and slack.calls_of("conversations.replies")  # looked up, by its marker
    live = [m for m in slack.bot_messages("D5") if not m.deleted]
    assert [m.visible for m in live] == [ANSWER.strip()]  # one answer, once


def _live_text_shown(slack: FakeSlack, channel: str, placeholder: str) -> list[FakeMessage]:
    """The channel's live bot messages, other than the placeholder, that show answer text."""
    return [
        m
        for m in slack.bot_messages(channel)
        if m.ts != placeholder and not m.deleted and "Q3 variance" in m.visible and m.markdown_text is None
    ]


async def test_a_placeholders_first_text_the_edit_window_cannot_serve_is_posted_and_the_placeholder_deleted(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    """A top-level DM answer whose placeholder was posted at once (a file being read): when its first text is
    ready and the edit window is spent, the text is posted as the live message (with its Stop button) and the
    placeholder deleted after it, while the answer is still streaming; the final is the whole answer once."""
    budget = await spent_budget("T0001", deletes_spent=0)
    settings = WriterSettings(placeholder_after=0.0, feedback_buttons=True)
    moved: list[tuple[str, str]] = []

    async def on_message_moved(channel: str, ts: str) -> None:
        moved.append((channel, ts))

    writer = AnswerWriter(
        client, budget, team_id="T0001", channel="D6", settings=settings, on_message_moved=on_message_moved
    )
    placeholder = await writer.start(tool_label="Reading q3.csv…")
    assert "Reading q3.csv" in slack.messages["D6"][placeholder].visible
    gate = asyncio.Event()

    async def events() -> AsyncIterator[AnalystEvent]:
        async for event in deltas(ANSWER[: len(PARAGRAPHS[0]) + len(PARAGRAPHS[1])], end=TextDelta("")):
            yield event
        await gate.wait()
        async for event in deltas(ANSWER[len(PARAGRAPHS[0]) + len(PARAGRAPHS[1]) :], end=Done(ANSWER)):
            yield event

    task = asyncio.create_task(writer.write(events()))
    await slack.wait_for(lambda: bool(_live_text_shown(slack, "D6", placeholder)), timeout=10)
    [live] = _live_text_shown(slack, "D6", placeholder)
    assert live.thread_ts is None and "Marketing" in live.visible  # partial text, top level, before the end
    assert stop_button_value(live) == writer.answer_id
    await slack.wait_for(lambda: slack.messages["D6"][placeholder].deleted, timeout=10)
    assert slack.calls_of("chat.update") == []  # the first text cost a post and a delete, no edit
    gate.set()
    outcome = await asyncio.wait_for(task, timeout=30)
    await budget.aclose()
    assert outcome.state == "answered" and outcome.delivered
    shown = [m for m in slack.bot_messages("D6") if not m.deleted]
    assert [m.ts for m in shown] == outcome.message_ts and shown[0].visible == ANSWER.strip()  # exactly once
    assert stop_button_value(shown[0]) is None
    assert slack.ratelimited == 0
    # Whoever records where the answer is (the running-answers registry) was told of the message that replaced
    # the placeholder, so it never points at a deleted one.
    assert moved and moved[0] == ("D6", live.ts) and moved[-1] == ("D6", shown[0].ts)


async def test_stop_after_the_placeholder_was_replaced_ends_the_new_message(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    budget = await spent_budget("T0001", deletes_spent=0)
    writer = AnswerWriter(client, budget, team_id="T0001", channel="D7", settings=WriterSettings(placeholder_after=0))
    placeholder = await writer.start()
    gate = asyncio.Event()

    async def events() -> AsyncIterator[AnalystEvent]:
        async for event in deltas(ANSWER[:200], end=TextDelta("")):
            yield event
        await gate.wait()
        yield Done(ANSWER)

    task = asyncio.create_task(writer.write(events()))
    await slack.wait_for(lambda: bool(_live_text_shown(slack, "D7", placeholder)), timeout=10)
    task.cancel()  # what the Stop button does
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await budget.aclose()
    shown = [m for m in slack.bot_messages("D7") if not m.deleted]
    assert len(shown) == 1 and shown[0].ts != placeholder and slack.messages["D7"][placeholder].deleted
    assert shown[0].visible.endswith("_Stopped._") and stop_button_value(shown[0]) is None


async def test_a_placeholders_first_text_waits_for_the_edit_when_the_delete_window_is_spent_too(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    budget = await spent_budget("T0001", deletes_spent=45)
    writer = AnswerWriter(client, budget, team_id="T0001", channel="D8", settings=WriterSettings(placeholder_after=0))
    placeholder = await writer.start()
    outcome = await asyncio.wait_for(writer.write(deltas(ANSWER, delay=0.004)), timeout=30)
    await budget.aclose()
    assert outcome.delivered and outcome.message_ts == [placeholder]  # edited: nothing posted or deleted
    assert slack.messages["D8"][placeholder].visible == ANSWER.strip()
    assert slack.calls_of("chat.delete") == [] and slack.ratelimited == 0


async def test_no_placeholder_when_the_edit_window_cannot_pay_for_its_first_text_the_text_rides_on_the_post(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    """Text slow to come while the edit window is spent: no "⏳" placeholder (its first text would need an edit
    or a delete); the answer's first message is the post of its first text."""
    budget = await spent_budget("T0001")
    writer = AnswerWriter(
        client, budget, team_id="T0001", channel="D9", settings=WriterSettings(placeholder_after=0.05)
    )
    intervals = 0
    looked_thrice = asyncio.Event()

    async def counting_sleep(seconds: float) -> None:  # the writer's placeholder timer sleeps through the budget
        nonlocal intervals
        await asyncio.sleep(seconds)
        intervals += 1
        if intervals >= 3:
            looked_thrice.set()

    budget.sleep = counting_sleep
    assert await writer.start(tool_label="Reading q3.csv…") == ""
    gate = asyncio.Event()

    async def events() -> AsyncIterator[AnalystEvent]:
        await gate.wait()
        async for event in deltas(ANSWER, end=Done(ANSWER)):
            yield event

    task = asyncio.create_task(writer.write(events()))
    await asyncio.wait_for(looked_thrice.wait(), timeout=10)  # the timer looked three times, posted nothing
    assert slack.bot_messages("D9") == []
    gate.set()
    outcome = await asyncio.wait_for(task, timeout=30)
    await budget.aclose()
    first = slack.bot_messages("D9")[0]
    assert first.history[0].visible.startswith("## Q3 variance")  # no placeholder before it
    [final] = [m for m in slack.bot_messages("D9") if not m.deleted]  # an edit of it, or a post replacing it
    assert outcome.delivered and final.visible == ANSWER.strip() and slack.ratelimited == 0


async def test_a_placeholders_first_text_the_edit_window_does_not_serve_in_time_is_reposted(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    """The first text was queued as an edit (the window looked free), then a 429 met by another answer paused
    every edit: at the next look (``first_text_patience``) it is posted anew, the placeholder deleted, instead of
    the placeholder saying only "⏳" until the pause ends."""
    budget = quick_budget()
    parent = slack.add_message("C2", text="question")
    settings = WriterSettings(placeholder_after=0.0, first_text_patience=0.2, repost_final_after=60.0)
    writer = AnswerWriter(client, budget, team_id="T0001", channel="C2", thread_ts=parent.ts, settings=settings)
    placeholder = await writer.start()
    gate = asyncio.Event()

    async def events() -> AsyncIterator[AnalystEvent]:
        yield TextDelta(PARAGRAPHS[1])
        budget.scheduler("T0001", "chat.update").pause(3.0)
        await gate.wait()
        yield Done(ANSWER)

    task = asyncio.create_task(writer.write(events()))

    def reposted() -> FakeMessage | None:
        shown = [m for m in slack.bot_messages("C2") if m.ts != placeholder and "Marketing" in m.visible]
        return shown[0] if shown else None

    await slack.wait_for(lambda: reposted() is not None and slack.messages["C2"][placeholder].deleted, timeout=10)
    first = reposted()
    assert first is not None and first.history[0].method == "chat.postMessage"
    assert slack.calls_of("chat.update") == []  # nothing was edited: the pause holds every edit
    gate.set()
    outcome = await asyncio.wait_for(task, timeout=20)
    await budget.aclose()
    # The final doesn't wait for the pause either: an edit of that message, or posted in its place.
    [final_ts] = outcome.message_ts
    assert outcome.delivered and (final_ts == first.ts or slack.messages["C2"][first.ts].deleted)
    assert slack.messages["C2"][final_ts].visible.startswith("## Q3 variance") and slack.ratelimited == 0
