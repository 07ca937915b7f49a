"""The web chat's HTTP contract, end to end: the real app, the real agents SDK, the fake OpenAI server."""

from __future__ import annotations

import asyncio
import json
import re

import aiohttp
import pytest

from analyst.report import build_report
from bot.textfilter import ZWSP, neutralise
from tests.fakes.openai_server import FakeOpenAI, error, hang, midstream_error, text, tool_call
from tests.web.helpers import (
    EXAMPLE,
    ask,
    collect_stream,
    deltas,
    sse_events,
    upload,
    upload_example,
    without_comments,
)

ANSWER = (
    "## Marketing is over budget\n\n"
    "| Department | Variance |\n|---|---:|\n| Marketing | +193,450 |\n\n"
    "Events and conferences ran 48% over plan.\n"
)


async def test_health_page_and_static_files(web_chat) -> None:
    async with web_chat.http.get(f"{web_chat.url}/healthz") as response:
        assert response.status == 200
        assert (await response.json())["ok"] is True
    async with web_chat.http.get(f"{web_chat.url}/") as response:
        assert response.status == 200
        assert response.content_type == "text/html"
        page = await response.text()
        assert "Variance Analyst" in page and "/static/app.js" in page
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
        assert response.headers["Referrer-Policy"] == "no-referrer"
    for path in ("/static/app.js", "/static/style.css", "/static/vendor/markdown-it.min.js"):
        async with web_chat.http.get(f"{web_chat.url}{path}") as response:
            assert response.status == 200, path
    # Nothing outside the static folder is served through it.
    async with web_chat.http.get(f"{web_chat.url}/static/../app.py") as response:
        assert response.status == 404


async def test_upload_returns_the_report_json_object(web_chat) -> None:
    status, body = await upload(web_chat.http, web_chat.url, EXAMPLE.read_bytes(), EXAMPLE.name)
    assert status == 200, body
    assert re.fullmatch(r"[0-9a-f]{32}", body["dataset"])
    report = body["report"]
    # The numbers of the bundled example, as report --json gives them (checked by hand in the report's tests).
    totals = report["totals"]
    assert (totals["actual"], totals["reference"], totals["variance"]) == (49733395.15, 49109900.0, 623495.15)
    assert totals["variance_pct"] == pytest.approx(623495.15 / 49109900.0 * 100)
    assert report["columns"]["actual"] == "Actual" and report["columns"]["reference"] == "Budget"
    assert report["counts"]["lines"] == 40
    # The same object as the report command's (whose labels need no neutralising).
    from analyst.ingest import load_dataset

    expected = build_report(load_dataset(str(EXAMPLE))).to_json_dict(max_rows=200)
    assert report == json.loads(json.dumps(expected))
    async with web_chat.http.get(f"{web_chat.url}/api/files/{body['dataset']}") as response:
        assert await response.json() == {"dataset": body["dataset"], "filename": "budget_vs_actual.csv"}


async def test_stream_sends_progressive_deltas_and_done_last(web_chat, fake: FakeOpenAI) -> None:
    fake.script(text(ANSWER, chunk=4, delay=0.01))
    dataset = await upload_example(web_chat.http, web_chat.url)
    params = {"message": "Why is marketing over budget?", "dataset": dataset}
    received: list = []
    async with web_chat.http.get(f"{web_chat.url}/api/chat/stream", params=params) as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        assert response.headers["Cache-Control"].startswith("no-cache")
        async for event in sse_events(response):
            received.append(event)
            if len([e for e in received if e.data and "delta" in e.data]) == 1:
                # The first text reaches the client while the model is still writing the answer.
                assert not fake.requests[0].finished
    events = without_comments(received)
    assert len([e for e in events if "delta" in e.data]) > 5
    assert deltas(events) == ANSWER
    assert events[-1].event is None
    assert set(events[-1].data) == {"done", "conversation"}
    assert events[-1].data["done"] is True and re.fullmatch(r"[0-9a-f]{32}", events[-1].data["conversation"])
    assert all("done" not in e.data for e in events[:-1])


