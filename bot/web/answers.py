"""The answer stream: ``GET /api/chat/stream`` runs the analyst on a stored upload and sends its events as
Server-Sent Events (deltas, tool progress, charts, then done or error), with keep-alives in between."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from aiohttp import web

from analyst.context import AnalysisContext
from analyst.events import AnalystEvent, Done, Failed, FailureKind, TextDelta, ToolFinished, ToolStarted
from bot.logs import log_line
from bot.textfilter import neutralise
from bot.web.state import (
    ID_PATTERN,
    INTERNAL_ERROR,
    SCOPE,
    STATE_KEY,
    UNKNOWN_DATASET,
    WebState,
    client_of,
    conversation_key,
    json_error,
    new_id,
    stored_upload,
)
from bot.web.stream import KEEP_ALIVE, InertText, sse_frame

if TYPE_CHECKING:
    from analyst.agent import AnalystRun

MAX_QUESTION_CHARS = 4000
_STOP_GRACE_S = 5.0

SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache, no-store",
    "X-Accel-Buffering": "no",  # proxies must pass each event on at once
}

FILE_PATH_REFUSED = (
    "file_path is not accepted: the server never reads its own files for a request. "
    "Upload the file (POST /api/files) and pass the dataset id it returns."
)
NO_DATASET = "Upload a budget-vs-actual CSV or XLSX first, then ask about it (the dataset parameter is missing)."
NO_MESSAGE = "Ask a question: the message parameter is empty."
BAD_CONVERSATION = "conversation must be the id that an earlier answer's done event gave."
RESTARTING = "The web chat is restarting, so I stopped here. Please ask again in a minute."


async def chat_stream(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    query = request.query
    if "file_path" in query:
        return json_error(400, FILE_PATH_REFUSED)
    message = query.get("message", "").strip()
    if not message:
        return json_error(400, NO_MESSAGE)
    if len(message) > MAX_QUESTION_CHARS:
        return json_error(400, f"The question is too long: keep it under {MAX_QUESTION_CHARS:,} characters.")
    dataset_id = query.get("dataset", "").strip()
    if not dataset_id:
        return json_error(400, NO_DATASET)
    conversation = query.get("conversation", "").strip()
    if conversation and not ID_PATTERN.fullmatch(conversation):
        return json_error(400, BAD_CONVERSATION)
    stored = stored_upload(state, dataset_id)
    if stored is None:
        return json_error(404, UNKNOWN_DATASET)
    conversation = conversation or new_id()
    # The conversation's own context over the dataset: its overrides stay its own (as in Slack threads).
    context = state.store.adopt(conversation_key(conversation), stored).context

    response = web.StreamResponse(status=200, headers=SSE_HEADERS)
    admission = await state.limits.admit(SCOPE, client_of(request))
    await response.prepare(request)
    if not admission.ok:
        await response.write(sse_frame({"error": admission.message}, event="error"))
        await response.write_eof()
        return response
    answer = _Answer(state, response, conversation, context)
    try:
        await answer.stream(message)
    finally:
        await state.limits.release(admission)
        answer.log()
    with contextlib.suppress(ConnectionError):
        await response.write_eof()
    return response


class _Answer:
    """One streamed answer: analyst events in, SSE frames out, keep-alives in between."""

    def __init__(
        self, state: WebState, response: web.StreamResponse, conversation: str, context: AnalysisContext
    ) -> None:
        self.state = state
        self.context = context
        self.response = response
        self.conversation = conversation
        self.started = time.monotonic()
        self.first_text_s: float | None = None
        self.tools = 0
        self.charts = 0
        self.outcome = "unknown"
        self._text = InertText()

    async def stream(self, question: str) -> None:
        run = _start_run(self.state, question, self.context, conversation_key(self.conversation))
        self.state.runs.add(run)
        events: AsyncIterator[AnalystEvent] = aiter(run)
        pending: asyncio.Future[AnalystEvent] | None = None
        try:
            while True:
                pending = asyncio.ensure_future(anext(events))
                while not (await asyncio.wait({pending}, timeout=self.state.settings.keep_alive_s))[0]:
                    await self.response.write(KEEP_ALIVE)
                if await self._send(pending.result()):
                    return
        except StopAsyncIteration:  # the run promises a terminal event; never leave the page waiting
            await self._fail(INTERNAL_ERROR, "ended_without_terminal")
        except (ConnectionError, asyncio.CancelledError):
            # The client went away (a write failed, or aiohttp cancelled the handler): the finally below
            # cancels the run, which closes the model's HTTP stream.
            self.outcome = "disconnected"
            raise
        finally:
            self.state.runs.discard(run)
            if pending is not None and not pending.done():
                pending.cancel()
                await asyncio.wait({pending}, timeout=_STOP_GRACE_S)
            run.cancel()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(run.aclose(), _STOP_GRACE_S)

    async def _send(self, event: AnalystEvent) -> bool:
        """Write the frames for ``event``; True after the terminal one."""
        if isinstance(event, TextDelta):
            await self._delta(self._text.feed(event.text))
        elif isinstance(event, ToolStarted):
            self.tools += 1
            await self._end_segment()
            await self._write(
                {"tool_name": neutralise(event.name), "status": "started", "label": neutralise(event.label)},
                event="tool",
            )
        elif isinstance(event, ToolFinished):
            await self._write({"tool_name": neutralise(event.name), "status": "finished"}, event="tool")
            from analyst.agent.tool_names import MAKE_CHART  # loaded with the run already

            if event.name == MAKE_CHART and event.ok:
                # The agent's chart (drawn in the tool's thread) goes to the page inline, under the answer.
                chart = self.state.charts.take_from_outbox(self.context, event.call_id)
                if chart is not None:
                    self.charts += 1
                    await self._write(chart.event(), event="chart")
        elif isinstance(event, Done):
            segment = self._text.raw
            await self._delta(self._text.flush())
            done: dict[str, Any] = {"done": True, "conversation": self.conversation}
            final = event.final_text.strip()
            if final and final != segment.strip():
                # The completed answer differs from the streamed text: the page shows the authoritative one.
                done["final"] = neutralise(event.final_text)
            await self._write(done)
            self.outcome = "done"
            return True
        elif isinstance(event, Failed):
            await self._delta(self._text.flush())
            if event.kind is FailureKind.CANCELLED:
                await self._fail(RESTARTING if self.state.closing else INTERNAL_ERROR, "cancelled")
            else:
                await self._fail(neutralise(event.user_message), f"failed:{event.kind.value}")
            return True
        # Unknown events are skipped, never sent raw.
        return False

    async def _end_segment(self) -> None:
        """Text before a tool call is its own paragraph; what follows is neutralised on its own."""
        await self._delta(self._text.flush())
        if self._text.raw.strip() and not self._text.raw.endswith("\n\n"):
            await self._delta("\n\n" if not self._text.raw.endswith("\n") else "\n")
        self._text = InertText()

    async def _delta(self, text: str) -> None:
        if text:
            if self.first_text_s is None:
                self.first_text_s = round(time.monotonic() - self.started, 3)
            await self._write({"delta": text})

    async def _fail(self, message: str, outcome: str) -> None:
        self.outcome = outcome
        await self._write({"error": message}, event="error")

    async def _write(self, data: dict[str, Any], *, event: str | None = None) -> None:
        await self.response.write(sse_frame(data, event=event))

    def log(self) -> None:
        log_line(
            "answer",
            surface="web",
            conversation=self.conversation,
            outcome=self.outcome,
            tools=self.tools,
            charts=self.charts,
            first_text_s=self.first_text_s,
            total_s=round(time.monotonic() - self.started, 3),
        )


def _start_run(state: WebState, question: str, context: AnalysisContext, session_id: str) -> AnalystRun:
    # Same agent, sessions (SQLite under VARIANCE_DATA_DIR) and model settings as the Slack bot. Without an
    # API key the run ends at once with a failure naming OPENAI_API_KEY, which the page shows.
    from analyst.agent import AgentSettings, start_run

    settings = state.settings.agent or AgentSettings()
    return start_run(question, context, conversation_id=session_id, settings=settings)
