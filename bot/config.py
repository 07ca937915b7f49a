"""The bot's settings, read from the environment once at start and validated before anything connects.

Everything has a default except the credentials. :meth:`Settings.from_env` raises :class:`ConfigError` naming
every missing or malformed variable at once (never their values: a value may be a secret set in the wrong
variable, so no message or log shows one).

Environment
-----------
- ``SLACK_BOT_TOKEN`` (``xoxb-...``): always required.
- ``SLACK_SIGNING_SECRET``: required in HTTP mode (``serve --http``), to check every request's signature.
- ``SLACK_APP_TOKEN`` (``xapp-...``): required in Socket Mode (the default ``serve``).
- ``SLACK_API_URL``: the Web API base URL, default ``https://slack.com/api/`` (tests point it at a fake).
- ``VARIANCE_EDIT_INTERVAL_S`` (1.0): at most one edit of a message per this many seconds.
- ``VARIANCE_UPDATE_BUDGET_PER_MIN`` (45): ``chat.update`` calls per minute per workspace, for all answers.
- ``VARIANCE_ALLOWED_TEAMS``, ``VARIANCE_ALLOWED_CHANNELS``, ``VARIANCE_ALLOWED_USERS``: comma-separated Slack
  IDs (``T…``, ``C…``/``G…``, ``U…``/``W…``); empty allows everyone. ``dm`` in the channel list allows direct
  messages too (a channel list without it refuses them). Anyone else gets a polite refusal.
- ``REDIS_URL`` (optional): state shared by several instances (dedupe, limits, the Slack budget, running answers,
  dataset sources, conversation memory). Without it everything lives in this process, as for one instance.
- ``VARIANCE_SHUTDOWN_GRACE_S`` (20): on SIGTERM, how long running answers may go on finishing before they end
  with a note to ask again (and, with ``REDIS_URL``, are handed to another instance if that note fails).
- ``VARIANCE_INSTANCE_ID``: this instance's name in Redis (default: host name, process id and a random suffix).
- the analyst's model settings (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``, ``VARIANCE_MODEL``, ...), read by
  :meth:`analyst.agent.AgentSettings.from_env`; ``OPENAI_API_KEY`` is required by ``serve``.

Shared by every surface (Slack, Teams, the web chat), read by :meth:`SharedSettings.read` and nowhere else:

- ``VARIANCE_MAX_FILE_MB`` (50): the largest file downloaded or uploaded and read.
- ``VARIANCE_DATASET_MEMORY_MB`` (1024): the memory all kept datasets may use together; the least recently
  used conversation's dataset is dropped first.
- ``VARIANCE_DATASET_IDLE_MINUTES`` (120): a conversation's dataset is dropped after this long without use.
- ``VARIANCE_DATASET_MAX_HOURS`` (24): a dataset is dropped this long after its file was read, however used.
- ``VARIANCE_WORKERS`` (2): worker processes that read files and build reports off the event loop.
- ``VARIANCE_FILE_TIMEOUT_S`` (60): the longest one file may take to read; the reader is then stopped.
- ``VARIANCE_WORKER_MEMORY_MB`` (512): the memory each worker process may use (0: no limit).
- ``VARIANCE_USER_MAX_RUNNING`` (2), ``VARIANCE_USER_QUESTIONS_PER_MIN`` (10), ``VARIANCE_WORKSPACE_MAX_RUNNING``
  (20): answers running at once per user, questions a user may ask a minute, answers running at once per
  workspace (0 turns a limit off). A question over a limit is told when to ask again and costs no model call.
- ``VARIANCE_DATA_DIR`` and ``VARIANCE_RETENTION_DAYS`` (30), with the model settings: where conversation
  memory is kept and when it is purged (:mod:`bot.retention`); one folder for every surface.
"""

from __future__ import annotations

import math
import os
import re
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit, urlunsplit

from bot.limits import DM_KEYWORD, Allowlist, LimitSettings

if TYPE_CHECKING:
    from analyst.agent import AgentSettings
    from bot.conversations import ConversationStore
    from bot.workers import WorkerPool

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
_SLACK_ID = re.compile(r"[A-Z0-9]{2,32}")
SLACK_FILE_HOST = "files.slack.com"

