"""A fake Slack Web API on 127.0.0.1 that the real ``slack_sdk`` clients talk to over HTTP.

Usage::

    async with FakeSlack() as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
        await client.chat_postMessage(channel="C1", text="hi")
        assert slack.calls[-1].method == "chat.postMessage"

What it speaks, like Slack does:

- ``POST {api_url}{method}`` with form-encoded or JSON bodies (and query parameters, as slack_sdk sends
  for GET-style methods); ``Authorization: Bearer <token>`` (or a ``token`` parameter) checked against
  the configured bot tokens, each mapped to one workspace (``team_id``); a wrong token gets
  ``{"ok": false, "error": "invalid_auth"}``.
- Methods: ``auth.test``, ``chat.postMessage``, ``chat.update``, ``chat.delete``, ``chat.postEphemeral``,
  ``conversations.info``, ``conversations.history``, ``conversations.replies``, ``files.info``,
  ``users.info`` (``slack.add_user("U1", is_admin=True)``; any other ``U…``/``W…`` id is a regular member),
  ``reactions.add`` / ``reactions.remove`` (Tier 3 each; ``already_reacted`` / ``no_reaction``; recorded in
  ``FakeMessage.reactions`` and, in order, ``reaction_log``).
  Anything else: ``unknown_method``.
- Size limits: ``text`` > 40,000 chars on postMessage / > 4,000 on update → ``msg_too_long``;
  ``markdown_text`` > 12,000 → ``msg_too_long``; ``markdown_text`` with ``text`` or ``blocks`` →
  ``invalid_arguments``; more than 50 blocks, a block without a known ``type``, section text > 3,000 or
  markdown-block text summing to > 12,000 → ``invalid_blocks``. ``text`` together with ``blocks`` is
  allowed (``text`` is the notification fallback).
- Rate limits with a real HTTP 429, a ``Retry-After`` header (whole seconds, rounded up, as Slack sends)
  and ``{"ok": false, "error": "ratelimited"}``: per workspace and method over a rolling window
  (``chat.update`` 50 per 60 s by default, see :class:`FakeSlackLimits`), and ``chat.postMessage`` per
  channel as a token bucket (1 per second, burst 3). Scale the windows down in tests
  (``FakeSlackLimits.scaled(update_limit=5, update_window=6)``) to exercise the same logic fast.
  A 429'd call does not count against the window.
- Native streaming and the assistant container (see "streaming and assistant threads" below):
  ``chat.startStream`` (Tier 2, 20/min; needs ``thread_ts``; outside a DM also ``recipient_user_id`` and
  ``recipient_team_id``), ``chat.appendStream`` (Tier 4, 100/min), ``chat.stopStream`` (Tier 2) with
  ``markdown_text`` or ``chunks`` (``markdown_text``, ``blocks`` — appended to the message and kept after the
  stop —, ``task_update``, ``plan_update``); a stream expires ``stream_ttl`` seconds after it started (5 min) or by
  ``slack.expire_stream(channel, ts)``, after which append/stop answer ``message_not_in_streaming_state``;
  ``chat.update`` on a live stream answers ``streaming_state_conflict``. ``assistant.threads.setStatus``
  (cleared by the bot's next message in the thread), ``setSuggestedPrompts`` (at most 4, each
  ``{title, message}``) and ``setTitle``, recorded in ``slack.assistant_threads[(channel, thread_ts)]``;
  Tier 3 for these is an assumption (Slack documents them as their own budgets).
- Files: ``slack.add_file(b"...", name="q3.csv")`` returns a Slack file object whose
  ``url_private_download`` points at this server's ``/files-pri/...`` route. The bytes are served only
  with the right bearer token; without it the route answers 200 with an HTML login page, like Slack.
- ``slack.new_response_url()`` gives a slash-command ``response_url``; JSON POSTed to it is recorded in
  ``slack.responses[url]``.

For tests:

- ``slack.calls``: every API call (:class:`FakeCall`: method, params, time, status, error, team_id).
- ``slack.messages[channel][ts]``: :class:`FakeMessage` with the current state, the full edit history
  (``history``: one :class:`MessageState` per post/update) and ``thread_ts``. Helpers:
  ``slack.thread(channel, thread_ts)``, ``slack.bot_messages(channel)``, ``slack.add_message(...)``
  (a user's message, e.g. with files).
- ``await slack.wait_for(lambda: ..., timeout=5)``: wait until a condition over the recorded state holds
  (re-checked after every request), or fail with ``TimeoutError``.
- ``slack.inject(method, status=500 | error="internal_error" | error="ratelimited", retry_after=1 |
  delay=2.0 | drop_connection=True, apply=False, times=1)``: fault injection, consumed in order.
  ``apply=True`` performs the call before the fault is delivered (a post that went through although the
  client saw a failure).
- Uploads (``files_upload_v2``): ``files.getUploadURLExternal`` (``filename``, ``length``) issues a file id and
  an upload URL on this server; the bytes are POSTed there (a length other than the announced one answers 400);
  ``files.completeUploadExternal`` (``files`` JSON, ``channel_id``, ``thread_ts``, ``initial_comment``) shares
  them: ``slack.uploads`` lists every completed upload (:class:`FakeUpload`: bytes, channel, thread); an id never
  uploaded answers ``file_not_found``. Both methods have Tier 4 windows.
- ``slack.add_handler(method, handler)``:
  ``async def handler(slack, method, params, team_id) -> dict | None``; return a response body
  (``{"ok": ...}``) to answer, or ``None`` to fall through to the built-in behaviour.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import time
from collections import defaultdict, deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

Handler = Callable[["FakeSlack", str, dict[str, Any], str], Awaitable[dict[str, Any] | None]]

UPDATE_TEXT_LIMIT = 4_000
POST_TEXT_LIMIT = 40_000
MARKDOWN_TEXT_LIMIT = 12_000
SECTION_TEXT_LIMIT = 3_000
MAX_BLOCKS = 50
KNOWN_BLOCK_TYPES = frozenset(
    {
        "section",
        "markdown",
        "actions",
        "context",
        "divider",
        "header",
        "image",
        "input",
        "rich_text",
        "file",
        "video",
        "table",
        "context_actions",
    }
)
LOGIN_PAGE = (
    "<!DOCTYPE html><html><head><title>Slack</title></head><body>"
    "<h1>Sign in to your workspace</h1><form action='/signin'></form></body></html>"
)


@dataclass
class FakeSlackLimits:
    """Rate limits the fake enforces.

    ``method_windows`` maps a method to (limit, window seconds), counted per workspace.
    """

    method_windows: dict[str, tuple[int, float]] = field(
        default_factory=lambda: {
            "chat.update": (50, 60.0),
            "chat.delete": (50, 60.0),
            "conversations.info": (50, 60.0),
            "conversations.replies": (50, 60.0),
            "conversations.history": (50, 60.0),
            "files.info": (100, 60.0),
            "chat.startStream": (20, 60.0),
            "chat.stopStream": (20, 60.0),
            "chat.appendStream": (100, 60.0),
            "assistant.threads.setStatus": (50, 60.0),
            "assistant.threads.setSuggestedPrompts": (50, 60.0),
            "assistant.threads.setTitle": (50, 60.0),
            "files.getUploadURLExternal": (100, 60.0),  # Tier 4
            "files.completeUploadExternal": (100, 60.0),  # Tier 4
            "users.info": (100, 60.0),
            "reactions.add": (50, 60.0),  # Tier 3
            "reactions.remove": (50, 60.0),  # Tier 3
        }
    )
    post_per_second: float = 1.0  # chat.postMessage, per channel
    post_burst: int = 3
    stream_ttl: float = 300.0  # a native stream ends on Slack's side this long after it started
    enabled: bool = True

    @classmethod
    def scaled(cls, *, update_limit: int, update_window: float, **kwargs: Any) -> FakeSlackLimits:
        limits = cls(**kwargs)
        limits.method_windows["chat.update"] = (update_limit, update_window)
        return limits


@dataclass
class FakeCall:
    method: str
    params: dict[str, Any]
    time: float  # time.monotonic() when the request arrived
    team_id: str | None = None
    status: int = 200
    error: str | None = None
    done: float | None = None  # time.monotonic() when the response was sent


@dataclass
class MessageState:
    text: str | None
    blocks: list[dict[str, Any]] | None
    markdown_text: str | None
    time: float  # time.monotonic()
    method: str  # chat.postMessage / chat.update / chat.delete ...

    @property
    def visible(self) -> str:
        """What a person would read: markdown_text, else the markdown/section block texts, else text."""
        if self.markdown_text is not None:
            return self.markdown_text
        if self.blocks:
            parts = [_block_text(b) for b in self.blocks]
            joined = "\n".join(p for p in parts if p)
            if joined:
                return joined
        return self.text or ""


@dataclass
class FakeMessage:
    channel: str
    ts: str
    thread_ts: str | None
    user: str
    bot_id: str | None = None
    text: str | None = None
    blocks: list[dict[str, Any]] | None = None
    markdown_text: str | None = None
    metadata: dict[str, Any] | None = None
    files: list[dict[str, Any]] = field(default_factory=list)
    history: list[MessageState] = field(default_factory=list)
    deleted: bool = False
    subtype: str | None = None
    streaming_since: float | None = None  # time.monotonic() when its native stream started; None: not streaming
    reactions: list[str] = field(default_factory=list)  # the bot's reactions on it (reactions.add / remove)
    reaction_log: list[tuple[str, str]] = field(default_factory=list)  # ("add" | "remove", name), in order

    @property
    def visible(self) -> str:
        return MessageState(self.text, self.blocks, self.markdown_text, 0.0, "").visible

    @property
    def edits(self) -> int:
        return sum(1 for s in self.history if s.method == "chat.update")

    def to_api(self) -> dict[str, Any]:
        msg: dict[str, Any] = {"type": "message", "ts": self.ts, "user": self.user, "text": self.text or ""}
        if self.bot_id:
            msg["bot_id"] = self.bot_id
        if self.subtype:
            msg["subtype"] = self.subtype
        if self.thread_ts:
            msg["thread_ts"] = self.thread_ts
        if self.blocks is not None:
            msg["blocks"] = self.blocks
        if self.markdown_text is not None:
            # Slack renders markdown_text into a markdown block and keeps a plain text copy (a stopped
            # stream's blocks come after it).
            msg["blocks"] = [{"type": "markdown", "text": self.markdown_text}, *(self.blocks or [])]
            msg["text"] = self.markdown_text
        if self.metadata:
            msg["metadata"] = self.metadata
        if self.files:
            msg["files"] = self.files
        return msg


@dataclass
class AssistantThread:
    """What the bot set on one assistant thread (``assistant.threads.*``)."""

    statuses: list[str] = field(default_factory=list)  # every status set, in order ("" = cleared)
    prompts: list[dict[str, str]] = field(default_factory=list)
    title: str | None = None

    @property
    def status(self) -> str:
        return self.statuses[-1] if self.statuses else ""


@dataclass
class _Fault:
    status: int | None
    error: str | None
    retry_after: float | None
    delay: float | None
    drop_connection: bool
    apply: bool
    times: int


class _DropConnection(Exception):
    pass


def _block_text(block: Mapping[str, Any]) -> str:
    if block.get("type") == "markdown":
        return str(block.get("text", ""))
    if block.get("type") == "section":
        text = block.get("text")
        if isinstance(text, Mapping):
            return str(text.get("text", ""))
    return ""


class FakeSlack:
    """The fake Slack Web API server. See the module docstring."""

    def __init__(
        self,
        *,
        bot_token: str = "xoxb-test-token",
        team_id: str = "T0001",
        bot_user_id: str = "UBOT",
        bot_id: str = "BBOT",
        limits: FakeSlackLimits | None = None,
        auto_channels: bool = True,
    ) -> None:
        self.bot_token = bot_token
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.limits = limits or FakeSlackLimits()
        self.auto_channels = auto_channels
        self.tokens: dict[str, str] = {bot_token: team_id}
        self.calls: list[FakeCall] = []
        self.messages: dict[str, dict[str, FakeMessage]] = defaultdict(dict)
        self.ephemerals: list[dict[str, Any]] = []
        self.responses: dict[str, list[dict[str, Any]]] = {}
        self.files: dict[str, dict[str, Any]] = {}
        self.file_bytes: dict[str, bytes] = {}
        self.file_downloads: list[tuple[str, bool]] = []  # (file id, authorised)
        self.channels: dict[str, dict[str, Any]] = {}
        self.assistant_threads: dict[tuple[str, str], AssistantThread] = defaultdict(AssistantThread)
        self.users: dict[str, dict[str, Any]] = {}
        self.ratelimited: int = 0
        self._handlers: dict[str, Handler] = {}
        self._faults: dict[str, deque[_Fault]] = defaultdict(deque)
        self._window_calls: dict[tuple[str, str], deque[float]] = defaultdict(deque)
        self._post_buckets: dict[tuple[str, str], tuple[float, float]] = {}
        self._last_ts = 0.0
        self._ids = itertools.count(1)
        self._changed = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> FakeSlack:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_get("/files-pri/{team_file}/{kind}/{name}", self._download)
        app.router.add_post("/response/{rid}", self._response_url)
        app.router.add_post("/upload/v1/{file_id}", self._upload_bytes)  # external uploads (block below)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        self.base_url = f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/"

    # ------------------------------------------------------------------ configuration for tests

    def add_workspace(self, token: str, team_id: str) -> None:
        self.tokens[token] = team_id

    def add_handler(self, method: str, handler: Handler) -> None:
        self._handlers[method] = handler

    def add_channel(
        self,
        channel: str,
        *,
        is_member: bool = True,
        name: str | None = None,
        is_im: bool | None = None,
        user: str | None = None,
    ) -> None:
        im = channel.startswith("D") if is_im is None else is_im
        info: dict[str, Any] = {
            "id": channel,
            "name": name or channel.lower(),
            "is_channel": not im,
            "is_im": im,
            "is_private": im,
            "is_member": is_member,
            "is_archived": False,
        }
        if im:
            info["user"] = user or "U0USER"
            info.pop("name")
        self.channels[channel] = info

    def add_user(self, user: str, *, name: str | None = None, is_admin: bool = False, is_owner: bool = False) -> None:
        """Register a workspace member (``users.info``); owners are admins too, as in Slack."""
        self.users[user] = {
            "id": user,
            "team_id": self.team_id,
            "name": name or user.lower(),
            "deleted": False,
            "is_bot": False,
            "is_admin": is_admin or is_owner,
            "is_owner": is_owner,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
        }

    def inject(
        self,
        method: str,
        *,
        status: int | None = None,
        error: str | None = None,
        retry_after: float | None = None,
        delay: float | None = None,
        drop_connection: bool = False,
        apply: bool = False,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail (or hang for ``delay`` seconds first).

        ``error="ratelimited"`` answers HTTP 429 with ``Retry-After: retry_after`` (default 1).
        ``status`` alone answers that HTTP status with ``{"ok": false, "error": "internal_error"}``
        (or ``error``). ``apply=True`` performs the call first, so the change is made although the
        client sees a failure.
        """
        self._faults[method].append(_Fault(status, error, retry_after, delay, drop_connection, apply, times))

    def add_file(
        self,
        content: bytes,
        *,
        name: str = "data.csv",
        mimetype: str = "text/csv",
        filetype: str = "csv",
        size: int | None = None,
        user: str = "U0USER",
    ) -> dict[str, Any]:
        """Register a file; returns its Slack file object (serve its bytes only with the bot token)."""
        file_id = f"F{next(self._ids):08d}"
        team = self.team_id
        url = f"{self.base_url}/files-pri/{team}-{file_id}"
        obj = {
            "id": file_id,
            "name": name,
            "title": name,
            "mimetype": mimetype,
            "filetype": filetype,
            "size": len(content) if size is None else size,
            "user": user,
            "url_private": f"{url}/{name}",
            "url_private_download": f"{url}/download/{name}",
            "mode": "hosted",
            "is_external": False,
        }
        self.files[file_id] = obj
        self.file_bytes[file_id] = content
        return obj

    def add_message(
        self,
        channel: str,
        *,
        text: str = "",
        user: str = "U0USER",
        files: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
        bot_id: str | None = None,
    ) -> FakeMessage:
        """Record a message written by someone (a user's message with files, a thread parent...)."""
        ts = self._next_ts()
        msg = FakeMessage(
            channel=channel,
            ts=ts,
            thread_ts=thread_ts,
            user=user,
            bot_id=bot_id,
            text=text,
            files=list(files or []),
            subtype="file_share" if files else None,
        )
        msg.history.append(MessageState(text, None, None, time.monotonic(), "user"))
        self.messages[channel][ts] = msg
        self._notify()
        return msg

    def new_response_url(self) -> str:
        rid = f"R{next(self._ids):08d}"
        url = f"{self.base_url}/response/{rid}"
        self.responses[url] = []
        return url

    # ------------------------------------------------------------------ inspection

    def bot_messages(self, channel: str | None = None) -> list[FakeMessage]:
        chans = [channel] if channel is not None else list(self.messages)
        out = [m for c in chans for m in self.messages.get(c, {}).values() if m.bot_id == self.bot_id]
        return sorted(out, key=lambda m: float(m.ts))

    def thread(self, channel: str, thread_ts: str) -> list[FakeMessage]:
        """The thread's messages (parent first), in ts order, deleted ones excluded."""
        msgs = [
            m
            for m in self.messages.get(channel, {}).values()
            if not m.deleted and (m.ts == thread_ts or m.thread_ts == thread_ts)
        ]
        return sorted(msgs, key=lambda m: float(m.ts))

    def calls_of(self, method: str) -> list[FakeCall]:
        return [c for c in self.calls if c.method == method]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``predicate()`` holds; it is re-checked after every request. Raises ``TimeoutError``."""
        deadline = asyncio.get_running_loop().time() + timeout
        while not predicate():
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                raise TimeoutError(f"condition not met within {timeout:.1f} s")
            self._changed.clear()
            # A bounded wait also re-checks conditions that depend on time rather than on requests.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=min(remaining, 0.05))

    def _notify(self) -> None:
        self._changed.set()

    # ------------------------------------------------------------------ HTTP plumbing

    async def _read_params(self, request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        if request.method == "POST" and request.can_read_body:
            raw = await request.read()
            ctype = request.content_type
            if ctype == "application/json":
                body = json.loads(raw or b"{}")
                if isinstance(body, dict):
                    params.update(body)
            elif raw:
                params.update(dict(parse_qsl(raw.decode("utf-8"), keep_blank_values=True)))
        return params

    def _auth_team(self, request: web.Request, params: dict[str, Any]) -> str | None:
        auth = request.headers.get("Authorization", "")
        token = auth[len("Bearer ") :] if auth.startswith("Bearer ") else params.get("token")
        return self.tokens.get(token) if isinstance(token, str) else None

    async def _api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        params = await self._read_params(request)
        params.pop("token", None)
        team = self._auth_team(request, params)
        call = FakeCall(method=method, params=params, time=time.monotonic(), team_id=team)
        self.calls.append(call)
        # Shielded: like Slack, a call takes effect even if the client hangs up while waiting for it.
        work = asyncio.ensure_future(self._dispatch(method, params, team, call))
        try:
            status, body, headers = await asyncio.shield(work)
        except _DropConnection:
            call.status, call.error, call.done = 0, "connection_dropped", time.monotonic()
            self._notify()
            assert request.transport is not None
            request.transport.abort()
            # The client sees the connection close without a response.
            return web.Response(status=500)
        call.status = status
        call.error = None if body.get("ok") else str(body.get("error"))
        call.done = time.monotonic()
        if status == 429:
            self.ratelimited += 1
        self._notify()
        return web.json_response(body, status=status, headers=headers)

    async def _dispatch(
        self, method: str, params: dict[str, Any], team: str | None, call: FakeCall
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        fault = self._take_fault(method)
        if fault is not None and fault.delay:
            await asyncio.sleep(fault.delay)
        if fault is not None and not (fault.status or fault.error or fault.drop_connection):
            fault = None  # only a delay: then behave normally
        if fault is not None and not fault.apply:
            return self._fault_response(fault)
        if team is None:
            return 200, {"ok": False, "error": "invalid_auth"}, {}
        limited = self._check_rate(method, params, team)
        if limited is not None and fault is None:
            return limited
        result: dict[str, Any] | None = None
        handler = self._handlers.get(method)
        if handler is not None:
            result = await handler(self, method, params, team)
        if result is None:
            impl = getattr(self, "_m_" + method.replace(".", "_"), None)
            result = {"ok": False, "error": "unknown_method"} if impl is None else impl(params, team)
        if fault is not None:  # apply=True: the call took effect, the client still sees the fault
            return self._fault_response(fault)
        return 200, result, {}

    def _take_fault(self, method: str) -> _Fault | None:
        queue = self._faults.get(method)
        if not queue:
            return None
        fault = queue[0]
        fault.times -= 1
        if fault.times <= 0:
            queue.popleft()
        return fault

    def _fault_response(self, fault: _Fault) -> tuple[int, dict[str, Any], dict[str, str]]:
        if fault.drop_connection:
            raise _DropConnection
        if fault.error == "ratelimited" or fault.status == 429:
            retry = fault.retry_after if fault.retry_after is not None else 1
            return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": _fmt_retry(retry)}
        if fault.status is not None:
            return fault.status, {"ok": False, "error": fault.error or "internal_error"}, {}
        if fault.error is not None:
            return 200, {"ok": False, "error": fault.error}, {}
        return 200, {"ok": False, "error": "internal_error"}, {}

    def _check_rate(
        self, method: str, params: dict[str, Any], team: str
    ) -> tuple[int, dict[str, Any], dict[str, str]] | None:
        if not self.limits.enabled:
            return None
        now = time.monotonic()
        if method == "chat.postMessage":
            key = (team, str(params.get("channel")))
            rate, burst = self.limits.post_per_second, float(self.limits.post_burst)
            tokens, last = self._post_buckets.get(key, (burst, now))
            tokens = min(burst, tokens + (now - last) * rate)
            if tokens < 1.0:
                self._post_buckets[key] = (tokens, now)
                wait = (1.0 - tokens) / rate
                return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": _fmt_retry(wait)}
            self._post_buckets[key] = (tokens - 1.0, now)
            return None
        window = self.limits.method_windows.get(method)
        if window is None:
            return None
        limit, seconds = window
        stamps = self._window_calls[(team, method)]
        while stamps and stamps[0] <= now - seconds:
            stamps.popleft()
        if len(stamps) >= limit:
            wait = stamps[0] + seconds - now
            return 429, {"ok": False, "error": "ratelimited"}, {"Retry-After": _fmt_retry(wait)}
        stamps.append(now)
        return None

    async def _download(self, request: web.Request) -> web.StreamResponse:
        team_file = request.match_info["team_file"]
        file_id = team_file.split("-", 1)[-1]
        team = self._auth_team(request, {})
        content = self.file_bytes.get(file_id)
        authorised = team is not None and content is not None
        self.file_downloads.append((file_id, authorised))
        self._notify()
        if team is None:
            return web.Response(text=LOGIN_PAGE, content_type="text/html", status=200)
        if content is None:
            return web.Response(text="Not found", status=404)
        obj = self.files[file_id]
        return web.Response(body=content, content_type=obj.get("mimetype", "application/octet-stream"))

    async def _response_url(self, request: web.Request) -> web.StreamResponse:
        url = f"{self.base_url}/response/{request.match_info['rid']}"
        if url not in self.responses:
            return web.Response(status=404, text="no such response_url")
        body = json.loads(await request.read() or b"{}")
        self.responses[url].append(body)
        self._notify()
        return web.Response(text="ok")

    # ------------------------------------------------------------------ helpers for method implementations

    def _next_ts(self) -> str:
        now = max(time.time(), self._last_ts + 0.000001)
        self._last_ts = round(now, 6)
        return f"{self._last_ts:.6f}"

    def _channel(self, channel: Any) -> tuple[dict[str, Any] | None, str | None]:
        if not isinstance(channel, str) or not channel:
            return None, "channel_not_found"
        info = self.channels.get(channel)
        if info is None and self.auto_channels and channel[:1] in {"C", "D", "G"}:
            self.add_channel(channel)
            info = self.channels[channel]
        if info is None:
            return None, "channel_not_found"
        return info, None

    def _content(
        self, params: dict[str, Any], *, text_limit: int
    ) -> tuple[tuple[str | None, list[dict[str, Any]] | None, str | None] | None, str | None]:
        text = params.get("text")
        markdown_text = params.get("markdown_text")
        blocks_raw = params.get("blocks")
        blocks: list[dict[str, Any]] | None = None
        if isinstance(blocks_raw, str):
            try:
                blocks_raw = json.loads(blocks_raw)
            except json.JSONDecodeError:
                return None, "invalid_blocks_format"
        if blocks_raw is not None:
            if not isinstance(blocks_raw, list):
                return None, "invalid_blocks_format"
            blocks = blocks_raw
        if markdown_text is not None and (text is not None or blocks is not None):
            return None, "invalid_arguments"
        if markdown_text is not None and len(markdown_text) > MARKDOWN_TEXT_LIMIT:
            return None, "msg_too_long"
        if text is not None and len(text) > text_limit:
            return None, "msg_too_long"
        if blocks is not None:
            err = _validate_blocks(blocks)
            if err:
                return None, err
        if not text and not blocks and not markdown_text and not params.get("attachments"):
            return None, "no_text"
        return (text, blocks, markdown_text), None

    def _metadata(self, params: dict[str, Any]) -> dict[str, Any] | None:
        meta = params.get("metadata")
        if isinstance(meta, str):
            try:
                meta = json.loads(meta)
            except json.JSONDecodeError:
                return None
        return meta if isinstance(meta, dict) else None

    def _find(self, channel: Any, ts: Any) -> FakeMessage | None:
        msg = self.messages.get(str(channel), {}).get(str(ts))
        return None if msg is None or msg.deleted else msg

    # ------------------------------------------------------------------ methods

    def _m_auth_test(self, params: dict[str, Any], team: str) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://fake.slack.test/",
            "team": "Fake Workspace",
            "user": "variance-analyst",
            "team_id": team,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _post(self, params: dict[str, Any], *, method: str) -> dict[str, Any]:
        info, err = self._channel(params.get("channel"))
        if info is None:
            return {"ok": False, "error": err}
        if not info["is_member"]:
            return {"ok": False, "error": "not_in_channel"}
        content, err = self._content(params, text_limit=POST_TEXT_LIMIT)
        if content is None:
            return {"ok": False, "error": err}
        thread_ts = params.get("thread_ts") or None
        channel = info["id"]
        if thread_ts is not None and self._find(channel, thread_ts) is None:
            return {"ok": False, "error": "thread_not_found"}
        text, blocks, markdown_text = content
        ts = self._next_ts()
        msg = FakeMessage(
            channel=channel,
            ts=ts,
            thread_ts=str(thread_ts) if thread_ts else None,
            user=self.bot_user_id,
            bot_id=self.bot_id,
            text=text,
            blocks=blocks,
            markdown_text=markdown_text,
            metadata=self._metadata(params),
        )
        msg.history.append(MessageState(text, blocks, markdown_text, time.monotonic(), method))
        self.messages[channel][ts] = msg
        self._clear_status(channel, msg.thread_ts)
        return {"ok": True, "channel": channel, "ts": ts, "message": msg.to_api()}

    def _m_chat_postMessage(self, params: dict[str, Any], team: str) -> dict[str, Any]:
        return self._post(params, method="chat.postMessage")

    def _m_chat_update(self, params: dict[str, Any], team: str) -> dict[str, Any]:
        info, err = self._channel(params.get("channel"))
        if info is None:
            return {"ok": False, "error": err}
        msg = self._find(info["id"], params.get("ts"))
        if msg is None:
            return {"ok": False, "error": "message_not_found"}
        if msg.bot_id != self.bot_id:
            return {"ok": False, "error": "cant_update_message"}
        if self._streaming(msg):
            return {"ok": False, "error": "streaming_state_conflict"}
        parsed, err = self._content(params, text_limit=UPDATE_TEXT_LIMIT)
        if parsed is None:
            return {"ok": False, "error": err}
        text, blocks, markdown_text = parsed
        # chat.update replaces the content: fields not given are cleared.
        msg.text, msg.blocks, msg.markdown_text = text, blocks, markdown_text
        meta = self._metadata(params)
        if meta is not None:
            msg.metadata = meta
        msg.history.append(MessageState(text, blocks, markdown_text, time.monotonic(), "chat.update"))
        return {"ok": True, "channel": msg.channel, "ts": msg.ts, "text": text or "", "message": msg.to_api()}

    def _m_chat_delete(self, params: dict[str, Any], team: str) -> dict[str, Any]:
        info, err = self._channel(params.get("channel"))
        if info is None:
            return {"ok": False, "error": err}
        msg = self._find(info["id"], params.get("ts"))
        if msg is None:
            return {"ok": False, "error": "message_not_found"}
        msg.deleted = True
        return {"ok": True, "channel": msg.channel, "ts": msg.ts}

    def _reaction_target(self, params: dict[str, Any]) -> tuple[FakeMessage | None, str, str | None]:
        info, err = self._channel(params.get("channel"))
        if info is None:
            return None, "", err
        msg = self._find(info["id"], params.get("timestamp"))
        name = str(params.get("name") or "")
        if msg is None:
            return None, name, "message_not_found"
        return (msg, name, None) if name else (None, name, "invalid_name")

    def _m_reactions_add(self, params: dict[str, Any], team: str) -> dict[str, Any]:
        msg, name, err = self._reaction_target(params)
        if msg is None:
            return {"ok": False, "error": err}
        if name in msg.reactions:
            return {"ok": False, "error": "already_reacted"}
        msg.reactions.append(name)
        msg.reaction_log.append(("add", name))
        return {"ok": True}

    def _m_reactions_remove(self, params: dict[str, Any], team: str) -> dict[str, Any]:
        msg, name, err = self._reaction_target(params)
        if msg is None:
            return {"ok": False, "error": err}
        if name not in msg.reactions:
            return {"ok": False, "error": "no_reaction"}
        msg.reactions.remove(name)
        msg.reaction_log.append(("remove", name))
        return {"ok": True}

    def _m_chat_postEphemeral(self, params: dict[str, Any], team: str) -> dict[str, Any]:
        info, err = self._channel(params.get("channel"))
        if info is None:
            return {"ok": False, "error": err}
        if not params.get("user"):
            return {"ok": False, "error": "user_not_found"}
        parsed, err = self._content(params, text_limit=POST_TEXT_LIMIT)
        if parsed is None:
            return {"ok": False, "error": err}
        record = dict(params)
        record["channel"] = info["id"]
        self.ephemerals.append(record)
        return {"ok": True, "message_ts": self._next_ts()}

    def _m_conversations_info(self, params: dict[str, Any], team: str) -> dict[str, Any]:
        info, err = self._channel(params.get("channel"))
        if info is None:
            return {"ok": False, "error": err}
        return {"ok": True, "channel": dict(info)}

    def _m_conversations_replies(self, params: dict[str, Any], team: str) -> dict[str, Any]:
        info, err = self._channel(params.get("channel"))
        if info is None:
            return {"ok": False, "error": err}
        ts = str(params.get("ts"))
        parent = self._find(info["id"], ts)
        if parent is None:
            return {"ok": False, "error": "thread_not_found"}
        root = parent.thread_ts or parent.ts
        # Oldest first; ``oldest``/``latest`` bound the replies (exclusive unless ``inclusive``), the parent
        # always comes first; pages of ``limit`` (default 1000) continue with ``cursor``.
        oldest = float(params.get("oldest") or 0)
        latest = float(params.get("latest") or math.inf)
        inclusive = str(params.get("inclusive", "")).lower() in {"1", "true"}

        def in_range(m: FakeMessage) -> bool:
            t = float(m.ts)
            return (oldest <= t <= latest) if inclusive else (oldest < t < latest)

        msgs = [m for m in self.thread(info["id"], root) if m.ts == root or in_range(m)]
        limit = int(params.get("limit") or 1000)
        cursor = str(params.get("cursor") or "")
        start = int(cursor.removeprefix("page_")) if cursor.startswith("page_") else 0
        page = msgs[start : start + limit]
        more = start + limit < len(msgs)
        return {
            "ok": True,
            "messages": [m.to_api() for m in page],
            "has_more": more,
            "response_metadata": {"next_cursor": f"page_{start + limit}" if more else ""},
        }

    def _m_conversations_history(self, params: dict[str, Any], team: str) -> dict[str, Any]:
        info, err = self._channel(params.get("channel"))
        if info is None:
            return {"ok": False, "error": err}
        oldest = float(params.get("oldest") or 0)
        latest = float(params.get("latest") or math.inf)
        top = [
            m
            for m in self.messages.get(info["id"], {}).values()
            if not m.deleted and (m.thread_ts is None or m.thread_ts == m.ts) and oldest < float(m.ts) <= latest
        ]
        top.sort(key=lambda m: float(m.ts), reverse=True)
        limit = int(params.get("limit") or 100)
        include_meta = str(params.get("include_all_metadata", "")).lower() in {"1", "true"}
        out = []
        for m in top[:limit]:
            api = m.to_api()
            if not include_meta:
                api.pop("metadata", None)
            out.append(api)
        return {"ok": True, "messages": out, "has_more": len(top) > limit}

    def _m_users_info(self, params: dict[str, Any], team: str) -> dict[str, Any]:
        user = str(params.get("user") or "")
        if user not in self.users and user[:1] in {"U", "W"} and len(user) > 1:
            self.add_user(user)
        info = self.users.get(user)
        if info is None:
            return {"ok": False, "error": "user_not_found"}
        return {"ok": True, "user": dict(info)}

    def _m_files_info(self, params: dict[str, Any], team: str) -> dict[str, Any]:
        obj = self.files.get(str(params.get("file")))
        if obj is None:
            return {"ok": False, "error": "file_not_found"}
        return {"ok": True, "file": dict(obj)}

    # ------------------------------------------------------------------ streaming and assistant threads

    def expire_stream(self, channel: str, ts: str) -> None:
        """End a native stream on Slack's side, as its timeout does."""
        msg = self._find(channel, ts)
        if msg is not None:
            msg.streaming_since = None

    def _streaming(self, msg: FakeMessage) -> bool:
        if msg.streaming_since is None:
            return False
        if time.monotonic() - msg.streaming_since > self.limits.stream_ttl:
            msg.streaming_since = None
        return msg.streaming_since is not None

    def _stream_text(self, params: dict[str, Any]) -> tuple[str | None, str | None]:
        """The markdown a stream call carries (``markdown_text`` or markdown_text ``chunks``), or an error.

        ``chunks`` may also be ``blocks`` chunks (at most 50 valid blocks, appended to the message; see
        :meth:`_chunk_blocks`) and ``task_update`` / ``plan_update`` chunks (accepted, not shown as text).
        """
        text = params.get("markdown_text")
        if text is not None and not isinstance(text, str):
            return None, "invalid_arguments"
        chunks, err = self._chunks(params)
        if err is not None:
            return None, err
        text = (text or "") + "".join(str(c.get("text", "")) for c in chunks if c["type"] == "markdown_text")
        if len(text) > MARKDOWN_TEXT_LIMIT:
            return None, "msg_too_long"
        return text or "", None

    def _chunks(self, params: dict[str, Any]) -> tuple[list[dict[str, Any]], str | None]:
        chunks = params.get("chunks")
        if isinstance(chunks, str):
            try:
                chunks = json.loads(chunks)
            except json.JSONDecodeError:
                return [], "invalid_chunks"
        if chunks is None:
            return [], None
        kinds = {"markdown_text", "blocks", "task_update", "plan_update"}
        if not isinstance(chunks, list) or any(not isinstance(c, dict) or c.get("type") not in kinds for c in chunks):
            return [], "invalid_chunks"
        for c in chunks:
            if c["type"] == "blocks":
                blocks = c.get("blocks")
                if not isinstance(blocks, list) or not blocks or len(blocks) > 50 or _validate_blocks(blocks):
                    return [], "invalid_chunks"
        return chunks, None

    def _chunk_blocks(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        """The blocks of a call's ``blocks`` chunks (validated by :meth:`_stream_text`): appended to the message."""
        chunks, _ = self._chunks(params)
        return [b for c in chunks if c["type"] == "blocks" for b in c["blocks"]]

    def _clear_status(self, channel: str, thread_ts: str | None) -> None:
        key = (channel, thread_ts or "")
        if key in self.assistant_threads and self.assistant_threads[key].status:
            self.assistant_threads[key].statuses.append("")

    def _m_chat_startStream(self, params: dict[str, Any], team: str) -> dict[str, Any]:
        info, err = self._channel(params.get("channel"))
        if info is None:
            return {"ok": False, "error": err}
        if not info["is_member"]:
            return {"ok": False, "error": "not_in_channel"}
        thread_ts = params.get("thread_ts")
        if not thread_ts:
            return {"ok": False, "error": "invalid_arguments"}
        if not info.get("is_im") and not (params.get("recipient_user_id") and params.get("recipient_team_id")):
            return {"ok": False, "error": "invalid_arguments"}
        channel = info["id"]
        if self._find(channel, thread_ts) is None:
            return {"ok": False, "error": "thread_not_found"}
        text, err = self._stream_text(params)
        if text is None:
            return {"ok": False, "error": err}
        ts = self._next_ts()
        now = time.monotonic()
        msg = FakeMessage(
            channel=channel,
            ts=ts,
            thread_ts=str(thread_ts),
            user=self.bot_user_id,
            bot_id=self.bot_id,
            markdown_text=text,
            blocks=self._chunk_blocks(params) or None,
            streaming_since=now,
        )
        msg.history.append(MessageState(None, None, text, now, "chat.startStream"))
        self.messages[channel][ts] = msg
        self._clear_status(channel, str(thread_ts))
        return {"ok": True, "channel": channel, "ts": ts}

    def _live_stream(self, params: dict[str, Any]) -> tuple[FakeMessage | None, str | None]:
        info, err = self._channel(params.get("channel"))
        if info is None:
            return None, err
        msg = self._find(info["id"], params.get("ts"))
        if msg is None:
            return None, "message_not_found"
        if not self._streaming(msg):
            return None, "message_not_in_streaming_state"
        return msg, None

    def _m_chat_appendStream(self, params: dict[str, Any], team: str) -> dict[str, Any]:
        msg, err = self._live_stream(params)
        if msg is None:
            return {"ok": False, "error": err}
        text, err = self._stream_text(params)
        if text is None:
            return {"ok": False, "error": err}
        added = self._chunk_blocks(params)
        if not text and not added:
            return {"ok": False, "error": "no_text"}
        if len((msg.markdown_text or "") + text) > MARKDOWN_TEXT_LIMIT:
            return {"ok": False, "error": "msg_too_long"}
        msg.markdown_text = (msg.markdown_text or "") + text
        if added:
            msg.blocks = [*(msg.blocks or []), *added]
        msg.history.append(MessageState(None, msg.blocks, msg.markdown_text, time.monotonic(), "chat.appendStream"))
        return {"ok": True, "channel": msg.channel, "ts": msg.ts}

    def _m_chat_stopStream(self, params: dict[str, Any], team: str) -> dict[str, Any]:
        msg, err = self._live_stream(params)
        if msg is None:
            return {"ok": False, "error": err}
        text, err = self._stream_text(params)
        if text is None:
            return {"ok": False, "error": err}
        blocks = params.get("blocks")
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        if blocks is not None:
            if not isinstance(blocks, list):
                return {"ok": False, "error": "invalid_blocks_format"}
            bad = _validate_blocks(blocks)
            if bad:
                return {"ok": False, "error": bad}
        if len((msg.markdown_text or "") + text) > MARKDOWN_TEXT_LIMIT:
            return {"ok": False, "error": "msg_too_long"}
        msg.markdown_text = (msg.markdown_text or "") + text
        # Blocks streamed in chunks stay; the stop's chunks and ``blocks`` are appended after them.
        appended = [*(msg.blocks or []), *self._chunk_blocks(params), *(blocks or [])]
        msg.blocks = appended or None
        blocks = msg.blocks
        meta = self._metadata(params)
        if meta is not None:
            msg.metadata = meta
        msg.streaming_since = None
        msg.history.append(MessageState(None, blocks, msg.markdown_text, time.monotonic(), "chat.stopStream"))
        return {"ok": True, "channel": msg.channel, "ts": msg.ts, "message": msg.to_api()}

    def _assistant_thread(self, params: dict[str, Any]) -> tuple[AssistantThread | None, str | None]:
        info, err = self._channel(params.get("channel_id"))
        if info is None:
            return None, err
        thread_ts = params.get("thread_ts")
        if not thread_ts or self._find(info["id"], thread_ts) is None:
            return None, "invalid_thread_ts"
        return self.assistant_threads[(info["id"], str(thread_ts))], None

    def _m_assistant_threads_setStatus(self, params: dict[str, Any], team: str) -> dict[str, Any]:
        thread, err = self._assistant_thread(params)
        if thread is None:
            return {"ok": False, "error": err}
        loading = params.get("loading_messages")
        if isinstance(loading, str):
            loading = json.loads(loading)
        if loading is not None and (not isinstance(loading, list) or len(loading) > 10):
            return {"ok": False, "error": "invalid_arguments"}
        if "status" not in params:
            return {"ok": False, "error": "invalid_arguments"}
        thread.statuses.append(str(params.get("status") or ""))
        return {"ok": True}

    def _m_assistant_threads_setSuggestedPrompts(self, params: dict[str, Any], team: str) -> dict[str, Any]:
        thread, err = self._assistant_thread(params)
        if thread is None:
            return {"ok": False, "error": err}
        prompts = params.get("prompts")
        if isinstance(prompts, str):
            prompts = json.loads(prompts)
        if (
            not isinstance(prompts, list)
            or not 1 <= len(prompts) <= 4
            or any(not isinstance(p, dict) or not p.get("title") or not p.get("message") for p in prompts)
        ):
            return {"ok": False, "error": "invalid_arguments"}
        thread.prompts = [{"title": str(p["title"]), "message": str(p["message"])} for p in prompts]
        return {"ok": True}

    def _m_assistant_threads_setTitle(self, params: dict[str, Any], team: str) -> dict[str, Any]:
        thread, err = self._assistant_thread(params)
        if thread is None:
            return {"ok": False, "error": err}
        if not params.get("title"):
            return {"ok": False, "error": "invalid_arguments"}
        thread.title = str(params["title"])
        return {"ok": True}


def _fmt_retry(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))


