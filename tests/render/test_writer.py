"""AnswerWriter end to end: the real AsyncWebClient against the fake Slack Web API."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Sequence

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from analyst.events import AnalystEvent, Done, Failed, FailureKind, TextDelta, ToolFinished, ToolStarted
from bot.render import (
    STOP_ACTION_ID,
    AnswerOutcome,
    AnswerWriter,
    BudgetLimit,
    DeliveryError,
    SlackBudget,
    WriterSettings,
    is_clean_cut,
)
from tests.fakes.slack_server import FakeSlack

ANSWER = (
    "**Marketing** is over budget by **$42,300** (+12.4%) in Q3.\n\n"
    "- Paid social: +$30,100\n- Events: +$15,200\n- Agencies: −$3,000\n\n"
    "Actual is `Actual`, reference is `Budget`; variance = actual − budget."
)


async def stream(
    text: str,
    *,
    chunk: int = 6,
    delay: float = 0.002,
    tools: Sequence[str] = ("Computing variance by Department…",),
    final: str | None = None,
    end: AnalystEvent | str | None = "done",
) -> AsyncIterator[AnalystEvent]:
    for label in tools:
        yield ToolStarted("tool", "{}", label)
        await asyncio.sleep(delay)
        yield ToolFinished("tool", True)
    for i in range(0, len(text), chunk):
        yield TextDelta(text[i : i + chunk])
        await asyncio.sleep(delay)
    if end == "done":
        yield Done(final if final is not None else text)
    elif isinstance(end, Done | Failed):
        yield end


def final_texts(slack: FakeSlack, outcome: AnswerOutcome) -> list[str]:
    msgs = [slack.messages[outcome.channel][ts] for ts in outcome.message_ts]
    for m in msgs:
        assert m.markdown_text is not None and m.blocks is None, "final state is markdown_text only"
        assert "Analyzing" not in m.visible and "⏳" not in m.visible
    return [m.visible for m in msgs]


def reassembles(parts: list[str], doc: str) -> bool:
    """The parts, in order, are the document with only whitespace between them (the split rule)."""
    pattern = r"\s*" + r"\s*".join(re.escape(p) for p in parts) + r"\s*"
    return re.fullmatch(pattern, doc, flags=re.DOTALL) is not None


def no_live_messages_left(slack: FakeSlack) -> bool:
    return all(m.markdown_text is not None or m.deleted for m in slack.bot_messages())


async def test_placeholder_then_edits_then_exact_final(
    slack: FakeSlack, client: AsyncWebClient, budget: SlackBudget
) -> None:
    parent = slack.add_message("C1", text="<@UBOT> why is marketing over?")
    writer = AnswerWriter(client, budget, team_id="T0001", channel="C1", thread_ts=parent.ts)
    ts = await writer.start(tool_label="Reading q3.csv…")
    msg = slack.messages["C1"][ts]
    assert msg.thread_ts == parent.ts
    assert msg.visible == "⏳ Reading q3.csv…"
    actions = [b for b in msg.blocks or [] if b["type"] == "actions"]
    assert actions[0]["elements"][0]["action_id"] == STOP_ACTION_ID
    assert actions[0]["elements"][0]["value"] == writer.answer_id

    outcome = await writer.write(stream(ANSWER, delay=0.01))
    assert outcome.state == "answered" and outcome.delivered
    assert final_texts(slack, outcome) == [ANSWER]
    states = [s.visible for s in msg.history]
    assert "⏳ Computing variance by Department…" in states  # what is being computed was shown
    assert any(ANSWER[:20] in s and s != ANSWER for s in states)  # partial text was shown live
    assert outcome.edits == msg.edits and outcome.edits >= 3
    assert outcome.time_to_first_text is not None and outcome.time_to_final is not None
    assert outcome.ratelimited == 0 and len(slack.bot_messages()) == 1


async def test_done_final_text_wins_over_deltas(slack: FakeSlack, client: AsyncWebClient, budget: SlackBudget) -> None:
    writer = AnswerWriter(client, budget, team_id="T0001", channel="D1")
    await writer.start()
    final = ANSWER.replace("$42,300", "$42,310")
    outcome = await writer.write(stream(ANSWER, final=final))
    assert final_texts(slack, outcome) == [final]


@pytest.mark.parametrize(
    ("end", "expected_tail", "state"),
    [
        (
            Failed(FailureKind.SERVER_ERROR, "The model service failed. Please try again."),
            "⚠️ The model",
            "failed",
        ),
        (Failed(FailureKind.CANCELLED, "Stopped."), "_Stopped._", "stopped"),
        (None, "⚠️ The answer ended unexpectedly", "failed"),
    ],
)
async def test_failures_end_with_text_so_far_and_a_clear_line(
    slack: FakeSlack,
    client: AsyncWebClient,
    budget: SlackBudget,
    end: AnalystEvent | None,
    expected_tail: str,
    state: str,
) -> None:
    writer = AnswerWriter(client, budget, team_id="T0001", channel="C1")
    await writer.start()
    outcome = await writer.write(stream(ANSWER[:80], end=end))
    (text,) = final_texts(slack, outcome)
    assert text.startswith(ANSWER[:80].strip()) and expected_tail in text.splitlines()[-1]
    assert outcome.state == state


async def test_exception_in_event_source_still_finalises(
    slack: FakeSlack, client: AsyncWebClient, budget: SlackBudget
) -> None:
    async def broken() -> AsyncIterator[AnalystEvent]:
        yield TextDelta("Partial ")
        yield TextDelta("answer")
        raise RuntimeError("boom")

    writer = AnswerWriter(client, budget, team_id="T0001", channel="C1")
    outcome = await writer.write(broken())  # start() is implied
    (text,) = final_texts(slack, outcome)
    assert text.startswith("Partial answer") and "went wrong" in text
    assert "boom" not in text


async def test_cancelling_the_writer_task_finalises_then_propagates(
    slack: FakeSlack, client: AsyncWebClient, budget: SlackBudget
) -> None:
    started = asyncio.Event()

    async def endless() -> AsyncIterator[AnalystEvent]:
        yield TextDelta("Working on it")
        started.set()
        while True:
            await asyncio.sleep(0.01)
            yield TextDelta(".")

    writer = AnswerWriter(client, budget, team_id="T0001", channel="C1")
    await writer.start()
    task = asyncio.create_task(writer.write(endless()))
    await asyncio.wait_for(started.wait(), 5)  # the writer has taken "Working on it" and asks for more
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    (msg,) = slack.bot_messages("C1")
    assert msg.markdown_text is not None and msg.markdown_text.endswith("_Stopped._")
    assert msg.markdown_text.startswith("Working on it")


async def test_fail_without_a_run_and_static_markdown(
    slack: FakeSlack, client: AsyncWebClient, budget: SlackBudget
) -> None:
    writer = AnswerWriter(client, budget, team_id="T0001", channel="C1")
    await writer.start()
    outcome = await writer.fail("I couldn't read q3.csv: it is an HTML page, not a CSV.")
    assert final_texts(slack, outcome) == ["⚠️ I couldn't read q3.csv: it is an HTML page, not a CSV."]

    report = "# Variance report\n\n" + "\n".join(f"- line {i}: +{i},000" for i in range(3000))
    static = AnswerWriter(client, budget, team_id="T0001", channel="C2")
    outcome = await static.write_markdown(report)  # no placeholder: posted directly, split in the thread
    texts = final_texts(slack, outcome)
    assert len(texts) >= 2 and reassembles(texts, report)
    assert all(len(t) <= 11_000 for t in texts)
    first, *rest = (slack.messages["C2"][ts] for ts in outcome.message_ts)
    assert all(m.thread_ts == first.ts for m in rest)


def long_answer() -> str:
    table = "| Department | Actual | Budget | Variance |\n|---|---:|---:|---:|\n" + "".join(
        f"| Dept {i} | {i * 1000} | {i * 900} | {i * 100} |\n" for i in range(120)
    )
    code = "```\n" + "".join(f"variance[{i}] = actual[{i}] - budget[{i}]\n" for i in range(150)) + "```\n"
    prose = "".join(f"Paragraph {i}: spending rose because of campaign {i}.\n\n" for i in range(40))
    return f"## Q3 variance\n\n{prose}{table}\n{code}\n{prose}{table}\nThat is all."


async def test_overflow_continues_in_the_thread_at_clean_boundaries(
    slack: FakeSlack, client: AsyncWebClient, budget: SlackBudget
) -> None:
    text = long_answer()
    assert len(text) > 15_000
    parent = slack.add_message("C1", text="<@UBOT> long one")
    writer = AnswerWriter(client, budget, team_id="T0001", channel="C1", thread_ts=parent.ts)
    await writer.start()
    outcome = await writer.write(stream(text, chunk=200, delay=0.001, tools=()))
    texts = final_texts(slack, outcome)
    assert len(texts) >= 3 and reassembles(texts, text)
    assert all(len(t) <= 11_000 for t in texts)
    pos = 0
    for part in texts[:-1]:
        pos = text.index(part, pos) + len(part)
        while text[pos].isspace():  # the cut sits after the whitespace between parts
            pos += 1
        assert is_clean_cut(text, pos), text[pos - 40 : pos + 40]
        assert part.count("```") % 2 == 0  # no code block is cut open
    assert all(slack.messages["C1"][ts].thread_ts == parent.ts for ts in outcome.message_ts)
    # every message, including the closed ones, was live (with the Stop button) before its final
    for ts in outcome.message_ts:
        assert slack.messages["C1"][ts].history[0].blocks is not None


async def test_final_text_shorter_than_deltas_removes_surplus_messages(
    slack: FakeSlack, client: AsyncWebClient, budget: SlackBudget
) -> None:
    text = long_answer()
    writer = AnswerWriter(client, budget, team_id="T0001", channel="C1")
    await writer.start()
    outcome = await writer.write(stream(text, chunk=300, delay=0.001, tools=(), final=ANSWER))
    assert final_texts(slack, outcome) == [ANSWER]
    assert outcome.deletes >= 1
    live = [m for m in slack.bot_messages("C1") if not m.deleted]
    assert [m.ts for m in live] == outcome.message_ts


async def test_429_on_update_honours_retry_after_without_loss_or_double_post(
    slack: FakeSlack, client: AsyncWebClient, budget: SlackBudget
) -> None:
    writer = AnswerWriter(client, budget, team_id="T0001", channel="C1")
    await writer.start()
    slack.inject("chat.update", error="ratelimited", retry_after=1, times=2)
    outcome = await writer.write(stream(ANSWER, delay=0.005))
    assert final_texts(slack, outcome) == [ANSWER]
    assert outcome.ratelimited >= 1
    limited = [c for c in slack.calls_of("chat.update") if c.status == 429]
    after = [c for c in slack.calls_of("chat.update") if c.time > limited[0].time and c.status == 200]
    assert after and after[0].time - limited[0].time >= 0.95  # nothing was sent before Retry-After passed
    assert len(slack.bot_messages("C1")) == 1


async def test_429_on_post_waits_and_posts_once(slack: FakeSlack, client: AsyncWebClient, budget: SlackBudget) -> None:
    slack.inject("chat.postMessage", error="ratelimited", retry_after=1)
    writer = AnswerWriter(client, budget, team_id="T0001", channel="C1")
    await writer.start()
    outcome = await writer.write(stream(ANSWER))
    assert final_texts(slack, outcome) == [ANSWER] and len(slack.bot_messages("C1")) == 1
    assert outcome.ratelimited == 1


async def test_transient_faults_are_retried(slack: FakeSlack, client: AsyncWebClient, budget: SlackBudget) -> None:
    budget.scheduler_options["backoff_base"] = 0.05  # same logic, shorter waits
    writer = AnswerWriter(client, budget, team_id="T0001", channel="C1", settings=WriterSettings(lookup_settle=0.1))
    slack.inject("chat.postMessage", status=503, error="service_unavailable")  # not applied: post again
    await writer.start()
    slack.inject("chat.update", status=500, times=2)
    slack.inject("chat.update", error="internal_error")
    slack.inject("chat.update", drop_connection=True)
    outcome = await writer.write(stream(ANSWER))
    assert final_texts(slack, outcome) == [ANSWER]
    assert outcome.retries >= 4 and len(slack.bot_messages("C1")) == 1


@pytest.mark.parametrize("fault", ["drop", "500", "timeout"])
async def test_post_that_went_through_is_found_not_reposted(slack: FakeSlack, budget: SlackBudget, fault: str) -> None:
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url, timeout=1)
    parent = slack.add_message("C1", text="question")
    if fault == "drop":
        slack.inject("chat.postMessage", drop_connection=True, apply=True)
    elif fault == "500":
        slack.inject("chat.postMessage", status=500, apply=True)
    else:
        slack.inject("chat.postMessage", delay=1.5)  # the client gives up after 1 s; Slack posts at 1.5 s
    writer = AnswerWriter(
        client,
        budget,
        team_id="T0001",
        channel="C1",
        thread_ts=parent.ts,
        settings=WriterSettings(lookup_settle=1.0),
    )
    await writer.start()
    outcome = await writer.write(stream(ANSWER))
    assert final_texts(slack, outcome) == [ANSWER]
    assert [m.ts for m in slack.bot_messages("C1") if not m.deleted] == outcome.message_ts


async def test_timeout_on_top_level_post_never_double_posts(slack: FakeSlack, budget: SlackBudget) -> None:
    """A post that lands after the lookup: re-posted, then the duplicate is swept away."""
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url, timeout=1)
    slack.inject("chat.postMessage", delay=2.5)
    writer = AnswerWriter(client, budget, team_id="T0001", channel="D1", settings=WriterSettings(lookup_settle=0.2))
    await writer.start()
    await slack.wait_for(lambda: len(slack.bot_messages("D1")) == 2, timeout=5)  # the late one landed
    outcome = await writer.write(stream(ANSWER))
    assert final_texts(slack, outcome) == [ANSWER]
    assert [m.ts for m in slack.bot_messages("D1") if not m.deleted] == outcome.message_ts


async def test_non_retriable_errors(slack: FakeSlack, client: AsyncWebClient, budget: SlackBudget) -> None:
    slack.add_channel("C9", is_member=False)
    writer = AnswerWriter(client, budget, team_id="T0001", channel="C9")
    with pytest.raises(DeliveryError) as err:
        await writer.start()
    assert err.value.code == "not_in_channel"
    outcome = await writer.write(stream(ANSWER))
    assert outcome.state == "slack_error" and outcome.slack_error == "not_in_channel"

    # Someone deletes the message while it streams: the answer ends, reported, nothing re-posted.
    writer = AnswerWriter(client, budget, team_id="T0001", channel="C1")
    ts = await writer.start()
    await client.chat_delete(channel="C1", ts=ts)
    outcome = await writer.write(stream(ANSWER))
    assert outcome.state == "slack_error" and outcome.slack_error == "message_not_found"
    assert [m for m in slack.bot_messages("C1") if not m.deleted] == []


async def test_refused_content_still_leaves_a_final_state(
    slack: FakeSlack, client: AsyncWebClient, budget: SlackBudget
) -> None:
    async def refuse_markdown(fake: FakeSlack, method: str, params: dict, team: str) -> dict | None:
        if "markdown_text" in params and "secret" in params["markdown_text"]:
            return {"ok": False, "error": "msg_too_long"}
        return None

    slack.add_handler("chat.update", refuse_markdown)
    writer = AnswerWriter(client, budget, team_id="T0001", channel="C1")
    await writer.start()
    outcome = await writer.write(stream("a secret answer"))
    assert outcome.state == "slack_error" and outcome.slack_error == "msg_too_long"
    (msg,) = slack.bot_messages("C1")
    assert msg.markdown_text is not None and "refused" in msg.markdown_text


async def test_many_answers_finishing_at_once_get_their_finals_quickly(
    slack: FakeSlack, client: AsyncWebClient
) -> None:
    """12 answers stream against a tight budget (15 per 6 s) and end together: finals are not queued."""
    budget = SlackBudget(limits={"chat.update": BudgetLimit(15, 6.0)}, min_interval=0.1, post_rate=50.0, post_burst=20)
    gate = asyncio.Event()
    streamed: set[int] = set()
    all_streamed = asyncio.Event()

    async def answer(i: int) -> AnswerOutcome:
        async def events() -> AsyncIterator[AnalystEvent]:
            for k in range(30):
                yield TextDelta(f"part {k} of answer {i}. ")
                await asyncio.sleep(0.05)  # the model's pace, ~20 deltas/s
            streamed.add(i)
            if len(streamed) == 12:
                all_streamed.set()
            await gate.wait()
            yield Done(f"Final answer {i}.")

        writer = AnswerWriter(client, budget, team_id="T0001", channel=f"C{i}")
        await writer.start()
        return await writer.write(events())

    tasks = [asyncio.create_task(answer(i)) for i in range(12)]
    await asyncio.wait_for(all_streamed.wait(), 20)  # every answer has streamed and waits to finish
    gate.set()
    outcomes = await asyncio.gather(*tasks)
    await budget.aclose()
    assert all(o.delivered for o in outcomes)
    assert max(o.time_to_final or 99 for o in outcomes) < 1.0
    assert slack.ratelimited == 0


async def test_twenty_concurrent_answers_one_workspace_no_429(
    slack: FakeSlack, client: AsyncWebClient, budget: SlackBudget
) -> None:
    """Slack's Tier 3 ratio (50 per 60 s) scaled to 50 per 6 s; our budget 45 per 6 s."""
    texts = [" ".join(f"word{i}-{k}" for k in range(150)) + f"\n\nEnd of answer {i}." for i in range(20)]

    async def answer(i: int) -> AnswerOutcome:
        parent = slack.add_message("C1", text=f"question {i}")
        writer = AnswerWriter(client, budget, team_id="T0001", channel="C1", thread_ts=parent.ts)
        await writer.start(tool_label="Reading the file…")
        return await writer.write(stream(texts[i], chunk=8, delay=0.01))

    outcomes = await asyncio.gather(*(answer(i) for i in range(20)))
    assert [(c.method, c.params.get("channel")) for c in slack.calls if c.status == 429] == []
    for i, outcome in enumerate(outcomes):
        assert outcome.state == "answered" and final_texts(slack, outcome) == [texts[i].strip()]
    assert no_live_messages_left(slack)