Mode = Literal["socket", "http"]
# How a surface needs the analyst's model settings: with OPENAI_API_KEY, without it (a question then says which
# variable to set), or not at all (tools that never run the analyst).
AgentNeed = Literal["required", "optional", "skip"]


def _shape(raw: str) -> str:
    """What a rejected value looks like, without the value: it may be a secret pasted into the wrong variable."""
    return f"got {len(raw)} characters that are not a number"


def redact_url(url: str) -> str:
    """``url`` without its userinfo (``https://user:pass@host/`` → ``https://host/``) or query string."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    except ValueError:
        return "(an unparseable URL)"


def read_redis_url(env: Mapping[str, str], problems: list[str]) -> str | None:
    """``REDIS_URL`` (state shared by several instances), or None; a malformed one is a problem."""
    redis_url = env.get("REDIS_URL", "").strip() or None
    if redis_url is not None:
        redis_parts = urlsplit(redis_url)
        if redis_parts.scheme not in {"redis", "rediss", "unix"} or not (redis_parts.hostname or redis_parts.path):
            problems.append("REDIS_URL must be a redis://, rediss:// or unix:// URL such as redis://localhost:6379/0")
    return redis_url


def default_instance_id() -> str:
    return f"{socket.gethostname()[:40]}-{os.getpid()}-{uuid.uuid4().hex[:6]}"


class ConfigError(ValueError):
    """The environment cannot run the bot; ``str(error)`` lists every problem, one per line."""


def read_number(env: Mapping[str, str], problems: list[str], name: str, default: float, *, minimum: float) -> float:
    """``name`` as a number of at least ``minimum`` (``default`` when unset); a bad value is a problem, unshown."""
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):  # "inf" and "nan" parse, but no limit or count can be one
        problems.append(f"{name} must be a number ({_shape(raw)})")
        return default
    if value < minimum:
        problems.append(f"{name} must be at least {minimum:g}")
        return default
    return value


def _count(env: Mapping[str, str], problems: list[str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    if not (raw.isascii() and raw.isdigit()):  # "²" is a digit to str.isdigit, not to int()
        problems.append(f"{name} must be a whole number (0 turns the limit off), got {len(raw)} other characters")
        return default
    return int(raw)


@dataclass(frozen=True, slots=True, kw_only=True)
class SharedSettings:
    """What every surface reads from the same variables, so Slack, Teams and the web chat run under one set of
    rules: file size, datasets kept, worker processes and their limits, answer limits, and the analyst's model
    settings (with the data folder and the retention of conversation memory).

    Each surface's settings (:class:`Settings`, ``WebSettings``, ``TeamsSettings``) extend this class, so the
    values have one name everywhere; :meth:`read` is the only place these variables are parsed, and
    :func:`worker_pool` and :func:`conversation_store` the only places the pool and the store are built from
    them. Keyword-only, so each surface's own fields keep their positions.
    """

    max_file_bytes: int = 50 * 1024 * 1024
    dataset_memory_bytes: int = 1024 * 1024 * 1024
    dataset_idle_seconds: float = 120 * 60.0
    dataset_max_age_seconds: float = 24 * 3600.0
    workers: int = 2
    file_timeout_s: float = 60.0  # wall-clock limit of one file job in a worker
    worker_memory_mb: int = 512  # memory limit of each worker process (0: none)
    limits: LimitSettings = field(default_factory=LimitSettings)
    # Imported only when read from the environment, so that importing the config does not load the agent SDK.
    agent: AgentSettings | None = None

    @classmethod
    def read(cls, env: Mapping[str, str], problems: list[str], *, agent: AgentNeed = "required") -> SharedSettings:
        """Read the shared variables; append one line per bad variable to ``problems`` (its name, never its
        value) and use the default for it, so the caller reports every problem at once."""
        max_file_mb = read_number(env, problems, "VARIANCE_MAX_FILE_MB", 50, minimum=0.001)
        memory_mb = read_number(env, problems, "VARIANCE_DATASET_MEMORY_MB", 1024, minimum=1)
        idle_minutes = read_number(env, problems, "VARIANCE_DATASET_IDLE_MINUTES", 120, minimum=0.01)
        max_hours = read_number(env, problems, "VARIANCE_DATASET_MAX_HOURS", 24, minimum=0.001)
        workers = read_number(env, problems, "VARIANCE_WORKERS", 2, minimum=1)
        file_timeout = read_number(env, problems, "VARIANCE_FILE_TIMEOUT_S", 60, minimum=0.001)
        worker_memory = read_number(env, problems, "VARIANCE_WORKER_MEMORY_MB", 512, minimum=0)
        defaults = LimitSettings()

        def count(name: str, default: int) -> int:
            return _count(env, problems, name, default)

        limits = LimitSettings(
            user_max_running=count("VARIANCE_USER_MAX_RUNNING", defaults.user_max_running),
            user_questions_per_min=count("VARIANCE_USER_QUESTIONS_PER_MIN", defaults.user_questions_per_min),
            workspace_max_running=count("VARIANCE_WORKSPACE_MAX_RUNNING", defaults.workspace_max_running),
        )
        return cls(
            max_file_bytes=int(max_file_mb * 1024 * 1024),
            dataset_memory_bytes=int(memory_mb * 1024 * 1024),
            dataset_idle_seconds=idle_minutes * 60.0,
            dataset_max_age_seconds=max_hours * 3600.0,
            workers=int(workers),
            file_timeout_s=file_timeout,
            worker_memory_mb=int(worker_memory),
            limits=limits,
            agent=_read_agent(env, problems, agent),
        )

    def shared_fields(self) -> dict[str, Any]:
        """The shared values as keyword arguments, for a surface's settings built from them."""
        return {f.name: getattr(self, f.name) for f in fields(SharedSettings)}


