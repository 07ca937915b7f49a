"""Slack's error vocabulary and the one door through which the writer's text reaches Slack.

**Error vocabulary.** :func:`classify_slack_error` sorts a failed call into rate-limited (HTTP 429 or
``ratelimited``, with ``Retry-After``), transient (HTTP 5xx, ``internal_error``, ``service_unavailable``,
``fatal_error``, ``request_timeout``, timeouts, connection resets; *ambiguous*: the call may have taken effect)
or fatal (anything else). Codes with a meaning of their own for the writer:

- :data:`CONTENT_REFUSED`: Slack refused the content itself; sending it again cannot help.
- :data:`STREAM_GONE` (``message_not_in_streaming_state``): a native stream ended on Slack's side (it expires
  after a few minutes, or was stopped): the message stays with what was appended; continue by editing it.
- :data:`STREAM_CONFLICT` (``streaming_state_conflict``): ``chat.update`` on a message that is still streaming:
  stop the stream first.

**The one door** (:class:`SlackDoor`, one per answer). Every text payload the writer sends (posts, edits,
stream starts, appends and stops) goes through it, and it passes every text field (``text``,
``markdown_text``, markdown and section block texts, stream chunks) through
:func:`bot.textfilter.neutralise`, so text from a file or from the model never becomes a mention, a broadcast
or a link, whichever delivery mode carries it.

**Exactly-once streams.** ``chat.startStream`` is not idempotent either, and takes no metadata: after an
ambiguous failure the door looks for the stream by what it shows (:meth:`SlackDoor.find_streams`: a bot message
in the thread since the attempt, unmarked, showing the first text). One found is the answer's stream; none means
it did not start; if Slack can't tell, the writer goes on by editing a posted message and, at the end, looks
again and deletes a stream that did start, so one answer is never two messages.

**Exactly-once posts.** Posting is not idempotent, so ``chat.postMessage`` is never blindly retried: each post
carries message metadata ``{"event_type": "variance_answer", "event_payload": {"answer_id", "part"}}``; after an
ambiguous failure the door looks for that marker in the thread (``conversations.replies``) or the channel
(``conversations.history``), every page from just before the attempt, before posting again. If Slack cannot
tell (the lookup fails too), the part is recorded as *unconfirmed* and :class:`DeliveryError`
``post_unconfirmed`` is raised: the writer never posts that part blindly again. A 429 on a post means it was not
posted: the channel waits ``Retry-After`` (through the budget's post pacing) and posts. The client's own retry
handlers are switched off for these calls (slack_sdk's default handler retries connection errors, which could
post twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.textfilter import neutralise

if TYPE_CHECKING:
    from bot.render.pacing import SlackBudget

METADATA_EVENT_TYPE = "variance_answer"
TRANSIENT_ERRORS = frozenset({"internal_error", "service_unavailable", "fatal_error", "request_timeout", "timeout"})
# Slack refused the content itself: sending it again can't help.
CONTENT_REFUSED = frozenset({"msg_too_long", "invalid_blocks", "invalid_arguments", "no_text"})
STREAM_GONE = "message_not_in_streaming_state"
STREAM_CONFLICT = "streaming_state_conflict"


class FailureClass(IntEnum):
    RATE_LIMITED = 0
    TRANSIENT = 1
    FATAL = 2


@dataclass(frozen=True, slots=True)
class Classified:
    kind: FailureClass
    code: str  # Slack's error code or a short exception name, for logs and the user-facing line
    retry_after: float = 0.0
    # The call may have taken effect (timeout, reset, 5xx): matters for posts, which are not idempotent.
    ambiguous: bool = False


def _status_of(exc: SlackApiError) -> int | None:
    resp = exc.response
    status = getattr(resp, "status_code", None)
    if status is None:
        status = getattr(resp, "status", None)
    return int(status) if isinstance(status, int) else None


def _error_code(exc: SlackApiError) -> str:
    resp = exc.response
    try:
        code = resp.get("error") if hasattr(resp, "get") else None
    except Exception:
        code = None
    return str(code) if code else "http_error"


def retry_after_of(exc: SlackApiError, default: float = 1.0) -> float:
    headers = getattr(exc.response, "headers", None) or {}
    for key, value in dict(headers).items():
        if str(key).lower() == "retry-after":
            with contextlib.suppress(TypeError, ValueError):
                return max(0.0, float(value))
    return default


def classify_slack_error(exc: BaseException) -> Classified:
    """Sort a failed Slack call into rate-limited / transient / fatal."""
    if isinstance(exc, SlackApiError):
        status = _status_of(exc)
        code = _error_code(exc)
        if status == 429 or code == "ratelimited":
            return Classified(FailureClass.RATE_LIMITED, "ratelimited", retry_after_of(exc))
        if status is not None and status >= 500:
            name = code if code != "http_error" else f"http_{status}"
            return Classified(FailureClass.TRANSIENT, name, 0.0, True)
        if code in TRANSIENT_ERRORS:
            return Classified(FailureClass.TRANSIENT, code, 0.0, True)
        return Classified(FailureClass.FATAL, code)
    if isinstance(exc, asyncio.TimeoutError | TimeoutError):
        return Classified(FailureClass.TRANSIENT, "timeout", 0.0, True)
    if isinstance(exc, aiohttp.ClientError | ConnectionError):
        return Classified(FailureClass.TRANSIENT, type(exc).__name__, 0.0, True)
    return Classified(FailureClass.FATAL, type(exc).__name__)


class DeliveryError(Exception):
    """A payload could not be delivered: Slack refused it, or transient failures outlasted the retries."""

    def __init__(self, code: str, cause: BaseException | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.cause = cause


def transient(exc: BaseException) -> bool:
    """A failure that may pass (5xx, timeouts, resets outlasting the retries)."""
    cause = exc.cause if isinstance(exc, DeliveryError) else exc
    return cause is not None and classify_slack_error(cause).kind != FailureClass.FATAL


def error_code(exc: BaseException) -> str:
    return exc.code if isinstance(exc, DeliveryError) else classify_slack_error(exc).code


def without_retries(client: AsyncWebClient) -> AsyncWebClient:
    if not client.retry_handlers:
        return client
    clone = copy.copy(client)
    clone.retry_handlers = []
    return clone


def _clean_blocks(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for block in blocks:
        block = dict(block)
        if block.get("type") == "markdown" and isinstance(block.get("text"), str):
            block["text"] = neutralise(block["text"])
        elif block.get("type") == "section" and isinstance(block.get("text"), dict):
            block["text"] = {**block["text"], "text": neutralise(str(block["text"].get("text", "")))}
        out.append(block)
    return out


def clean_payload(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` of a Slack call with every text field neutralised (see the module docstring)."""
    out = dict(kwargs)
    for key in ("text", "markdown_text"):
        if isinstance(out.get(key), str):
            out[key] = neutralise(out[key])
    if isinstance(out.get("blocks"), list):
        out["blocks"] = _clean_blocks(out["blocks"])
    if isinstance(out.get("chunks"), list):
        out["chunks"] = [
            {**c, "text": neutralise(str(c.get("text", "")))} if isinstance(c, dict) and "text" in c else c
            for c in out["chunks"]
        ]
    return out


