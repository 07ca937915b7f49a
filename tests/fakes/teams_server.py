"""A fake Microsoft Teams on 127.0.0.1: Bot Framework connector, login, signing keys and a TLS file host.

It speaks the real protocols the bot uses, with Teams' real limits:

- ``GET /v1/.well-known/openidconfiguration`` and ``GET /v1/.well-known/keys``: the OpenID metadata and the JWKS
  of a local RSA key (``kid`` ``fake-teams-1``). :meth:`FakeTeams.token` signs inbound tokens as the Bot Framework
  does (RS256, ``iss`` ``https://api.botframework.com``, ``aud`` the app id, ``serviceurl``), and lets a test
  forge, expire or misdirect them.
- ``POST /{tenant}/oauth2/v2.0/token``: the client-credentials grant for ``https://api.botframework.com/.default``;
  wrong credentials get ``401 invalid_client``.
- ``POST /v3/conversations/{id}/activities`` and ``PUT .../activities/{activityId}``: the connector. Calls need the
  issued bearer token. Each conversation is limited like Teams limits a bot (7 calls/1 s, 8/2 s, 60/30 s,
  1,800/h): over that, or while a previous 429's ``Retry-After`` has not passed, the answer is
  ``429 {"error": {"code": "ThrottledRequest", "message": "API calls quota exceeded"}}`` with ``Retry-After``.
  A call during a ``Retry-After`` pause is counted in :attr:`FakeTeams.ignored_retry_after`. An activity larger
  than Teams' limit (:data:`MAX_ACTIVITY_BYTES`, ~256 KB) is refused with ``413 MessageSizeTooBig``.
- A file host over HTTPS with a certificate from a test CA made at start (:attr:`FakeTeams.ca_file`), serving
  what :meth:`FakeTeams.host_file` registers at pre-signed-looking URLs (no Authorization header expected); a
  link made to expire (:meth:`FakeTeams.expire_file`) is answered ``401 Access denied`` as SharePoint does.

Run as a program (``python tests/fakes/teams_server.py``), it also starts the fake OpenAI server and adds a small
control API (``/_control/...``) so that a separate process (the benchmark) can deliver activities and read what the
bot sent, over HTTP only.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import itertools
import json
import math
import ssl
import tempfile
import time
import uuid
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from aiohttp import ClientSession, ClientTimeout, web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

ISSUER = "https://api.botframework.com"
BOT_SCOPE = "https://api.botframework.com/.default"
KID = "fake-teams-1"
TEAMS_LIMITS: tuple[tuple[int, float], ...] = ((7, 1.0), (8, 2.0), (60, 30.0), (1800, 3600.0))
DOWNLOAD_INFO = "application/vnd.microsoft.teams.file.download.info"
MAX_ACTIVITY_BYTES = 256 * 1024
_ids = itertools.count(1)


@dataclass(slots=True)
class ConnectorCall:
    """One call the bot made to the connector, as received."""

    method: str
    conversation: str
    activity_id: str | None  # in the path (PUT)
    body: dict[str, Any]
    at: float
    status: int
    returned_id: str | None = None

    @property
    def kind(self) -> str:
        """``informative``, ``streaming``, ``final`` or ``message`` (an ordinary message) / ``typing``."""
        entities = self.body.get("entities") or []
        for entity in entities:
            if entity.get("type") == "streaminfo":
                return str(entity.get("streamType") or "streaming")
        return str(self.body.get("type"))

    @property
    def stream_info(self) -> dict[str, Any]:
        for entity in self.body.get("entities") or []:
            if entity.get("type") == "streaminfo":
                return dict(entity)
        return {}

    @property
    def text(self) -> str:
        return str(self.body.get("text") or "")


@dataclass(slots=True)
class _Conversation:
    accepted: deque[float] = field(default_factory=deque)
    paused_until: float = 0.0


def _key_pair() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _jwk(key: rsa.RSAPrivateKey, kid: str) -> dict[str, Any]:
    numbers = key.public_key().public_numbers()

    def b64(n: int) -> str:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    return {
        "kty": "RSA",
        "use": "sig",
        "kid": kid,
        "n": b64(numbers.n),
        "e": b64(numbers.e),
        "endorsements": ["msteams"],
    }


def make_test_ca(directory: Path) -> tuple[Path, Path, Path]:
    """A CA and a server certificate for 127.0.0.1/localhost signed by it: (ca.pem, server.pem, server.key)."""
    now = dt.datetime.now(dt.UTC)
    ca_key = _key_pair()
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Variance test CA")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = _key_pair()
    import ipaddress

    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    ca_path.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
    )
    return ca_path, cert_path, key_path


class FakeTeams:
    def __init__(
        self,
        *,
        app_id: str = "00000000-0000-4000-8000-00000000b07a",
        app_password: str = "fake-secret",
        tenant_id: str = "tenant-1",
        limits: Sequence[tuple[int, float]] = TEAMS_LIMITS,
        token_lifetime_s: int = 3600,
    ) -> None:
        self.app_id = app_id
        self.app_password = app_password
        self.tenant_id = tenant_id
        self.limits = tuple(limits)
        self.token_lifetime_s = token_lifetime_s
        self._key = _key_pair()
        self._login_key = _key_pair()
        self.calls: list[ConnectorCall] = []
        self.token_requests = 0
        self.keys_requests = 0
        self.file_requests: list[dict[str, Any]] = []
        self.throttled = 0
        self.ignored_retry_after = 0
        self.issued_tokens: set[str] = set()
        self._conversations: dict[str, _Conversation] = {}
        self._forced: dict[str, deque[float | None]] = {}
        self._files: dict[str, tuple[bytes, str]] = {}
        self._expired: set[str] = set()
        self._changed = asyncio.Condition()
        self._runners: list[web.AppRunner] = []
        self._tmp = tempfile.TemporaryDirectory(prefix="fake-teams-")
        self.port = 0
        self.file_port = 0
        self.ca_file = ""

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> FakeTeams:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    async def start(self, port: int = 0, file_port: int = 0) -> None:
        ca, cert, key = make_test_ca(Path(self._tmp.name))
        self.ca_file = str(ca)
        api = web.Application(client_max_size=4 * 1024 * 1024)
        api.router.add_get("/v1/.well-known/openidconfiguration", self._metadata)
        api.router.add_get("/v1/.well-known/keys", self._keys)
        api.router.add_post("/{tenant}/oauth2/v2.0/token", self._token)
        api.router.add_post("/v3/conversations/{conversation}/activities", self._create)
        api.router.add_put("/v3/conversations/{conversation}/activities/{activity}", self._update)
        self.port = await self._serve(api, port, None)
        files = web.Application()
        files.router.add_get("/download/{name}", self._download)
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls.load_cert_chain(str(cert), str(key))
        self.file_port = await self._serve(files, file_port, tls)

    async def _serve(self, app: web.Application, port: int, tls: ssl.SSLContext | None) -> int:
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port, ssl_context=tls)
        await site.start()
        self._runners.append(runner)
        return int(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]

    async def stop(self) -> None:
        for runner in self._runners:
            await runner.cleanup()
        self._runners.clear()
        self._tmp.cleanup()

    # ------------------------------------------------------------------ addresses
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def service_url(self) -> str:
        return f"{self.base_url}/"

    @property
    def openid_metadata_url(self) -> str:
        return f"{self.base_url}/v1/.well-known/openidconfiguration"

    @property
    def login_endpoint(self) -> str:
        return self.base_url

    def env(self) -> dict[str, str]:
        """The bot's Teams environment pointing here."""
        return {
            "TEAMS_APP_ID": self.app_id,
            "TEAMS_APP_PASSWORD": self.app_password,
            "TEAMS_TENANT_ID": self.tenant_id,
            "TEAMS_OPENID_METADATA_URL": self.openid_metadata_url,
            "TEAMS_LOGIN_ENDPOINT": self.login_endpoint,
            "SSL_CERT_FILE": self.ca_file,
        }

    # ------------------------------------------------------------------ test controls
    def host_file(self, name: str, content: bytes, content_type: str = "application/octet-stream") -> str:
        """Serve ``content`` over HTTPS; returns its ``downloadUrl``."""
        token = uuid.uuid4().hex
        self._files[token] = (content, content_type)
        return f"https://127.0.0.1:{self.file_port}/download/{token}?name={name}"

    def expire_file(self, url: str) -> None:
        """``url``'s pre-signed link has expired: the file host answers 401 as SharePoint does."""
        self._expired.add(url.rsplit("/", 1)[-1].split("?", 1)[0])

    def force_429(self, conversation: str, *, times: int = 1, retry_after: float | None = 1.0) -> None:
        """The next ``times`` calls to ``conversation`` get 429 (with ``Retry-After``, or none when ``None``)."""
        self._forced.setdefault(conversation, deque()).extend([retry_after] * times)

    def token(
        self,
        *,
        service_url: str | None = None,
        audience: str | None = None,
        issuer: str = ISSUER,
        expires_in: float = 3600,
        kid: str = KID,
        key: rsa.RSAPrivateKey | None = None,
        algorithm: str = "RS256",
        claims: Mapping[str, Any] | None = None,
    ) -> str:
        """An inbound token as the Bot Framework signs it; every part can be made wrong for a test."""
        now = int(time.time())
        payload: dict[str, Any] = {
            "serviceurl": self.service_url if service_url is None else service_url,
            "nbf": now - 5,
            "exp": now + int(expires_in),
            "iss": issuer,
            "aud": self.app_id if audience is None else audience,
        }
        payload.update(claims or {})
        if algorithm == "HS256":
            return jwt.encode(
                payload, "not-a-key-but-long-enough-for-hmac-sha256!", algorithm="HS256", headers={"kid": kid}
            )
        signing = key if key is not None else self._key
        return jwt.encode(payload, signing, algorithm="RS256", headers={"kid": kid})

    def message(
        self,
        text: str = "",
        *,
        conversation: str = "a:personal-1",
        user: str = "user-1",
        kind: str = "personal",
        files: Sequence[tuple[str, str]] = (),
        activity_id: str | None = None,
        html_copy: bool = True,
        mention_bot: bool = False,
    ) -> dict[str, Any]:
        """A message activity as Teams sends it; ``files`` are (name, downloadUrl) download.info attachments."""
        attachments: list[dict[str, Any]] = []
        for name, url in files:
            extension = name.rsplit(".", 1)[-1] if "." in name else ""
            attachments.append(
                {
                    "contentType": DOWNLOAD_INFO,
                    "contentUrl": f"https://contoso.sharepoint.com/personal/user/Documents/{name}",
                    "name": name,
                    "content": {"downloadUrl": url, "uniqueId": uuid.uuid4().hex, "fileType": extension},
                }
            )
        if html_copy and text:
            attachments.append({"contentType": "text/html", "content": f"<p>{text}</p>"})
        entities: list[dict[str, Any]] = [{"type": "clientInfo", "locale": "en-US", "platform": "Web"}]
        if mention_bot:
            text = f"<at>Variance Analyst</at> {text}"
            entities.append(
                {
                    "type": "mention",
                    "text": "<at>Variance Analyst</at>",
                    "mentioned": {"id": f"28:{self.app_id}", "name": "Variance Analyst"},
                }
            )
        return {
            "type": "message",
            "id": activity_id or f"17{next(_ids):011d}",
            "timestamp": dt.datetime.now(dt.UTC).isoformat(),
            "serviceUrl": self.service_url,
            "channelId": "msteams",
            "from": {"id": f"29:{user}", "name": "Dana Controller", "aadObjectId": user},
            "conversation": {
                "id": conversation,
                "conversationType": kind,
                "tenantId": self.tenant_id,
                **({"isGroup": True} if kind != "personal" else {}),
            },
            "recipient": {"id": f"28:{self.app_id}", "name": "Variance Analyst"},
            "text": text,
            "textFormat": "plain",
            "attachments": attachments,
            "entities": entities,
            "channelData": {"tenant": {"id": self.tenant_id}},
            "locale": "en-US",
        }

    async def deliver(self, bot_url: str, activity: Mapping[str, Any], *, token: str | None = None) -> int:
        """POST ``activity`` to the bot as Teams does; returns the HTTP status."""
        bearer = self.token() if token is None else token
        async with (
            ClientSession() as session,
            session.post(
                bot_url,
                json=dict(activity),
                headers={"Authorization": f"Bearer {bearer}"},
                timeout=ClientTimeout(total=30),
            ) as response,
        ):
            await response.read()
            return response.status

    def calls_to(self, conversation: str, *, accepted_only: bool = True) -> list[ConnectorCall]:
        return [c for c in self.calls if c.conversation == conversation and (c.status < 300 or not accepted_only)]

    @property
    def connector_calls(self) -> int:
        return len(self.calls)

    async def wait_for(self, predicate: Callable[[FakeTeams], bool], timeout: float = 20.0) -> None:
        async with asyncio.timeout(timeout), self._changed:
            await self._changed.wait_for(lambda: predicate(self))

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    # ------------------------------------------------------------------ handlers
    async def _metadata(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "issuer": ISSUER,
                "authorization_endpoint": f"{self.base_url}/v1/.well-known/authorize",
                "jwks_uri": f"{self.base_url}/v1/.well-known/keys",
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            }
        )

    async def _keys(self, request: web.Request) -> web.Response:
        self.keys_requests += 1
        return web.json_response({"keys": [_jwk(self._key, KID)]})

    async def _token(self, request: web.Request) -> web.Response:
        self.token_requests += 1
        form = await request.post()
        if request.match_info["tenant"] != self.tenant_id:
            return web.json_response({"error": "invalid_tenant"}, status=400)
        if form.get("grant_type") != "client_credentials" or form.get("scope") != BOT_SCOPE:
            return web.json_response({"error": "invalid_request"}, status=400)
        if form.get("client_id") != self.app_id or form.get("client_secret") != self.app_password:
            return web.json_response({"error": "invalid_client"}, status=401)
        now = int(time.time())
        token = jwt.encode(
            {
                "aud": "https://api.botframework.com",
                "iss": f"https://sts.windows.net/{self.tenant_id}/",
                "appid": self.app_id,
                "tid": self.tenant_id,
                "iat": now,
                "nbf": now,
                "exp": now + self.token_lifetime_s,
                "jti": uuid.uuid4().hex,
            },
            self._login_key,
            algorithm="RS256",
            headers={"kid": "fake-login-1"},
        )
        self.issued_tokens.add(token)
        await self._notify()
        return web.json_response(
            {"token_type": "Bearer", "expires_in": self.token_lifetime_s, "ext_expires_in": 3600, "access_token": token}
        )

    def _throttle(self, conversation: str) -> float | None:
        """Seconds to wait when this call is refused (429), else ``None`` (and the call is counted)."""
        now = time.monotonic()
        state = self._conversations.setdefault(conversation, _Conversation())
        if now < state.paused_until:
            self.ignored_retry_after += 1
            return state.paused_until - now
        forced = self._forced.get(conversation)
        if forced:
            wait = forced.popleft()
            state.paused_until = now + (wait if wait is not None else 1.0)
            return wait if wait is not None else -1.0
        horizon = max(window for _, window in self.limits)
        while state.accepted and now - state.accepted[0] > horizon:
            state.accepted.popleft()
        for count, window in self.limits:
            recent = [t for t in state.accepted if now - t < window]
            if len(recent) >= count:
                wait = recent[0] + window - now
                state.paused_until = now + wait
                return wait
        state.accepted.append(now)
        return None

    def _authorised(self, request: web.Request) -> bool:
        header = request.headers.get("Authorization", "")
        return header.startswith("Bearer ") and header[len("Bearer ") :] in self.issued_tokens

    async def _connector(self, request: web.Request, method: str) -> web.Response:
        conversation = request.match_info["conversation"]
        activity_id = request.match_info.get("activity")
        raw = await request.read()
        body = json.loads(raw)
        call = ConnectorCall(method, conversation, activity_id, body, time.monotonic(), 200)
        if len(raw) > MAX_ACTIVITY_BYTES:
            call.status = 413
            self.calls.append(call)
            await self._notify()
            return web.json_response(
                {"error": {"code": "MessageSizeTooBig", "message": "Activity size exceeds the limit."}}, status=413
            )
        if not self._authorised(request):
            call.status = 401
            self.calls.append(call)
            await self._notify()
            return web.json_response({"error": {"code": "Unauthorized", "message": "Authorization failed"}}, status=401)
        wait = self._throttle(conversation)
        if wait is not None:
            self.throttled += 1
            call.status = 429
            self.calls.append(call)
            await self._notify()
            headers = {} if wait < 0 else {"Retry-After": f"{max(wait, 0.01):.2f}"}
            return web.json_response(
                {"error": {"code": "ThrottledRequest", "message": "API calls quota exceeded"}},
                status=429,
                headers=headers,
            )
        returned = activity_id or body.get("id") or f"1:{uuid.uuid4().hex[:20]}"
        call.returned_id = returned
        self.calls.append(call)
        await self._notify()
        return web.json_response({"id": returned})

    async def _create(self, request: web.Request) -> web.Response:
        return await self._connector(request, "POST")

    async def _update(self, request: web.Request) -> web.Response:
        return await self._connector(request, "PUT")

    async def _download(self, request: web.Request) -> web.Response:
        self.file_requests.append({"authorization": request.headers.get("Authorization")})
        if request.match_info["name"] in self._expired:
            return web.json_response(
                {"error": {"code": "-2147024891, System.UnauthorizedAccessException", "message": "Access denied."}},
                status=401,
            )
        entry = self._files.get(request.match_info["name"])
        if entry is None:
            return web.Response(status=404, text="not found")
        content, content_type = entry
        return web.Response(body=content, content_type=content_type)


