"""``variance-bot teams``: the Teams bot on aiohttp, with the Teams SDK plugged in through ``HttpServerAdapter``.

- ``POST /api/messages``: Bot Framework activities. The bearer token is checked first
  (:class:`bot.teams.auth.InboundAuth`): anything not from the Bot Framework for this bot is 401, before the
  activity is parsed, with no model call and no outbound call. A valid activity goes to the SDK's own activity
  processing (``HttpServer.on_request``), whose message handler (:mod:`bot.teams.handlers`) starts the answer in a
  task and returns, so Teams gets its 200 at once.
- ``GET /healthz``: 200 ``{"ok": true, ...}`` once the signing keys are loaded, 503 before.

:func:`create_teams_app` builds everything; tests and the benchmark run it for real against a fake Teams.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
from aiohttp import web

from bot.config import ConfigError, conversation_store, worker_pool
from bot.conversations import Deduplicator
from bot.files import WorkerPool
from bot.limits import RunLimits
from bot.logs import configure_logging, log_line
from bot.retention import purge_expired, purge_loop, retention_seconds
from bot.state.call_log import SharedCallLog
from bot.state.claims import RedisClaims
from bot.state.limits import LIMIT_LEASE_S, RedisLimits
from bot.state.memory import RedisSessions
from bot.state.redis_client import connect, redacted
from bot.state.teams_datasets import RedisTeamsSources
from bot.stop_signals import StopSignals, cancel_and_wait
from bot.teams.auth import BotTokenSource, InboundAuth, TokenError, Unauthorized, trust_context
from bot.teams.handlers import TeamsDeps, register
from bot.teams.pacing import (
    JITTER_MARGIN_S,
    TEAMS_LIMITS,
    ConversationPacer,
    Pacer,
    SharedConversationPacer,
    ThrottleMiddleware,
)
from bot.teams.sdk import build_app
from bot.teams.settings import TeamsSettings

MESSAGES_PATH = "/api/messages"
HEALTH_PATH = "/healthz"
MAX_ACTIVITY_BYTES = 1024 * 1024

Handler = Callable[[Any], Awaitable[Any]]


class AiohttpAdapter:
    """The SDK's ``HttpServerAdapter`` on our aiohttp application: routes the SDK registers are kept here and
    served by :class:`TeamsServer` (the messaging endpoint behind our token check)."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Handler] = {}

    def register_route(self, method: str, path: str, handler: Handler) -> None:
        self.routes[(method.upper(), path)] = handler

    def serve_static(self, path: str, directory: str) -> None:  # the bot serves no pages
        return None

    async def start(self, port: int) -> None:
        raise NotImplementedError("variance-bot teams runs the aiohttp server itself")

    async def stop(self) -> None:
        return None


@dataclass(slots=True)
class TeamsServer:
    settings: TeamsSettings
    deps: TeamsDeps
    sdk: Any  # microsoft_teams.apps.App
    auth: InboundAuth
    tokens: BotTokenSource
    pacer: Pacer
    web_app: web.Application
    rejected: int = 0


TEAMS_KEY = web.AppKey("teams", TeamsServer)


async def _sdk_process(sdk: Any, body: dict[str, Any], raw_token: str) -> Any:
    """Hand an authenticated activity to the SDK's activity pipeline (routing, context, handlers)."""
    from microsoft_teams.api.auth.json_web_token import JsonWebToken
    from microsoft_teams.apps.events import ActivityEvent, CoreActivity

    event = ActivityEvent(body=CoreActivity.model_validate(body), token=JsonWebToken(raw_token))
    return await sdk.server.on_request(event)