@dataclass
class DoorCounters:
    posts: int = 0
    post_ratelimited: int = 0
    post_retries: int = 0


@dataclass
class PostSettings:
    attempts: int = 5
    backoff: float = 0.5
    lookup_settle: float = 1.0  # after an ambiguous failure, let the call land before looking for it


@dataclass
class SlackDoor:
    """One answer's calls into one channel. See the module docstring."""

    client: AsyncWebClient
    budget: SlackBudget
    team_id: str
    channel: str
    answer_id: str
    thread_ts: str | None = None
    post_settings: PostSettings = field(default_factory=PostSettings)
    counters: DoorCounters = field(default_factory=DoorCounters)
    # Parts whose post may have landed (ambiguous failure, lookup failed), with when it was tried.
    unconfirmed: dict[int, float] = field(default_factory=dict)
    # Streams that may have started after an ambiguous failure: (thread, first text, when tried).
    unconfirmed_streams: list[tuple[str, str, float]] = field(default_factory=list)
    suspect_duplicates: bool = False

    def __post_init__(self) -> None:
        self.client = without_retries(self.client)

    # -- plain calls (paced by the caller)

    async def update(self, ts: str, **content: Any) -> Any:
        return await self.client.chat_update(**clean_payload({"channel": self.channel, "ts": ts, **content}))

    async def delete(self, ts: str) -> Any:
        return await self.client.chat_delete(channel=self.channel, ts=ts)

    async def start_stream(self, thread_ts: str, markdown_text: str, **recipient: Any) -> str:
        kwargs = clean_payload({"channel": self.channel, "thread_ts": thread_ts, "markdown_text": markdown_text})
        resp = await self.client.chat_startStream(**kwargs, **{k: v for k, v in recipient.items() if v})
        return str(resp["ts"])

    async def append_stream(self, ts: str, markdown_text: str) -> Any:
        kwargs = clean_payload({"channel": self.channel, "ts": ts, "markdown_text": markdown_text})
        return await self.client.chat_appendStream(**kwargs)

    async def stop_stream(self, ts: str, markdown_text: str | None, blocks: list[dict[str, Any]] | None) -> Any:
        kwargs = clean_payload({"channel": self.channel, "ts": ts, "markdown_text": markdown_text or None})
        if blocks:
            kwargs["blocks"] = _clean_blocks(blocks)
        return await self.client.chat_stopStream(**{k: v for k, v in kwargs.items() if v is not None})

    async def set_status(self, thread_ts: str, status: str) -> Any:
        """assistant.threads.setStatus: the status line and its loading message (the same text)."""
        clean = neutralise(status)
        return await self.client.assistant_threads_setStatus(
            channel_id=self.channel, thread_ts=thread_ts, status=clean, loading_messages=[clean]
        )

    # -- exactly-once posts

    def metadata(self, part: int) -> dict[str, Any]:
        return {"event_type": METADATA_EVENT_TYPE, "event_payload": {"answer_id": self.answer_id, "part": part}}

    async def post(self, content: dict[str, Any], *, part: int, thread_ts: str | None = None) -> str:
        """Post one message of this answer, exactly once; returns its ts. Raises DeliveryError."""
        thread = thread_ts if thread_ts is not None else self.thread_ts
        kwargs: dict[str, Any] = {"channel": self.channel, "metadata": self.metadata(part), **content}
        if thread:
            kwargs["thread_ts"] = thread
        kwargs = clean_payload(kwargs)
        attempts = 0
        settings = self.post_settings
        while True:
            started_wall = time.time()
            try:
                async with self.budget.post_turn(self.team_id, self.channel):
                    started_wall = time.time()
                    resp = await self.client.chat_postMessage(**kwargs)
                self.counters.posts += 1
                return str(resp["ts"])
            except Exception as exc:
                info = classify_slack_error(exc)
            if info.kind == FailureClass.RATE_LIMITED:
                self.counters.post_ratelimited += 1
                self.budget.post_ratelimited(self.team_id, self.channel, info.retry_after)
                continue
            if info.kind == FailureClass.FATAL:
                raise DeliveryError(info.code)
            attempts += 1
            self.counters.post_retries += 1
            if info.ambiguous:
                await self.budget.sleep(settings.lookup_settle)
                self.suspect_duplicates = True
                try:
                    found = await self.find_posted(part, thread, started_wall)
                except DeliveryError:
                    # It may be in Slack: never post this part blindly again.
                    self.unconfirmed.setdefault(part, started_wall)
                    raise
                if found is not None:
                    self.counters.posts += 1
                    return found
            if attempts >= settings.attempts:
                raise DeliveryError(info.code)
            await self.budget.sleep(min(8.0, settings.backoff * 2 ** (attempts - 1)))

    async def our_messages(self, thread: str | None, since_wall: float) -> list[dict[str, Any]]:
        """This answer's messages in Slack (found by metadata). Raises DeliveryError if Slack can't tell."""
        # Only messages from just before the attempt on (a long thread has many pages), every page of them.
        oldest = f"{since_wall - 10:.6f}"
        out: list[dict[str, Any]] = []
        cursor: str | None = None
        for _page in range(50):
            resp = await self._lookup_page(thread, oldest, cursor)
            for m in resp.get("messages") or []:
                payload = (m.get("metadata") or {}).get("event_payload") or {}
                if payload.get("answer_id") == self.answer_id and all(m.get("ts") != o.get("ts") for o in out):
                    out.append(m)
            cursor = str((resp.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                break
        return out

    async def _lookup_page(self, thread: str | None, oldest: str, cursor: str | None) -> Any:
        for attempt in range(3):
            try:
                if thread:
                    return await self.client.conversations_replies(
                        channel=self.channel,
                        ts=thread,
                        oldest=oldest,
                        include_all_metadata=True,
                        limit=200,
                        cursor=cursor,
                    )
                return await self.client.conversations_history(
                    channel=self.channel, oldest=oldest, include_all_metadata=True, limit=100, cursor=cursor
                )
            except Exception as exc:
                info = classify_slack_error(exc)
                if info.kind == FailureClass.FATAL or attempt == 2:
                    raise DeliveryError("post_unconfirmed", exc) from exc
                await self.budget.sleep(info.retry_after or 0.5 * 2**attempt)
        raise DeliveryError("post_unconfirmed")

    async def find_streams(self, thread: str, first_text: str, since_wall: float) -> list[str]:
        """Streams this bot may have started in ``thread`` since ``since_wall`` showing ``first_text`` (after a
        ``chat.startStream`` that failed ambiguously). A stream carries no metadata (``chat.startStream`` takes
        none), so it is told by what it shows: a bot message in the thread, not marked as another answer's,
        whose text is the first text sent. Raises DeliveryError when Slack can't tell."""
        oldest = f"{since_wall - 10:.6f}"
        want = neutralise(first_text).strip()
        found: list[str] = []
        cursor: str | None = None
        for _page in range(50):
            resp = await self._lookup_page(thread, oldest, cursor)
            for m in resp.get("messages") or []:
                marked = (m.get("metadata") or {}).get("event_type") == METADATA_EVENT_TYPE
                if m.get("bot_id") and not marked and str(m.get("text") or "").strip() == want:
                    found.append(str(m["ts"]))
            cursor = str((resp.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                break
        return [ts for ts in found if ts != thread]

    async def find_posted(self, part: int, thread: str | None, since_wall: float) -> str | None:
        for m in await self.our_messages(thread, since_wall):
            if (m.get("metadata") or {}).get("event_payload", {}).get("part") == part:
                return str(m["ts"])
        return None
