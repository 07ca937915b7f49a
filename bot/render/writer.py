"""One answer in Slack, its state machine: acknowledged → first text → live text → [overflow] → final state.

Lifecycle::

    writer = AnswerWriter(client, budget, team_id="T1", channel="C1", thread_ts=mention_ts, settings=...)
    await writer.start(tool_label=None)           # acknowledge (see below)
    outcome = await writer.write(run)             # consumes AnalystEvents until Done/Failed
    # or: await writer.fail("I couldn't read that file: ...")  /  await writer.write_markdown(report_md)

How each step is paid for (every Slack method has its own budget, see :mod:`bot.render.pacing`):

- **Acknowledge** without a ``chat.update``: in an assistant thread the status line (``setStatus``); else,
  with ``placeholder_after > 0``, nothing until the first text, which rides on the ``chat.postMessage``
  itself (per-channel budget); a "⏳" placeholder is posted only when no text has come by then.
  ``placeholder_after == 0`` posts the placeholder at once (while a file is read; today's behaviour).
- **Live text** through a delivery mode (:mod:`bot.render.modes`): a native stream where one may start (a
  thread in a DM or the assistant container, admitted by the workspace's Tier-2 windows), else coalesced
  edits through the workspace's ``chat.update`` scheduler.
- **Final**: the stream's stop carries the tail (no edit when the final text extends what was streamed),
  else one final edit; a final kept waiting by a spent edit window is reposted (post + delete).
- Every text goes out through :class:`bot.render.delivery.SlackDoor` (the text filter, exactly-once posts).

Rendering (checked against slack_sdk 3.47 and Slack's method docs, enforced the same way by the fake):

- **While live** the message is ``blocks=[{"type": "markdown", "text": <text so far + "⏳ <what is
  being computed>">}, {"type": "actions", "elements": [<Stop button>]}]`` plus a short ``text``
  fallback (for notifications and screen readers; Slack allows ``text`` together with ``blocks``, and a
  markdown block renders the same standard Markdown as ``markdown_text``). ``markdown_text`` cannot carry
  the Stop button: it may not be combined with ``text`` or ``blocks`` (``invalid_arguments``). The button
  has ``action_id`` :data:`STOP_ACTION_ID` and ``value`` = :attr:`AnswerWriter.answer_id`.
- **Final** edit: ``markdown_text`` only (the button disappears): exactly ``Done.final_text``, or the
  text so far plus an error line (``⚠️ ...``) or ``_Stopped._``. With ``feedback_buttons`` an answered
  question's last message is ``blocks`` (the markdown block and a ``context_actions`` block of 👍/👎
  ``feedback_buttons``) plus a ``text`` fallback instead. A native stream shows no Stop button while live
  (a stream carries blocks only when it stops).
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
import logging
import time
import uuid
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from analyst.events import AnalystEvent, Done, Failed, FailureKind, TextDelta, ToolFinished, ToolStarted
from bot.render.delivery import (
    CONTENT_REFUSED,
    METADATA_EVENT_TYPE,
    STREAM_CONFLICT,
    DeliveryError,
    PostSettings,
    SlackDoor,
    classify_slack_error,
    transient,
)
from bot.render.markdown import is_clean_cut, last_block_cut, split_markdown, split_point
from bot.render.modes import NativeStream
from bot.render.pacing import Priority, SlackBudget, Slot
from bot.render.planner import delete_room, final_waits, parts_fit

logger = logging.getLogger(__name__)

STOP_ACTION_ID = "stop_answer"
FEEDBACK_ACTION_ID = "answer_feedback"
__all__ = ["FEEDBACK_ACTION_ID", "METADATA_EVENT_TYPE", "STOP_ACTION_ID", "AnswerWriter", "WriterSettings"]
STOPPED_LINE = "_Stopped._"
CRASH_LINE = "⚠️ Something went wrong while writing this answer. Please try again."
UNEXPECTED_END_LINE = "⚠️ The answer ended unexpectedly. Please try again."
EMPTY_ANSWER_LINE = "⚠️ The analyst returned an empty answer. Please rephrase the question."
SURPLUS_LINE = "_(This part was replaced by the answer above.)_"
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
    # When to post a placeholder if no text has come: 0 posts it at start (the first text is then an edit);
    # a delay lets the first text ride on the post itself (no chat.update), showing a placeholder only when
    # text is slow to come; None never posts one (an assistant thread shows its status instead).
    placeholder_after: float | None = 0.0
    # Stream natively (chat.startStream/appendStream/stopStream) where Slack allows it: a reply in a thread of
    # a DM or an assistant thread. Falls back to edits when the workspace's stream windows are full or Slack
    # refuses. See bot.render.modes.
    native_stream: bool = False
    # When the answer goes live and the workspace's chat.update window has fewer than this many units left
    # beyond every live message's reserved final, the answer is posted in parts instead of edited: complete
    # blocks as final-from-birth messages, one every part_interval, the rest with the final (see the module
    # docstring). 0 disables parts.
    live_edit_room: int = 3
    part_interval: float = 1.5
    # 👍/👎 buttons under a finished answer (value: "up|<answer_id>|<conversation_id>").
    feedback_buttons: bool = False
    # assistant.threads.setStatus while tools run (assistant threads only).
    assistant_status: bool = False
    status_text: str = "is looking at your numbers…"


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
    feedback: bool = False  # a finished answer's last message: 👍/👎 under it


@dataclass
class _Msg:
    ts: str
    slot: Slot[_Render] | None = None
    final_text: str | None = None  # what its final edit says (queued or delivered)
    final_future: asyncio.Future[None] | None = None


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
        conversation_id: str = "",
        recipient_user_id: str | None = None,
        on_first_message: Callable[[str, str], Awaitable[object]] | None = None,
        adopt_ts: str | None = None,
    ) -> None:
        self.budget = budget
        # Awaited with (channel, ts) the moment the answer's first message exists (placeholder, first post or
        # native stream), before the writer streams on: whoever must find the message later records it now.
        self._on_first_message = on_first_message
        # An earlier message of this answer (same answer_id) to write into instead of posting a first one: a
        # re-run of an answer whose instance died ends in the message the person already sees.
        self._adopt_ts = adopt_ts
        self.team_id = team_id
        self.channel = channel
        self.thread_ts = thread_ts
        self.answer_id = answer_id or uuid.uuid4().hex[:16]
        self.conversation_id = conversation_id
        self.recipient_user_id = recipient_user_id
        self.settings = settings or WriterSettings()
        # Every text this answer sends goes through this door (text filter, exactly-once posts).
        self.door = SlackDoor(
            client,
            budget,
            team_id,
            channel,
            self.answer_id,
            thread_ts,
            PostSettings(self.settings.post_attempts, self.settings.post_backoff, self.settings.lookup_settle),
        )
        self.client = self.door.client
        self._stream: NativeStream | None = None
        self._stream_starting: asyncio.Task[bool] | None = None  # going live: a stream, edits or parts
        self._parts = False  # live text goes out in parts (posts), see _post_part_if_due
        self._last_part_at = 0.0
        self._placeholder_timer: asyncio.Task[None] | None = None
        self._status_slot: Slot[str] | None = None
        self._feedback_msg: _Msg | None = None  # the message that ends with 👍/👎
        self._clock = clock
        self._scheduler = budget.scheduler(team_id, "chat.update")
        self._msgs: list[_Msg] = []
        self._text = ""
        self._closed_parts: list[str] = []  # raw parts of self._text already closed (their concatenation)
        self._live_from = 0
        self._status: str | None = None
        self._slot_counter = 0
        self._finalised: AnswerOutcome | None = None
        self._finalising: asyncio.Task[AnswerOutcome] | None = None
        self._start_error: DeliveryError | None = None
        # The post of a new live message (placeholder or continuation) in flight: it runs to the end even if
        # whoever awaits it is cancelled, and its message is recorded when it lands, so the finalisation
        # edits it rather than post the part again.
        self._posting: asyncio.Task[str] | None = None
        self._overflow_error: DeliveryError | None = None  # a continuation could not be posted: stop posting
        # counters
        self._deletes = 0
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
        """Acknowledge the question.

        With ``placeholder_after == 0``: post the placeholder now and return its ts (raises
        :class:`DeliveryError` if Slack refuses). Otherwise nothing is posted yet (returns ``""``): the
        assistant status says the bot is at work, and a placeholder is posted only if no text has come by
        ``placeholder_after``, so the first text usually rides on the post itself. With ``adopt_ts`` that
        message is the answer's: it shows the placeholder at once (an edit) and nothing is posted.
        """
        if self._msgs:
            return self._msgs[0].ts
        if self._adopt_ts is not None:
            msg = _Msg(self._adopt_ts)
            self._msgs.append(msg)
            self._open_slot(msg)
            self._status = tool_label
            self._submit_live()  # the placeholder (and Stop button) replaces whatever it showed
            return msg.ts
        if self._start_error is not None:
            raise self._start_error
        if self.settings.placeholder_after != 0.0:
            if self._status is None:
                self._status = tool_label
            self._acknowledge()
            return ""
        if self._posting is None:
            self._status = tool_label
            self._post_live(self._live_render(), part=0)
        assert self._posting is not None
        try:
            return await asyncio.shield(self._posting)
        except DeliveryError as err:
            self._start_error = err
            raise

    def show_status(self, label: str | None) -> None:
        """Show ``label`` as the live message's ⏳ status line (e.g. "waiting for a free reader") until the
        next status; paced like every live edit. No-op before :meth:`start` or after the final state."""
        self._status = label
        self._submit_live()

    async def retire_unconfirmed(self, message: str, *, attempts: int = 5, first_wait: float = 2.0) -> bool:
        """After :meth:`start` failed with ``post_unconfirmed``: the placeholder may have landed all the same.

        Look for it again a few times, with growing waits, and if it is there end it with ``message`` (no Stop
        button), so no placeholder is ever left saying "Analyzing". True when one was found and ended.
        """
        since_wall = self.door.unconfirmed.get(0)
        if since_wall is None or self._msgs:
            return False
        wait = first_wait
        for _ in range(attempts):
            await self.budget.sleep(wait)
            wait = min(30.0, wait * 2)
            try:
                found = await self.door.our_messages(self.thread_ts, since_wall)
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
                    self._set_status(self._status)
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

    def _acknowledge(self) -> None:
        """Assistant status now; a placeholder later if no text has come by then (see :meth:`start`)."""
        if self._placeholder_timer is not None or self._finalising is not None:
            return
        self._set_status(self._status)
        after = self.settings.placeholder_after
        if after is not None and after > 0:
            self._placeholder_timer = asyncio.ensure_future(self._placeholder_later(after))

    async def _placeholder_later(self, after: float) -> None:
        await self.budget.sleep(after)
        # Text is slow to come: show the answer's message now (a stream that starts empty, or a placeholder).
        self._begin_live(force=True)

    def _live_started(self) -> bool:
        return bool(self._msgs) or self._posting is not None or self._stream_starting is not None

    def _begin_live(self, *, force: bool = False) -> None:
        """Show the first text (or, ``force``, whatever there is): as a native stream where one may start, else
        as the first post of an edited message, or in parts when the edit window can't serve one more."""
        if self._live_started() or self._finalising is not None:
            return
        if not force and len(self._text.strip()) < self.settings.first_text_min_chars:
            return
        timer = self._placeholder_timer
        if timer is not None and timer is not asyncio.current_task():
            timer.cancel()
        self._stream_starting = asyncio.ensure_future(self._go_live())

    async def _go_live(self) -> bool:
        """The live phase's vehicle, chosen across the workspace's budgets (see :mod:`bot.render.planner`)."""
        if self.settings.native_stream and self.thread_ts and await self._start_stream(self.thread_ts):
            return True
        if self._finalising is not None and self._finalising.done():
            return False
        if self._text.strip() and await parts_fit(
            self.budget, self.team_id, self.thread_ts, self.settings.live_edit_room
        ):
            self._parts = True
            self.budget.parts_started(self.team_id)
            self._post_part_if_due()
            return False
        self._post_live(self._live_render(), part=0)  # an edited message
        return False

    async def _start_stream(self, thread_ts: str) -> bool:
        stream = NativeStream(
            self.door,
            self.budget,
            thread_ts=thread_ts,
            recipient_team_id=self.team_id if self.recipient_user_id else None,
            recipient_user_id=self.recipient_user_id,
        )
        if not await stream.start(self._text.lstrip()):
            return False
        await self._first_message(str(stream.ts))
        self._stream = stream
        self._msgs.append(_Msg(str(stream.ts)))
        if self._first_text_at is None and stream.sent:
            self._first_text_at = self._clock()
        stream.offer(self._text.lstrip())
        return True

    def _set_status(self, label: str | None) -> None:
        """assistant.threads.setStatus (assistant threads): what the bot is doing, through its own budget."""
        if not self.settings.assistant_status or not self.thread_ts or self._finalising is not None:
            return
        if self._status_slot is None:
            sched = self.budget.scheduler(self.team_id, "assistant.threads.setStatus")
            thread_ts = self.thread_ts

            async def send(text: str) -> None:
                await self.door.set_status(thread_ts, text)

            self._status_slot = sched.open(f"{self.channel}:{thread_ts}:{self.answer_id}:status", send)
            self._status_slot.first_shown()
        text = label or self.settings.status_text
        self._status_slot.submit(text, Priority.FIRST_VISIBLE)

    def _live_render(self) -> _Render:
        body = self._text[self._live_from :].strip()
        status = self._status
        if not body:
            return _Render(f"⏳ {status or self.settings.placeholder}", final=False, has_text=False)
        if status:
            body = f"{body}\n\n⏳ _{status}_"
        return _Render(body, final=False, has_text=True)

    def _submit_live(self) -> None:
        if self._parts:
            self._post_part_if_due()
            return
        if not self._msgs:
            self._begin_live()
            return
        if self._stream is not None and self._msgs[-1].ts == self._stream.ts:
            self._stream.offer(self._text.lstrip())
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
        if self._parts:
            return  # parts are never longer than a message
        while len(self._text) - self._live_from > live_limit and self._msgs and self._overflow_error is None:
            cut = split_point(self._text, live_limit, self._live_from) - self._live_from
            part = self._text[self._live_from : self._live_from + cut]
            if not part.strip():  # nothing worth a message before the cut
                break
            current = self._msgs[-1]
            if not await self._end_stream(current, part.strip(), None):
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

    def _post_part_if_due(self) -> None:
        """Parts mode: post the complete blocks written since the last part, at most one part per interval.

        A part is final from birth (``markdown_text``, no button): nothing needs an edit or a delete later.
        The rest goes out with the final (:meth:`_run_finalise` plans the remaining parts after these).
        """
        if self._finalising is not None or self._overflow_error is not None:
            return
        if self._posting is not None and not self._posting.done():
            return
        now = self._clock()
        interval = self.budget.part_interval(self.team_id, self.settings.part_interval)
        if self._msgs and now - self._last_part_at < interval:
            return
        limit = self.settings.max_chars - self.settings.status_reserve
        min_chars = 1 if self._msgs else self.settings.first_text_min_chars
        cut = last_block_cut(self._text, self._live_from, min_chars)
        since = self._last_part_at if self._msgs else (self._first_delta_at or now)
        if cut is None and now - since >= 2 * interval and len(self._text) - self._live_from > 1:
            # No block has ended for a while (one long paragraph, table or code block): cut where it is clean.
            cut = split_point(self._text, len(self._text) - self._live_from - 1, self._live_from)
            if not is_clean_cut(self._text, cut) or not self._text[self._live_from : cut].strip():
                cut = None
        if cut is None:
            return
        if cut - self._live_from > limit:
            cut = split_point(self._text, limit, self._live_from)
        part = self._text[self._live_from : cut]
        index = len(self._closed_parts)
        self._closed_parts.append(part)
        self._live_from = cut
        self._last_part_at = now
        shown = part.strip()
        root = self.thread_ts or (self._msgs[0].ts if self._msgs else None)
        task = asyncio.ensure_future(self._post(_Render(shown, final=True, has_text=True), part=index, thread_ts=root))
        self._posting = task

        def landed(done: asyncio.Task[str]) -> None:
            if done.cancelled():
                return
            err = done.exception()
            if err is not None:
                # Stop posting parts; the finalisation posts what is left (after looking, if it may have landed).
                self._overflow_error = err if isinstance(err, DeliveryError) else DeliveryError(type(err).__name__)
                return
            delivered: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            delivered.set_result(None)
            self._msgs.append(_Msg(done.result(), final_text=shown, final_future=delivered))
            if self._first_text_at is None:
                self._first_text_at = self._clock()

        task.add_done_callback(landed)

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
            if render.has_text and self._first_text_at is None:
                self._first_text_at = self._clock()  # the first text rode on the post
            if part > 0 or render.has_text:
                slot.first_shown()  # a continuation, or the first text is already there

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
            try:
                await self.door.update(msg.ts, **self._content(render))
            except SlackApiError as exc:
                if classify_slack_error(exc).code != STREAM_CONFLICT:
                    raise
                # Still a live native stream (its stop failed or is late): stop it, then edit.
                with contextlib.suppress(SlackApiError):
                    await self.door.stop_stream(msg.ts, None, None)
                await self.door.update(msg.ts, **self._content(render))
            if render.has_text and self._first_text_at is None:
                self._first_text_at = self._clock()

        slot = self._scheduler.open(key, send)
        msg.slot = slot
        self._slot_stats.append(slot)
        return slot

    async def _end_stream(self, msg: _Msg, shown: str, blocks: list[dict[str, Any]] | None) -> bool:
        """If ``msg`` is the live native stream, stop it with ``shown`` as its final part.

        True when the message now shows exactly that (no edit needed).
        """
        stream = self._stream
        if stream is None or stream.ts != msg.ts:
            return False
        self._stream = None
        end = await stream.end(shown, blocks)
        if end is None or not end.exact:
            return False
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        msg.final_text, msg.final_future = shown, done
        return True

    def _queue_final(self, msg: _Msg, shown: str, feedback: bool | None = None) -> asyncio.Future[None]:
        """Queue ``shown`` as the final content of ``msg`` (after any final already queued for it)."""
        if feedback is None:
            feedback = msg is self._feedback_msg
        elif feedback:
            self._feedback_msg = msg
        render = _Render(shown, final=True, has_text=True, feedback=feedback)
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

    def _feedback_block(self) -> dict[str, Any]:
        def button(vote: str, emoji: str) -> dict[str, Any]:
            value = f"{vote}|{self.answer_id}|{self.conversation_id}"
            return {"text": {"type": "plain_text", "text": emoji}, "accessibility_label": vote, "value": value}

        return {
            "type": "context_actions",
            "block_id": "answer_feedback",
            "elements": [
                {
                    "type": "feedback_buttons",
                    "action_id": FEEDBACK_ACTION_ID,
                    "positive_button": button("up", "👍"),
                    "negative_button": button("down", "👎"),
                }
            ],
        }

    def _blocks(self, render: _Render) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = [{"type": "markdown", "text": render.markdown}]
        if render.feedback:
            blocks.append(self._feedback_block())
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

    async def _post(self, render: _Render, *, part: int, thread_ts: str | None = None) -> str:
        """Post one message of this answer, exactly once (see bot.render.delivery). Raises DeliveryError."""
        ts = await self.door.post(self._content(render), part=part, thread_ts=thread_ts)
        if not self._msgs:
            await self._first_message(ts)
        return ts

    async def _first_message(self, ts: str) -> None:
        """Tell ``on_first_message`` where the answer is; its failure never stops the answer."""
        callback, self._on_first_message = self._on_first_message, None  # once
        if callback is not None:
            try:
                await callback(self.channel, ts)
            except Exception:
                logger.exception("answer %s: on_first_message failed", self.answer_id)

    def _content(self, render: _Render) -> dict[str, Any]:
        """A message's content fields for chat.postMessage / chat.update."""
        if render.final and not render.feedback:
            return {"markdown_text": render.markdown}
        return {"text": self._fallback(render), "blocks": self._blocks(render)}

    async def _delete(self, ts: str) -> bool:
        """Delete one of this answer's messages, paced and retried by the workspace's chat.delete budget."""
        scheduler = self.budget.scheduler(self.team_id, "chat.delete")
        self._slot_counter += 1
        gone = False

        async def send(_payload: object) -> None:
            nonlocal gone
            try:
                await self.door.delete(ts)
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
        if self._placeholder_timer is not None:
            self._placeholder_timer.cancel()
        try:
            return await self._finalise_parts(doc, state)
        finally:
            if self._parts:
                self.budget.parts_ended(self.team_id)

    async def _finalise_parts(self, doc: str, state: FinalState) -> AnswerOutcome:
        if self._status_slot is not None:
            self._status_slot.close()  # Slack clears the status when the reply lands
        if self._stream_starting is not None:
            await asyncio.wait({self._stream_starting})
        await self._settle_posting()
        terminal_at = self._terminal_at if self._terminal_at is not None else self._clock()
        error: str | None = None
        parts = self._plan_parts(doc)
        feedback = self.settings.feedback_buttons and state == "answered"
        futures: list[tuple[_Msg, str, asyncio.Future[None]]] = []
        for i, shown in enumerate(parts):
            last = feedback and i == len(parts) - 1
            if i < len(self._msgs):
                msg = self._msgs[i]
                blocks = [self._feedback_block()] if last else None
                if await self._end_stream(msg, shown, blocks):
                    futures.append((msg, shown, msg.final_future))  # type: ignore[arg-type]
                    continue
                fut = msg.final_future
                if msg.final_text == shown and fut is not None and not _failed(fut) and not last:
                    futures.append((msg, shown, fut))
                else:  # not queued yet, different, or it failed (e.g. transient failures outlasted the retries)
                    futures.append((msg, shown, self._queue_final(msg, shown, last)))
                continue
            root = self.thread_ts or (self._msgs[0].ts if self._msgs else None)
            if i in self.door.unconfirmed:
                # This part's post may have landed: find it and edit it; if Slack still can't tell, stop.
                try:
                    found = await self.door.find_posted(i, root, self.door.unconfirmed[i])
                except DeliveryError as err:
                    error = err.code
                    break
                if found is not None:
                    msg = _Msg(found)
                    self._msgs.append(msg)
                    futures.append((msg, shown, self._queue_final(msg, shown)))
                    continue
            try:
                render = _Render(shown, final=True, has_text=True, feedback=last)
                ts = await self._post(render, part=i, thread_ts=root)
            except DeliveryError as err:
                error = err.code
                break
            self._msgs.append(_Msg(ts, final_text=shown))
            if last:
                self._feedback_msg = self._msgs[-1]
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
        if self.door.suspect_duplicates and self._msgs:
            await self._sweep_duplicates()
        if self.door.unconfirmed_streams:
            await self._sweep_streams()
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
        """Deliver a one-message final by post + delete when the update budget keeps it waiting.

        Only while the workspace's ``chat.delete`` window has room for the delete: a repost whose old message
        can't be deleted soon would leave the answer's beginning shown twice; then the edit is awaited.
        """
        msg, shown, fut = entry
        after = self.settings.repost_final_after
        if after is None or msg.slot is None:
            return [entry]
        loop = asyncio.get_running_loop()
        deadline = loop.time() + after
        while not fut.done():
            # Repost at once when the edit window can't take the final now, or once it has waited ``after``;
            # only while the delete window can retire the live message.
            if (await final_waits(self.budget, self.team_id) or loop.time() >= deadline) and await delete_room(
                self.budget, self.team_id
            ):
                break
            await asyncio.wait({fut}, timeout=0.25)
        if fut.done() or not msg.slot.withdraw_final():
            return [entry]
        feedback = msg is self._feedback_msg
        try:
            # A distinct part number: the lookup after an ambiguous failure must not mistake the placeholder.
            render = _Render(shown, final=True, has_text=True, feedback=feedback)
            ts = await self._post(render, part=1000, thread_ts=self.thread_ts)
        except DeliveryError:
            msg.final_future = None
            return [(msg, shown, self._queue_final(msg, shown))]  # back to the edit path
        logger.info("answer %s: final reposted, the update budget was spent", self.answer_id)
        if self._first_text_at is None:
            self._first_text_at = self._clock()
        new = _Msg(ts, final_text=shown)
        if feedback:
            self._feedback_msg = new
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
        feedback = msg is self._feedback_msg
        try:
            render = _Render(shown, final=True, has_text=True, feedback=feedback)
            ts = await self._post(render, part=2000 + index, thread_ts=thread)
        except DeliveryError:
            return False
        new = _Msg(ts, final_text=shown)
        if feedback:
            self._feedback_msg = new
        if await self._delete(msg.ts):
            self._msgs[index] = new
            return True
        self._msgs.append(new)  # the stale one stays; the final text is there, reported as an error
        return False

    async def _sweep_duplicates(self) -> None:
        keep = {m.ts for m in self._msgs}
        try:
            found = await self.door.our_messages(self.thread_ts or self._msgs[0].ts, time.time() - 600)
            if not self.thread_ts:
                found += await self.door.our_messages(None, time.time() - 600)
        except DeliveryError:
            return
        for m in found:
            if str(m.get("ts")) not in keep:
                await self._delete(str(m["ts"]))

    async def _sweep_streams(self) -> None:
        """A stream whose start failed ambiguously and could not be found then: if it did start, delete it
        (the answer went on in another message)."""
        keep = {m.ts for m in self._msgs}
        for thread, first, since in self.door.unconfirmed_streams:
            try:
                found = await self.door.find_streams(thread, first, since)
            except DeliveryError:
                logger.warning("answer %s: a stream that may have started could not be looked up", self.answer_id)
                continue
            for ts in found:
                if ts not in keep:
                    await self._delete(ts)
        self.door.unconfirmed_streams.clear()

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
            posts=self.door.counters.posts,
            deletes=self._deletes,
            ratelimited=sum(s.ratelimited for s in stats) + self.door.counters.post_ratelimited,
            retries=sum(s.retries for s in stats) + self.door.counters.post_retries,
            slack_error=error,
            time_to_first_text=first,
            final_text=doc,
        )


def _failed(fut: asyncio.Future[None]) -> bool:
    return fut.done() and (fut.cancelled() or fut.exception() is not None)


def _transient(exc: BaseException) -> bool:
    """A final that failed for reasons that may pass (5xx, timeouts, resets outlasting the retries)."""
    return transient(exc)


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
