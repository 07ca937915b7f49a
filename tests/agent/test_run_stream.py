"""The event stream's rules, end to end: real openai client + agents Runner over HTTP, fake server."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
import time
from typing import Any

from agents import RunContextWrapper, SQLiteSession, function_tool

from analyst.agent import AgentSettings, AnalystRun, start_run
from analyst.agent.analyst import build_agent
from analyst.agent.outputs import error_output
from analyst.agent.tool_names import BREAKDOWN, DESCRIBE_DATASET, MAKE_CHART, TOP_DRIVERS
from analyst.context import AnalysisContext
from analyst.events import AnalystEvent, Done, Failed, FailureKind, TextDelta, ToolFinished, ToolStarted
from tests.agent.helpers import collect, no_other_tasks, streamed_text, terminal, with_
from tests.fakes.openai_server import FakeOpenAI, error, hang, midstream_error, text, tool_call, tool_calls


@function_tool
async def lookup_total(ctx: RunContextWrapper[AnalysisContext], department: str) -> str:
    """Total for a department."""
    return json.dumps({"department": department, "rows": len(ctx.context.dataset.frame)})


@function_tool
async def failing_lookup(ctx: RunContextWrapper[AnalysisContext]) -> str:
    """Reports an error the model can recover from."""
    return error_output("unknown column 'Dept'; columns are: Department, Account")


@function_tool(failure_error_function=None)
async def crashing_lookup(ctx: RunContextWrapper[AnalysisContext]) -> str:
    """Raises, and the SDK is told not to hide it."""
    raise RuntimeError("boom")


# ---------------------------------------------------------------------------------------------- happy paths


async def test_text_deltas_then_done_with_usage(fake: FakeOpenAI, settings: AgentSettings, context: Any) -> None:
    fake.script(text("Marketing is **12% over** budget.", chunk=4))
    events = await collect(start_run("Why?", context, conversation_id="c1", settings=settings))
    done = terminal(events)
    assert isinstance(done, Done)
    deltas = [e.text for e in events if isinstance(e, TextDelta)]
    assert deltas[:2] == ["Mark", "etin"] and len(deltas) == 9
    assert done.final_text == "Marketing is **12% over** budget."
    assert done.usage.requests == 1 and done.usage.input_tokens > 0 and done.usage.output_tokens > 0
    body = fake.requests[0].json
    assert body["model"] == "gpt-test" and body["stream"] is True
    assert "variance = actual − reference" in body["instructions"]
    assert "the reference is a budget" in body["instructions"]
    assert "Budget" not in body["instructions"].split("Rules:")[-1].split("Dataset:")[-1]  # no file text
    assert {t["name"] for t in body["tools"]} >= {DESCRIBE_DATASET, BREAKDOWN, TOP_DRIVERS, MAKE_CHART}
    # The model is told when to chart, and that it never draws one or its numbers itself.
    assert f"call {MAKE_CHART} and refer to the chart" in body["instructions"]


async def test_final_text_is_the_completed_response_not_the_deltas(
    fake: FakeOpenAI, settings: AgentSettings, context: Any
) -> None:
    fake.script(text("Draft answr", final_text="Final answer, corrected."))
    events = await collect(start_run("q", context, conversation_id="c1", settings=settings))
    done = terminal(events)
    assert streamed_text(events) == "Draft answr"
    assert isinstance(done, Done) and done.final_text == "Final answer, corrected."


async def test_tool_calls_produce_started_and_finished(fake: FakeOpenAI, settings: AgentSettings, context: Any) -> None:
    fake.script(
        tool_calls(("lookup_total", {"department": "Sales"}), ("failing_lookup", {})),
        text("Sales is fine."),
    )
    agent = build_agent(settings, tools=[lookup_total, failing_lookup])
    run = AnalystRun("q", context, conversation_id="c1", settings=settings, agent=agent)
    events = await collect(run)
    started = [e for e in events if isinstance(e, ToolStarted)]
    finished = [e for e in events if isinstance(e, ToolFinished)]
    assert [(e.name, json.loads(e.arguments)) for e in started] == [
        ("lookup_total", {"department": "Sales"}),
        ("failing_lookup", {}),
    ]
    assert all(e.label.endswith("…") and e.call_id for e in started)
    assert {(e.name, e.ok) for e in finished} == {("lookup_total", True), ("failing_lookup", False)}
    assert events.index(started[0]) < events.index(finished[0])
    done = terminal(events)
    assert isinstance(done, Done) and done.final_text == "Sales is fine."
    outputs = [i for i in fake.requests[1].json["input"] if i.get("type") == "function_call_output"]
    assert json.loads(outputs[0]["output"]) == {"department": "Sales", "rows": 100}
    assert "unknown column 'Dept'" in outputs[1]["output"]


async def test_retries_on_429_and_5xx_then_succeeds(fake: FakeOpenAI, settings: AgentSettings, context: Any) -> None:
    fake.script(error(429, retry_after=0), error(503, retry_after=0), text("Recovered."))
    events = await collect(start_run("q", context, conversation_id="c1", settings=settings))
    done = terminal(events)
    assert isinstance(done, Done) and done.final_text == "Recovered."
    assert len(fake.requests) == 3


async def test_chat_completions_mode_streams_and_requests_usage(
    fake: FakeOpenAI, settings: AgentSettings, context: Any
) -> None:
    fake.script(tool_call("lookup_total", {"department": "HR"}), text("HR is on budget.", chunk=5))
    chat = with_(settings, api="chat_completions")
    agent = build_agent(chat, tools=[lookup_total])
    events = await collect(AnalystRun("q", context, conversation_id="c1", settings=chat, agent=agent))
    done = terminal(events)
    assert isinstance(done, Done) and done.final_text == "HR is on budget."
    assert streamed_text(events) == "HR is on budget."
    assert [r.path for r in fake.requests] == ["/v1/chat/completions"] * 2
    assert fake.requests[0].json["stream_options"] == {"include_usage": True}
    assert done.usage.requests == 2 and done.usage.input_tokens > 0
    assert any(isinstance(e, ToolFinished) and e.ok for e in events)


# ---------------------------------------------------------------------------------------------- sessions


async def test_second_question_carries_the_first_exchange(
    fake: FakeOpenAI, settings: AgentSettings, context: Any
) -> None:
    fake.script(text("Revenue is 5% under plan."), text("Because of Sales returns."))
    first = await collect(start_run("How is revenue?", context, conversation_id="conv-1", settings=settings))
    assert isinstance(terminal(first), Done)
    second = await collect(start_run("Why?", context, conversation_id="conv-1", settings=settings))
    assert isinstance(terminal(second), Done)
    replayed = json.dumps(fake.requests[1].json["input"], ensure_ascii=False)
    assert "How is revenue?" in replayed and "Revenue is 5% under plan." in replayed
    assert fake.requests[1].json["input"][-1]["content"] == "Why?"
    other = await collect(start_run("Hi", context, conversation_id="conv-2", settings=settings))
    assert isinstance(terminal(other), Done)
    assert "How is revenue?" not in json.dumps(fake.requests[2].json["input"])
    assert settings.session_db_path.exists()


async def test_history_is_bounded_and_starts_at_a_user_message(
    fake: FakeOpenAI, settings: AgentSettings, context: Any
) -> None:
    bounded = with_(settings, history_items=5)
    agent_tools = [lookup_total]
    for n in range(4):
        fake.script(tool_call("lookup_total", {"department": f"D{n}"}), text(f"Answer {n}."))
        agent = build_agent(bounded, tools=agent_tools)
        run = AnalystRun(f"Question {n}", context, conversation_id="long", settings=bounded, agent=agent)
        assert isinstance(terminal(await collect(run)), Done)
    last_input = fake.requests[-2].json["input"]  # the last question's first model call
    assert len(last_input) <= 5 + 1
    assert last_input[0].get("role") == "user"
    assert last_input[-1]["content"] == "Question 3"
    assert "Question 0" not in json.dumps(last_input)
    # What can never be replayed again is deleted, so the history file does not grow with every question.
    with sqlite3.connect(bounded.session_db_path) as conn:
        stored = [
            json.loads(data)
            for (data,) in conn.execute(
                "SELECT message_data FROM agent_messages WHERE session_id = ? ORDER BY id", ("long",)
            )
        ]
    assert 0 < len(stored) <= 5
    assert stored[0].get("role") == "user" and stored[0]["content"] == "Question 3"


async def test_opening_the_history_never_blocks_the_event_loop(
    fake: FakeOpenAI, settings: AgentSettings, context: Any
) -> None:
    # The SDK serialises every session of one SQLite file with a process-wide lock. While another session
    # holds it (a slow write), a run must wait for it off the event loop, not freeze the bot.
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    busy = SQLiteSession("other", settings.session_db_path)
    held, release = threading.Event(), threading.Event()

    def hold_the_lock() -> None:
        with busy._lock:  # the SDK's per-file lock
            held.set()
            release.wait(timeout=5)

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    try:
        assert held.wait(timeout=5)
        fake.script(text("Fine."))
        started = time.monotonic()
        run = asyncio.create_task(collect(start_run("q", context, conversation_id="c-lock", settings=settings)))
        for _ in range(20):  # loop turns: the run gets to its session while this task keeps running
            await asyncio.sleep(0)
        assert time.monotonic() - started < 2.0 and holder.is_alive() and not run.done()
        release.set()
        assert isinstance(terminal(await asyncio.wait_for(run, timeout=10)), Done)
    finally:
        release.set()
        holder.join(timeout=5)
        busy.close()


# ---------------------------------------------------------------------------------------------- cancellation


async def test_cancel_from_another_task_ends_with_cancelled_and_partial_text(
    fake: FakeOpenAI, settings: AgentSettings, context: Any
) -> None:
    fake.script(hang(after_text="Marketing spent more on"))
    run = start_run("q", context, conversation_id="c1", settings=settings)
    events: list[AnalystEvent] = []
    got_text = asyncio.Event()

    async def consume() -> None:
        async for event in run:
            events.append(event)
            if (
                isinstance(event, TextDelta)
                and "".join(e.text for e in events if isinstance(e, TextDelta)) == "Marketing spent more on"
            ):
                got_text.set()

    consumer = asyncio.create_task(consume())
    async with asyncio.timeout(5):
        await got_text.wait()
    run.cancel()
    async with asyncio.timeout(5):
        await consumer
    failed = terminal(events)
    assert isinstance(failed, Failed) and failed.kind is FailureKind.CANCELLED
    assert failed.partial_text == "Marketing spent more on"
    await fake.wait_for(lambda f: f.requests[0].disconnected and f.streams_open == 0)
    assert len(fake.requests) == 1
    run.cancel()  # idempotent after the end
    await no_other_tasks()


async def test_cancel_before_first_event(fake: FakeOpenAI, settings: AgentSettings, context: Any) -> None:
    run = start_run("q", context, conversation_id="c1", settings=settings)
    run.cancel()
    events = await collect(run)
    failed = terminal(events)
    assert isinstance(failed, Failed) and failed.kind is FailureKind.CANCELLED and failed.partial_text == ""
    assert fake.requests == []


async def test_breaking_out_of_the_loop_stops_the_run(fake: FakeOpenAI, settings: AgentSettings, context: Any) -> None:
    fake.script(text("word " * 400, chunk=5, delay=0.005))
    run = start_run("q", context, conversation_id="c1", settings=settings)
    async for event in run:
        if isinstance(event, TextDelta):
            break
    await fake.wait_for(lambda f: f.requests[0].disconnected and f.streams_open == 0)
    assert not fake.requests[0].finished and len(fake.requests) == 1
    await no_other_tasks()


async def test_closing_the_iterator_stops_the_run(fake: FakeOpenAI, settings: AgentSettings, context: Any) -> None:
    fake.script(hang(after_text="Some text"))
    run = start_run("q", context, conversation_id="c1", settings=settings)
    first = await run.__anext__()
    assert isinstance(first, TextDelta)
    await run.aclose()
    await fake.wait_for(lambda f: f.requests[0].disconnected and f.streams_open == 0)
    await no_other_tasks()


async def test_cancelling_the_consuming_task_stops_the_run(
    fake: FakeOpenAI, settings: AgentSettings, context: Any
) -> None:
    fake.script(hang(after_text="Some text"))
    run = start_run("q", context, conversation_id="c1", settings=settings)

    async def consume() -> None:
        async for _event in run:
            pass

    consumer = asyncio.create_task(consume())
    await fake.wait_for(lambda f: f.deltas_sent >= 3)
    consumer.cancel()
    async with asyncio.timeout(5):
        await asyncio.gather(consumer, return_exceptions=True)
    assert consumer.cancelled()
    await fake.wait_for(lambda f: f.requests[0].disconnected and f.streams_open == 0)
    assert len(fake.requests) == 1
    await no_other_tasks()


# ---------------------------------------------------------------------------------------------- failures


async def run_failing(
    fake: FakeOpenAI, settings: AgentSettings, context: Any, *turns: Any, agent: Any = None
) -> tuple[Failed, list[AnalystEvent]]:
    fake.script(*turns)
    run = AnalystRun("q", context, conversation_id="c1", settings=settings, agent=agent)
    events = await collect(run)
    failed = terminal(events)
    assert isinstance(failed, Failed), events
    assert failed.user_message and "Traceback" not in failed.user_message
    assert "sk-test" not in failed.user_message
    return failed, events


async def test_rate_limit_after_retries(fake: FakeOpenAI, settings: AgentSettings, context: Any) -> None:
    failed, _ = await run_failing(
        fake, with_(settings, max_retries=1), context, error(429, retry_after=0), error(429, retry_after=0)
    )
    assert failed.kind is FailureKind.RATE_LIMITED and "try again" in failed.user_message
    assert len(fake.requests) == 2


async def test_server_error(fake: FakeOpenAI, settings: AgentSettings, context: Any) -> None:
    failed, _ = await run_failing(fake, with_(settings, max_retries=0), context, error(500))
    assert failed.kind is FailureKind.SERVER_ERROR


async def test_auth_error_is_not_retried(fake: FakeOpenAI, settings: AgentSettings, context: Any) -> None:
    failed, _ = await run_failing(fake, settings, context, error(401))
    assert failed.kind is FailureKind.AUTH and "OPENAI_API_KEY" in failed.user_message
    assert len(fake.requests) == 1


async def test_timeout_before_headers(fake: FakeOpenAI, settings: AgentSettings, context: Any) -> None:
    quick = with_(settings, timeout=0.3, max_retries=0)
    failed, _ = await run_failing(fake, quick, context, hang(before_headers=True))
    assert failed.kind is FailureKind.TIMEOUT
    await fake.wait_for(lambda f: f.streams_open == 0)


async def test_timeout_mid_stream_keeps_partial_text(fake: FakeOpenAI, settings: AgentSettings, context: Any) -> None:
    quick = with_(settings, timeout=0.3, max_retries=0)
    failed, _ = await run_failing(fake, quick, context, hang(after_text="Half an ans"))
    assert failed.kind is FailureKind.TIMEOUT and failed.partial_text == "Half an ans"


async def test_midstream_error_event(fake: FakeOpenAI, settings: AgentSettings, context: Any) -> None:
    failed, _ = await run_failing(fake, settings, context, midstream_error("partial"))
    assert failed.kind is FailureKind.BAD_OUTPUT and failed.partial_text == "partial"
    assert len(fake.requests) == 1  # never retried after text was shown


async def test_response_failed_event(fake: FakeOpenAI, settings: AgentSettings, context: Any) -> None:
    failed, _ = await run_failing(fake, settings, context, midstream_error("abc", mode="failed"))
    assert failed.kind is FailureKind.BAD_OUTPUT and failed.partial_text == "abc"


async def test_stream_without_completed_event(fake: FakeOpenAI, settings: AgentSettings, context: Any) -> None:
    failed, _ = await run_failing(fake, settings, context, midstream_error("abc", mode="no_completed"))
    assert failed.kind is FailureKind.BAD_OUTPUT and failed.partial_text == "abc"


async def test_connection_dropped_mid_stream(fake: FakeOpenAI, settings: AgentSettings, context: Any) -> None:
    failed, _ = await run_failing(fake, settings, context, midstream_error("abc", mode="disconnect"))
    assert failed.kind in {FailureKind.CONNECTION, FailureKind.BAD_OUTPUT}
    assert failed.partial_text == "abc"


async def test_max_turns(fake: FakeOpenAI, settings: AgentSettings, context: Any) -> None:
    agent = build_agent(settings, tools=[lookup_total])
    failed, events = await run_failing(
        fake,
        with_(settings, max_turns=2),
        context,
        tool_call("lookup_total", {"department": "A"}),
        tool_call("lookup_total", {"department": "B"}),
        tool_call("lookup_total", {"department": "C"}),
        agent=agent,
    )
    assert failed.kind is FailureKind.MAX_TURNS
    assert sum(isinstance(e, ToolFinished) for e in events) == 2


async def test_tool_crash_that_escapes_the_sdk(fake: FakeOpenAI, settings: AgentSettings, context: Any) -> None:
    agent = build_agent(settings, tools=[crashing_lookup])
    failed, _ = await run_failing(fake, settings, context, tool_call("crashing_lookup", {}), agent=agent)
    assert failed.kind is FailureKind.TOOL_ERROR and "boom" not in failed.user_message


async def test_missing_key_makes_no_request(fake: FakeOpenAI, settings: AgentSettings, context: Any) -> None:
    failed, _ = await run_failing(fake, with_(settings, api_key=None), context)
    assert failed.kind is FailureKind.MISSING_KEY and "OPENAI_API_KEY" in failed.user_message
    assert "variance-bot report" in failed.user_message
    assert fake.requests == []


async def test_unknown_model(fake: FakeOpenAI, settings: AgentSettings, context: Any) -> None:
    failed, _ = await run_failing(fake, settings, context, error(404))
    assert "VARIANCE_MODEL" in failed.user_message


async def test_unwritable_data_dir_fails_cleanly(
    fake: FakeOpenAI, settings: AgentSettings, context: Any, tmp_path: Any
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    failed, _ = await run_failing(fake, with_(settings, data_dir=blocker / "sub"), context)
    assert failed.kind is FailureKind.INTERNAL


@function_tool
async def raising_lookup(ctx: RunContextWrapper[AnalysisContext]) -> str:
    """Raises; the SDK's default reports a generic error to the model."""
    raise RuntimeError("boom")


