"""Access to the web chat: every ``/api/`` request is checked (token, same origin, loopback ``Host``), errors
there are JSON, every response carries the security headers, and every request is one log line (never its query).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web

from bot.logs import log_line
from bot.web.settings import WebSettings, is_loopback
from bot.web.state import INTERNAL_ERROR, STATE_KEY, json_error

log = logging.getLogger("variance.web")

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the page's address may carry the token
    "X-Frame-Options": "DENY",
}

TOKEN_NEEDED = (
    "This chat needs its access token: open the link with ?token=... that you were given, or send "
    "Authorization: Bearer <token>."
)


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
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