def stream_of(calls: Sequence[ConnectorCall]) -> list[ConnectorCall]:
    """The accepted calls of one streamed answer, in arrival order."""
    return [c for c in calls if c.status < 300]


def seconds(value: float) -> str:
    return f"{value:.2f} s" if math.isfinite(value) else "n/a"


# ----------------------------------------------------------------------------------------------------
# Run as a program: the fake Teams and the fake OpenAI, with a control API for another process.


async def _main(port: int, file_port: int, openai_port: int, ready_file: str) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tests.fakes.openai_server import FakeOpenAI, text, tool_call

    fake = FakeTeams()
    await fake.start(port, file_port)
    model = FakeOpenAI()
    await model.start()
    script: dict[str, Any] = {"answer": "", "chunk": 6, "delay": 0.02, "tool": True}

    def respond(request: Any) -> Any:
        # The first request of a question asks for a tool; the one after the tool output answers.
        items = request.json.get("input") or []
        last = items[-1] if isinstance(items, list) and items else {}
        if script["tool"] and not (isinstance(last, dict) and last.get("type") == "function_call_output"):
            return tool_call("variance_summary", {})
        return text(script["answer"], chunk=script["chunk"], delay=script["delay"])

    model.responder = respond

    control = web.Application(client_max_size=64 * 1024 * 1024)

    async def deliver(request: web.Request) -> web.Response:
        data = await request.json()
        status = await fake.deliver(data["bot_url"], data["activity"])
        return web.json_response({"status": status})

    async def message(request: web.Request) -> web.Response:
        data = await request.json()
        files = [
            (f["name"], fake.host_file(f["name"], base64.b64decode(f["content_b64"]))) for f in data.get("files", [])
        ]
        return web.json_response(
            fake.message(data.get("text", ""), conversation=data["conversation"], user=data["user"], files=files)
        )

    async def calls(request: web.Request) -> web.Response:
        origin = float(request.query.get("since", "0"))
        return web.json_response(
            [
                {
                    "conversation": c.conversation,
                    "method": c.method,
                    "status": c.status,
                    "kind": c.kind,
                    "text": c.text,
                    "at": c.at - origin,
                    "stream": c.stream_info,
                }
                for c in fake.calls
            ]
        )

    async def configure(request: web.Request) -> web.Response:
        script.update(await request.json())
        return web.json_response(script)

    async def clock(request: web.Request) -> web.Response:
        return web.json_response({"now": time.monotonic()})

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "throttled": fake.throttled,
                "ignored_retry_after": fake.ignored_retry_after,
                "token_requests": fake.token_requests,
                "calls": len(fake.calls),
                "model_requests": len(model.requests),
            }
        )

    control.router.add_post("/_control/deliver", deliver)
    control.router.add_post("/_control/message", message)
    control.router.add_get("/_control/calls", calls)
    control.router.add_post("/_control/script", configure)
    control.router.add_get("/_control/clock", clock)
    control.router.add_get("/_control/stats", stats)
    control_port = await fake._serve(control, 0, None)
    Path(ready_file).write_text(
        json.dumps({**fake.env(), "OPENAI_BASE_URL": model.base_url, "control": f"http://127.0.0.1:{control_port}"})
    )
    try:
        await asyncio.Event().wait()
    finally:
        await model.stop()
        await fake.stop()


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="fake Teams + fake OpenAI, for the Teams benchmark")
    parser.add_argument("--ready-file", required=True, help="where to write the addresses (JSON) once listening")
    arguments = parser.parse_args()
    asyncio.run(_main(0, 0, 0, arguments.ready_file))
