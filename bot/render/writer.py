"""One answer in Slack: placeholder → throttled edits → overflow into the thread → final state.

Lifecycle::

    writer = AnswerWriter(client, budget, team_id="T1", channel="C1", thread_ts=mention_ts)
    await writer.start(tool_label=None)           # posts "⏳ Analyzing…" at once, returns its ts
    outcome = await writer.write(run)             # consumes AnalystEvents until Done/Failed
    # or: await writer.fail("I couldn't read that file: ...")  /  await writer.write_markdown(report_md)

Rendering (checked against slack_sdk 3.47 and Slack's method docs, enforced the same way by the fake):

- **While live** the message is ``blocks=[{"type": "markdown", "text": <text so far + "⏳ <what is
  being computed>">}, {"type": "actions", "elements": [<Stop button>]}]`` plus a short ``text``
  fallback (for notifications and screen readers; Slack allows ``text`` together with ``blocks``, and a
  markdown block renders the same standard Markdown as ``markdown_text``). ``markdown_text`` cannot carry
  the Stop button: it may not be combined with ``text`` or ``blocks`` (``invalid_arguments``). The button
  has ``action_id`` :data:`STOP_ACTION_ID` and ``value`` = :attr:`AnswerWriter.answer_id`.
- **Final** edit: ``markdown_text`` only (the button disappears): exactly ``Done.final_text``, or the
  text so far plus an error line (``⚠️ ...``) or ``_Stopped._``.
- **Overflow**: a message holds at most ``max_chars`` (11,000 of Slack's 12,000 for Markdown). When the
  live text outgrows it (minus room for the status line), the live message is closed at a clean Markdown
  boundary (:mod:`bot.render.markdown`: paragraph or list item, never inside a table or code block) and
  the answer continues in a new message in the thread (``thread_ts`` of the answer, or of its first
  message). The final state of the thread is the final text split the same way: the messages' texts,
  joined by the whitespace at the cut points, are exactly the final text
  (``"".join(split_markdown(text, max_chars)) == text``; each message shows its part stripped). When the
  final text differs from the streamed deltas, parts are re-planned: changed messages are edited, missing
  ones posted, surplus ones deleted (through the workspace's ``chat.delete`` budget; one that can't be
  deleted is ended with :data:`SURPLUS_LINE` and the outcome reports ``delete_failed``).
- A final edit that fails transiently even after the scheduler's retries is queued again (twice); if it
  still fails, the last message is posted anew and the old one deleted.

Every path ends in a final state: the event source raising, ending without a terminal event, the writer's
task being cancelled (finalised under :func:`asyncio.shield`, then the cancellation propagates), Slack
refusing an edit. A placeholder is never left saying "Analyzing". A live message's post (placeholder or
continuation) runs to the end even if its caller is cancelled, and the finalisation waits for it and edits
that message. There is one finalisation per answer (a task): ``write``/``fail``/``write_markdown`` called
again, or while it runs, await that same one.

Posting is not idempotent, so ``chat.postMessage`` is never blindly retried: each post carries message
metadata ``{"event_type": "variance_answer", "event_payload": {"answer_id", "part"}}``; after an ambiguous
failure (timeout, connection reset, HTTP 5xx) the writer looks for that marker in the thread
(``conversations.replies``) or the channel (``conversations.history``) before posting again, and when it
did post again it sweeps the thread at the end and deletes any duplicate part. Lookups read the thread (or
channel) from just before the attempt, every page. If Slack cannot tell (the lookup itself fails), the
writer does not post that part again: it keeps reading the run, looks once more at the end (found: the
message is edited; not found: posted), and if Slack still can't tell, the answer ends as ``slack_error``
rather than risk a double post. A 429 on a post means it was not posted: the channel waits ``Retry-After``
and posts. The client's own retry handlers are switched off for the writer's calls (slack_sdk's default
handler retries connection errors, which could post twice).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import time
import uuid
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from analyst.events import AnalystEvent, Done, Failed, FailureKind, TextDelta, ToolFinished, ToolStarted
from bot.render.markdown import split_markdown, split_point
from bot.render.scheduler import (
    DeliveryError,
    FailureClass,
    Priority,
    SlackBudget,
    Slot,
    classify_slack_error,
)

logger = logging.getLogger(__name__)

STOP_ACTION_ID = "stop_answer"
METADATA_EVENT_TYPE = "variance_answer"
STOPPED_LINE = "_Stopped._"
CRASH_LINE = "⚠️ Something went wrong while writing this answer. Please try again."
UNEXPECTED_END_LINE = "⚠️ The answer ended unexpectedly. Please try again."
EMPTY_ANSWER_LINE = "⚠️ The analyst returned an empty answer. Please rephrase the question."
SURPLUS_LINE = "_(This part was replaced by the answer above.)_"
# Slack refused the content itself: editing again can't help.
CONTENT_REFUSED = frozenset({"msg_too_long", "invalid_blocks", "invalid_arguments", "no_text"})
FinalState = Literal["answered", "failed", "stopped", "slack_error"]


@dataclass(frozen=True, slots=True)
class WriterSettings:
    placeholder: str = "Analyzing…"
    max_chars: int = 11_000  # per message; Slack takes 12,000 of Markdown
    status_reserve: int = 400  # room kept in a live message for the "⏳ ..." line
    fallback_chars: int = 300  # length of the plain ``text`` fallback while live
    # The first edit showing text spends a reserved unit: wait until there is a line's worth to read.
    first_text_min_chars: int = 40
    stop_button: bool = True
    stop_label: str = "Stop"
    post_attempts: int = 5
    post_backoff: float = 0.5
    lookup_settle: float = 1.0  # after an ambiguous post failure, let the call land before looking for it
    final_timeout: float = 180.0  # waiting for final edits (a saturated workspace window can take a minute)
    # When a one-message answer's final edit is still queued this long (the workspace's chat.update window is
    # spent), post the final as a new message and delete the placeholder instead: chat.postMessage and
    # chat.delete have budgets of their own. None: always wait for the edit.
    repost_final_after: float | None = 3.0


@dataclass
class AnswerOutcome:
    """How one answer ended, with counters for logs and benches."""

    state: FinalState
    answer_id: str
    channel: str
    message_ts: list[str]
    delivered: bool  # the final state is in Slack
    edits: int = 0
    posts: int = 0
    deletes: int = 0
    ratelimited: int = 0
    retries: int = 0
    slack_error: str | None = None
    time_to_first_text: float | None = None  # first delta → first edit showing text delivered
    time_to_final: float | None = None  # terminal event → final text delivered
    final_text: str = ""  # the document the thread shows


@dataclass(frozen=True, slots=True)
class _Render:
    markdown: str
    final: bool
    has_text: bool


@dataclass
class _Msg:
    ts: str
    slot: Slot[_Render] | None = None
    final_text: str | None = None  # what its final edit says (queued or delivered)
    final_future: asyncio.Future[None] | None = None


def _without_retries(client: AsyncWebClient) -> AsyncWebClient:
    if not client.retry_handlers:
        return client
    clone = copy.copy(client)
    clone.retry_handlers = []
    return clone


def _with_line(text: str, line: str) -> str:
    return f"{text.rstrip()}\n\n{line}" if text.strip() else line


class AnswerWriter:
    """Renders one answer's :data:`AnalystEvent` stream into Slack. See the module docstring."""

    def __init__(
        self,
        client: AsyncWebClient,
        budget: SlackBudget,
        *,
        team_id: str,
        channel: str,
        thread_ts: str | None = None,
        answer_id: str | None = None,
        settings: WriterSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = _without_retries(client)
        self.budget = budget
        self.team_id = team_id
        self.channel = channel
        self.thread_ts = thread_ts
        self.answer_id = answer_id or uuid.uuid4().hex[:16]
        self.settings = settings or WriterSettings()
        self._clock = clock
        self._scheduler = budget.scheduler(team_id, "chat.update")
        self._msgs: list[_Msg] = []
        self._text = ""
        self._closed_parts: list[str] = []  # raw parts of self._text already closed (their concatenation)
        self._live_from = 0
        self._status: str | None = None
        self._slot_counter = 0
        self._suspect_duplicates = False
        self._finalised: AnswerOutcome | None = None
        self._finalising: asyncio.Task[AnswerOutcome] | None = None
        self._start_error: DeliveryError | None = None
        # The post of a new live message (placeholder or continuation) in flight: it runs to the end even if
        # whoever awaits it is cancelled, and its message is recorded when it lands, so the finalisation
        # edits it rather than post the part again.
        self._posting: asyncio.Task[str] | None = None
        # Parts whose post may have landed (ambiguous failure, lookup failed), with when it was tried:
        # they are looked up again at the end and never posted blindly.
        self._unconfirmed: dict[int, float] = {}
        self._overflow_error: DeliveryError | None = None  # a continuation could not be posted: stop posting
        # counters
        self._posts = 0
        self._deletes = 0
        self._post_ratelimited = 0
        self._post_retries = 0
        self._slot_stats: list[Slot[_Render]] = []
        self._first_delta_at: float | None = None
        self._first_text_at: float | None = None
        self._terminal_at: float | None = None
        self._last_live: _Render | None = None

    # ------------------------------------------------------------------ public

    @property
    def message_ts(self) -> list[str]:
        return [m.ts for m in self._msgs]

    async def start(self, tool_label: str | None = None) -> str:
        """Post the placeholder now and return its ts. Raises :class:`DeliveryError` if Slack refuses."""
        if self._msgs:
            return self._msgs[0].ts
        if self._start_error is not None:
            raise self._start_error
        if self._posting is None:
            self._status = tool_label
            self._post_live(self._live_render(), part=0)
        assert self._posting is not None
        try:
            return await asyncio.shield(self._posting)
        except DeliveryError as err:
            self._start_error = err
            raise

    async def retire_unconfirmed(self, message: str, *, attempts: int = 5, first_wait: float = 2.0) -> bool:
        """After :meth:`start` failed with ``post_unconfirmed``: the placeholder may have landed all the same.

        Look for it again a few times, with growing waits, and if it is there end it with ``message`` (no Stop
        button), so no placeholder is ever left saying "Analyzing". True when one was found and ended.
        """
        since_wall = self._unconfirmed.get(0)
        if since_wall is None or self._msgs:
            return False
        wait = first_wait
        for _ in range(attempts):
            await self.budget.sleep(wait)
            wait = min(30.0, wait * 2)
            try:
                found = await self._our_messages(self.thread_ts, since_wall)
            except DeliveryError:
                continue
            for m in found:
                slot = self._open_slot(_Msg(str(m["ts"])))
                try:
                    await slot.finish(_Render(f"⚠️ {message}", final=True, has_text=True))
                except DeliveryError as err:
                    logger.warning("answer %s: could not end an unconfirmed placeholder: %s", self.answer_id, err.code)
                    return False
            return bool(found)
        logger.warning("answer %s: an unconfirmed placeholder could not be looked up", self.answer_id)
        return False

    async def write(self, events: AsyncIterable[AnalystEvent]) -> AnswerOutcome:
        """Consume ``events`` into the message(s) until a terminal event; always ends in a final state."""
        if self._finalising is not None:
            return await _shielded(self._finalising)
        if not self._msgs and self._start_error is None:
            with contextlib.suppress(DeliveryError):
                await self.start()
        if self._start_error is not None:
            _close_source(events)
            return self._outcome("slack_error", "", delivered=False, error=self._start_error.code)
        doc: str
        state: FinalState
        try:
            doc, state = await self._consume(events)
        except asyncio.CancelledError as cancelled:
            _cancel_source(events)
            # A cancellation that gives a reason (task.cancel(msg), e.g. the bot shutting down) shows it.
            reason = cancelled.args[0] if cancelled.args and isinstance(cancelled.args[0], str) else None
            if reason:
                doc, state = _with_line(self._text, f"⚠️ {reason}"), "failed"
            else:
                doc, state = _with_line(self._text, STOPPED_LINE), "stopped"
            await _shielded(self._finalise(doc, state))
            raise
        except Exception:
            logger.exception("answer %s: the event source failed", self.answer_id)
            doc, state = _with_line(self._text, CRASH_LINE), "failed"
        return await _shielded(self._finalise(doc, state))

    async def fail(self, message: str) -> AnswerOutcome:
        """End the answer with an error line (no run needed), e.g. an unreadable file."""
        return await _shielded(self._finalise(_with_line(self._text, f"⚠️ {message}"), "failed"))

    async def write_markdown(self, markdown: str) -> AnswerOutcome:
        """Show a complete Markdown answer (e.g. the deterministic report) through the same path."""
        return await _shielded(self._finalise(markdown, "answered"))

    # ------------------------------------------------------------------ consuming events

    async def _consume(self, events: AsyncIterable[AnalystEvent]) -> tuple[str, FinalState]:
        iterator = events.__aiter__()
        try:
            while True:
                try:
                    event = await iterator.__anext__()
                except StopAsyncIteration:
                    return _with_line(self._text, UNEXPECTED_END_LINE), "failed"
                if isinstance(event, TextDelta):
                    if not event.text:
                        continue
                    if self._first_delta_at is None:
                        self._first_delta_at = self._clock()
                    self._text += event.text
                    await self._overflow_if_needed()
                    self._submit_live()
                elif isinstance(event, ToolStarted):
                    self._status = event.label or event.name
                    self._submit_live()
                elif isinstance(event, ToolFinished):
                    self._status = None
                    self._submit_live()
                elif isinstance(event, Done):
                    self._terminal_at = self._clock()
                    if not event.final_text.strip():
                        return _with_line(self._text, EMPTY_ANSWER_LINE), "failed"
                    return event.final_text, "answered"
                elif isinstance(event, Failed):
                    self._terminal_at = self._clock()
                    text = event.partial_text or self._text
                    if event.kind == FailureKind.CANCELLED:
                        return _with_line(text, STOPPED_LINE), "stopped"
                    return _with_line(text, f"⚠️ {event.user_message}"), "failed"
        finally:
            aclose = getattr(iterator, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()

    def _live_render(self) -> _Render:
        body = self._text[self._live_from :].strip()
        status = self._status
        if not body:
            return _Render(f"⏳ {status or self.settings.placeholder}", final=False, has_text=False)
        if status:
            body = f"{body}\n\n⏳ _{status}_"
        return _Render(body, final=False, has_text=True)

    def _submit_live(self) -> None:
        if not self._msgs:
            return
        slot = self._msgs[-1].slot
        if slot is None or slot.closed:
            return
        render = self._live_render()
        first = render.has_text and self._first_text_at is None
        if first and len(self._text.strip()) < self.settings.first_text_min_chars:
            # Keep showing the status until a first line is worth the edit (it spends a reserved unit).
            render = _Render(f"⏳ {self._status or self.settings.placeholder}", final=False, has_text=False)
            first = False
        if render == self._last_live:
            return
        self._last_live = render
        slot.submit(render, Priority.FIRST_VISIBLE if first else Priority.INTERMEDIATE)

    async def _overflow_if_needed(self) -> None:
        live_limit = self.settings.max_chars - self.settings.status_reserve
        while len(self._text) - self._live_from > live_limit and self._msgs and self._overflow_error is None:
            cut = split_point(self._text, live_limit, self._live_from) - self._live_from
            part = self._text[self._live_from : self._live_from + cut]
            if not part.strip():  # nothing worth a message before the cut
                break
            current = self._msgs[-1]
            self._queue_final(current, part.strip())
            self._closed_parts.append(part)
            self._live_from += cut
            root = self.thread_ts or self._msgs[0].ts
            try:
                await asyncio.shield(self._post_live(self._live_render(), part=len(self._msgs), thread_ts=root))
            except DeliveryError as err:
                # No live message to stream into: keep reading the run (the finalisation posts what is left,
                # or, if this post may have landed, looks for it first) rather than abort the answer.
                logger.warning("answer %s: continuation not posted: %s", self.answer_id, err.code)
                self._overflow_error = err

    # ------------------------------------------------------------------ slack calls

    def _post_live(self, render: _Render, *, part: int, thread_ts: str | None = None) -> asyncio.Task[str]:
        """Post a new live message as a task of its own; the message is recorded the moment it lands."""
        task = asyncio.ensure_future(self._post(render, part=part, thread_ts=thread_ts))
        self._posting = task

        def landed(done: asyncio.Task[str]) -> None:
            if done.cancelled() or done.exception() is not None:
                return
            msg = _Msg(done.result())
            self._msgs.append(msg)
            self._last_live = render
            slot = self._open_slot(msg)
            if part > 0:
                slot.first_shown()  # a continuation: the answer is already visible

        task.add_done_callback(landed)
        return task

    async def _settle_posting(self) -> None:
        """Wait for a live message's post still in flight (it may land after a cancellation)."""
        task = self._posting
        if task is not None and not task.done():
            await asyncio.wait({task})
        if task is None or task.cancelled() or self._start_error is not None or self._msgs:
            return
        err = task.exception()
        if isinstance(err, DeliveryError):
            self._start_error = err

    def _open_slot(self, msg: _Msg) -> Slot[_Render]:
        self._slot_counter += 1
        key = f"{self.channel}:{msg.ts}:{self.answer_id}:{self._slot_counter}"

        async def send(render: _Render) -> None:
            if render.final:
                await self.client.chat_update(channel=self.channel, ts=msg.ts, markdown_text=render.markdown)
            else:
                await self.client.chat_update(
                    channel=self.channel, ts=msg.ts, text=self._fallback(render), blocks=self._blocks(render)
                )
            if render.has_text and self._first_text_at is None:
                self._first_text_at = self._clock()

        slot = self._scheduler.open(key, send)
        msg.slot = slot
        self._slot_stats.append(slot)
        return slot

    def _queue_final(self, msg: _Msg, shown: str) -> asyncio.Future[None]:
        """Queue ``shown`` as the final content of ``msg`` (after any final already queued for it)."""
        render = _Render(shown, final=True, has_text=True)
        if msg.final_future is None and msg.slot is not None and not msg.slot.closed:
            fut = msg.slot.submit_final(render)
        else:
            fut = asyncio.ensure_future(self._refinal(msg, render, msg.final_future))
        msg.final_text = shown
        msg.final_future = fut
        return fut

    async def _refinal(self, msg: _Msg, render: _Render, previous: asyncio.Future[None] | None) -> None:
        if previous is not None:  # one final at a time per message, so they land in order
            with contextlib.suppress(Exception):
                await previous
        slot = self._open_slot(msg)
        await slot.finish(render)

    def _blocks(self, render: _Render) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = [{"type": "markdown", "text": render.markdown}]
        if self.settings.stop_button and not render.final:
            blocks.append(
                {
                    "type": "actions",
                    "block_id": "answer_controls",
                    "elements": [
                        {
                            "type": "button",
                            "action_id": STOP_ACTION_ID,
                            "text": {"type": "plain_text", "text": self.settings.stop_label},
                            "value": self.answer_id,
                            "style": "danger",
                        }
                    ],
                }
            )
        return blocks

    def _fallback(self, render: _Render) -> str:
        text = render.markdown
        limit = self.settings.fallback_chars
        return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"

    def _metadata(self, part: int) -> dict[str, Any]:
        payload = {"answer_id": self.answer_id, "part": part}
        return {"event_type": METADATA_EVENT_TYPE, "event_payload": payload}

    async def _post(self, render: _Render, *, part: int, thread_ts: str | None = None) -> str:
        """Post one message of this answer, exactly once. Raises DeliveryError."""
        thread = thread_ts if thread_ts is not None else self.thread_ts
        kwargs: dict[str, Any] = {"channel": self.channel, "metadata": self._metadata(part)}
        if thread:
            kwargs["thread_ts"] = thread
        if render.final:
            kwargs["markdown_text"] = render.markdown
        else:
            kwargs["text"] = self._fallback(render)
            kwargs["blocks"] = self._blocks(render)
        attempts = 0
        while True:
            started_wall = time.time()
            try:
                async with self.budget.post_turn(self.team_id, self.channel):
                    started_wall = time.time()
                    resp = await self.client.chat_postMessage(**kwargs)
                self._posts += 1
                return str(resp["ts"])
            except Exception as exc:
                info = classify_slack_error(exc)
            if info.kind == FailureClass.RATE_LIMITED:
                self._post_ratelimited += 1
                self.budget.post_ratelimited(self.team_id, self.channel, info.retry_after)
                continue
            if info.kind == FailureClass.FATAL:
                raise DeliveryError(info.code)
            attempts += 1
            self._post_retries += 1
            if info.ambiguous:
                await self.budget.sleep(self.settings.lookup_settle)
                self._suspect_duplicates = True
                try:
                    found = await self._find_posted(part, thread, started_wall)
                except DeliveryError:
                    # It may be in Slack: never post this part blindly again (see the module docstring).
                    self._unconfirmed.setdefault(part, started_wall)
                    raise
                if found is not None:
                    self._posts += 1
                    return found
            if attempts >= self.settings.post_attempts:
                raise DeliveryError(info.code)
            await self.budget.sleep(min(8.0, self.settings.post_backoff * 2 ** (attempts - 1)))

    async def _our_messages(self, thread: str | None, since_wall: float) -> list[dict[str, Any]]:
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

    async def _find_posted(self, part: int, thread: str | None, since_wall: float) -> str | None:
        for m in await self._our_messages(thread, since_wall):
            if (m.get("metadata") or {}).get("event_payload", {}).get("part") == part:
                return str(m["ts"])
        return None

    async def _delete(self, ts: str) -> bool:
        """Delete one of this answer's messages, paced and retried by the workspace's chat.delete budget."""
        scheduler = self.budget.scheduler(self.team_id, "chat.delete")
        self._slot_counter += 1
        gone = False

        async def send(_payload: object) -> None:
            nonlocal gone
            try:
                await self.client.chat_delete(channel=self.channel, ts=ts)
            except SlackApiError as exc:
                if classify_slack_error(exc).code != "message_not_found":
                    raise
                gone = True

        slot = scheduler.open(f"{self.channel}:{ts}:{self.answer_id}:delete:{self._slot_counter}", send)
        slot.first_shown()
        try:
            await slot.finish(None)
        except DeliveryError as err:
            logger.warning("answer %s: could not delete a message: %s", self.answer_id, err.code)
            return False
        if not gone:
            self._deletes += 1
        return True

    # ------------------------------------------------------------------ final state

    def _plan_parts(self, doc: str) -> list[str]:
        closed_prefix = "".join(self._closed_parts)
        if self._closed_parts and doc.startswith(closed_prefix):
            rest = split_markdown(doc, self.settings.max_chars, len(closed_prefix))
            raw = list(self._closed_parts) + rest
        else:
            raw = split_markdown(doc, self.settings.max_chars)
        shown = [p.strip() for p in raw if p.strip()]
        return shown or [doc.strip() or "…"]

    def _finalise(self, doc: str, state: FinalState) -> asyncio.Task[AnswerOutcome]:
        """The answer's one finalisation, as a task: whoever comes later awaits the same one."""
        if self._finalising is None:
            self._finalising = asyncio.ensure_future(self._run_finalise(doc, state))
        return self._finalising

    async def _run_finalise(self, doc: str, state: FinalState) -> AnswerOutcome:
        await self._settle_posting()
        terminal_at = self._terminal_at if self._terminal_at is not None else self._clock()
        error: str | None = None
        parts = self._plan_parts(doc)
        futures: list[tuple[_Msg, str, asyncio.Future[None]]] = []
        for i, shown in enumerate(parts):
            if i < len(self._msgs):
                msg = self._msgs[i]
                fut = msg.final_future
                if msg.final_text == shown and fut is not None and not _failed(fut):
                    futures.append((msg, shown, fut))
                else:  # not queued yet, different, or it failed (e.g. transient failures outlasted the retries)
                    futures.append((msg, shown, self._queue_final(msg, shown)))
                continue
            root = self.thread_ts or (self._msgs[0].ts if self._msgs else None)
            if i in self._unconfirmed:
                # This part's post may have landed: find it and edit it; if Slack still can't tell, stop.
                try:
                    found = await self._find_posted(i, root, self._unconfirmed[i])
                except DeliveryError as err:
                    error = err.code
                    break
                if found is not None:
                    msg = _Msg(found)
                    self._msgs.append(msg)
                    futures.append((msg, shown, self._queue_final(msg, shown)))
                    continue
            try:
                ts = await self._post(_Render(shown, final=True, has_text=True), part=i, thread_ts=root)
            except DeliveryError as err:
                error = err.code
                break
            self._msgs.append(_Msg(ts, final_text=shown))
            if self._first_text_at is None:
                self._first_text_at = self._clock()
        for msg in self._msgs[len(parts) :]:
            if msg.slot is not None:
                msg.slot.close()
            if await self._delete(msg.ts):
                msg.final_text = ""
            else:
                # It stays: end it as a pointer, not as live text with a Stop button, and say so.
                error = error or "delete_failed"
                futures.append((msg, SURPLUS_LINE, self._queue_final(msg, SURPLUS_LINE)))
        if error is None and len(futures) == 1 and len(self._msgs) == 1:
            futures = await self._repost_if_stuck(futures[0])
        error = await self._await_finals(futures) or error
        if self._suspect_duplicates and self._msgs:
            await self._sweep_duplicates()
        delivered = error is None
        outcome = self._outcome(state if delivered else "slack_error", doc, delivered=delivered, error=error)
        if delivered:
            outcome.time_to_final = self._clock() - terminal_at
        self._finalised = outcome
        logger.info(
            "answer finished",
            extra={
                "answer_id": self.answer_id,
                "team": self.team_id,
                "channel": self.channel,
                "state": outcome.state,
                "edits": outcome.edits,
                "messages": len(outcome.message_ts),
                "ratelimited": outcome.ratelimited,
                "slack_error": outcome.slack_error,
            },
        )
        return outcome

    async def _repost_if_stuck(
        self, entry: tuple[_Msg, str, asyncio.Future[None]]
    ) -> list[tuple[_Msg, str, asyncio.Future[None]]]:
        """Deliver a one-message final by post + delete when the update budget keeps it waiting."""
        msg, shown, fut = entry
        after = self.settings.repost_final_after
        if after is None or msg.slot is None:
            return [entry]
        done, _ = await asyncio.wait({fut}, timeout=after)
        if done or not msg.slot.withdraw_final():
            return [entry]
        try:
            # A distinct part number: the lookup after an ambiguous failure must not mistake the placeholder.
            ts = await self._post(_Render(shown, final=True, has_text=True), part=1000, thread_ts=self.thread_ts)
        except DeliveryError:
            msg.final_future = None
            return [(msg, shown, self._queue_final(msg, shown))]  # back to the edit path
        logger.info("answer %s: final reposted, the update budget was spent", self.answer_id)
        if self._first_text_at is None:
            self._first_text_at = self._clock()
        new = _Msg(ts, final_text=shown)
        self._msgs[0] = new
        if not await self._delete(msg.ts):
            # The placeholder stays: turn it into a pointer rather than leave it saying "Analyzing".
            self._msgs.insert(0, msg)
            msg.final_future = None
            pointer = self._queue_final(msg, "⬇️ The answer is in the next message.")
            return [(msg, msg.final_text or "", pointer)]
        done_fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done_fut.set_result(None)
        return [(new, shown, done_fut)]

    async def _await_finals(
        self, futures: list[tuple[_Msg, str, asyncio.Future[None]]], *, rounds: int = 3
    ) -> str | None:
        """Wait for the final edits; re-queue those that failed transiently, then post them anew."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.final_timeout
        error: str | None = None
        for round_no in range(rounds):
            if not futures:
                return error
            try:
                results = await asyncio.wait_for(
                    asyncio.gather(*(asyncio.shield(f) for _, _, f in futures), return_exceptions=True),
                    max(0.0, deadline - loop.time()),
                )
            except TimeoutError:
                # The finals stay queued and will still land; report that they had not yet.
                return error or "final_timeout"
            again: list[tuple[_Msg, str, BaseException]] = []
            for (msg, shown, _), result in zip(futures, results, strict=True):
                if not isinstance(result, BaseException):
                    continue
                code = result.code if isinstance(result, DeliveryError) else type(result).__name__
                if code in CONTENT_REFUSED:
                    # Slack refused the content itself: say so in the message rather than leave it live.
                    note = f"⚠️ Slack refused to show this part of the answer ({code})."
                    retry = self._queue_final(msg, note)
                    with contextlib.suppress(Exception):
                        await asyncio.wait_for(asyncio.shield(retry), max(0.0, deadline - loop.time()))
                    error = error or code
                elif _transient(result):
                    again.append((msg, shown, result))
                else:
                    error = error or code
            if not again:
                return error
            if round_no < rounds - 1:
                futures = [(msg, shown, self._queue_final(msg, shown)) for msg, shown, _ in again]
                continue
            # The edits keep failing: post those parts anew (chat.postMessage has a budget of its own).
            for msg, shown, failure in again:
                if not await self._replace_by_post(msg, shown):
                    code = failure.code if isinstance(failure, DeliveryError) else type(failure).__name__
                    error = error or code
        return error

    async def _replace_by_post(self, msg: _Msg, shown: str) -> bool:
        """Deliver a final that can't be edited in: post it as a new message and delete the old one.

        Only for the last message (a later one would land out of order) and never for a thread's root.
        """
        index = next((i for i, m in enumerate(self._msgs) if m is msg), -1)
        if index != len(self._msgs) - 1 or (index == 0 and len(self._msgs) > 1):
            return False
        thread = self.thread_ts if index == 0 else (self.thread_ts or self._msgs[0].ts)
        try:
            ts = await self._post(_Render(shown, final=True, has_text=True), part=2000 + index, thread_ts=thread)
        except DeliveryError:
            return False
        new = _Msg(ts, final_text=shown)
        if await self._delete(msg.ts):
            self._msgs[index] = new
            return True
        self._msgs.append(new)  # the stale one stays; the final text is there, reported as an error
        return False

    async def _sweep_duplicates(self) -> None:
        keep = {m.ts for m in self._msgs}
        try:
            found = await self._our_messages(self.thread_ts or self._msgs[0].ts, time.time() - 600)
            if not self.thread_ts:
                found += await self._our_messages(None, time.time() - 600)
        except DeliveryError:
            return
        for m in found:
            if str(m.get("ts")) not in keep:
                await self._delete(str(m["ts"]))

    def _outcome(self, state: FinalState, doc: str, *, delivered: bool, error: str | None) -> AnswerOutcome:
        stats = [s.stats for s in self._slot_stats]
        first = (
            self._first_text_at - self._first_delta_at
            if self._first_text_at is not None and self._first_delta_at is not None
            else None
        )
        return AnswerOutcome(
            state=state,
            answer_id=self.answer_id,
            channel=self.channel,
            message_ts=[m.ts for m in self._msgs if m.final_text != ""],
            delivered=delivered,
            edits=sum(s.sent for s in stats),
            posts=self._posts,
            deletes=self._deletes,
            ratelimited=sum(s.ratelimited for s in stats) + self._post_ratelimited,
            retries=sum(s.retries for s in stats) + self._post_retries,
            slack_error=error,
            time_to_first_text=first,
            final_text=doc,
        )


def _failed(fut: asyncio.Future[None]) -> bool:
    return fut.done() and (fut.cancelled() or fut.exception() is not None)


def _transient(exc: BaseException) -> bool:
    """A final that failed for reasons that may pass (5xx, timeouts, resets outlasting the retries)."""
    cause = exc.cause if isinstance(exc, DeliveryError) else exc
    return cause is not None and classify_slack_error(cause).kind != FailureClass.FATAL


async def _shielded(coro: Awaitable[AnswerOutcome]) -> AnswerOutcome:
    """Finish ``coro`` even if the caller is cancelled meanwhile (the cancellation still propagates)."""
    task = asyncio.ensure_future(coro)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        # The task goes on regardless; wait once more so the final state lands before cancelling.
        with contextlib.suppress(BaseException):
            await asyncio.shield(task)
        raise


def _cancel_source(events: object) -> None:
    cancel = getattr(events, "cancel", None)
    if callable(cancel):
        with contextlib.suppress(Exception):
            cancel()


def _close_source(events: object) -> None:
    _cancel_source(events)
