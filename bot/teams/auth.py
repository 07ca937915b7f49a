"""Who may talk to the bot, and the bot's own token.

Inbound (:class:`InboundAuth`): every activity carries ``Authorization: Bearer <JWT>`` from the Bot Framework.
It is accepted only if it is RS256, signed by a key (``kid``) published at the configured keys URL, issued by
``https://api.botframework.com`` for this bot (``aud`` = ``TEAMS_APP_ID``), current (300 s clock leeway), and its
``serviceurl`` claim equals the activity's ``serviceUrl`` (so a token for one tenant's service cannot make the bot
send anywhere else). Anything else is rejected before the activity is looked at. This is stricter than the Teams
SDK's own check (which also accepts Entra-issued agent tokens without a ``serviceurl`` claim, extra audiences, and
an activity without ``serviceUrl``) and it fetches keys asynchronously (the SDK fetches them with a blocking call
on the event loop), so the server runs it in front of the SDK.

Outbound (:class:`BotTokenSource`): ``POST {TEAMS_LOGIN_ENDPOINT}/{TEAMS_TENANT_ID}/oauth2/v2.0/token`` with the
client-credentials grant for ``https://api.botframework.com/.default``, cached until shortly before it expires.
The SDK calls it (``App(token=...)``) for every request to the connector.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
import jwt

from bot.teams.settings import BOT_SCOPE, TOKEN_ISSUER, TeamsSettings

log = logging.getLogger("variance.teams")

LEEWAY_SECONDS = 300
# How often an unknown key id may trigger a new download of the keys (a forged token must not make the bot call out
# on every request).
KEYS_REFRESH_MIN_S = 300.0
# A token is renewed this long before it expires (or at half its life when it is shorter).
TOKEN_RENEW_MARGIN_S = 300.0


class Unauthorized(Exception):
    """An inbound request that is not from the Bot Framework for this bot; ``reason`` is for the logs."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TokenError(Exception):
    """The login endpoint refused or could not be reached; the message names the cause, never the secret."""


def trust_context(ca_files: tuple[str, ...] = ()) -> ssl.SSLContext:
    """The system's trusted CAs plus ``ca_files`` (``SSL_CERT_FILE`` / ``REQUESTS_CA_BUNDLE``)."""
    context = ssl.create_default_context()
    try:
        import certifi

        context.load_verify_locations(cafile=certifi.where())
    except (ImportError, OSError):  # the system store alone is fine
        pass
    for path in ca_files:
        context.load_verify_locations(cafile=path)
    return context


