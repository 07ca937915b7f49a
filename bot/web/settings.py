"""The web chat's settings, read from the environment once at start; every problem is reported at once.

Environment (besides the analyst's ``OPENAI_*``, ``VARIANCE_MODEL``, ``VARIANCE_DATA_DIR``, ... read by
:meth:`analyst.agent.AgentSettings.from_env`):

- ``VARIANCE_WEB_TOKEN``: the access token. Required to bind anything but a loopback address; when set, every
  ``/api/`` request must carry it (``Authorization: Bearer <token>`` or ``?token=<token>``). At least 16
  characters.
- ``VARIANCE_MAX_FILE_MB`` (50), ``VARIANCE_DATASET_MEMORY_MB`` (1024), ``VARIANCE_DATASET_IDLE_MINUTES`` (120),
  ``VARIANCE_DATASET_MAX_HOURS`` (24), ``VARIANCE_WORKERS`` (2): the same file, memory and worker limits as the
  Slack bot; ``VARIANCE_USER_MAX_RUNNING`` (2), ``VARIANCE_USER_QUESTIONS_PER_MIN`` (10),
  ``VARIANCE_WORKSPACE_MAX_RUNNING`` (20): the same answer limits (0 turns one off), per client address.

Without ``OPENAI_API_KEY`` the page still uploads files and shows their report; a question then ends with an
error event saying which variable to set.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.config import ConfigError
from bot.limits import LimitSettings

if TYPE_CHECKING:
    from analyst.agent import AgentSettings

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
class WebSettings:
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    token: str | None = field(default=None, repr=False)
    max_file_bytes: int = 50 * 1024 * 1024
    dataset_memory_bytes: int = 1024 * 1024 * 1024
    dataset_idle_seconds: float = 120 * 60.0
    dataset_max_age_seconds: float = 24 * 3600.0
    # PNG bytes of the charts kept for the page to fetch (each at most ~300 KB); the oldest go first.
    chart_memory_bytes: int = 32 * 1024 * 1024
    workers: int = 2
    limits: LimitSettings = field(default_factory=LimitSettings)
    # Seconds without an event before the stream sends an SSE comment, so proxies and browsers keep it open.
    keep_alive_s: float = 15.0
    agent: AgentSettings | None = None

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

        def number(name: str, default: float, *, minimum: float) -> float:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            try:
                value = float(raw)
            except ValueError:
                problems.append(f"{name} must be a number, got {raw!r}")
                return default
            if value < minimum:
                problems.append(f"{name} must be at least {minimum:g}, got {raw!r}")
                return default
            return value

        max_file_mb = number("VARIANCE_MAX_FILE_MB", 50, minimum=0.001)
        memory_mb = number("VARIANCE_DATASET_MEMORY_MB", 1024, minimum=1)
        idle_minutes = number("VARIANCE_DATASET_IDLE_MINUTES", 120, minimum=0.01)
        max_hours = number("VARIANCE_DATASET_MAX_HOURS", 24, minimum=0.001)
        workers = number("VARIANCE_WORKERS", 2, minimum=1)

        def count(name: str, default: int) -> int:
            raw = env.get(name, "").strip()
            if not raw:
                return default
            if not raw.isdigit():
                problems.append(f"{name} must be a whole number (0 turns the limit off), got {raw[:40]!r}")
                return default
            return int(raw)

        defaults = LimitSettings()
        limits = LimitSettings(
            user_max_running=count("VARIANCE_USER_MAX_RUNNING", defaults.user_max_running),
            user_questions_per_min=count("VARIANCE_USER_QUESTIONS_PER_MIN", defaults.user_questions_per_min),
            workspace_max_running=count("VARIANCE_WORKSPACE_MAX_RUNNING", defaults.workspace_max_running),
        )

        agent = None
        try:
            from analyst.agent import AgentSettings

            agent = AgentSettings.from_env(env)
        except Exception as error:  # a malformed model setting: say which, without values
            problems.append(f"the analyst's model settings are invalid: {error}")

        if problems:
            raise ConfigError("cannot start the web chat:\n" + "\n".join(f"  - {p}" for p in problems))
        return cls(
            host=host,
            port=port,
            token=token,
            max_file_bytes=int(max_file_mb * 1024 * 1024),
            dataset_memory_bytes=int(memory_mb * 1024 * 1024),
            dataset_idle_seconds=idle_minutes * 60.0,
            dataset_max_age_seconds=max_hours * 3600.0,
            workers=int(workers),
            limits=limits,
            agent=agent,
        )