def _read_agent(env: Mapping[str, str], problems: list[str], need: AgentNeed) -> AgentSettings | None:
    if need == "skip":
        return None
    if need == "required" and not env.get("OPENAI_API_KEY", "").strip():
        problems.append(
            "OPENAI_API_KEY is not set (the analyst's model key; for an OpenAI-compatible server "
            "set OPENAI_BASE_URL too)"
        )
        return None
    try:
        from analyst.agent import AgentSettings

        return AgentSettings.from_env(env)
    except Exception as error:  # a malformed model setting: say which, without values
        problems.append(f"the analyst's model settings are invalid: {error}")
        return None


def worker_pool(settings: SharedSettings) -> WorkerPool:
    """The file readers of a surface: as many processes as asked (at most one per core), each job and each
    process under the configured time and memory limits."""
    from bot.workers import WorkerPool, worker_count

    return WorkerPool(
        worker_count(settings.workers),
        job_timeout_s=settings.file_timeout_s,
        memory_limit_mb=settings.worker_memory_mb,
    )


def conversation_store(settings: SharedSettings) -> ConversationStore:
    """The datasets a surface keeps, under the shared memory cap, idle time and absolute age."""
    from bot.conversations import ConversationStore

    return ConversationStore(
        memory_cap_bytes=settings.dataset_memory_bytes,
        idle_seconds=settings.dataset_idle_seconds,
        max_age_seconds=settings.dataset_max_age_seconds,
    )