class BotTokenSource:
    """The bot's client-credentials token, fetched once and reused until shortly before it expires."""

    def __init__(
        self,
        settings: TeamsSettings,
        session: Callable[[], aiohttp.ClientSession],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._session = session
        self._clock = clock
        self._token: str | None = None
        self._renew_at = 0.0
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def get(self) -> str:
        if self._token is not None and self._clock() < self._renew_at:
            return self._token
        async with self._lock:
            if self._token is not None and self._clock() < self._renew_at:
                return self._token
            token, lifetime = await self._fetch()
            self._token = token
            self._renew_at = self._clock() + max(1.0, min(lifetime - TOKEN_RENEW_MARGIN_S, lifetime / 2))
            return token

    def __call__(self, scope: str | list[str], tenant_id: str | None = None) -> Any:
        """The SDK's token-provider signature: the connector's scope only (the bot calls nothing else)."""
        scopes = [scope] if isinstance(scope, str) else list(scope)
        if scopes != [BOT_SCOPE]:
            raise TokenError(f"the bot does not request tokens for {', '.join(scopes)}")
        return self.get()

    async def _fetch(self) -> tuple[str, float]:
        s = self._settings
        form = {
            "grant_type": "client_credentials",
            "client_id": s.app_id,
            "client_secret": s.app_password,
            "scope": BOT_SCOPE,
        }
        self.fetches += 1
        try:
            async with self._session().post(
                s.token_url, data=form, timeout=aiohttp.ClientTimeout(total=30)
            ) as response:
                body: Any = await response.json(content_type=None)
                status = response.status
        except (aiohttp.ClientError, TimeoutError, ValueError) as error:
            raise TokenError(f"cannot reach the login endpoint ({type(error).__name__})") from error
        if status != 200 or not isinstance(body, Mapping) or not body.get("access_token"):
            code = body.get("error") if isinstance(body, Mapping) else None
            raise TokenError(f"the login endpoint refused the bot's credentials (HTTP {status}, {code or 'no code'})")
        try:
            lifetime = float(body.get("expires_in", 3600))
        except (TypeError, ValueError):
            lifetime = 3600.0
        return str(body["access_token"]), lifetime


class InboundAuth:
    """Checks inbound activities' bearer tokens against the Bot Framework's published keys."""

    def __init__(
        self,
        settings: TeamsSettings,
        session: Callable[[], aiohttp.ClientSession],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self._session = session
        self._clock = clock
        self._keys: dict[str, jwt.PyJWK] = {}
        self._refreshed_at: float | None = None
        self._lock = asyncio.Lock()

    @property
    def ready(self) -> bool:
        return bool(self._keys)

    async def refresh(self) -> None:
        """Download the signing keys now; raise on failure (the keys held so far stay)."""
        async with self._lock:
            self._refreshed_at = self._clock()
            async with self._session().get(
                self._settings.keys_url, timeout=aiohttp.ClientTimeout(total=30)
            ) as response:
                response.raise_for_status()
                document: Any = await response.json(content_type=None)
            keys: dict[str, jwt.PyJWK] = {}
            for entry in document.get("keys", []) if isinstance(document, Mapping) else []:
                if not isinstance(entry, Mapping) or entry.get("kty") != "RSA" or not entry.get("kid"):
                    continue
                try:
                    keys[str(entry["kid"])] = jwt.PyJWK(dict(entry), algorithm="RS256")
                except jwt.PyJWTError:
                    continue
            if not keys:
                raise ValueError("the keys document holds no RSA keys")
            self._keys = keys

    async def _key(self, kid: str) -> jwt.PyJWK:
        key = self._keys.get(kid)
        if key is not None:
            return key
        due = self._refreshed_at is None or self._clock() - self._refreshed_at >= KEYS_REFRESH_MIN_S
        if due:
            try:
                await self.refresh()
            except Exception as error:
                log.warning("could not refresh the Bot Framework keys: %s", type(error).__name__)
        key = self._keys.get(kid)
        if key is None:
            raise Unauthorized("unknown_kid")
        return key

    async def check(self, authorization: str | None, activity: Mapping[str, Any]) -> dict[str, Any]:
        """The token's claims when the request may be processed; :class:`Unauthorized` otherwise."""
        if not authorization or not authorization.startswith("Bearer "):
            raise Unauthorized("no_bearer")
        raw = authorization[len("Bearer ") :].strip()
        try:
            header = jwt.get_unverified_header(raw)
        except jwt.PyJWTError as error:
            raise Unauthorized("malformed") from error
        if header.get("alg") != "RS256":
            raise Unauthorized("algorithm")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("no_kid")
        key = await self._key(kid)
        try:
            claims: dict[str, Any] = jwt.decode(
                raw,
                key.key,
                algorithms=["RS256"],
                audience=self._settings.app_id,
                issuer=TOKEN_ISSUER,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError as error:
            raise Unauthorized("expired") from error
        except jwt.InvalidAudienceError as error:
            raise Unauthorized("audience") from error
        except jwt.InvalidIssuerError as error:
            raise Unauthorized("issuer") from error
        except jwt.PyJWTError as error:
            raise Unauthorized("invalid") from error
        claimed = claims.get("serviceurl")
        service_url = activity.get("serviceUrl")
        if not isinstance(claimed, str) or not isinstance(service_url, str):
            raise Unauthorized("no_serviceurl")
        if claimed.rstrip("/") != service_url.rstrip("/"):
            raise Unauthorized("serviceurl_mismatch")
        return claims