async def test_tool_exception_is_reported_to_the_model_and_the_run_recovers(
    fake: FakeOpenAI, settings: AgentSettings, context: Any
) -> None:
    fake.script(tool_call("raising_lookup", {}), text("I could not compute that; here is what I know."))
    agent = build_agent(settings, tools=[raising_lookup])
    events = await collect(AnalystRun("q", context, conversation_id="c1", settings=settings, agent=agent))
    assert [(e.name, e.ok) for e in events if isinstance(e, ToolFinished)] == [("raising_lookup", False)]
    assert isinstance(terminal(events), Done)
    output = next(i for i in fake.requests[1].json["input"] if i.get("type") == "function_call_output")
    assert "boom" not in output["output"]


async def test_chat_completions_failures(fake: FakeOpenAI, settings: AgentSettings, context: Any) -> None:
    chat = with_(settings, api="chat_completions", max_retries=0)
    failed, _ = await run_failing(fake, chat, context, error(429, retry_after=0))
    assert failed.kind is FailureKind.RATE_LIMITED
    failed, _ = await run_failing(fake, chat, context, midstream_error("half"))
    assert failed.kind is FailureKind.BAD_OUTPUT and failed.partial_text == "half"
    failed, _ = await run_failing(fake, with_(chat, timeout=0.3), context, hang(after_text="slow"))
    assert failed.kind is FailureKind.TIMEOUT and failed.partial_text == "slow"