def _validate_blocks(blocks: list[Any]) -> str | None:
    if len(blocks) > MAX_BLOCKS:
        return "invalid_blocks"
    markdown_total = 0
    for block in blocks:
        if not isinstance(block, dict) or block.get("type") not in KNOWN_BLOCK_TYPES:
            return "invalid_blocks"
        kind = block["type"]
        if kind == "markdown":
            text = block.get("text")
            if not isinstance(text, str) or not text:
                return "invalid_blocks"
            markdown_total += len(text)
        elif kind == "section":
            text = block.get("text")
            if isinstance(text, dict) and len(str(text.get("text", ""))) > SECTION_TEXT_LIMIT:
                return "invalid_blocks"
        elif kind == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not elements or len(elements) > 25:
                return "invalid_blocks"
            for el in elements:
                if not isinstance(el, dict) or el.get("type") != "button":
                    continue
                label = el.get("text", {})
                if not isinstance(label, dict) or len(str(label.get("text", ""))) > 75:
                    return "invalid_blocks"
                if len(str(el.get("value", ""))) > 2000:
                    return "invalid_blocks"
    if markdown_total > MARKDOWN_TEXT_LIMIT:
        return "invalid_blocks"
    return None


# ---------------------------------------------------------------------------------------------- external uploads
# files.getUploadURLExternal -> POST bytes -> files.completeUploadExternal, as files_upload_v2 drives them.