def create_teams_app(settings: TeamsSettings, *, workers: WorkerPool | None = None) -> TeamsServer:
    ssl_context = trust_context(settings.ca_files)
    deps = TeamsDeps(
        settings=settings,
        store=conversation_store(settings),
        dedupe=Deduplicator(),
        limits=RunLimits(settings.limits),
        workers=workers or worker_pool(settings),
        ssl_context=ssl_context,
    )
    owns_workers = workers is None
    purging: list[asyncio.Task[None]] = []
    shared = connect_shared_state(deps) if settings.redis_url else None
    auth = InboundAuth(settings, lambda: deps.http)
    tokens = BotTokenSource(settings, lambda: deps.http)
    pacer: Pacer = ConversationPacer()
    if shared is not None:
        calls = SharedCallLog(shared, f"teams:{settings.app_id}", TEAMS_LIMITS, margin_s=JITTER_MARGIN_S)
        pacer = SharedConversationPacer(calls)
    adapter = AiohttpAdapter()
    sdk = build_app(
        settings, token=tokens, throttle=ThrottleMiddleware(pacer), adapter=adapter, ssl_context=ssl_context
    )
    register(sdk, deps)
    web_app = web.Application(client_max_size=MAX_ACTIVITY_BYTES)
    server = TeamsServer(settings, deps, sdk, auth, tokens, pacer, web_app)
    web_app[TEAMS_KEY] = server

    async def messages(request: web.Request) -> web.Response:
        started = time.monotonic()
        try:
            body = await request.json()
        except (ValueError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):
            return web.json_response({"error": "Bad Request"}, status=400)
        authorization = request.headers.get("Authorization")
        try:
            await auth.check(authorization, body)
        except Unauthorized as refused:
            server.rejected += 1
            log_line("request", surface="teams", status=401, reason=refused.reason, activity=str(body.get("id")))
            return web.json_response({"error": "Unauthorized"}, status=401)
        assert authorization is not None
        try:
            result = await _sdk_process(sdk, body, authorization[len("Bearer ") :].strip())
        except Exception as error:
            log_line("request", surface="teams", status=500, error=type(error).__name__)
            return web.json_response({"error": "Internal server error"}, status=500)
        status, payload = _response_of(result)
        log_line(
            "request",
            surface="teams",
            status=status,
            type=body.get("type"),
            activity=str(body.get("id")),
            ms=round((time.monotonic() - started) * 1000, 1),
        )
        if payload is None:
            return web.Response(status=status)
        return web.json_response(payload, status=status)

    async def healthz(request: web.Request) -> web.Response:
        body = {
            "ok": auth.ready,
            "running_answers": len(deps.tasks),
            "datasets": len(deps.store),
            "throttled": pacer.stats.throttled,
        }
        return web.json_response(body, status=200 if auth.ready else 503)

    async def on_startup(web_app: web.Application) -> None:
        await sdk.initialize()
        try:
            await auth.refresh()
        except Exception as error:  # healthz says 503 until a later refresh works
            log_line("error", surface="teams", error=f"keys:{type(error).__name__}")
        # The Slack bot's retention on the same data folder: nothing past it is ever served, whichever bot runs.
        await purge_expired(deps)
        purging.append(asyncio.get_running_loop().create_task(purge_loop(deps), name="teams-retention"))
        if isinstance(deps.limits, RedisLimits):
            renewing = renew_loop(deps.limits)
            purging.append(asyncio.get_running_loop().create_task(renewing, name="teams-limit-leases"))
        await deps.workers.warm_up()

    async def on_cleanup(web_app: web.Application) -> None:
        await cancel_and_wait(purging)
        await deps.close(shutdown_workers=owns_workers)
        await sdk.http_client.http.aclose()
        if shared is not None:
            await shared.aclose()

    web_app.router.add_post(MESSAGES_PATH, messages)
    web_app.router.add_get(HEALTH_PATH, healthz)
    web_app.on_startup.append(on_startup)
    web_app.on_cleanup.append(on_cleanup)
    return server


def connect_shared_state(deps: TeamsDeps) -> aioredis.Redis:
    """Several instances (``REDIS_URL``): share the dedupe, the limits and the conversation memory (the same
    ``bot.state`` pieces as the Slack bot's), and each conversation's dataset source (a follow-up that reaches an
    instance without the file reads it again from Teams' link). :func:`create_teams_app` shares the pacing too
    (:class:`bot.teams.pacing.SharedConversationPacer`): one call log and one 429 pause per conversation."""
    assert deps.settings.redis_url is not None
    client = connect(deps.settings.redis_url)
    deps.dedupe = RedisClaims(client)
    deps.limits = RedisLimits(client, deps.settings.limits, lease_s=LIMIT_LEASE_S)
    deps.sessions = RedisSessions(client, ttl_seconds=retention_seconds(deps))
    source_ttl = min(deps.settings.dataset_max_age_seconds, retention_seconds(deps))
    deps.sources = RedisTeamsSources(client, ttl_seconds=source_ttl)
    log_line("shared_state", surface="teams", redis=redacted(deps.settings.redis_url))
    return client


async def renew_loop(limits: RedisLimits) -> None:
    """Renew the leases of this instance's running answers' limit slots, until cancelled."""
    while True:
        await asyncio.sleep(LIMIT_LEASE_S / 4)
        await limits.renew()


def _response_of(result: Any) -> tuple[int, Any]:
    data = result.model_dump(exclude_none=True) if hasattr(result, "model_dump") else result
    if isinstance(data, dict):
        return int(data.get("status", 200) or 200), data.get("body")
    return 200, None


# ----------------------------------------------------------------------------------------------------
# variance-bot teams


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="variance-bot teams",
        description="Run the Teams bot: POST /api/messages (Bot Framework activities) and GET /healthz.",
    )
    parser.add_argument("--port", type=int, default=3978, help="HTTP port (default 3978)")
    parser.add_argument("--host", default="0.0.0.0", help="HTTP host to bind (default 0.0.0.0)")
    return parser


def cli_main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(argv or []))
    try:
        settings = TeamsSettings.from_env()
    except ConfigError as error:
        print(f"variance-bot teams: {error}", file=sys.stderr)
        return 2
    configure_logging()
    try:
        return asyncio.run(serve(settings, host=args.host, port=args.port))
    except KeyboardInterrupt:
        return 0


async def serve(settings: TeamsSettings, *, host: str, port: int, stop: asyncio.Event | None = None) -> int:
    """Run until SIGINT/SIGTERM (or ``stop``); the bot's credentials are checked before it listens."""
    server = create_teams_app(settings)
    try:
        await server.tokens.get()
    except TokenError as error:
        print(
            f"variance-bot teams: {error}; check TEAMS_APP_ID, TEAMS_APP_PASSWORD and TEAMS_TENANT_ID.", file=sys.stderr
        )
        await server.deps.close()
        return 2
    signals = StopSignals(stop)
    runner = web.AppRunner(server.web_app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        log_line("start", surface="teams", port=port, app_id=settings.app_id, keys=server.auth.ready)
        await signals.event.wait()
    finally:
        signals.remove()
        await runner.cleanup()
    return 0