async def test_tool_started_arrives_while_the_tool_is_still_running(
    fake: FakeOpenAI, settings: AgentSettings, context: Any
) -> None:
    release = asyncio.Event()

    @function_tool
    async def gated_lookup(ctx: RunContextWrapper[AnalysisContext]) -> str:
        """Waits until the consumer has seen ToolStarted."""
        await release.wait()
        return "{}"

    fake.script(tool_call("gated_lookup", {}), text("Done."))
    run = AnalystRun(
        "q",
        context,
        conversation_id="c1",
        settings=settings,
        agent=build_agent(settings, tools=[gated_lookup]),
    )
    events: list[AnalystEvent] = []
    async with asyncio.timeout(5):  # a ToolStarted that only came after the tool finished would deadlock here
        async for event in run:
            events.append(event)
            if isinstance(event, ToolStarted):
                assert not release.is_set()
                release.set()
    assert isinstance(terminal(events), Done)


async def test_null_deltas_are_skipped(fake: FakeOpenAI, settings: AgentSettings, context: Any) -> None:
    fake.script(text("Some answer", chunk=4, null_deltas=True))
    events = await collect(start_run("q", context, conversation_id="c1", settings=settings))
    deltas = [e for e in events if isinstance(e, TextDelta)]
    assert [d.text for d in deltas] == ["Some", " ans", "wer"]
    assert sum(1 for e in fake.sent_events if e["type"] == "response.output_text.delta") == 6
    assert isinstance(terminal(events), Done)


