"""The Teams bot's settings, read from the environment once at start, before the Teams SDK is imported.

:meth:`TeamsSettings.from_env` raises :class:`bot.config.ConfigError` naming every missing or malformed variable at
once (never a value: the app password stays out of messages and logs).

Environment
-----------
- ``TEAMS_APP_ID``, ``TEAMS_APP_PASSWORD``, ``TEAMS_TENANT_ID``: the bot's app registration (required).
- ``TEAMS_OPENID_METADATA_URL`` (Bot Framework's): where the keys that sign inbound activities are published
  (``.../openidconfiguration`` → ``.../keys``).
- ``TEAMS_LOGIN_ENDPOINT`` (``https://login.microsoftonline.com``): where the bot gets its own token
  (``POST {endpoint}/{tenant}/oauth2/v2.0/token``, client credentials). Both must be https, except to a
  loopback address (a local test server).
- ``SSL_CERT_FILE`` / ``REQUESTS_CA_BUNDLE``: extra trusted CAs (a company proxy's) for every HTTPS call.
- ``VARIANCE_TEAMS_CHUNK_INTERVAL_S`` (1.5): at least this long between two streamed chunks of one answer
  (Microsoft advises 1.5–2 s).
- ``VARIANCE_MAX_FILE_MB``, ``VARIANCE_DATASET_MEMORY_MB``, ``VARIANCE_DATASET_IDLE_MINUTES``, ``VARIANCE_WORKERS``
  and the analyst's model settings (``OPENAI_API_KEY``, ``VARIANCE_MODEL``, ``VARIANCE_DATA_DIR``, ...), as for
  ``variance-bot serve``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from bot.config import ConfigError
from bot.web.settings import is_loopback

if TYPE_CHECKING:
    from analyst.agent import AgentSettings

DEFAULT_OPENID_METADATA_URL = "https://login.botframework.com/v1/.well-known/openidconfiguration"
DEFAULT_LOGIN_ENDPOINT = "https://login.microsoftonline.com"
BOT_SCOPE = "https://api.botframework.com/.default"
TOKEN_ISSUER = "https://api.botframework.com"


@dataclass(frozen=True, slots=True)
class TeamsSettings:
    app_id: str
    app_password: str = field(repr=False)
    tenant_id: str
    openid_metadata_url: str = DEFAULT_OPENID_METADATA_URL
    login_endpoint: str = DEFAULT_LOGIN_ENDPOINT
    ca_files: tuple[str, ...] = ()
    chunk_interval_s: float = 1.5
    max_file_bytes: int = 50 * 1024 * 1024
    dataset_memory_bytes: int = 1024 * 1024 * 1024
    dataset_idle_seconds: float = 120 * 60.0
    workers: int = 2
    agent: AgentSettings | None = None

    def __repr__(self) -> str:  # never show the password, even in a traceback
        return (
            f"TeamsSettings(app_id={self.app_id!r}, tenant_id={self.tenant_id!r}, "
            f"openid_metadata_url={self.openid_metadata_url!r}, login_endpoint={self.login_endpoint!r})"
        )

    @property
    def keys_url(self) -> str:
        """The JWKS document next to the OpenID metadata (the metadata itself is not needed)."""
        url = self.openid_metadata_url
        return url[: -len("/openidconfiguration")] + "/keys" if url.endswith("/openidconfiguration") else url

    @property
    def token_url(self) -> str:
        return f"{self.login_endpoint}/{self.tenant_id}/oauth2/v2.0/token"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, load_agent: bool = True) -> TeamsSettings:
        env = os.environ if env is None else env
        problems: list[str] = []

        def text(name: str) -> str:
            return env.get(name, "").strip()

        app_id = text("TEAMS_APP_ID")
        password = text("TEAMS_APP_PASSWORD")
        tenant = text("TEAMS_TENANT_ID")
        if not app_id:
            problems.append("TEAMS_APP_ID is not set (the bot's Microsoft App ID, from the Developer Portal or Azure)")
        if not password:
            problems.append("TEAMS_APP_PASSWORD is not set (a client secret of the bot's app registration)")
        if not tenant:
            problems.append("TEAMS_TENANT_ID is not set (the Microsoft Entra tenant the bot is registered in)")

        def url(name: str, default: str) -> str:
            value = (text(name) or default).rstrip("/")
            parts = urlsplit(value)
            if parts.scheme not in {"http", "https"} or not parts.hostname:
                problems.append(f"{name} must be an http(s) URL such as {default}")
            elif parts.scheme == "http" and not is_loopback(parts.hostname):
                # The login endpoint receives the client secret and the keys decide which tokens are trusted:
                # plain http is only for a server on this machine.
                problems.append(f"{name} must use https (plain http only to this machine), such as {default}")
            return value

        metadata = url("TEAMS_OPENID_METADATA_URL", DEFAULT_OPENID_METADATA_URL)
        login = url("TEAMS_LOGIN_ENDPOINT", DEFAULT_LOGIN_ENDPOINT)

        ca_files: list[str] = []
        for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
            path = text(name)
            if path and path not in ca_files:
                if not os.path.isfile(path):
                    problems.append(f"{name} names a file that does not exist")
                else:
                    ca_files.append(path)

        def number(name: str, default: float, *, minimum: float) -> float:
            raw = text(name)
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

        interval = number("VARIANCE_TEAMS_CHUNK_INTERVAL_S", 1.5, minimum=0.0)
        max_file_mb = number("VARIANCE_MAX_FILE_MB", 50, minimum=0.001)
        memory_mb = number("VARIANCE_DATASET_MEMORY_MB", 1024, minimum=1)
        idle_minutes = number("VARIANCE_DATASET_IDLE_MINUTES", 120, minimum=0.01)
        workers = number("VARIANCE_WORKERS", 2, minimum=1)

        agent = None
        if load_agent:
            if not text("OPENAI_API_KEY"):
                problems.append(
                    "OPENAI_API_KEY is not set (the analyst's model key; for an OpenAI-compatible server "
                    "set OPENAI_BASE_URL too)"
                )
            else:
                try:
                    from analyst.agent import AgentSettings

                    agent = AgentSettings.from_env(env)
                except Exception as error:
                    problems.append(f"the analyst's model settings are invalid: {error}")

        if problems:
            raise ConfigError("cannot start the Teams bot:\n" + "\n".join(f"  - {p}" for p in problems))
        return cls(
            app_id=app_id,
            app_password=password,
            tenant_id=tenant,
            openid_metadata_url=metadata,
            login_endpoint=login,
            ca_files=tuple(ca_files),
            chunk_interval_s=interval,
            max_file_bytes=int(max_file_mb * 1024 * 1024),
            dataset_memory_bytes=int(memory_mb * 1024 * 1024),
            dataset_idle_seconds=idle_minutes * 60.0,
            workers=int(workers),
            agent=agent,
        )