@dataclass
class FakeUpload:
    file_id: str
    filename: str
    length: int
    content: bytes | None = None  # None until the bytes are POSTed
    title: str | None = None
    channel: str | None = None
    thread_ts: str | None = None
    initial_comment: str | None = None
    completed: bool = False


def _pending_uploads(slack: FakeSlack) -> dict[str, FakeUpload]:
    store = getattr(slack, "_pending_upload_store", None)
    if store is None:
        store = {}
        slack._pending_upload_store = store  # type: ignore[attr-defined]
    return store


def _uploads(slack: FakeSlack) -> list[FakeUpload]:
    return [u for u in _pending_uploads(slack).values() if u.completed]


async def _upload_bytes(self: FakeSlack, request: web.Request) -> web.StreamResponse:
    upload = _pending_uploads(self).get(request.match_info["file_id"])
    body = await request.read()
    if upload is None:
        return web.Response(status=404, text="unknown upload")
    if len(body) != upload.length:
        return web.Response(status=400, text="length mismatch")
    upload.content = body
    self._notify()
    return web.Response(status=200, text="OK - " + str(len(body)))


def _m_files_getUploadURLExternal(self: FakeSlack, params: dict[str, Any], team: str) -> dict[str, Any]:
    filename, length = params.get("filename"), params.get("length")
    try:
        size = int(str(length))
    except ValueError:
        return {"ok": False, "error": "invalid_arguments"}
    if not filename or size <= 0:
        return {"ok": False, "error": "invalid_arguments"}
    file_id = f"F{next(self._ids):08d}"
    _pending_uploads(self)[file_id] = FakeUpload(file_id=file_id, filename=str(filename), length=size)
    return {"ok": True, "file_id": file_id, "upload_url": f"{self.base_url}/upload/v1/{file_id}"}


