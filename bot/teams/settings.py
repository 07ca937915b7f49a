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
- the variables every surface shares (:class:`bot.config.SharedSettings`): file, dataset, worker and answer
  limits, and the analyst's model settings (``OPENAI_API_KEY``, ``VARIANCE_MODEL``, ``VARIANCE_DATA_DIR``,
  ``VARIANCE_RETENTION_DAYS``, ...), as for ``variance-bot serve``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bot.config import ConfigError, SharedSettings, read_number, read_redis_url
from bot.web.settings import is_loopback

DEFAULT_OPENID_METADATA_URL = "https://login.botframework.com/v1/.well-known/openidconfiguration"
DEFAULT_LOGIN_ENDPOINT = "https://login.microsoftonline.com"
BOT_SCOPE = "https://api.botframework.com/.default"
TOKEN_ISSUER = "https://api.botframework.com"


@dataclass(frozen=True, slots=True)
class TeamsSettings(SharedSettings):
    """The Teams bot's settings: its app registration, where it checks and gets tokens, its pacing, and the
    shared ones."""

    app_id: str
    app_password: str = field(repr=False)
    tenant_id: str
    openid_metadata_url: str = DEFAULT_OPENID_METADATA_URL
    login_endpoint: str = DEFAULT_LOGIN_ENDPOINT
    ca_files: tuple[str, ...] = ()
    chunk_interval_s: float = 1.5
    # State shared by several instances (dedupe, limits, conversation memory); None: all in this process.
    redis_url: str | None = None

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

        interval = read_number(env, problems, "VARIANCE_TEAMS_CHUNK_INTERVAL_S", 1.5, minimum=0.0)
        redis_url = read_redis_url(env, problems)
        shared = SharedSettings.read(env, problems, agent="required" if load_agent else "skip")

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
            redis_url=redis_url,
            **shared.shared_fields(),
        )
