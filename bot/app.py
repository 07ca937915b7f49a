"""The Slack app: Bolt ``AsyncApp`` wiring, the HTTP endpoints, and ``variance-bot serve``.

- ``variance-bot serve``: Socket Mode (needs ``SLACK_APP_TOKEN``; no public URL). ``--port N`` also serves
  ``GET /healthz`` there.
- ``variance-bot serve --http --port N``: the Events API. ``POST /slack/events`` takes events, slash commands
  and interactivity (Bolt checks every request's signature and rejects stale ones with 401);
  ``GET /healthz`` answers ``{"ok": true, ...}``.

:func:`create_app` builds both the Bolt app and the aiohttp application; tests use it to run the real app.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import signal
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
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import ConfigError, Mode, Settings
from bot.conversations import ConversationStore, Deduplicator, RunningAnswers
from bot.deps import BotDeps, new_budget
from bot.files import WorkerPool, worker_count
from bot.listeners import register_all
from bot.logs import configure_logging, log_line

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/healthz"
DEPS_KEY = web.AppKey("deps", BotDeps)
BOLT_KEY = web.AppKey("bolt", AsyncApp)
_DUPLICATE = "variance_duplicate"


def create_app(settings: Settings, *, workers: WorkerPool | None = None) -> tuple[AsyncApp, web.Application]:
    """The real Bolt app and its aiohttp application (``POST /slack/events``, ``GET /healthz``).

    ``workers`` lets several apps (tests) share one process pool; by default the app owns its own.
    The shared state is ``web_app[DEPS_KEY]``.
    """
    client = AsyncWebClient(token=settings.bot_token, base_url=settings.slack_api_url)
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
        store=ConversationStore(
            memory_cap_bytes=settings.dataset_memory_bytes, idle_seconds=settings.dataset_idle_seconds
        ),
        dedupe=Deduplicator(),
        running=RunningAnswers(),
        workers=workers or WorkerPool(worker_count(settings.workers)),
        budget=new_budget(settings),
    )
    owns_workers = workers is None

    @bolt.middleware
    async def drop_redeliveries(body: dict[str, Any], context: Any, next: Any, request: AsyncBoltRequest) -> Any:
        """Slack redelivers events it thinks failed (X-Slack-Retry-Num): answer each event_id once."""
        event_id = body.get("event_id")
        duplicate = bool(event_id) and not deps.dedupe.first_time(f"event:{event_id}")
        context[_DUPLICATE] = duplicate
        if request.mode == "socket_mode":
            log_line("request", **_request_fields(body, request), duplicate=duplicate or None)
        if duplicate:
            return BoltResponse(status=200, body="")
        return await next()

    register_all(bolt, deps)

    async def slack_events(request: web.Request) -> web.Response:
        started = time.monotonic()
        bolt_request = AsyncBoltRequest(
            body=await request.text(),
            query=request.query_string,
            headers=request.headers,  # type: ignore[arg-type]
        )
        bolt_response = await bolt.async_dispatch(bolt_request)
        log_line(
            "request",
            **_request_fields(bolt_request.body, bolt_request),
            status=bolt_response.status,
            ms=round((time.monotonic() - started) * 1000, 1),
            duplicate=bolt_request.context.get(_DUPLICATE) or None,
        )
        return await to_aiohttp_response(bolt_response)

    async def healthz(request: web.Request) -> web.Response:
        body = {"ok": True, "running_answers": len(deps.running), "datasets": len(deps.store)}
        return web.json_response(body)

    async def on_startup(web_app: web.Application) -> None:
        await deps.workers.warm_up()

    async def on_cleanup(web_app: web.Application) -> None:
        await deps.close(shutdown_workers=owns_workers)

    web_app = web.Application(client_max_size=2 * 1024 * 1024)
    web_app[DEPS_KEY] = deps
    web_app[BOLT_KEY] = bolt
    web_app.router.add_post(EVENTS_PATH, slack_events)
    web_app.router.add_get(HEALTH_PATH, healthz)
    web_app.on_startup.append(on_startup)
    web_app.on_cleanup.append(on_cleanup)
    return bolt, web_app


def _request_fields(body: dict[str, Any], request: AsyncBoltRequest) -> dict[str, Any]:
    event = body.get("event") or {}
    team = body.get("team_id") or (body.get("team") or {}).get("id") or event.get("team")
    channel = event.get("channel") or body.get("channel_id") or (body.get("channel") or {}).get("id")
    retry = request.headers.get("x-slack-retry-num", [None])[0]
    return {
        "type": body.get("type") or ("command" if body.get("command") else None),
        "event": event.get("type"),
        "subtype": event.get("subtype"),
        "command": body.get("command"),
        "team": team,
        "channel": channel,
        "event_id": body.get("event_id"),
        "retry": retry,
        "retry_reason": request.headers.get("x-slack-retry-reason", [None])[0],
    }


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
    port = args.port if args.port is not None else (3000 if args.http else None)
    try:
        return asyncio.run(serve(settings, http=args.http, host=args.host, port=port))
    except KeyboardInterrupt:
        return 0


async def serve(
    settings: Settings, *, http: bool, host: str, port: int | None, stop: asyncio.Event | None = None
) -> int:
    """Run until SIGINT/SIGTERM (or ``stop`` is set); running answers end in a final state on the way out."""
    bolt, web_app = create_app(settings)
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
        print(f"variance-bot serve: cannot reach Slack at {settings.slack_api_url} ({error})", file=sys.stderr)
        return 2

    loop = asyncio.get_running_loop()
    signals: list[signal.Signals] = []
    if stop is None:
        stop = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
            signals.append(signum)

    runner = web.AppRunner(web_app, access_log=None)
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
        await stop.wait()
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
        if handler is not None:
            await handler.close_async()
        await runner.cleanup()
    return 0
