"""The Slack app: Bolt ``AsyncApp`` wiring, the HTTP endpoints, and ``variance-bot serve``.

- ``variance-bot serve``: Socket Mode (needs ``SLACK_APP_TOKEN``; no public URL). ``--port N`` serves
  ``GET /healthz`` there and nothing else.
- ``variance-bot serve --http --port N``: the Events API. ``POST /slack/events`` takes events, slash commands
  and interactivity; ``GET /healthz`` answers ``{"ok": true, ...}``.

Requests pass :mod:`bot.door` first (signature, then shape: 401/400, never a 500 or a traceback), then Bolt.

At start, conversation memory older than the retention period is purged; then every hour (:mod:`bot.retention`).

:func:`create_app` builds both the Bolt app and the aiohttp application; tests use it to run the real app.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response
from slack_bolt.app.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError

from bot.config import ConfigError, Mode, Settings, conversation_store, redact_url, worker_pool
from bot.conversations import Deduplicator, RunningAnswers
from bot.deps import BotDeps, new_budget
from bot.door import BadRequest, parse_request, request_fields, verify_signature
from bot.limits import RunLimits
from bot.listeners import deletions, register_all
from bot.logs import JsonAccessLogger, configure_logging, log_line, register_secrets
from bot.metrics import MeteredWebClient, Metrics
from bot.retention import purge_expired, purge_loop
from bot.shared import connect_shared_state, drain, shared_state_loop
from bot.state.redis_client import REDIS_ERRORS
from bot.stop_signals import StopSignals, cancel_and_wait
from bot.workers import WorkerPool

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
DEPS_KEY = web.AppKey("deps", BotDeps)
BOLT_KEY = web.AppKey("bolt", AsyncApp)
_DUPLICATE = "variance_duplicate"
_PURGE_KEY = web.AppKey("purge", asyncio.Task[None])
_SHARED_KEY = web.AppKey("shared", asyncio.Task[None])
METRICS_PATH = "/metrics"


def budget_queue_depth(deps: BotDeps, metrics: Metrics) -> None:
    """``budget_queue_depth{method}``: messages with an edit waiting for their workspace's budget, by method."""
    depth: dict[str, int] = {}
    for (_team, method), scheduler in deps.budget.schedulers().items():
        slots = getattr(scheduler, "_slots", {})  # the scheduler's open messages (no public count of waiting ones)
        depth[method] = depth.get(method, 0) + sum(1 for slot in slots.values() if slot.pending)
    for method, waiting in depth.items():
        metrics.queue_depth.labels(method=method).set(waiting)


def create_app(
    settings: Settings, *, workers: WorkerPool | None = None, events_endpoint: bool = True
) -> tuple[AsyncApp, web.Application]:
    """The real Bolt app and its aiohttp application (``POST /slack/events``, ``GET /healthz``).

    ``workers`` lets several apps (tests) share one process pool; by default the app owns its own.
    ``events_endpoint=False`` (Socket Mode) serves ``/healthz`` only. The shared state is ``web_app[DEPS_KEY]``.
    """
    metrics = Metrics()
    client = MeteredWebClient(token=settings.bot_token, base_url=settings.slack_api_url)
    client.metrics = metrics
    bolt = AsyncApp(
        client=client,
        signing_secret=settings.signing_secret,
        name="variance-analyst",
        # Events are acknowledged at once and answered in tasks of our own (BotDeps.spawn).
        process_before_response=False,
    )
    deps = BotDeps(
        settings=settings,
        client=client,
        store=conversation_store(settings),
        dedupe=Deduplicator(),
        running=RunningAnswers(),
        workers=workers or worker_pool(settings),
        budget=new_budget(settings),
        limits=RunLimits(settings.limits),
        metrics=metrics,
    )
    redis = connect_shared_state(deps) if settings.redis_url else None
    metrics.refreshers.append(lambda m: budget_queue_depth(deps, m))
    owns_workers = workers is None

    @bolt.middleware
    async def drop_redeliveries(body: dict[str, Any], context: Any, next: Any, request: AsyncBoltRequest) -> Any:
        """Slack redelivers events it thinks failed (X-Slack-Retry-Num): answer each event_id once."""
        # Shutting down: Slack redelivers the event (HTTP), through the load balancer, to an instance that is not.
        if not deps.accepting and body.get("type") == "event_callback":
            return BoltResponse(status=503, body="")
        event_id = body.get("event_id")
        duplicate = bool(event_id) and not await deps.dedupe.claim(f"event:{event_id}")
        context[_DUPLICATE] = duplicate
        if request.mode == "socket_mode":
            log_line("request", **request_fields(body, request), duplicate=duplicate or None)
        if duplicate:
            return BoltResponse(status=200, body="")
        return await next()

    deletions.register(bolt, deps)  # first: Bolt runs the first matching listener, and DMs take every message
    register_all(bolt, deps)

    async def slack_events(request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        raw = await request.read()
        try:
            verify_signature(settings.signing_secret, raw, request.headers)
            incoming = parse_request(raw, request)
        except BadRequest as refused:
            log_line(
                "request",
                status=refused.status,
                refused=refused.reason,
                bytes=len(raw),
                ms=round((time.monotonic() - started) * 1000, 1),
            )
            return web.json_response({"ok": False, "error": refused.reason}, status=refused.status)
        try:
            bolt_response = await bolt.async_dispatch(incoming)
        except Exception as error:  # Bolt answers its own errors; this is the last line of defence
            log_line("error", where="dispatch", error=type(error).__name__)
            bolt_response = BoltResponse(status=500, body="")
        log_line(
            "request",
            **request_fields(incoming.body, incoming),
            status=bolt_response.status,
            ms=round((time.monotonic() - started) * 1000, 1),
            duplicate=incoming.context.get(_DUPLICATE) or None,
        )
        return await to_aiohttp_response(bolt_response)

    async def healthz(request: web.Request) -> web.Response:
        body = {"ok": deps.accepting, "running_answers": len(deps.running), "datasets": len(deps.store)}
        return web.json_response(body, status=200 if deps.accepting else 503)

    async def on_startup(web_app: web.Application) -> None:
        await purge_expired(deps)  # before the first request: nothing past its retention is ever served
        web_app[_PURGE_KEY] = asyncio.get_running_loop().create_task(purge_loop(deps), name="retention")
        try:
            await deps.registry.start()
        except REDIS_ERRORS as error:  # Redis down at start: run, degraded, without it
            log_line("error", where="stop_listener", error=type(error).__name__)
        web_app[_SHARED_KEY] = asyncio.get_running_loop().create_task(shared_state_loop(deps), name="shared-state")
        await deps.workers.warm_up()

    async def on_cleanup(web_app: web.Application) -> None:
        await cancel_and_wait([web_app.get(_PURGE_KEY), web_app.get(_SHARED_KEY)])
        await deps.close(shutdown_workers=owns_workers)
        await deps.registry.aclose()
        if redis is not None:
            await redis.aclose()

    web_app = web.Application(client_max_size=2 * 1024 * 1024)
    web_app[DEPS_KEY] = deps
    web_app[BOLT_KEY] = bolt
    if events_endpoint:
        web_app.router.add_post(EVENTS_PATH, slack_events)
    web_app.router.add_get(HEALTH_PATH, healthz)
    web_app.router.add_get(METRICS_PATH, metrics.handle)
    web_app.on_startup.append(on_startup)
    web_app.on_cleanup.append(on_cleanup)
    return bolt, web_app


# ----------------------------------------------------------------------------------------------------
# variance-bot serve


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="variance-bot serve",
        description="Run the Slack bot: Socket Mode with SLACK_APP_TOKEN (default), or the Events API over HTTP.",
    )
    parser.add_argument("--http", action="store_true", help="serve the Events API (POST /slack/events) over HTTP")
    parser.add_argument("--port", type=int, default=None, help="HTTP port (default 3000 with --http)")
    parser.add_argument("--host", default="0.0.0.0", help="HTTP host to bind (default 0.0.0.0)")
    return parser