async def test_tool_events_and_keep_alives_while_the_analyst_works(web_chat, fake: FakeOpenAI) -> None:
    web_chat.state.settings = web_chat.state.settings.__class__(
        **{**_fields(web_chat.state.settings), "keep_alive_s": 0.02}
    )
    fake.script(tool_call("variance_summary", {}, call_id="c1"), hang(before_headers=True))
    dataset = await upload_example(web_chat.http, web_chat.url)
    params = {"message": "How are we doing?", "dataset": dataset}
    events = []
    async with web_chat.http.get(f"{web_chat.url}/api/chat/stream", params=params) as response:
        async with asyncio.timeout(20):
            async for event in sse_events(response):
                events.append(event)
                after_tool = [e for e in events if e.event == "tool" and e.data["status"] == "finished"]
                if after_tool and sum(e.is_comment for e in events[events.index(after_tool[0]) :]) >= 3:
                    break
    tools = [e.data for e in events if e.event == "tool"]
    assert tools[0]["tool_name"] == "variance_summary" and tools[0]["status"] == "started"
    assert tools[0]["label"].endswith("…")
    assert tools[1] == {"tool_name": "variance_summary", "status": "finished"}
    comments = [e.comment for e in events if e.is_comment]
    assert comments and set(comments) == {"keep-alive"}


async def test_tool_round_trip_then_answer(web_chat, fake: FakeOpenAI) -> None:
    fake.script(tool_call("breakdown", {"by": ["Department"]}, call_id="c1"), text(ANSWER, chunk=5))
    dataset = await upload_example(web_chat.http, web_chat.url)
    events = without_comments(await ask(web_chat.http, web_chat.url, "By department?", dataset))
    kinds = [(e.event, e.data.get("status")) if e.event else ("message", None) for e in events]
    assert kinds[0] == ("tool", "started") and kinds[1] == ("tool", "finished")
    assert events[0].data["label"] == "Computing variance by Department…"
    assert deltas(events) == ANSWER
    assert events[-1].data["done"] is True
    # The tool really ran on the uploaded dataset: its output went back to the model.
    outputs = [item for item in fake.requests[1].json["input"] if item.get("type") == "function_call_output"]
    assert "Marketing" in outputs[0]["output"]


@pytest.mark.parametrize(
    ("turns", "partial"),
    [
        ((error(500), error(500), error(500)), ""),
        ((midstream_error("The variance is ", mode="error_event"),), "The variance is "),
        ((error(401),), ""),
    ],
)
async def test_model_failures_end_with_one_error_event(web_chat, fake: FakeOpenAI, turns, partial) -> None:
    fake.script(*turns)
    dataset = await upload_example(web_chat.http, web_chat.url)
    events = without_comments(await ask(web_chat.http, web_chat.url, "Why?", dataset))
    assert events[-1].event == "error"
    assert set(events[-1].data) == {"error"}
    message = events[-1].data["error"]
    assert message and "Traceback" not in message and "sk-test" not in message
    assert deltas(events) == partial
    assert not any(e.data.get("done") for e in events)


@pytest.mark.parametrize("web_settings_overrides", [{"agent": None}])
async def test_missing_api_key_is_an_error_event_naming_the_variable(web_chat, fake: FakeOpenAI) -> None:
    dataset = await upload_example(web_chat.http, web_chat.url)
    events = without_comments(await ask(web_chat.http, web_chat.url, "Why?", dataset))
    assert [e.event for e in events] == ["error"]
    assert "OPENAI_API_KEY" in events[0].data["error"]
    assert fake.requests == []


