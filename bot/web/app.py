"""The web chat's aiohttp application: the page, uploads, and answers streamed as Server-Sent Events.

Routes (the contract):

- ``GET /healthz`` → 200 ``{"ok": true, ...}``; ``GET /`` → the chat page (``/static/...`` its files).
- ``POST /api/files`` (multipart, field ``file``) → 200 ``{"dataset": "<id>", "report": <report --json object>}``,
  or 4xx ``{"error": "<readable>"}``. ``GET /api/files/<id>`` → ``{"dataset", "filename"}`` or 404 (the page
  asks before it reconnects).
- ``GET /api/chat/stream?message=<text>&dataset=<id>[&conversation=<id>]`` → ``text/event-stream``: unnamed events
  ``{"delta": "<text>"}``, ``event: tool`` ``{"tool_name", "status": "started"|"finished", "label"}``, then
  either ``{"done": true, "conversation": "<id>"}`` (with ``"final"`` when the completed answer differs from the
  streamed text) or ``event: error`` ``{"error": "<readable>"}``, and the stream ends. ``: keep-alive`` comments
  while nothing else is sent (tools running, a slow model). A client that disconnects cancels the run.
  ``file_path`` → 400; unknown dataset → 404. A chart the agent draws (``make_chart``) is ``event: chart``
  ``{"url": "/api/charts/<id>.png", "alt", "title"}``, sent when the tool finishes.
- ``GET /api/files/<id>/chart`` → the report's bridge chart ``{"url", "alt", "title"}`` (drawn once per dataset,
  off the loop), 404 for an unknown dataset, 422 ``{"error"}`` when there is nothing to chart.
  ``GET /api/charts/<id>.png`` → the PNG (bounded store, :mod:`bot.web.charts`), or 404 once it has gone.

Every ``/api/`` request is checked here: the access token when one is set (``Authorization: Bearer`` or
``?token=``), same-origin only (a page on another site cannot drive the chat), and, when no token is set, a
loopback ``Host`` (a DNS-rebinding page cannot either). Answers are admitted by :mod:`bot.limits` per client
address; every outgoing text passes through :func:`bot.textfilter.neutralise` (:mod:`bot.web.stream`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import importlib
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiohttp import web

from analyst.context import AnalysisContext
from analyst.events import AnalystEvent, Done, Failed, FailureKind, TextDelta, ToolFinished, ToolStarted
from bot.config import conversation_store, worker_pool
from bot.conversations import ConversationStore
from bot.files import WorkerPool, reader_failed
from bot.limits import Limits, RunLimits
from bot.logs import log_line
from bot.textfilter import neutralise
from bot.web.charts import ChartStore
from bot.web.settings import WebSettings, is_loopback
from bot.web.stream import KEEP_ALIVE, InertText, sse_frame
from bot.web.uploads import UploadRejected, UploadResult, read_upload, receive_upload
from bot.workers import PoolClosed, WorkerFailed

if TYPE_CHECKING:
    from analyst.agent import AnalystRun

log = logging.getLogger("variance.web")

STATIC_DIR = Path(__file__).parent / "static"
SCOPE = "web"
MAX_QUESTION_CHARS = 4000
_ID = re.compile(r"[0-9a-f]{32}")
_STOP_GRACE_S = 5.0
PURGE_INTERVAL_S = 3600.0

SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache, no-store",
    "X-Accel-Buffering": "no",  # proxies must pass each event on at once
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the page's address may carry the token
    "X-Frame-Options": "DENY",
}

FILE_PATH_REFUSED = (
    "file_path is not accepted: the server never reads its own files for a request. "
    "Upload the file (POST /api/files) and pass the dataset id it returns."
)
UNKNOWN_DATASET = "I don't have that file any more (the server restarted, or it was idle too long). Upload it again."
NO_DATASET = "Upload a budget-vs-actual CSV or XLSX first, then ask about it (the dataset parameter is missing)."
NO_MESSAGE = "Ask a question: the message parameter is empty."
BAD_CONVERSATION = "conversation must be the id that an earlier answer's done event gave."
RESTARTING = "The web chat is restarting, so I stopped here. Please ask again in a minute."
INTERNAL_ERROR = "Something went wrong on my side and I stopped. Please try again."
TOKEN_NEEDED = (
    "This chat needs its access token: open the link with ?token=... that you were given, or send "
    "Authorization: Bearer <token>."
)


@dataclass(slots=True)
class WebState:
    """What the handlers share: settings, the datasets and conversations, the worker pool, the limits."""

    settings: WebSettings
    store: ConversationStore
    workers: WorkerPool
    limits: Limits
    owns_workers: bool
    charts: ChartStore
    runs: set[Any] = field(default_factory=set)  # the analyst runs streaming now (cancelled at shutdown)
    closing: bool = False
    purging: asyncio.Task[None] | None = None


STATE_KEY = web.AppKey("web_state", WebState)


def dataset_key(dataset_id: str) -> str:
    return f"web:dataset:{dataset_id}"


def conversation_key(conversation_id: str) -> str:
    """The conversation's key in the dataset store and in the analyst's session store (shared with the bot)."""
    return f"web:{conversation_id}"


def new_id() -> str:
    return uuid.uuid4().hex


def json_error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers or None)


def client_of(request: web.Request) -> str:
    """Whom the per-user limits count: the connecting address (forwarded headers are not trusted)."""
    return request.remote or "unknown"


# ----------------------------------------------------------------------------------------------------
# The application


def create_web_app(
    settings: WebSettings, *, workers: WorkerPool | None = None, limits: Limits | None = None
) -> web.Application:
    """The web chat's application. ``workers`` lets tests share one process pool; by default it owns one."""
    state = WebState(
        settings=settings,
        store=conversation_store(settings),
        workers=workers or worker_pool(settings),
        limits=limits or RunLimits(settings.limits),
        owns_workers=workers is None,
        charts=ChartStore(settings.chart_memory_bytes),
    )
    app = web.Application(middlewares=[_guard], client_max_size=1024 * 1024)
    app[STATE_KEY] = state
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/", index)
    app.router.add_static("/static/", STATIC_DIR, show_index=False, follow_symlinks=False)
    app.router.add_post("/api/files", upload)
    app.router.add_get("/api/files/{dataset}", dataset_info)
    app.router.add_get("/api/files/{dataset}/chart", report_chart)
    app.router.add_get("/api/charts/{chart}.png", chart_png)
    # No HEAD: a HEAD request must never start an answer.
    app.router.add_get("/api/chat/stream", chat_stream, allow_head=False)
    app.on_response_prepare.append(_security_headers)
    app.on_startup.append(_on_startup)
    app.on_shutdown.append(_on_shutdown)
    app.on_cleanup.append(_on_cleanup)
    return app


