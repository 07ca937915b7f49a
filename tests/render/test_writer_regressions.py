"""AnswerWriter regressions: cancellations mid-post, unconfirmed posts, failed finals and deletes, long threads.

Each test reproduces a bug found in review (real AsyncWebClient against the fake Slack); every one ends by
checking the thread: no message left live (Stop button), no part posted twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from slack_sdk.web.async_client import AsyncWebClient

from analyst.events import AnalystEvent, Done, TextDelta
from bot.render import AnswerWriter, BudgetLimit, SlackBudget, WriterSettings
from tests.fakes.slack_server import FakeMessage, FakeSlack

PARA = "Paragraph {i}: spending rose because of campaign {i} in the quarter.\n\n"
# Two messages' worth at the default 11,000 characters per message.
LONG = "".join(PARA.format(i=i) for i in range(260))


def live_left(slack: FakeSlack, channel: str = "C1") -> list[FakeMessage]:
    """Messages still showing live blocks (a Stop button), not a final ``markdown_text``."""
    return [m for m in slack.bot_messages(channel) if not m.deleted and m.markdown_text is None]


def parts_shown(slack: FakeSlack, channel: str = "C1") -> list[object]:
    return [
        ((m.metadata or {}).get("event_payload") or {}).get("part")
        for m in slack.bot_messages(channel)
        if not m.deleted
    ]


def posts_settled(slack: FakeSlack) -> bool:
    return all(c.done is not None for c in slack.calls_of("chat.postMessage"))


async def deltas(text: str, before_overflow: object = None, size: int = 500) -> AsyncIterator[AnalystEvent]:
    """``text`` in deltas; ``before_overflow()`` runs once just before the delta that overflows a message."""
    for i in range(0, len(text), size):
        if before_overflow is not None and i + size > 10_600:
            before_overflow()  # type: ignore[operator]
            before_overflow = None
        yield TextDelta(text[i : i + size])
        await asyncio.sleep(0)
    yield Done(text)


def fast_budget(**options: float) -> SlackBudget:
    limits = {"chat.update": BudgetLimit(45, 6.0), "chat.delete": BudgetLimit(45, 6.0)}
    opts: dict[str, float] = {"backoff_base": 0.01, "backoff_max": 0.05}
    opts.update(options)
    return SlackBudget(limits=limits, min_interval=0.1, post_rate=20.0, post_burst=5, scheduler_options=opts)


async def test_cancel_while_the_continuation_is_posted(
    slack: FakeSlack, client: AsyncWebClient, budget: SlackBudget
) -> None:
    """Stop/shutdown while the continuation's chat.postMessage is in flight: that message is finalised, not
    left live, and its part is not posted a second time."""
    parent = slack.add_message("C1", text="q")
    writer = AnswerWriter(client, budget, team_id="T0001", channel="C1", thread_ts=parent.ts)
    await writer.start()
    task = asyncio.create_task(writer.write(deltas(LONG, lambda: slack.inject("chat.postMessage", delay=0.5))))
    await slack.wait_for(lambda: len(slack.calls_of("chat.postMessage")) >= 2)  # the slow post is in flight
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await slack.wait_for(lambda: posts_settled(slack))
    parts = parts_shown(slack)
    assert len(parts) == len(set(parts)) == 2, parts
    assert not live_left(slack)
    assert slack.bot_messages("C1")[-1].visible.endswith("_Stopped._")


async def test_unconfirmed_continuation_is_looked_up_again_not_reposted(slack: FakeSlack, budget: SlackBudget) -> None:
    """The continuation's post lands but the client sees a reset, and the lookup fails: the answer keeps
    streaming, the finalisation finds the message and edits it instead of posting the part again."""
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url, timeout=5)
    parent = slack.add_message("C1", text="q")
    writer = AnswerWriter(
        client, budget, team_id="T0001", channel="C1", thread_ts=parent.ts, settings=WriterSettings(lookup_settle=0)
    )
    await writer.start()

    def arm() -> None:
        slack.inject("chat.postMessage", drop_connection=True, apply=True)
        slack.inject("conversations.replies", status=500, times=3)

    outcome = await writer.write(deltas(LONG, arm))
    parts = parts_shown(slack)
    assert len(parts) == len(set(parts)) == 2, parts
    assert not live_left(slack)
    assert outcome.state == "answered" and outcome.delivered, outcome


async def test_unconfirmed_continuation_never_reposted_while_slack_cannot_tell(
    slack: FakeSlack, budget: SlackBudget
) -> None:
    """Same, but every lookup fails: the part is not posted again and the answer ends as slack_error."""
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url, timeout=5)
    parent = slack.add_message("C1", text="q")
    writer = AnswerWriter(
        client, budget, team_id="T0001", channel="C1", thread_ts=parent.ts, settings=WriterSettings(lookup_settle=0)
    )
    await writer.start()

    def arm() -> None:
        slack.inject("chat.postMessage", drop_connection=True, apply=True)
        slack.inject("conversations.replies", status=500, times=1000)

    outcome = await writer.write(deltas(LONG, arm))
    parts = parts_shown(slack)
    assert len(parts) == len(set(parts)), parts
    assert outcome.state == "slack_error" and outcome.slack_error == "post_unconfirmed"
    assert slack.bot_messages("C1")[0].markdown_text is not None  # the first part was still finalised


async def test_closed_part_final_that_outlasts_the_retries_is_requeued(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    """A chat.update outage while an overflowed part is closed: its final is re-queued, not lost."""
    budget = fast_budget()
    parent = slack.add_message("C1", text="q")
    writer = AnswerWriter(
        client, budget, team_id="T0001", channel="C1", thread_ts=parent.ts, settings=WriterSettings(final_timeout=5)
    )
    await writer.start()
    try:
        outcome = await writer.write(
            deltas(LONG, lambda: slack.inject("chat.update", status=503, error="service_unavailable", times=12))
        )
    finally:
        await budget.aclose()
    assert not live_left(slack)
    assert outcome.state == "answered" and outcome.delivered, outcome
    shown = [m.visible for m in slack.bot_messages("C1") if not m.deleted]
    assert "".join(shown).replace("\n", "") == LONG.replace("\n", "")


async def test_shorter_final_when_the_surplus_message_cannot_be_deleted(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    """Done.final_text fits one message, the streamed text took two, and chat.delete keeps failing: the
    surplus message is ended with a pointer (no Stop button) and the outcome says so."""
    budget = fast_budget()
    parent = slack.add_message("C1", text="q")
    writer = AnswerWriter(client, budget, team_id="T0001", channel="C1", thread_ts=parent.ts)
    await writer.start()
    short = "Short corrected answer: marketing is over by $42,310."

    async def events() -> AsyncIterator[AnalystEvent]:
        async for event in deltas(LONG):
            if isinstance(event, Done):
                slack.inject("chat.delete", status=500, times=100)
                event = Done(short)
            yield event

    try:
        outcome = await writer.write(events())
    finally:
        await budget.aclose()
    assert not live_left(slack)
    assert outcome.slack_error == "delete_failed" and not outcome.delivered
    visible = [m.visible for m in slack.bot_messages("C1") if not m.deleted]
    assert visible[0] == short and len(visible) == 2
    assert len(slack.calls_of("chat.delete")) >= 2  # retried through the chat.delete budget


async def test_cancel_during_start_finalises_the_placeholder(
    slack: FakeSlack, client: AsyncWebClient, budget: SlackBudget
) -> None:
    """Cancelled while the placeholder is being posted, then failed (as the bot does at shutdown): the
    placeholder, landing late, is the message that gets the final state; nothing says "Analyzing"."""
    parent = slack.add_message("C1", text="q")
    writer = AnswerWriter(client, budget, team_id="T0001", channel="C1", thread_ts=parent.ts)
    slack.inject("chat.postMessage", delay=0.3)
    task = asyncio.create_task(writer.start())
    await slack.wait_for(lambda: len(slack.calls_of("chat.postMessage")) >= 1)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    outcome = await writer.fail("The bot is restarting, so I stopped here.")
    await slack.wait_for(lambda: posts_settled(slack))
    msgs = [m for m in slack.bot_messages("C1") if not m.deleted]
    assert len(msgs) == 1 and not live_left(slack)
    assert msgs[0].visible == "⚠️ The bot is restarting, so I stopped here."
    assert outcome.state == "failed" and outcome.message_ts == [msgs[0].ts]


async def test_lookup_pages_through_a_long_thread(slack: FakeSlack, budget: SlackBudget) -> None:
    """The post went through but the client saw a reset, in a thread of 250 replies: the lookup reads from
    just before the attempt (and pages), so it finds the message instead of posting again."""
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url, timeout=5)
    parent = slack.add_message("C1", text="q")
    for i in range(250):
        slack.add_message("C1", text=f"reply {i}", thread_ts=parent.ts)
    slack.inject("chat.postMessage", drop_connection=True, apply=True)
    writer = AnswerWriter(
        client, budget, team_id="T0001", channel="C1", thread_ts=parent.ts, settings=WriterSettings(lookup_settle=0)
    )
    await writer.start()
    text = "Marketing is over budget by $42,300 because of paid social and events."

    async def events() -> AsyncIterator[AnalystEvent]:
        yield TextDelta(text)
        yield Done(text)

    outcome = await writer.write(events())
    assert [m.visible for m in slack.bot_messages("C1") if not m.deleted] == [text]
    assert outcome.state == "answered" and outcome.posts == 1


async def test_fake_replies_pages_with_a_cursor(slack: FakeSlack, client: AsyncWebClient) -> None:
    parent = slack.add_message("C1", text="q")
    replies = [slack.add_message("C1", text=f"r{i}", thread_ts=parent.ts) for i in range(5)]
    first = await client.conversations_replies(channel="C1", ts=parent.ts, limit=4)
    assert [m["ts"] for m in first["messages"]] == [parent.ts] + [r.ts for r in replies[:3]]
    cursor = first["response_metadata"]["next_cursor"]
    rest = await client.conversations_replies(channel="C1", ts=parent.ts, limit=4, cursor=cursor)
    assert [m["ts"] for m in rest["messages"]] == [r.ts for r in replies[3:]]
    assert rest["response_metadata"]["next_cursor"] == ""
    recent = await client.conversations_replies(channel="C1", ts=parent.ts, oldest=replies[2].ts)
    assert [m["ts"] for m in recent["messages"]] == [parent.ts, replies[3].ts, replies[4].ts]


async def test_second_cancellation_during_finalisation_does_not_finalise_twice(
    slack: FakeSlack, client: AsyncWebClient, budget: SlackBudget
) -> None:
    """Cancelled twice while the shielded finalisation still posts, then failed by the caller (as the bot's
    shutdown path does): every caller awaits the same finalisation, so no part is posted twice."""
    report = "# Report\n\n" + "\n".join(f"- line {i}: +{i},000" for i in range(2500))
    writer = AnswerWriter(client, budget, team_id="T0001", channel="C1")
    await writer.start()
    slack.inject("chat.postMessage", delay=0.3)
    outcomes = []

    async def answer_like() -> None:
        try:
            outcomes.append(await writer.write_markdown(report))
        except asyncio.CancelledError:
            outcomes.append(await asyncio.shield(writer.fail("The bot is restarting")))
            raise

    task = asyncio.create_task(answer_like())
    await slack.wait_for(lambda: len(slack.calls_of("chat.postMessage")) >= 2)  # a part's post is in flight
    task.cancel()
    await asyncio.sleep(0)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    again = await writer.fail("later")
    await slack.wait_for(lambda: posts_settled(slack))
    parts = parts_shown(slack)
    assert len(parts) == len(set(parts)) and len(parts) >= 3, parts
    assert not live_left(slack)
    assert all(o is again for o in outcomes) and again.state == "answered"


async def test_unconfirmed_repost_of_a_stuck_final_is_swept_not_left_twice(
    slack: FakeSlack, budget: SlackBudget
) -> None:
    """The final edit is held up (429), so the final is reposted; that post lands but the client sees a reset
    and the lookup fails. The final goes back to the edit path and the maybe-posted copy is swept at the end."""
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url, timeout=5)
    parent = slack.add_message("C1", text="q")
    settings = WriterSettings(lookup_settle=0, repost_final_after=0.05)
    writer = AnswerWriter(client, budget, team_id="T0001", channel="C1", thread_ts=parent.ts, settings=settings)
    await writer.start()
    text = "Marketing is over budget by $42,300 because of paid social and events."

    async def events() -> AsyncIterator[AnalystEvent]:
        yield TextDelta(text)
        await slack.wait_for(lambda: bool(slack.calls_of("chat.update")))  # the first text is shown
        slack.inject("chat.update", error="ratelimited", retry_after=0.5)
        slack.inject("chat.postMessage", drop_connection=True, apply=True)
        slack.inject("conversations.replies", status=500, times=3)
        yield Done(text)

    outcome = await writer.write(events())
    assert [m.visible for m in slack.bot_messages("C1") if not m.deleted] == [text]
    assert not live_left(slack)
    assert outcome.state == "answered" and outcome.delivered


async def test_unconfirmed_placeholder_is_found_later_and_ended(slack: FakeSlack, budget: SlackBudget) -> None:
    """The placeholder's post lands but the client sees a reset and every lookup fails, so start() gives up;
    the placeholder is looked up again later and ended, never left saying "Analyzing"."""
    from bot.render import DeliveryError

    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url, timeout=5)
    parent = slack.add_message("C1", text="q")
    writer = AnswerWriter(
        client, budget, team_id="T0001", channel="C1", thread_ts=parent.ts, settings=WriterSettings(lookup_settle=0)
    )
    slack.inject("chat.postMessage", drop_connection=True, apply=True)
    slack.inject("conversations.replies", status=500, times=3)
    try:
        await writer.start()
    except DeliveryError as err:
        assert err.code == "post_unconfirmed"
    else:
        raise AssertionError("start() should not have confirmed the post")
    assert len(live_left(slack)) == 1  # it did land, and it is live
    assert await writer.retire_unconfirmed("Slack was not responding.", first_wait=0.01)
    assert not live_left(slack)
    [placeholder] = slack.bot_messages("C1")
    assert placeholder.visible == "⚠️ Slack was not responding."
    assert len(slack.calls_of("chat.postMessage")) == 1  # never posted again


async def test_retire_does_nothing_when_the_placeholder_was_confirmed(slack: FakeSlack, budget: SlackBudget) -> None:
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url, timeout=5)
    writer = AnswerWriter(client, budget, team_id="T0001", channel="C1")
    await writer.start()
    assert not await writer.retire_unconfirmed("unused", first_wait=0.01)
    assert len(live_left(slack)) == 1  # still the live placeholder, for write() to finish