async def test_client_disconnect_cancels_the_run_and_the_model_call(web_chat, fake: FakeOpenAI) -> None:
    fake.script(hang("Looking at the numbers now and "))
    dataset = await upload_example(web_chat.http, web_chat.url)
    params = {"message": "Why?", "dataset": dataset}
    async with web_chat.http.get(f"{web_chat.url}/api/chat/stream", params=params) as response:
        async for event in sse_events(response):
            if event.data and "delta" in event.data:
                break
        assert web_chat.state.runs
        response.close()  # the browser goes away
    await fake.wait_for(lambda f: f.requests[0].disconnected and f.streams_open == 0, timeout=10)
    async with asyncio.timeout(10):
        while web_chat.state.runs:
            await asyncio.sleep(0.01)
    # The answer's slot was released: the same client can ask again at once.
    fake.script(text("Fine."))
    events = without_comments(await ask(web_chat.http, web_chat.url, "Again?", dataset))
    assert deltas(events) == "Fine." and events[-1].data["done"] is True


@pytest.mark.parametrize(
    "web_settings_overrides",
    [{"limits": __import__("bot.limits", fromlist=["LimitSettings"]).LimitSettings(
        user_max_running=10, user_questions_per_min=100, workspace_max_running=20
    )}],
)
async def test_ten_concurrent_streams_complete(web_chat, fake: FakeOpenAI) -> None:
    fake.responder = lambda request: text(ANSWER, chunk=6, delay=0.005)
    dataset = await upload_example(web_chat.http, web_chat.url)
    results = await asyncio.gather(
        *(ask(web_chat.http, web_chat.url, f"Question {i}?", dataset) for i in range(10))
    )
    conversations = set()
    for events in results:
        events = without_comments(events)
        assert deltas(events) == ANSWER
        assert events[-1].data["done"] is True
        conversations.add(events[-1].data["conversation"])
    assert len(conversations) == 10
    assert len(fake.requests) == 10


async def test_contract_refusals(web_chat, fake: FakeOpenAI) -> None:
    dataset = await upload_example(web_chat.http, web_chat.url)
    stream = f"{web_chat.url}/api/chat/stream"
    cases = [
        ({"message": "Why?", "dataset": dataset, "file_path": "/etc/passwd"}, 400, "file_path"),
        ({"message": "Why?", "file_path": "examples/budget_vs_actual.csv"}, 400, "file_path"),
        ({"message": "Why?", "dataset": "0" * 32}, 404, "Upload it again"),
        ({"message": "Why?", "dataset": "not-an-id"}, 404, "Upload it again"),
        ({"message": "Why?"}, 400, "dataset"),
        ({"message": "  ", "dataset": dataset}, 400, "empty"),
        ({"message": "Why?", "dataset": dataset, "conversation": "T1:C1"}, 400, "conversation"),
        ({"message": "x" * 4001, "dataset": dataset}, 400, "too long"),
    ]
    for params, status, words in cases:
        async with web_chat.http.get(stream, params=params) as response:
            assert response.status == status, params
            assert response.content_type == "application/json"
            body = await response.json()
            assert set(body) == {"error"} and words in body["error"], body
    async with web_chat.http.head(stream, params={"message": "Why?", "dataset": dataset}) as response:
        assert response.status == 405
    async with web_chat.http.get(f"{web_chat.url}/api/files/{'0' * 32}") as response:
        assert response.status == 404 and "error" in await response.json()
    assert fake.requests == []


async def test_conversation_continues_with_the_same_session(web_chat, fake: FakeOpenAI) -> None:
    fake.script(text("Marketing overspent on events."), text("Yes, mostly Q3."))
    dataset = await upload_example(web_chat.http, web_chat.url)
    first = without_comments(await ask(web_chat.http, web_chat.url, "Why is marketing over?", dataset))
    conversation = first[-1].data["conversation"]
    second = without_comments(
        await ask(web_chat.http, web_chat.url, "Was it in Q3?", dataset, conversation=conversation)
    )
    assert second[-1].data == {"done": True, "conversation": conversation}
    history = json.dumps(fake.requests[1].json["input"])
    assert "Why is marketing over?" in history and "Marketing overspent on events." in history
    # A new question without the id starts a new conversation: no history.
    fake.script(text("New."))
    third = without_comments(await ask(web_chat.http, web_chat.url, "Fresh start?", dataset))
    assert third[-1].data["conversation"] != conversation
    assert "Why is marketing over?" not in json.dumps(fake.requests[2].json["input"])
    # The history lives where the Slack bot keeps its own (VARIANCE_DATA_DIR).
    assert web_chat.state.settings.agent.session_db_path.exists()


