"""A small OpenAI Responses API for the benchmarks, on 127.0.0.1, spoken to by the real ``openai`` client and
the Agents SDK: ``POST /v1/responses`` with ``"stream": true`` answers each request with the next scripted
turn (streamed text, or function calls) as server-sent events, ending with ``response.completed`` and usage.
Every request body is kept (``requests``), which is what the token benchmark measures. (The test suite has a
fuller fake in ``tests/fakes``, with errors and the Chat Completions API; benchmarks do not import tests.)
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass(frozen=True, slots=True)
class Turn:
    """One scripted response: text streamed ``chunk`` characters at a time ``delay`` s apart, or tool calls."""

    text: str = ""
    chunk: int = 20
    delay: float = 0.0
    calls: tuple[tuple[str, str], ...] = ()  # (tool name, JSON arguments)


def text(content: str, *, chunk: int = 20, delay: float = 0.0) -> Turn:
    return Turn(text=content, chunk=chunk, delay=delay)


def calls(*named: tuple[str, dict[str, Any]]) -> Turn:
    return Turn(calls=tuple((name, json.dumps(arguments)) for name, arguments in named))


@dataclass
class BenchOpenAI:
    """``script(...)`` queues turns for the next requests; ``responder`` answers when the queue is empty."""

    responder: Callable[[dict[str, Any]], Turn] | None = None
    requests: list[dict[str, Any]] = field(default_factory=list)
    base_url: str = ""
    _turns: deque[Turn] = field(default_factory=deque)
    _ids: itertools.count[int] = field(default_factory=itertools.count)
    _runner: web.AppRunner | None = None

    def script(self, *turns: Turn) -> None:
        self._turns.extend(turns)

    async def __aenter__(self) -> BenchOpenAI:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/responses", self._responses)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.base_url = f"http://127.0.0.1:{port}/v1"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _id(self, kind: str) -> str:
        return f"{kind}_{next(self._ids):06d}"

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = json.loads(raw)
        self.requests.append(body)
        if self._turns:
            turn = self._turns.popleft()
        elif self.responder is not None:
            turn = self.responder(body)
        else:
            turn = text("No scripted answer.")
        stream = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await stream.prepare(request)
        seq = itertools.count()

        async def send(kind: str, **fields: Any) -> None:
            event = {"type": kind, "sequence_number": next(seq), **fields}
            await stream.write(f"event: {kind}\ndata: {json.dumps(event)}\n\n".encode())

        response = {
            "id": self._id("resp"), "object": "response", "created_at": int(time.time()), "status": "in_progress",
            "error": None, "incomplete_details": None, "instructions": body.get("instructions"),
            "model": body.get("model") or "bench-model", "output": [], "parallel_tool_calls": True,
            "temperature": None, "tool_choice": "auto", "tools": body.get("tools") or [], "top_p": None,
            "usage": None,
        }
        await send("response.created", response=response)
        output: list[dict[str, Any]] = []
        if turn.text:
            item = {"id": self._id("msg"), "type": "message", "role": "assistant", "status": "in_progress",
                    "content": []}
            await send("response.output_item.added", output_index=0, item=item)
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            await send("response.content_part.added", item_id=item["id"], output_index=0, content_index=0, part=part)
            for start in range(0, len(turn.text), max(1, turn.chunk)):
                piece = turn.text[start : start + max(1, turn.chunk)]
                await send("response.output_text.delta", item_id=item["id"], output_index=0, content_index=0,
                           delta=piece, logprobs=[])
                if turn.delay:
                    await asyncio.sleep(turn.delay)
            part = {**part, "text": turn.text}
            await send("response.output_text.done", item_id=item["id"], output_index=0, content_index=0,
                       text=turn.text, logprobs=[])
            await send("response.content_part.done", item_id=item["id"], output_index=0, content_index=0, part=part)
            item = {**item, "status": "completed", "content": [part]}
            await send("response.output_item.done", output_index=0, item=item)
            output.append(item)
        for name, arguments in turn.calls:
            call = {"id": self._id("fc"), "type": "function_call", "call_id": self._id("call"), "name": name,
                    "arguments": arguments, "status": "completed"}
            await send("response.output_item.added", output_index=len(output), item={**call, "arguments": ""})
            await send("response.function_call_arguments.done", item_id=call["id"], output_index=len(output),
                       arguments=arguments, name=name)
            await send("response.output_item.done", output_index=len(output), item=call)
            output.append(call)
        tokens_in, tokens_out = max(1, len(raw) // 4), max(1, (len(turn.text) + len(str(turn.calls))) // 4)
        usage = {"input_tokens": tokens_in, "input_tokens_details": {"cached_tokens": 0},
                 "output_tokens": tokens_out, "output_tokens_details": {"reasoning_tokens": 0},
                 "total_tokens": tokens_in + tokens_out}
        await send("response.completed", response={**response, "status": "completed", "output": output, "usage": usage})
        await stream.write_eof()
        return stream