@dataclass(frozen=True, slots=True)
class Settings(SharedSettings):
    """The Slack bot's settings: its own (tokens, the Web API, edit pacing, the allowlist) and the shared ones."""

    bot_token: str
    signing_secret: str = ""
    app_token: str | None = None
    slack_api_url: str = DEFAULT_SLACK_API_URL
    edit_interval_s: float = 1.0
    update_budget_per_minute: int = 45
    allowlist: Allowlist = field(default_factory=Allowlist)
    redis_url: str | None = None
    shutdown_grace_s: float = 20.0
    instance_id: str = field(default_factory=lambda: default_instance_id())

    def __repr__(self) -> str:  # never show a token, even in a traceback or a debug print
        return (
            f"Settings(slack_api_url={redact_url(self.slack_api_url)!r}, socket_mode={self.app_token is not None}, "
            f"max_file_bytes={self.max_file_bytes}, workers={self.workers})"
        )

    @property
    def file_origins(self) -> frozenset[tuple[str, str, int]]:
        """(scheme, host, port) the bot downloads files from: Slack's file host, plus the API's own origin
        when it is not Slack's (a test server)."""
        origins = {("https", SLACK_FILE_HOST, 443)}
        api = urlsplit(self.slack_api_url)
        host = api.hostname or ""
        if host and not (host == "slack.com" or host.endswith(".slack.com")):
            origins.add((api.scheme, host, api.port or (443 if api.scheme == "https" else 80)))
        return frozenset(origins)

    @classmethod
    def from_env(
        cls,
        env: Mapping[str, str] | None = None,
        *,
        mode: Mode = "http",
        load_agent: bool = True,
    ) -> Settings:
        """Read and validate the settings; raise :class:`ConfigError` listing every problem.

        ``load_agent=False`` skips the analyst's model settings (and ``OPENAI_API_KEY``), for tools that only
        need Slack.
        """
        env = os.environ if env is None else env
        problems: list[str] = []

        def text(name: str) -> str:
            return env.get(name, "").strip()

        bot_token = text("SLACK_BOT_TOKEN")
        if not bot_token:
            problems.append("SLACK_BOT_TOKEN is not set (the bot token, xoxb-..., from OAuth & Permissions)")
        elif not bot_token.startswith("xoxb-"):
            problems.append("SLACK_BOT_TOKEN does not look like a bot token (it should start with xoxb-)")
        signing_secret = text("SLACK_SIGNING_SECRET")
        app_token = text("SLACK_APP_TOKEN") or None
        if mode == "http" and not signing_secret:
            problems.append(
                "SLACK_SIGNING_SECRET is not set (Basic Information > Signing Secret); HTTP mode needs it "
                "to verify that requests come from Slack"
            )
        if mode == "socket":
            if app_token is None:
                problems.append(
                    "SLACK_APP_TOKEN is not set (an app-level token, xapp-..., with connections:write); "
                    "Socket Mode needs it, or run 'variance-bot serve --http --port N'"
                )
            elif not app_token.startswith("xapp-"):
                problems.append("SLACK_APP_TOKEN does not look like an app-level token (it should start with xapp-)")

        api_url = text("SLACK_API_URL") or DEFAULT_SLACK_API_URL
        parts = urlsplit(api_url)
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            problems.append("SLACK_API_URL must be an http(s) URL such as https://slack.com/api/")
        if not api_url.endswith("/"):
            api_url += "/"

        def number(name: str, default: float, *, minimum: float) -> float:
            return read_number(env, problems, name, default, minimum=minimum)

        edit_interval = number("VARIANCE_EDIT_INTERVAL_S", 1.0, minimum=0.0)
        budget = number("VARIANCE_UPDATE_BUDGET_PER_MIN", 45, minimum=1)
        shutdown_grace = number("VARIANCE_SHUTDOWN_GRACE_S", 20, minimum=0)

        def ids(name: str, what: str, *, keyword: str | None = None) -> frozenset[str]:
            entries = [e.strip() for e in text(name).split(",") if e.strip()]
            kept = {e.lower() if keyword and e.lower() == keyword else e for e in entries}
            bad = [e for e in kept if e != keyword and not _SLACK_ID.fullmatch(e)]
            if bad:
                problems.append(
                    f"{name} must list {what} separated by commas; not an ID: "
                    + ", ".join(repr(b[:40]) for b in sorted(bad)[:3])
                )
            return frozenset(kept)

        allowlist = Allowlist(
            teams=ids("VARIANCE_ALLOWED_TEAMS", "workspace IDs (T...)"),
            channels=ids("VARIANCE_ALLOWED_CHANNELS", "channel IDs (C... or G...) or dm", keyword=DM_KEYWORD),
            users=ids("VARIANCE_ALLOWED_USERS", "user IDs (U... or W...)"),
        )

        redis_url = read_redis_url(env, problems)
        instance_id = text("VARIANCE_INSTANCE_ID") or default_instance_id()
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,80}", instance_id):
            problems.append("VARIANCE_INSTANCE_ID may hold letters, digits, '.', '_' and '-' (at most 80)")

        shared = SharedSettings.read(env, problems, agent="required" if load_agent else "skip")

        if problems:
            raise ConfigError("cannot start the bot:\n" + "\n".join(f"  - {p}" for p in problems))
        return cls(
            bot_token=bot_token,
            signing_secret=signing_secret,
            app_token=app_token,
            slack_api_url=api_url,
            edit_interval_s=edit_interval,
            update_budget_per_minute=int(budget),
            allowlist=allowlist,
            redis_url=redis_url,
            shutdown_grace_s=shutdown_grace,
            instance_id=instance_id,
            **shared.shared_fields(),
        )