async def test_final_is_reposted_when_the_update_budget_is_spent(slack: FakeSlack, client: AsyncWebClient) -> None:
    """6 answers end together against 3 edits per 6 s: the finals that can't be edited in are reposted."""
    budget = SlackBudget(limits={"chat.update": BudgetLimit(3, 6.0)}, min_interval=0.1, post_rate=50.0, post_burst=20)
    settings = WriterSettings(repost_final_after=0.3)
    gate = asyncio.Event()

    async def answer(i: int) -> AnswerOutcome:
        async def events() -> AsyncIterator[AnalystEvent]:
            yield TextDelta(f"Thinking about answer {i}…")
            await gate.wait()
            yield Done(f"Final answer {i}: marketing is over budget.")

        parent = slack.add_message(f"C{i}", text="question")
        writer = AnswerWriter(client, budget, team_id="T0001", channel=f"C{i}", thread_ts=parent.ts, settings=settings)
        await writer.start()
        return await writer.write(events())

    tasks = [asyncio.create_task(answer(i)) for i in range(6)]
    await slack.wait_for(lambda: len(slack.bot_messages()) == 6, timeout=5)
    gate.set()
    outcomes = await asyncio.gather(*tasks)
    await budget.aclose()
    assert slack.ratelimited == 0
    assert all(o.delivered and (o.time_to_final or 99) < 2.0 for o in outcomes)
    for i, o in enumerate(outcomes):
        assert final_texts(slack, o) == [f"Final answer {i}: marketing is over budget."]
    assert sum(o.deletes for o in outcomes) >= 3  # at least 3 of 6 could not get an edit in time
    assert no_live_messages_left(slack)
    assert all(len([m for m in slack.bot_messages(f"C{i}") if not m.deleted]) == 1 for i in range(6))
