"""``variance-bot web [--host H] [--port N]``: serve the web chat until SIGINT/SIGTERM.

Binds ``127.0.0.1:8080`` by default. Any other (non-loopback) address needs ``VARIANCE_WEB_TOKEN``; without it the
command refuses to start and names the variable (exit code 2).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
from collections.abc import Sequence

from aiohttp import web

from bot.config import ConfigError
from bot.logs import configure_logging, log_line
from bot.stop_signals import StopSignals
from bot.web.settings import DEFAULT_HOST, DEFAULT_PORT, TOKEN_VARIABLE, WebSettings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="variance-bot web",
        description=(
            "Serve the web chat: upload a budget-vs-actual file, see its report, ask the analyst. "
            f"A non-loopback --host needs {TOKEN_VARIABLE}."
        ),
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST})")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    return parser


def cli_main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(argv or []))
    try:
        settings = WebSettings.from_env(host=args.host, port=args.port)
    except ConfigError as error:
        print(f"variance-bot web: {error}", file=sys.stderr)
        return 2
    configure_logging()
    if settings.agent is None or settings.agent.api_key is None:
        print(
            "variance-bot web: OPENAI_API_KEY is not set: files and reports work, questions will say so.",
            file=sys.stderr,
        )
    try:
        return asyncio.run(serve(settings))
    except KeyboardInterrupt:
        return 0


async def serve(settings: WebSettings, *, stop: asyncio.Event | None = None) -> int:
    """Run until SIGINT/SIGTERM (or ``stop`` is set); streaming answers end with an error event on the way out."""
    from bot.web.app import create_web_app

    signals = StopSignals(stop)
    # handler_cancellation: a browser that goes away cancels its answer at once, not at the next write.
    runner = web.AppRunner(
        create_web_app(settings), access_log=None, handler_cancellation=True, shutdown_timeout=10
    )
    await runner.setup()
    gc.freeze()  # what is loaded now (agents SDK, pandas) stays out of the collector's way
    try:
        try:
            site = web.TCPSite(runner, settings.host, settings.port)
            await site.start()
        except OSError as error:
            print(
                f"variance-bot web: cannot listen on {settings.host}:{settings.port} ({error.strerror or error})",
                file=sys.stderr,
            )
            return 2
        address = f"http://{_url_host(settings.host)}:{runner.addresses[0][1]}/"
        log_line("start", surface="web", url=address, token_required=settings.token is not None)
        print(f"variance-bot web: open {address}" + ("?token=..." if settings.token else ""), file=sys.stderr)
        await signals.event.wait()
    finally:
        signals.remove()
        await runner.cleanup()
    return 0


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host and not host.startswith("[") else host