async def test_russian_question_and_answer_round_trip(fake: FakeOpenAI, settings: AgentSettings, context: Any) -> None:
    answer = "**Маркетинг превысил бюджет** на 12%: основная причина — мероприятия."
    fake.script(text(answer, chunk=5))
    events = await collect(
        start_run("Почему маркетинг выше бюджета?", context, conversation_id="ru", settings=settings)
    )
    done = terminal(events)
    assert isinstance(done, Done) and done.final_text == answer and streamed_text(events) == answer
    body = fake.requests[0].json
    assert body["input"][-1]["content"] == "Почему маркетинг выше бюджета?"
    assert "language of the user's question" in body["instructions"]


async def test_twenty_concurrent_runs_with_sessions(fake: FakeOpenAI, settings: AgentSettings, context: Any) -> None:
    def respond(request: Any) -> Any:
        # The first call of each conversation asks for a tool; the second answers with the conversation's name.
        items = request.json["input"]
        question = next(i["content"] for i in reversed(items) if i.get("role") == "user")
        if not any(i.get("type") == "function_call_output" for i in items[-2:]):
            return tool_call("variance_summary", {})
        return text(f"Answer to {question}.", chunk=3, delay=0.001)

    fake.responder = respond
    runs = [start_run(f"q{n}", context, conversation_id=f"conv-{n}", settings=settings) for n in range(20)]
    results = await asyncio.gather(*(collect(run, timeout=30) for run in runs))
    for n, events in enumerate(results):
        done = terminal(events)
        assert isinstance(done, Done), done
        assert done.final_text == f"Answer to q{n}."
        assert streamed_text(events) == f"Answer to q{n}."
    assert len(fake.requests) == 40
    await no_other_tasks()


async def test_cancel_while_the_history_opens_makes_no_model_call(
    fake: FakeOpenAI, settings: AgentSettings, context: Any
) -> None:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    busy = SQLiteSession("other", settings.session_db_path)
    held, release = threading.Event(), threading.Event()

    def hold_the_lock() -> None:
        with busy._lock:  # the SDK's per-file lock: the run waits for it while opening its history
            held.set()
            release.wait(timeout=5)

    holder = threading.Thread(target=hold_the_lock)
    holder.start()
    try:
        assert held.wait(timeout=5)
        fake.script(text("Should not be asked."))
        run = start_run("q", context, conversation_id="c-cancel", settings=settings)
        collecting = asyncio.create_task(collect(run))
        for _ in range(20):  # loop turns: the run reaches its session (and waits for the lock in a thread)
            await asyncio.sleep(0)
        run.cancel()
        release.set()
        last = terminal(await asyncio.wait_for(collecting, timeout=10))
        assert isinstance(last, Failed) and last.kind is FailureKind.CANCELLED
        assert fake.requests == []
    finally:
        release.set()
        holder.join(timeout=5)
        busy.close()