async def _on_startup(app: web.Application) -> None:
    state = app[STATE_KEY]
    await state.workers.warm_up()
    # The agents SDK takes about 2 s to import: do it now, off the loop, not on the first question.
    await asyncio.to_thread(importlib.import_module, "analyst.agent")
    if state.settings.agent is not None:
        # The conversation memory is the Slack bot's (same file): the same retention, whichever process runs.
        await _purge_expired(state)
        state.purging = asyncio.get_running_loop().create_task(_purge_loop(state), name="web-retention")


async def _purge_expired(state: WebState) -> None:
    from analyst import memory

    agent = state.settings.agent
    if agent is None:
        return
    try:
        forgotten = await asyncio.to_thread(
            memory.purge_older_than, memory.db_path(agent.data_dir), agent.retention_days * 86400.0
        )
    except Exception as error:  # housekeeping: the next pass tries again
        log.warning("retention purge failed: %s", type(error).__name__)
        return
    if forgotten.items:
        log_line("privacy", surface="web", action="retention", items=forgotten.items)


async def _purge_loop(state: WebState) -> None:
    while True:
        await asyncio.sleep(PURGE_INTERVAL_S)
        await _purge_expired(state)


async def _on_shutdown(app: web.Application) -> None:
    """Before connections close: every streaming answer ends with an error event saying why."""
    state = app[STATE_KEY]
    state.closing = True
    for run in list(state.runs):
        run.cancel()


