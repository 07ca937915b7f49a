"""The web chat's settings, read from the environment once at start; every problem is reported at once.

Environment (besides the analyst's ``OPENAI_*``, ``VARIANCE_MODEL``, ``VARIANCE_DATA_DIR``, ... read by
:meth:`analyst.agent.AgentSettings.from_env`):

- ``VARIANCE_WEB_TOKEN``: the access token. Required to bind anything but a loopback address; when set, every
  ``/api/`` request must carry it (``Authorization: Bearer <token>`` or ``?token=<token>``). At least 16
  characters.
- the variables every surface shares (:class:`bot.config.SharedSettings`): the same file, dataset, worker and
  answer limits (counted per client address), data folder and retention as the Slack bot.

Without ``OPENAI_API_KEY`` the page still uploads files and shows their report; a question then ends with an
error event saying which variable to set.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from bot.config import ConfigError, SharedSettings

TOKEN_VARIABLE = "VARIANCE_WEB_TOKEN"
MIN_TOKEN_CHARS = 16
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server reachable from this machine only."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:  # a host name (or "", every interface): it may resolve to anything
        return False


@dataclass(frozen=True, slots=True)
class WebSettings(SharedSettings):
    """The web chat's settings: where it listens, its access token, its keep-alive, and the shared ones."""

    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    token: str | None = field(default=None, repr=False)
    # PNG bytes of the charts kept for the page to fetch (each at most ~300 KB); the oldest go first.
    chart_memory_bytes: int = 32 * 1024 * 1024
    # Seconds without an event before the stream sends an SSE comment, so proxies and browsers keep it open.
    keep_alive_s: float = 15.0

    @classmethod
    def from_env(
        cls, env: Mapping[str, str] | None = None, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT
    ) -> WebSettings:
        """Read and validate; raise :class:`~bot.config.ConfigError` listing every problem (never a value)."""
        env = os.environ if env is None else env
        problems: list[str] = []

        token = env.get(TOKEN_VARIABLE, "").strip() or None
        if token is None and not is_loopback(host):
            problems.append(
                f"{TOKEN_VARIABLE} is not set: binding {host or 'every interface'} (not a loopback address) "
                "makes the chat reachable from other machines, so it needs an access token "
                f"(e.g. export {TOKEN_VARIABLE}=$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))'))"
            )
        elif token is not None and len(token) < MIN_TOKEN_CHARS:
            problems.append(f"{TOKEN_VARIABLE} is too short: use at least {MIN_TOKEN_CHARS} random characters")
        if not 0 <= port <= 65535:
            problems.append(f"--port must be between 0 and 65535, not {port}")

        # Without OPENAI_API_KEY the page still reads files; a question then says which variable to set.
        shared = SharedSettings.read(env, problems, agent="optional")

        if problems:
            raise ConfigError("cannot start the web chat:\n" + "\n".join(f"  - {p}" for p in problems))
        return cls(
            host=host,
            port=port,
            token=token,
            **shared.shared_fields(),
        )