def _m_files_completeUploadExternal(self: FakeSlack, params: dict[str, Any], team: str) -> dict[str, Any]:
    try:
        items = json.loads(str(params.get("files") or "[]"))
    except json.JSONDecodeError:
        return {"ok": False, "error": "invalid_arguments"}
    channel = params.get("channel_id")
    if channel is not None:
        found, error = self._channel(channel)
        if found is None:
            return {"ok": False, "error": error or "channel_not_found"}
    done = []
    for item in items:
        upload = _pending_uploads(self).get(str(item.get("id")))
        if upload is None or upload.content is None:
            return {"ok": False, "error": "file_not_found"}
        upload.title = item.get("title")
        upload.channel = None if channel is None else str(channel)
        upload.thread_ts = params.get("thread_ts") or None
        upload.initial_comment = params.get("initial_comment") or None
        upload.completed = True
        obj = {"id": upload.file_id, "name": upload.filename, "title": upload.title, "size": upload.length}
        self.files[upload.file_id] = obj
        self.file_bytes[upload.file_id] = upload.content
        done.append(obj)
    self._notify()
    return {"ok": True, "files": done}


FakeSlack._upload_bytes = _upload_bytes  # type: ignore[attr-defined]
FakeSlack._m_files_getUploadURLExternal = _m_files_getUploadURLExternal  # type: ignore[attr-defined]
FakeSlack._m_files_completeUploadExternal = _m_files_completeUploadExternal  # type: ignore[attr-defined]
FakeSlack.uploads = property(_uploads)  # type: ignore[attr-defined]