def cli_main(argv: Sequence[str] | None = None) -> int:
    """``variance-bot serve [--http] [--port N] [--host H]``; returns the process exit code."""
    args = _parser().parse_args(list(argv or []))
    mode: Mode = "http" if args.http else "socket"
    try:
        settings = Settings.from_env(mode=mode)
    except ConfigError as error:
        print(f"variance-bot serve: {error}", file=sys.stderr)
        return 2
    configure_logging()
    model_key = settings.agent.api_key if settings.agent else None
    register_secrets([settings.bot_token, settings.signing_secret, settings.app_token, model_key])
    port = args.port if args.port is not None else (3000 if args.http else None)
    try:
        return asyncio.run(serve(settings, http=args.http, host=args.host, port=port))
    except KeyboardInterrupt:
        return 0


async def serve(
    settings: Settings, *, http: bool, host: str, port: int | None, stop: asyncio.Event | None = None
) -> int:
    """Run until SIGINT/SIGTERM (or ``stop`` is set); running answers end in a final state on the way out."""
    bolt, web_app = create_app(settings, events_endpoint=http)
    try:
        identity = await bolt.client.auth_test()
    except SlackApiError as error:
        print(
            f"variance-bot serve: Slack refused SLACK_BOT_TOKEN ({error.response.get('error')}); "
            "check the token and that the app is installed in the workspace.",
            file=sys.stderr,
        )
        return 2
    except Exception as error:
        print(
            f"variance-bot serve: cannot reach Slack at {redact_url(settings.slack_api_url)} "
            f"({type(error).__name__})",
            file=sys.stderr,
        )
        return 2

    signals = StopSignals(stop)
    runner = web.AppRunner(web_app, access_log_class=JsonAccessLogger, access_log=logging.getLogger("aiohttp.access"))
    await runner.setup()  # starts the worker processes (on_startup)
    # Move everything loaded so far (agents SDK, pandas, Slack clients) out of the collector's way, so a full
    # collection later walks only live request data and does not pause the event loop for long.
    gc.freeze()
    handler: Any = None
    try:
        if port is not None:
            await web.TCPSite(runner, host, port).start()
        if not http:
            from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler

            handler = AsyncSocketModeHandler(bolt, settings.app_token)
            await handler.connect_async()
        log_line(
            "start",
            mode="http" if http else "socket",
            port=port,
            team=identity.get("team_id"),
            bot_user=identity.get("user_id"),
        )
        await signals.event.wait()
    finally:
        signals.remove()
        deps = web_app[DEPS_KEY]
        deps.accepting = False  # new events go to the other instances from now on
        if handler is not None:
            await handler.close_async()
        await drain(deps, settings.shutdown_grace_s)
        await runner.cleanup()
    return 0
