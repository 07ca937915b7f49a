"""Helpers for the web chat's tests: the app on a local port, an SSE reader that follows the spec, and upload/ask
shortcuts."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from bot.web.app import STATE_KEY, WebState, create_web_app
from bot.web.settings import WebSettings
from bot.workers import WorkerPool

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "budget_vs_actual.csv"


@dataclass
class WebUnderTest:
    url: str
    http: aiohttp.ClientSession
    state: WebState
    runner: web.AppRunner


async def start_web(settings: WebSettings, workers: WorkerPool) -> WebUnderTest:
    app = create_web_app(settings, workers=workers)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    return WebUnderTest(f"http://127.0.0.1:{port}", aiohttp.ClientSession(), app[STATE_KEY], runner)


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One dispatched SSE event (``event`` None for unnamed ones), or a comment line (``comment`` set)."""

    event: str | None = None
    data: Any = None
    comment: str | None = None

    @property
    def is_comment(self) -> bool:
        return self.comment is not None


async def sse_events(response: aiohttp.ClientResponse) -> AsyncIterator[SseEvent]:
    """Parse ``text/event-stream`` as a browser does: ``event:``/``data:`` lines, a blank line dispatches;
    comments (``:`` lines) are yielded too, so tests can see keep-alives."""
    event: str | None = None
    data: list[str] = []
    async for raw in response.content:
        line = raw.decode("utf-8").rstrip("\r\n")
        if not line:
            if data:
                yield SseEvent(event=event, data=json.loads("\n".join(data)))
            event, data = None, []
        elif line.startswith(":"):
            yield SseEvent(comment=line[1:].strip())
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)


async def collect_stream(response: aiohttp.ClientResponse, timeout: float = 20.0) -> list[SseEvent]:
    async with asyncio.timeout(timeout):
        return [event async for event in sse_events(response)]


def deltas(events: list[SseEvent]) -> str:
    return "".join(e.data["delta"] for e in events if e.event is None and e.data and "delta" in e.data)


def without_comments(events: list[SseEvent]) -> list[SseEvent]:
    return [e for e in events if not e.is_comment]


async def upload(
    http: aiohttp.ClientSession, base_url: str, content: bytes, filename: str, **kwargs: Any
) -> tuple[int, dict[str, Any]]:
    form = aiohttp.FormData()
    form.add_field("file", content, filename=filename, content_type="text/csv")
    async with http.post(f"{base_url}/api/files", data=form, **kwargs) as response:
        return response.status, await response.json()


async def upload_example(http: aiohttp.ClientSession, base_url: str, **kwargs: Any) -> str:
    status, body = await upload(http, base_url, EXAMPLE.read_bytes(), EXAMPLE.name, **kwargs)
    assert status == 200, body
    return str(body["dataset"])


async def ask(
    http: aiohttp.ClientSession, base_url: str, message: str, dataset: str, **params: str
) -> list[SseEvent]:
    """One whole answer's events (comments included)."""
    query = {"message": message, "dataset": dataset, **params}
    async with http.get(f"{base_url}/api/chat/stream", params=query) as response:
        assert response.status == 200, await response.text()
        assert response.content_type == "text/event-stream"
        return await collect_stream(response)
