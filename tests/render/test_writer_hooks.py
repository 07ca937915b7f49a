"""``on_first_message``: the writer says where the answer's first message is the moment it exists (a placeholder,
a first text riding on the post, a native stream), once, and before anything else is sent into it. ``adopt_ts``:
an answer continues in a message that exists already (a re-run of an answer whose instance died)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from slack_sdk.web.async_client import AsyncWebClient

from analyst.events import AnalystEvent, Done, TextDelta
from bot.render import AnswerWriter, BudgetLimit, SlackBudget, WriterSettings
from tests.fakes.slack_server import FakeSlack

ANSWER = " ".join(f"Line {i}: marketing moved by {i}.00." for i in range(40))
LATER_METHODS = {"chat.update", "chat.appendStream", "chat.stopStream"}


async def deltas(text: str, chunk: int = 30) -> AsyncIterator[AnalystEvent]:
    for i in range(0, len(text), chunk):
        yield TextDelta(text[i : i + chunk])
    yield Done(text)


class Placements:
    """Records each call, and what Slack had received when it came."""

    def __init__(self, slack: FakeSlack) -> None:
        self.slack = slack
        self.calls: list[tuple[str, str]] = []
        self.sent_before: list[set[str]] = []

    async def __call__(self, channel: str, ts: str) -> None:
        self.calls.append((channel, ts))
        self.sent_before.append({c.method for c in self.slack.calls})


async def test_the_placeholder_is_announced_before_start_returns(
    slack: FakeSlack, client: AsyncWebClient, budget: SlackBudget
) -> None:
    placed = Placements(slack)
    writer = AnswerWriter(
        client,
        budget,
        team_id="T0001",
        channel="C1",
        settings=WriterSettings(placeholder_after=0.0),
        on_first_message=placed,
    )
    ts = await writer.start()
    assert placed.calls == [("C1", ts)]
    outcome = await writer.write(deltas(ANSWER))
    assert outcome.delivered and placed.calls == [("C1", ts)]  # once, even after edits
    assert not placed.sent_before[0] & LATER_METHODS


async def test_a_first_text_on_the_post_is_announced_before_any_edit(
    slack: FakeSlack, client: AsyncWebClient, budget: SlackBudget
) -> None:
    placed = Placements(slack)
    parent = slack.add_message("C1", text="why is marketing over?")
    writer = AnswerWriter(
        client,
        budget,
        team_id="T0001",
        channel="C1",
        thread_ts=parent.ts,
        settings=WriterSettings(placeholder_after=5.0, max_chars=600, status_reserve=100),
        on_first_message=placed,
    )
    assert await writer.start() == ""
    assert placed.calls == []  # nothing posted yet, nothing to announce
    outcome = await writer.write(deltas(ANSWER))
    assert outcome.delivered and len(outcome.message_ts) > 1  # it overflowed into more messages
    assert placed.calls == [("C1", outcome.message_ts[0])]
    assert not placed.sent_before[0] & LATER_METHODS


async def test_a_native_stream_is_announced_before_it_streams_on(
    slack: FakeSlack, client: AsyncWebClient, budget: SlackBudget
) -> None:
    placed = Placements(slack)
    parent = slack.add_message("D1", text="q")
    writer = AnswerWriter(
        client,
        budget,
        team_id="T0001",
        channel="D1",
        thread_ts=parent.ts,
        settings=WriterSettings(placeholder_after=5.0, native_stream=True),
        on_first_message=placed,
    )
    await writer.start()
    outcome = await writer.write(deltas(ANSWER))
    assert outcome.delivered and slack.calls_of("chat.startStream")
    assert placed.calls == [("D1", outcome.message_ts[0])]
    assert "chat.startStream" in placed.sent_before[0] and not placed.sent_before[0] & LATER_METHODS


async def test_a_failing_callback_never_stops_the_answer(
    slack: FakeSlack, client: AsyncWebClient, budget: SlackBudget
) -> None:
    async def broken(channel: str, ts: str) -> None:
        raise ConnectionError("the registry is down")

    writer = AnswerWriter(
        client,
        budget,
        team_id="T0001",
        channel="C1",
        settings=WriterSettings(placeholder_after=0.0),
        on_first_message=broken,
    )
    await writer.start()
    outcome = await writer.write(deltas(ANSWER))
    assert outcome.delivered and outcome.state == "answered"


async def test_an_adopted_message_is_written_in_place(
    slack: FakeSlack, client: AsyncWebClient, budget: SlackBudget
) -> None:
    # What an instance that died left behind: half an answer, still showing its Stop button.
    first = AnswerWriter(client, budget, team_id="T0001", channel="C1", settings=WriterSettings(placeholder_after=0.0))
    ts = await first.start()
    posts = len(slack.calls_of("chat.postMessage"))
    placed = Placements(slack)
    survivor_budget = SlackBudget(limits={"chat.update": BudgetLimit(45, 6.0)}, min_interval=0.1)  # another process
    again = AnswerWriter(
        client,
        survivor_budget,
        team_id="T0001",
        channel="C1",
        answer_id=first.answer_id,
        settings=WriterSettings(placeholder_after=0.0),
        adopt_ts=ts,
        on_first_message=placed,
    )
    assert await again.start() == ts
    outcome = await again.write(deltas(ANSWER))
    assert outcome.delivered and outcome.message_ts == [ts]
    assert len(slack.calls_of("chat.postMessage")) == posts  # nothing posted: the same message was edited
    assert slack.messages["C1"][ts].visible.replace("\u200b", "") == ANSWER
    assert placed.calls == []  # the message existed already
    await survivor_budget.aclose()
