"""The fake OpenAI server speaks the real protocols: every event it sends parses as openai's own types."""

from __future__ import annotations

import openai
import pytest
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionChunk
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from tests.fakes.openai_server import FakeOpenAI, error, midstream_error, text, tool_calls

STREAM_EVENT = TypeAdapter(ResponseStreamEvent)


async def test_responses_stream_events_validate_against_openai_types() -> None:
    async with FakeOpenAI() as fake:
        fake.script(tool_calls(("breakdown", {"by": ["Dept"]}), ("variance_summary", {}), text_before="Looking"))
        client = AsyncOpenAI(base_url=fake.base_url, api_key="test", max_retries=0)
        stream = await client.responses.create(model="m", input="hi", stream=True)
        received = [event async for event in stream]
        assert [e.type for e in received][-1] == "response.completed"
        for raw in fake.sent_events:
            parsed = STREAM_EVENT.validate_python(raw)
            assert parsed.type == raw["type"]
        assert [raw["sequence_number"] for raw in fake.sent_events] == list(range(len(fake.sent_events)))
        completed = received[-1]
        assert completed.type == "response.completed"
        output = completed.response.output
        assert [item.type for item in output] == ["message", "function_call", "function_call"]
        assert output[1].name == "breakdown" and output[1].arguments == '{"by": ["Dept"]}'
        assert completed.response.usage is not None and completed.response.usage.input_tokens > 0
        assert fake.requests[0].finished


async def test_responses_text_deltas_and_final_text() -> None:
    async with FakeOpenAI() as fake:
        fake.script(text("Hello world", chunk=3, final_text="Hello, world."))
        client = AsyncOpenAI(base_url=fake.base_url, api_key="test", max_retries=0)
        stream = await client.responses.create(model="m", input="hi", stream=True)
        events = [event async for event in stream]
        deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
        assert deltas == ["Hel", "lo ", "wor", "ld"]
        assert events[-1].type == "response.completed"
        assert events[-1].response.output_text == "Hello, world."
        assert fake.deltas_sent == 4


async def test_responses_non_stream_is_a_response_object() -> None:
    async with FakeOpenAI() as fake:
        fake.script(text("Plain answer"))
        client = AsyncOpenAI(base_url=fake.base_url, api_key="test", max_retries=0)
        response = await client.responses.create(model="m", input="hi")
        assert isinstance(response, Response) and response.output_text == "Plain answer"


async def test_chat_completions_stream_with_usage_and_tool_calls() -> None:
    async with FakeOpenAI() as fake:
        fake.script(tool_calls(("top_drivers", {"n": 3})), text("Done here", chunk=4))
        client = AsyncOpenAI(base_url=fake.base_url, api_key="test", max_retries=0)
        for _ in range(2):
            stream = await client.chat.completions.create(
                model="m",
                messages=[{"role": "user", "content": "hi"}],
                stream=True,
                stream_options={"include_usage": True},
            )
            chunks = [chunk async for chunk in stream]
            assert chunks[-1].usage is not None and chunks[-1].choices == []
        for raw in fake.sent_events:
            ChatCompletionChunk.model_validate(raw)
        first_call = [c for c in fake.sent_events if c["choices"] and c["choices"][0]["delta"].get("tool_calls")]
        assert first_call[0]["choices"][0]["delta"]["tool_calls"][0]["function"]["name"] == "top_drivers"
        texts = [c["choices"][0]["delta"].get("content") for c in fake.sent_events if c["choices"]]
        assert "".join(t for t in texts if t) == "Done here"


async def test_errors_have_real_status_bodies_and_retry_headers() -> None:
    async with FakeOpenAI() as fake:
        fake.script(error(429, retry_after=0), error(500), error(401))
        client = AsyncOpenAI(base_url=fake.base_url, api_key="test", max_retries=0)
        with pytest.raises(openai.RateLimitError) as rate:
            await client.responses.create(model="m", input="hi", stream=True)
        assert rate.value.response.headers["retry-after-ms"] == "1"
        assert rate.value.code == "rate_limit_exceeded"
        with pytest.raises(openai.InternalServerError):
            await client.responses.create(model="m", input="hi", stream=True)
        with pytest.raises(openai.AuthenticationError):
            await client.responses.create(model="m", input="hi", stream=True)


async def test_retries_consume_turns_and_fallback_answers_unscripted() -> None:
    async with FakeOpenAI() as fake:
        fake.script(error(429, retry_after=0), error(503, retry_after=0))
        client = AsyncOpenAI(base_url=fake.base_url, api_key="test", max_retries=2)
        response = await client.responses.create(model="m", input="hi")
        assert response.output_text == "OK."
        assert len(fake.requests) == 3


async def test_midstream_error_event_reaches_the_client() -> None:
    async with FakeOpenAI() as fake:
        fake.script(midstream_error("partial"))
        client = AsyncOpenAI(base_url=fake.base_url, api_key="test", max_retries=0)
        stream = await client.responses.create(model="m", input="hi", stream=True)
        types = [event.type async for event in stream]
        assert types[-1] == "error"
        assert "response.completed" not in types