@pytest.mark.parametrize(
    "web_settings_overrides",
    [{"limits": __import__("bot.limits", fromlist=["LimitSettings"]).LimitSettings(
        user_max_running=1, user_questions_per_min=100, workspace_max_running=20
    )}],
)
async def test_per_client_limits_refuse_without_a_model_call(web_chat, fake: FakeOpenAI) -> None:
    fake.script(hang("Working through the lines "))
    dataset = await upload_example(web_chat.http, web_chat.url)
    params = {"message": "Why?", "dataset": dataset}
    async with web_chat.http.get(f"{web_chat.url}/api/chat/stream", params=params) as first:
        async for event in sse_events(first):
            if event.data and "delta" in event.data:
                break
        refused = without_comments(await ask(web_chat.http, web_chat.url, "And this?", dataset))
        assert [e.event for e in refused] == ["error"]
        assert "already have answers in progress" in refused[0].data["error"]
        assert len(fake.requests) == 1
        first.close()


async def test_model_text_is_made_inert_even_when_split_across_deltas(web_chat, fake: FakeOpenAI) -> None:
    hostile = (
        "Ping @channel and see evil.example.com or [click](https://evil.example.com/x) "
        "<img src=x onerror=alert(1)> javascript:alert(1) done"
    )
    fake.script(text(hostile, chunk=2))
    dataset = await upload_example(web_chat.http, web_chat.url)
    events = without_comments(await ask(web_chat.http, web_chat.url, "Why?", dataset))
    streamed = deltas(events)
    assert streamed == neutralise(hostile)
    assert streamed.replace(ZWSP, "") == hostile
    for live in ("@channel", "evil.example", "](", "<img", "javascript:", "https:"):
        assert live not in streamed


async def test_a_final_answer_that_differs_from_the_deltas_is_sent_with_done(web_chat, fake: FakeOpenAI) -> None:
    fake.script(text("Draft text", final_text="The final answer."))
    dataset = await upload_example(web_chat.http, web_chat.url)
    events = without_comments(await ask(web_chat.http, web_chat.url, "Why?", dataset))
    assert events[-1].data["final"] == "The final answer."


def _fields(settings) -> dict:
    from dataclasses import fields

    return {f.name: getattr(settings, f.name) for f in fields(settings)}


async def test_unused_helpers_compile(web_chat) -> None:
    assert collect_stream and aiohttp


async def test_shutdown_ends_a_running_answer_with_an_error_event(web_chat, fake: FakeOpenAI) -> None:
    fake.script(hang("Looking at the lines "))
    dataset = await upload_example(web_chat.http, web_chat.url)
    params = {"message": "Why?", "dataset": dataset}
    events = []
    async with web_chat.http.get(f"{web_chat.url}/api/chat/stream", params=params) as response:
        async with asyncio.timeout(20):
            cleanup = None
            async for event in sse_events(response):
                events.append(event)
                if event.data and "delta" in event.data and cleanup is None:
                    cleanup = asyncio.ensure_future(web_chat.runner.cleanup())
            await cleanup
    events = without_comments(events)
    # The text so far (however much the model had sent when the server stopped) comes before the error.
    assert deltas(events).startswith("Looking") and "Looking at the lines ".startswith(deltas(events))
    assert events[-1].event == "error" and "restarting" in events[-1].data["error"]
    await fake.wait_for(lambda f: f.streams_open == 0, timeout=10)
