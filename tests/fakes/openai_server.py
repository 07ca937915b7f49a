"""A fake OpenAI API on 127.0.0.1 that speaks the real wire protocols, scripted per test.

The real ``openai`` client (and the ``agents`` runner on top of it) talk to it over HTTP:

- ``POST /v1/responses``: with ``"stream": true`` an SSE stream of Responses API events (``response.created``,
  ``response.in_progress``, ``response.output_item.added``, ``response.content_part.added``,
  ``response.output_text.delta`` ..., ``response.output_text.done``, ``response.content_part.done``,
  ``response.output_item.done``, function calls with ``response.function_call_arguments.delta/done``, and
  ``response.completed`` carrying the whole ``response`` with its ``output`` and ``usage``); without it a
  JSON ``Response`` object.
- ``POST /v1/chat/completions``: with ``"stream": true`` ``chat.completion.chunk`` SSE ending in
  ``data: [DONE]``
  (tool calls as ``tool_calls`` deltas; a usage chunk when ``stream_options.include_usage``); otherwise a
  JSON ``chat.completion``.
- Errors with real status codes, OpenAI-style JSON error bodies and ``retry-after`` / ``retry-after-ms``
  headers.

Usage::

    async with FakeOpenAI() as fake:
        fake.script(tool_call("variance_summary", {}), text("Revenue is up.", chunk=3, delay=0.02))
        client = AsyncOpenAI(base_url=fake.base_url, api_key="test")
        ...
        assert fake.requests[1].json["input"][-1]["type"] == "function_call_output"

Each request consumes one scripted :class:`Turn`; when the script is empty, ``fake.responder(request)``
answers (default: a short text). Tests wait on conditions, never sleep:
``await fake.wait_for(lambda f: f.deltas_sent >= 5)``.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web

__all__ = [
    "FakeOpenAI",
    "RecordedRequest",
    "ToolCall",
    "Turn",
    "error",
    "hang",
    "midstream_error",
    "text",
    "tool_call",
    "tool_calls",
]

MidstreamMode = Literal["error_event", "failed", "disconnect", "no_completed"]


@dataclass(frozen=True, slots=True)
class ToolCall:
    name: str
    arguments: str  # JSON text, exactly as the model would send it
    call_id: str = ""


@dataclass(frozen=True, slots=True)
class Turn:
    """What the fake model does for one request."""

    text: str = ""
    chunk: int = 3  # characters per text delta
    delay: float = 0.0  # seconds between deltas (0.02 ≈ 50 deltas/s)
    tool_calls: tuple[ToolCall, ...] = ()
    final_text: str | None = None  # text of the completed response when it must differ from the deltas
    usage: tuple[int, int] | None = None  # (input_tokens, output_tokens); default: estimated
    status: int = 200  # an HTTP error status when != 200
    error_message: str = ""
    error_type: str = ""
    error_code: str | None = None
    retry_after: float | None = None
    midstream: MidstreamMode | None = None  # how the stream breaks after `text`
    hang: bool = False  # stop answering after `text` (or before headers when `hang_before_headers`)
    hang_before_headers: bool = False
    null_deltas: bool = False  # also send a delta event with ``"delta": null`` before each real one


def text(
    content: str,
    *,
    chunk: int = 3,
    delay: float = 0.0,
    final_text: str | None = None,
    usage: tuple[int, int] | None = None,
    null_deltas: bool = False,
) -> Turn:
    """A streamed text answer, ``chunk`` characters per delta, ``delay`` seconds apart.

    ``null_deltas`` interleaves deltas whose ``delta`` is null, as some compatible servers send."""
    return Turn(
        text=content, chunk=chunk, delay=delay, final_text=final_text, usage=usage, null_deltas=null_deltas
    )


def tool_call(name: str, arguments: Mapping[str, Any] | str | None = None, *, call_id: str = "") -> Turn:
    """One function call (arguments as a mapping or raw JSON text)."""
    return tool_calls((name, arguments), call_id=call_id)


def tool_calls(
    *calls: tuple[str, Mapping[str, Any] | str | None], call_id: str = "", text_before: str = ""
) -> Turn:
    """Several function calls in one response (parallel tool calls), optionally after some text."""
    made = []
    for index, (name, arguments) in enumerate(calls):
        raw = arguments if isinstance(arguments, str) else json.dumps(dict(arguments or {}))
        made.append(ToolCall(name=name, arguments=raw, call_id=f"{call_id}{index}" if call_id else ""))
    return Turn(text=text_before, tool_calls=tuple(made))


_ERROR_DEFAULTS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Forbidden."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests."),
    500: ("server_error", None, "The server had an error while processing your request."),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


def error(
    status: int, *, retry_after: float | None = None, message: str = "", code: str | None = None
) -> Turn:
    """An HTTP error answer with an OpenAI-style JSON body; ``retry_after`` sets the retry headers."""
    err_type, default_code, default_message = _ERROR_DEFAULTS.get(status, ("server_error", None, "Error."))
    return Turn(
        status=status,
        error_type=err_type,
        error_code=code if code is not None else default_code,
        error_message=message or default_message,
        retry_after=retry_after,
    )


def midstream_error(
    after_text: str = "partial", *, mode: MidstreamMode = "error_event", chunk: int = 3
) -> Turn:
    """Stream ``after_text`` then break: an SSE ``error`` event, ``response.failed``, a dropped connection, or
    an end of stream without ``response.completed``."""
    return Turn(text=after_text, chunk=chunk, midstream=mode)


def hang(after_text: str = "", *, before_headers: bool = False, chunk: int = 3) -> Turn:
    """Stop answering (after ``after_text``, or before sending any header) until the client goes away."""
    return Turn(text=after_text, chunk=chunk, hang=True, hang_before_headers=before_headers)


@dataclass(slots=True)
class RecordedRequest:
    path: str
    headers: dict[str, str]
    json: dict[str, Any]
    raw_size: int
    index: int
    turn: Turn | None = None
    finished: bool = False  # the whole answer was sent
    disconnected: bool = False  # the client went away before the answer was complete

    @property
    def stream(self) -> bool:
        return bool(self.json.get("stream"))


Responder = Callable[[RecordedRequest], Turn]


def _default_responder(_request: RecordedRequest) -> Turn:
    return text("OK.")


@dataclass
class FakeOpenAI:
    """The fake server. Use as ``async with FakeOpenAI() as fake:``; ``fake.base_url`` ends in ``/v1``."""

    responder: Responder = _default_responder
    model: str = "gpt-fake"
    requests: list[RecordedRequest] = field(default_factory=list)
    sent_events: list[dict[str, Any]] = field(default_factory=list)  # every SSE data object, in order
    record_events: bool = True
    deltas_sent: int = 0  # text deltas over all streams
    streams_open: int = 0
    _queue: deque[Turn] = field(default_factory=deque)
    _changed: asyncio.Condition | None = None
    _runner: web.AppRunner | None = None
    _port: int = 0
    _ids: Iterable[int] = field(default_factory=lambda: itertools.count(1))

    # ----------------------------------------------------------------- lifecycle
    async def __aenter__(self) -> FakeOpenAI:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        self._changed = asyncio.Condition()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/responses", self._handle_responses)
        app.router.add_post("/v1/chat/completions", self._handle_chat)
        # handler_cancellation: a client that disconnects cancels the handler, so hangs end with the client.
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self._port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/v1"

    # ----------------------------------------------------------------- scripting and waiting
    def script(self, *turns: Turn) -> None:
        """Queue turns; each request consumes the next one."""
        self._queue.extend(turns)

    @property
    def pending_turns(self) -> int:
        return len(self._queue)

    async def wait_for(self, predicate: Callable[[FakeOpenAI], bool], timeout: float = 5.0) -> None:
        """Wait until ``predicate(fake)`` holds; raise ``TimeoutError`` after ``timeout`` seconds."""
        assert self._changed is not None
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: predicate(self))

    async def _notify(self) -> None:
        assert self._changed is not None
        async with self._changed:
            self._changed.notify_all()

    def _next_id(self, prefix: str) -> str:
        return f"{prefix}_{next(iter(self._ids)):06d}"

    # ----------------------------------------------------------------- HTTP plumbing
    async def _record(self, request: web.Request) -> RecordedRequest:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else {}
        except json.JSONDecodeError:
            body = {}
        recorded = RecordedRequest(
            path=request.path,
            headers={k.lower(): v for k, v in request.headers.items()},
            json=body,
            raw_size=len(raw),
            index=len(self.requests),
        )
        recorded.turn = self._queue.popleft() if self._queue else self.responder(recorded)
        self.requests.append(recorded)
        await self._notify()
        return recorded

    def _error_response(self, turn: Turn) -> web.Response:
        headers = {"x-request-id": self._next_id("req")}
        if turn.retry_after is not None:
            headers["retry-after"] = str(max(0, int(turn.retry_after)))
            # Real OpenAI sends milliseconds too; clients prefer it (a 1 ms floor keeps tests fast).
            headers["retry-after-ms"] = str(max(1, int(turn.retry_after * 1000)))
        body = {
            "error": {
                "message": turn.error_message,
                "type": turn.error_type,
                "param": None,
                "code": turn.error_code,
            }
        }
        return web.json_response(body, status=turn.status, headers=headers)

    async def _open_sse(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            status=200,
            headers={
                "content-type": "text/event-stream; charset=utf-8",
                "cache-control": "no-cache",
                "x-request-id": self._next_id("req"),
            },
        )
        await response.prepare(request)
        return response

    async def _serve(
        self,
        request: web.Request,
        events: Callable[[RecordedRequest], AsyncIterator[tuple[str | None, dict[str, Any] | str]]],
        recorded: RecordedRequest,
    ) -> web.StreamResponse:
        turn = recorded.turn
        assert turn is not None
        self.streams_open += 1
        try:
            if turn.hang_before_headers:
                await asyncio.Event().wait()  # until the client disconnects (the handler is cancelled)
            response = await self._open_sse(request)
            async for event_name, data in events(recorded):
                payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
                if self.record_events and isinstance(data, dict):
                    self.sent_events.append(data)
                frame = (f"event: {event_name}\n" if event_name else "") + f"data: {payload}\n\n"
                await response.write(frame.encode())
                if isinstance(data, dict) and _is_text_delta(data):
                    self.deltas_sent += 1
                    await self._notify()
            if turn.midstream == "disconnect":
                assert request.transport is not None
                request.transport.abort()
                return response
            if turn.hang:
                await asyncio.Event().wait()
            await response.write_eof()
            recorded.finished = True
            return response
        except (asyncio.CancelledError, ConnectionResetError):
            recorded.disconnected = True
            raise
        finally:
            self.streams_open -= 1
            await asyncio.shield(self._notify())

    # ----------------------------------------------------------------- Responses API
    async def _answer(
        self,
        request: web.Request,
        completed: Callable[[RecordedRequest], dict[str, Any]],
        events: Callable[[RecordedRequest], AsyncIterator[tuple[str | None, dict[str, Any] | str]]],
    ) -> web.StreamResponse:
        """One request to either API: the turn's error, the whole answer as JSON, or the answer as SSE."""
        recorded = await self._record(request)
        turn = recorded.turn
        assert turn is not None
        if turn.status != 200:
            return self._error_response(turn)
        if not recorded.stream:
            recorded.finished = True
            return web.json_response(completed(recorded))
        return await self._serve(request, events, recorded)

    async def _handle_responses(self, request: web.Request) -> web.StreamResponse:
        return await self._answer(
            request, lambda recorded: self._response_object(recorded, status="completed"), self._responses_events
        )

    def _usage(self, recorded: RecordedRequest) -> tuple[int, int]:
        turn = recorded.turn
        assert turn is not None
        if turn.usage is not None:
            return turn.usage
        out = len(turn.final_text if turn.final_text is not None else turn.text)
        out += sum(len(c.arguments) + len(c.name) for c in turn.tool_calls)
        return max(1, recorded.raw_size // 4), max(1, out // 4)

    def _output_items(self, recorded: RecordedRequest, ids: dict[str, str]) -> list[dict[str, Any]]:
        turn = recorded.turn
        assert turn is not None
        items: list[dict[str, Any]] = []
        shown = turn.final_text if turn.final_text is not None else turn.text
        if turn.text or turn.final_text:
            items.append(_message_item(ids["msg"], shown, "completed"))
        for index, call in enumerate(turn.tool_calls):
            items.append(_function_item(ids[f"fc{index}"], call, ids[f"call{index}"], "completed"))
        return items

    def _response_object(
        self,
        recorded: RecordedRequest,
        *,
        status: str,
        ids: dict[str, str] | None = None,
        response_id: str | None = None,
    ) -> dict[str, Any]:
        body = recorded.json
        ids = ids or self._item_ids(recorded)
        output = self._output_items(recorded, ids) if status == "completed" else []
        usage = None
        if status == "completed":
            input_tokens, output_tokens = self._usage(recorded)
            usage = {
                "input_tokens": input_tokens,
                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "output_tokens": output_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": input_tokens + output_tokens,
            }
        return {
            "id": response_id or self._next_id("resp"),
            "object": "response",
            "created_at": int(time.time()),
            "status": status,
            "error": None,
            "incomplete_details": None,
            "instructions": body.get("instructions"),
            "model": body.get("model") or self.model,
            "output": output,
            "parallel_tool_calls": bool(body.get("parallel_tool_calls", True)),
            "temperature": body.get("temperature"),
            "tool_choice": body.get("tool_choice") or "auto",
            "tools": body.get("tools") or [],
            "top_p": body.get("top_p"),
            "usage": usage,
        }

    def _item_ids(self, recorded: RecordedRequest) -> dict[str, str]:
        turn = recorded.turn
        assert turn is not None
        ids = {"msg": self._next_id("msg")}
        for index, call in enumerate(turn.tool_calls):
            ids[f"fc{index}"] = self._next_id("fc")
            ids[f"call{index}"] = call.call_id or self._next_id("call")
        return ids

    async def _responses_events(
        self, recorded: RecordedRequest
    ) -> AsyncIterator[tuple[str | None, dict[str, Any]]]:
        turn = recorded.turn
        assert turn is not None
        seq = itertools.count()
        ids = self._item_ids(recorded)
        response_id = self._next_id("resp")

        def ev(kind: str, **fields: Any) -> tuple[str, dict[str, Any]]:
            return kind, {"type": kind, "sequence_number": next(seq), **fields}

        yield ev(
            "response.created",
            response=self._response_object(recorded, status="in_progress", ids=ids, response_id=response_id),
        )
        yield ev(
            "response.in_progress",
            response=self._response_object(recorded, status="in_progress", ids=ids, response_id=response_id),
        )
        output_index = 0
        if turn.text:
            msg_id = ids["msg"]
            yield ev(
                "response.output_item.added", output_index=0, item=_message_item(msg_id, None, "in_progress")
            )
            yield ev(
                "response.content_part.added",
                item_id=msg_id,
                output_index=0,
                content_index=0,
                part={"type": "output_text", "text": "", "annotations": [], "logprobs": []},
            )
            for piece in _chunks(turn.text, turn.chunk):
                if turn.null_deltas:
                    yield ev(
                        "response.output_text.delta",
                        item_id=msg_id,
                        output_index=0,
                        content_index=0,
                        delta=None,
                        logprobs=[],
                    )
                yield ev(
                    "response.output_text.delta",
                    item_id=msg_id,
                    output_index=0,
                    content_index=0,
                    delta=piece,
                    logprobs=[],
                )
                if turn.delay:
                    await asyncio.sleep(turn.delay)
            if turn.midstream == "error_event":
                yield ev(
                    "error", code="server_error", message="The model stream was interrupted.", param=None
                )
                return
            if turn.midstream == "failed":
                failed = self._response_object(recorded, status="failed", ids=ids, response_id=response_id)
                failed["error"] = {"code": "server_error", "message": "The model failed to finish."}
                yield ev("response.failed", response=failed)
                return
            if turn.midstream is not None or turn.hang:
                return
            shown = turn.final_text if turn.final_text is not None else turn.text
            yield ev(
                "response.output_text.done",
                item_id=msg_id,
                output_index=0,
                content_index=0,
                text=turn.text,
                logprobs=[],
            )
            yield ev(
                "response.content_part.done",
                item_id=msg_id,
                output_index=0,
                content_index=0,
                part={"type": "output_text", "text": turn.text, "annotations": [], "logprobs": []},
            )
            yield ev(
                "response.output_item.done", output_index=0, item=_message_item(msg_id, shown, "completed")
            )
            output_index = 1
        elif turn.midstream is not None or turn.hang:
            if turn.midstream == "error_event":
                yield ev(
                    "error", code="server_error", message="The model stream was interrupted.", param=None
                )
            return
        for index, call in enumerate(turn.tool_calls):
            fc_id, call_id = ids[f"fc{index}"], ids[f"call{index}"]
            at = output_index + index
            yield ev(
                "response.output_item.added",
                output_index=at,
                item=_function_item(fc_id, ToolCall(call.name, ""), call_id, "in_progress"),
            )
            for piece in _chunks(call.arguments, 8):
                yield ev(
                    "response.function_call_arguments.delta", item_id=fc_id, output_index=at, delta=piece
                )
            yield ev(
                "response.function_call_arguments.done",
                item_id=fc_id,
                output_index=at,
                arguments=call.arguments,
                name=call.name,
            )
            yield ev(
                "response.output_item.done",
                output_index=at,
                item=_function_item(fc_id, call, call_id, "completed"),
            )
        completed = self._response_object(recorded, status="completed", ids=ids, response_id=response_id)
        if turn.midstream == "no_completed":
            return
        yield ev("response.completed", response=completed)

    # ----------------------------------------------------------------- Chat Completions
    async def _handle_chat(self, request: web.Request) -> web.StreamResponse:
        return await self._answer(request, self._chat_completion, self._chat_events)

    def _chat_usage(self, recorded: RecordedRequest) -> dict[str, int]:
        prompt, completion = self._usage(recorded)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def _chat_completion(self, recorded: RecordedRequest) -> dict[str, Any]:
        turn = recorded.turn
        assert turn is not None
        message: dict[str, Any] = {"role": "assistant", "content": turn.final_text or turn.text or None}
        if turn.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call.call_id or self._next_id("call"),
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for call in turn.tool_calls
            ]
        return {
            "id": self._next_id("chatcmpl"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": recorded.json.get("model") or self.model,
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": "tool_calls" if turn.tool_calls else "stop",
                }
            ],
            "usage": self._chat_usage(recorded),
        }

    async def _chat_events(
        self, recorded: RecordedRequest
    ) -> AsyncIterator[tuple[str | None, dict[str, Any] | str]]:
        turn = recorded.turn
        assert turn is not None
        chunk_id = self._next_id("chatcmpl")
        created = int(time.time())
        model = recorded.json.get("model") or self.model

        def chunk(delta: dict[str, Any], finish: str | None = None) -> tuple[None, dict[str, Any]]:
            return None, {
                "id": chunk_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
            }

        yield chunk({"role": "assistant", "content": ""})
        for piece in _chunks(turn.text, turn.chunk):
            yield chunk({"content": piece})
            if turn.delay:
                await asyncio.sleep(turn.delay)
        if turn.midstream == "error_event" or turn.midstream == "failed":
            yield (
                None,
                {
                    "error": {
                        "message": "The model stream was interrupted.",
                        "type": "server_error",
                        "param": None,
                        "code": None,
                    }
                },
            )
            return
        if turn.midstream is not None or turn.hang:
            return
        for index, call in enumerate(turn.tool_calls):
            call_id = call.call_id or self._next_id("call")
            yield chunk(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call_id,
                            "type": "function",
                            "function": {"name": call.name, "arguments": ""},
                        }
                    ]
                }
            )
            for piece in _chunks(call.arguments, 8):
                yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        yield chunk({}, "tool_calls" if turn.tool_calls else "stop")
        options = recorded.json.get("stream_options") or {}
        if options.get("include_usage"):
            yield (
                None,
                {
                    "id": chunk_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": self._chat_usage(recorded),
                },
            )
        yield None, "[DONE]"


def _chunks(content: str, size: int) -> list[str]:
    size = max(1, size)
    return [content[i : i + size] for i in range(0, len(content), size)]


def _is_text_delta(data: Mapping[str, Any]) -> bool:
    if data.get("type") == "response.output_text.delta":
        return True
    choices = data.get("choices") or []
    return bool(choices) and bool(choices[0].get("delta", {}).get("content"))


def _message_item(item_id: str, content: str | None, status: str) -> dict[str, Any]:
    parts = (
        []
        if content is None
        else [{"type": "output_text", "text": content, "annotations": [], "logprobs": []}]
    )
    return {"id": item_id, "type": "message", "role": "assistant", "status": status, "content": parts}


def _function_item(item_id: str, call: ToolCall, call_id: str, status: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "call_id": call_id,
        "name": call.name,
        "arguments": call.arguments,
        "status": status,
    }
