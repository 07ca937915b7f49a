"""The web chat's aiohttp application: its routes, start and stop, the page, uploads and charts; answers are
streamed as Server-Sent Events by :mod:`bot.web.answers`, and requests pass :mod:`bot.web.access` first.

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

Every ``/api/`` request is checked first (:mod:`bot.web.access`): the access token when one is set
(``Authorization: Bearer`` or ``?token=``), same-origin only (a page on another site cannot drive the chat), and,
when no token is set, a loopback ``Host`` (a DNS-rebinding page cannot either). Answers are admitted by
:mod:`bot.limits` per client address; every outgoing text passes through :func:`bot.textfilter.neutralise`
(:mod:`bot.web.stream`).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import time
from pathlib import Path

from aiohttp import web

from bot.config import conversation_store, worker_pool
from bot.files import WorkerPool, reader_failed
from bot.limits import Limits, RunLimits
from bot.logs import log_line
from bot.retention import purge_expired, purge_loop
from bot.textfilter import neutralise
from bot.web.access import guard, security_headers
from bot.web.answers import chat_stream
from bot.web.charts import ChartStore
from bot.web.settings import WebSettings
from bot.web.state import (
    ID_PATTERN,
    SCOPE,
    STATE_KEY,
    UNKNOWN_DATASET,
    WebState,
    client_of,
    dataset_key,
    json_error,
    new_id,
    stored_upload,
)
from bot.web.uploads import UploadRejected, UploadResult, read_upload, receive_upload
from bot.workers import PoolClosed, WorkerFailed

STATIC_DIR = Path(__file__).parent / "static"


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
    app = web.Application(middlewares=[guard], client_max_size=1024 * 1024)
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
    app.on_response_prepare.append(security_headers)
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
        await purge_expired(state)
        state.purging = asyncio.get_running_loop().create_task(purge_loop(state), name="web-retention")


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
    stored = stored_upload(state, dataset_id)
    if stored is None:
        return json_error(404, UNKNOWN_DATASET)
    return web.json_response({"dataset": dataset_id, "filename": neutralise(stored.filename)})


async def report_chart(request: web.Request) -> web.Response:
    """The bridge chart beside a fresh upload's report summary: where its PNG is and what it shows."""
    state = request.app[STATE_KEY]
    dataset_id = request.match_info["dataset"]
    stored = stored_upload(state, dataset_id)
    if stored is None:
        return json_error(404, UNKNOWN_DATASET)
    chart = await state.charts.report_chart(dataset_key(dataset_id), stored.context)
    if isinstance(chart, str):
        return json_error(422, chart)
    return web.json_response(chart.event())


async def chart_png(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    chart_id = request.match_info["chart"]
    chart = state.charts.get(chart_id) if ID_PATTERN.fullmatch(chart_id) else None
    if chart is None:
        return json_error(404, "That chart is no longer available. Ask for it again.")
    # Private: the id is the only name a chart has, and the page that asked is the only one that knows it.
    return web.Response(
        body=chart.png, content_type="image/png", headers={"Cache-Control": "private, max-age=3600"}
    )