async def _on_cleanup(app: web.Application) -> None:
    state = app[STATE_KEY]
    if state.purging is not None:
        state.purging.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await state.purging
    if state.owns_workers:
        state.workers.shutdown()


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def _guard(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Access checks for ``/api/``, JSON errors there, and one log line per request (never the query)."""
    started = time.monotonic()
    status = 500
    try:
        if request.path.startswith("/api/"):
            refusal = _refusal(request, request.app[STATE_KEY].settings)
            if refusal is not None:
                status = refusal.status
                return refusal
        try:
            response = await handler(request)
        except web.HTTPException as error:
            if not request.path.startswith("/api/") or error.status < 400:
                raise
            response = json_error(error.status, error.reason)
        status = response.status
        return response
    except web.HTTPException as error:
        status = error.status
        raise
    except asyncio.CancelledError:
        status = 499  # the client went away (nginx's code for it)
        raise
    except Exception:
        log.exception("web request failed: %s %s", request.method, request.path)
        return json_error(500, INTERNAL_ERROR)
    finally:
        log_line(
            "request",
            surface="web",
            method=request.method,
            path=request.path,
            status=status,
            ms=round((time.monotonic() - started) * 1000, 1),
        )


def _refusal(request: web.Request, settings: WebSettings) -> web.Response | None:
    origin = request.headers.get("Origin")
    if origin is not None and urlsplit(origin).netloc != request.host:
        return json_error(403, "Requests from other sites are refused.")
    if settings.token is None:
        host = urlsplit(f"//{request.host}").hostname or ""
        if not is_loopback(host):
            return json_error(403, "Open the chat at its loopback address (127.0.0.1 or localhost).")
        return None
    if not _token_matches(request, settings.token):
        return json_error(401, TOKEN_NEEDED, **{"WWW-Authenticate": 'Bearer realm="variance-analyst"'})
    return None


def _token_matches(request: web.Request, token: str) -> bool:
    expected = token.encode()
    header = request.headers.get("Authorization", "")
    scheme, _, supplied = header.partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(supplied.strip().encode(), expected):
        return True
    return hmac.compare_digest(request.query.get("token", "").encode(), expected)


# ----------------------------------------------------------------------------------------------------
# Page, health, files


async def healthz(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    return web.json_response({"ok": True, "streams": len(state.runs), "datasets": len(state.store)})


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})


async def upload(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    admission = await state.limits.admit(SCOPE, client_of(request))
    if not admission.ok:
        wait = str(max(1, round(admission.retry_after_s)))
        return json_error(429, admission.message, **{"Retry-After": wait})
    started = time.monotonic()
    try:
        filename, content = await receive_upload(request, max_bytes=state.settings.max_file_bytes)
        try:
            result: UploadResult = await state.workers.run(
                read_upload, content, filename, state.settings.max_file_bytes
            )
        except WorkerFailed as error:  # over the time or memory limit, or lost: the reader was replaced
            status = 503 if isinstance(error, PoolClosed) else 413
            return json_error(status, neutralise(reader_failed(error, filename).user_message))
        size = len(content)
        del content
        if result.dataset is None or result.report is None:
            return json_error(422, neutralise(result.error or f"I couldn't read {filename}."))
        dataset_id = new_id()
        state.store.put(
            dataset_key(dataset_id),
            result.dataset,
            file_id=dataset_id,
            filename=filename,
            memory_bytes=result.memory_bytes,
        )
        log_line(
            "upload",
            surface="web",
            dataset=dataset_id,
            bytes=size,
            rows=result.dataset.source.data_rows,
            seconds=round(time.monotonic() - started, 3),
        )
        return web.json_response({"dataset": dataset_id, "report": result.report})
    except UploadRejected as rejected:
        log_line("upload", surface="web", outcome="rejected", status=rejected.status)
        return json_error(rejected.status, rejected.message)
    finally:
        await state.limits.release(admission)


async def dataset_info(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    dataset_id = request.match_info["dataset"]
    stored = state.store.get(dataset_key(dataset_id)) if _ID.fullmatch(dataset_id) else None
    if stored is None:
        return json_error(404, UNKNOWN_DATASET)
    return web.json_response({"dataset": dataset_id, "filename": neutralise(stored.filename)})


async def report_chart(request: web.Request) -> web.Response:
    """The bridge chart beside a fresh upload's report summary: where its PNG is and what it shows."""
    state = request.app[STATE_KEY]
    dataset_id = request.match_info["dataset"]
    stored = state.store.get(dataset_key(dataset_id)) if _ID.fullmatch(dataset_id) else None
    if stored is None:
        return json_error(404, UNKNOWN_DATASET)
    chart = await state.charts.report_chart(dataset_key(dataset_id), stored.context)
    if isinstance(chart, str):
        return json_error(422, chart)
    return web.json_response(chart.event())


async def chart_png(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    chart_id = request.match_info["chart"]
    chart = state.charts.get(chart_id) if _ID.fullmatch(chart_id) else None
    if chart is None:
        return json_error(404, "That chart is no longer available. Ask for it again.")
    # Private: the id is the only name a chart has, and the page that asked is the only one that knows it.
    return web.Response(body=chart.png, content_type="image/png", headers={"Cache-Control": "private, max-age=3600"})


# ----------------------------------------------------------------------------------------------------
# The answer stream


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
    if conversation and not _ID.fullmatch(conversation):
        return json_error(400, BAD_CONVERSATION)
    stored = state.store.get(dataset_key(dataset_id)) if _ID.fullmatch(dataset_id) else None
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
            if event.name == "make_chart" and event.ok:
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
