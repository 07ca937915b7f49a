"""A small Slack Web API for the streaming benchmark, on 127.0.0.1, spoken to by the real ``slack_sdk`` client.

Only what the answer writer calls, with Slack's limits as the benchmark needs them: per workspace and method a
rolling window (``chat.update``/``chat.delete`` 50 per 60 s, ``chat.startStream``/``chat.stopStream`` 20,
``chat.appendStream`` 100), ``chat.postMessage`` 1 per second per channel with a burst of 3, HTTP 429 with
``Retry-After``; native streams (``message_not_in_streaming_state`` after stop, ``streaming_state_conflict`` on
``chat.update`` of a live stream); message metadata and ``conversations.replies``/``history`` for the writer's
exactly-once lookups. Every message keeps its states with the server time each was reached, which is what the
benchmark measures, and when it first showed no Stop button (``done_at``: its final state). For a whole bot
process (``bench_instances``) it also answers ``auth.test``, ``files.info``, ``users.info`` and
``conversations.info``, and serves files added with :meth:`BenchSlack.add_file` to the bot token. (The test
suite has a fuller fake in ``tests/fakes``; benchmarks do not import tests.)
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

WINDOWS: dict[str, tuple[int, float]] = {
    "chat.update": (50, 60.0),
    "chat.delete": (50, 60.0),
    "chat.startStream": (20, 60.0),
    "chat.stopStream": (20, 60.0),
    "chat.appendStream": (100, 60.0),
    "conversations.replies": (50, 60.0),
    "conversations.history": (50, 60.0),
}
POST_RATE, POST_BURST = 1.0, 3.0


@dataclass
class Message:
    channel: str
    ts: str
    thread_ts: str | None
    bot: bool
    text: str = ""
    metadata: dict[str, Any] | None = None
    streaming: bool = False
    deleted: bool = False
    states: list[tuple[float, str, str]] = field(default_factory=list)  # (monotonic time, method, visible)
    done_at: float | None = None  # when it first showed no Stop button (a final state)


def _visible(params: dict[str, Any]) -> str:
    if params.get("markdown_text") is not None:
        return str(params["markdown_text"])
    blocks = params.get("blocks")
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    texts = [str(b.get("text", "")) for b in blocks or [] if b.get("type") == "markdown"]
    return "\n".join(texts) if texts else str(params.get("text") or "")


def _live(params: dict[str, Any]) -> bool:
    """Whether the message still carries its Stop button (an ``actions`` block)."""
    blocks = params.get("blocks")
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    return any(b.get("type") == "actions" for b in blocks or [])


def _stream_text(params: dict[str, Any]) -> str:
    text = str(params.get("markdown_text") or "")
    chunks = params.get("chunks")
    if isinstance(chunks, str):
        chunks = json.loads(chunks)
    return text + "".join(str(c.get("text", "")) for c in chunks or [])


class BenchSlack:
    def __init__(self, token: str = "xoxb-bench", team_id: str = "T0BENCH") -> None:
        self.token = token
        self.team_id = team_id
        self.messages: dict[str, dict[str, Message]] = defaultdict(dict)
        self.calls: dict[str, int] = defaultdict(int)
        self.ratelimited = 0
        self._windows: dict[str, deque[float]] = defaultdict(deque)
        self._buckets: dict[str, tuple[float, float]] = {}
        self._last_ts = 0.0
        self._runner: web.AppRunner | None = None
        self.api_url = ""
        self.files: dict[str, tuple[dict[str, Any], bytes]] = {}

    async def __aenter__(self) -> BenchSlack:
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/files/{file_id}/{name}", self._download)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.api_url = f"http://127.0.0.1:{port}/api/"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def spend(self, method: str, calls: int, over: float) -> None:
        """Count ``calls`` earlier calls of ``method``, spread evenly over the last ``over`` seconds."""
        now = time.monotonic()
        window = self._windows[method]
        for i in range(calls):
            window.append(now - over + over * (i + 0.5) / calls)

    def add_file(self, content: bytes, name: str) -> dict[str, Any]:
        """A file shared in Slack; returns its file object (its bytes are served with the bot token)."""
        file_id = f"F{len(self.files) + 1:08d}"
        base = self.api_url.removesuffix("/api/")
        obj = {
            "id": file_id, "name": name, "title": name, "mimetype": "text/csv", "filetype": "csv",
            "size": len(content), "user": "U0BENCH", "url_private_download": f"{base}/files/{file_id}/{name}",
            "mode": "hosted", "is_external": False,
        }
        self.files[file_id] = (obj, content)
        return obj

    async def _download(self, request: web.Request) -> web.Response:
        found = self.files.get(request.match_info["file_id"])
        if found is None or request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.Response(status=404)
        return web.Response(body=found[1], content_type="text/csv")

    def user_message(self, channel: str) -> Message:
        msg = Message(channel, self._next_ts(), None, bot=False, text="question")
        self.messages[channel][msg.ts] = msg
        return msg

    def _next_ts(self) -> str:
        self._last_ts = max(round(time.time(), 6), self._last_ts + 0.000001)
        return f"{self._last_ts:.6f}"

    def _limited(self, method: str, channel: str) -> float | None:
        now = time.monotonic()
        if method == "chat.postMessage":
            tokens, at = self._buckets.get(channel, (POST_BURST, now))
            tokens = min(POST_BURST, tokens + (now - at) * POST_RATE)
            if tokens < 1.0:
                self._buckets[channel] = (tokens, now)
                return (1.0 - tokens) / POST_RATE
            self._buckets[channel] = (tokens - 1.0, now)
            return None
        if method not in WINDOWS:
            return None
        limit, seconds = WINDOWS[method]
        stamps = self._windows[method]
        while stamps and stamps[0] <= now - seconds:
            stamps.popleft()
        if len(stamps) >= limit:
            return stamps[0] + seconds - now
        stamps.append(now)
        return None

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: dict[str, Any] = dict(request.query)
        raw = await request.read()
        if request.content_type == "application/json":
            params.update(json.loads(raw or b"{}"))
        elif raw:
            params.update(dict(parse_qsl(raw.decode(), keep_blank_values=True)))
        self.calls[method] += 1
        wait = self._limited(method, str(params.get("channel", "")))
        if wait is not None:
            self.ratelimited += 1
            body = {"ok": False, "error": "ratelimited"}
            return web.json_response(body, status=429, headers={"Retry-After": str(max(1, math.ceil(wait)))})
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        result = handler(params) if handler is not None else {"ok": False, "error": "unknown_method"}
        return web.json_response(result)

    def _find(self, params: dict[str, Any]) -> Message | None:
        msg = self.messages[str(params.get("channel"))].get(str(params.get("ts")))
        return None if msg is None or msg.deleted else msg

    def _record(self, msg: Message, method: str, text: str, *, live: bool = True) -> None:
        msg.text = text
        msg.states.append((time.monotonic(), method, text))
        if not live and msg.done_at is None:
            msg.done_at = msg.states[-1][0]

    def _new(
        self, params: dict[str, Any], method: str, text: str, streaming: bool = False, live: bool = True
    ) -> dict[str, Any]:
        channel = str(params["channel"])
        meta = params.get("metadata")
        msg = Message(
            channel,
            self._next_ts(),
            params.get("thread_ts") or None,
            bot=True,
            metadata=json.loads(meta) if isinstance(meta, str) else meta,
            streaming=streaming,
        )
        self.messages[channel][msg.ts] = msg
        self._record(msg, method, text, live=live)
        return {"ok": True, "channel": channel, "ts": msg.ts}

    def _m_chat_postMessage(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._new(params, "chat.postMessage", _visible(params), live=_live(params))

    def _m_chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        msg = self._find(params)
        if msg is None:
            return {"ok": False, "error": "message_not_found"}
        if msg.streaming:
            return {"ok": False, "error": "streaming_state_conflict"}
        self._record(msg, "chat.update", _visible(params), live=_live(params))
        return {"ok": True, "channel": msg.channel, "ts": msg.ts}

    def _m_chat_delete(self, params: dict[str, Any]) -> dict[str, Any]:
        msg = self._find(params)
        if msg is None:
            return {"ok": False, "error": "message_not_found"}
        msg.deleted = True
        msg.states.append((time.monotonic(), "chat.delete", ""))
        return {"ok": True}

    def _m_chat_startStream(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._new(params, "chat.startStream", _stream_text(params), streaming=True)

    def _m_chat_appendStream(self, params: dict[str, Any]) -> dict[str, Any]:
        msg = self._find(params)
        if msg is None or not msg.streaming:
            return {"ok": False, "error": "message_not_in_streaming_state"}
        self._record(msg, "chat.appendStream", msg.text + _stream_text(params))
        return {"ok": True}

    def _m_chat_stopStream(self, params: dict[str, Any]) -> dict[str, Any]:
        msg = self._find(params)
        if msg is None or not msg.streaming:
            return {"ok": False, "error": "message_not_in_streaming_state"}
        msg.streaming = False
        self._record(msg, "chat.stopStream", msg.text + _stream_text(params), live=False)
        return {"ok": True}

    def _ours(self, channel: str, oldest: float, thread: str | None) -> list[dict[str, Any]]:
        out = []
        for m in self.messages[channel].values():
            if m.deleted or float(m.ts) <= oldest or (thread is not None and m.thread_ts != thread):
                continue
            out.append({"ts": m.ts, "text": m.text, "metadata": m.metadata or {}})
        return out

    def _m_conversations_replies(self, params: dict[str, Any]) -> dict[str, Any]:
        oldest = float(params.get("oldest") or 0)
        return {"ok": True, "messages": self._ours(str(params["channel"]), oldest, str(params.get("ts")))}

    def _m_conversations_history(self, params: dict[str, Any]) -> dict[str, Any]:
        oldest = float(params.get("oldest") or 0)
        return {"ok": True, "messages": self._ours(str(params["channel"]), oldest, None)}

    def _m_auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "team_id": self.team_id, "user_id": "U0BOT", "bot_id": "B0BOT", "user": "variance"}

    def _m_files_info(self, params: dict[str, Any]) -> dict[str, Any]:
        found = self.files.get(str(params.get("file")))
        return {"ok": True, "file": found[0]} if found else {"ok": False, "error": "file_not_found"}

    def _m_users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "user": {"id": params.get("user"), "is_admin": False, "is_owner": False}}

    def _m_conversations_info(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = str(params.get("channel"))
        return {"ok": True, "channel": {"id": channel, "is_im": channel.startswith("D")}}
