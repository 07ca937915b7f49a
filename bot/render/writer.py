"""One answer in Slack, its state machine: acknowledged → first text → live text → [overflow] → final state.

Lifecycle::

    writer = AnswerWriter(client, budget, team_id="T1", channel="C1", thread_ts=mention_ts, settings=...)
    await writer.start(tool_label=None)           # acknowledge (see below)
    outcome = await writer.write(run)             # consumes AnalystEvents until Done/Failed
    # or: await writer.fail("I couldn't read that file: ...")  /  await writer.write_markdown(report_md)

How each step is paid for (every Slack method has its own budget; the planner, :mod:`bot.render.planner`,
chooses among them):

- **Acknowledge** without a ``chat.update``: in an assistant thread the status line (``setStatus``); else,
  with ``placeholder_after > 0``, nothing until the first text (the bot's 👀 reaction on the question says
  it was seen), which rides on the ``chat.postMessage`` itself (per-channel budget); a "⏳" placeholder (e.g.
  "Reading q3.csv…" while a big file is read) is posted only when no text has come by then *and* the edit
  window can pay for its first text and final later (:func:`~bot.render.planner.placeholder_fits`; else the
  writer looks again every ``placeholder_after``). ``placeholder_after == 0`` posts the placeholder at once
  (a month-end pack's progress).
- **A placeholder's first text**: an edit of it while the edit window can serve one, else a new post showing
  the text with the placeholder deleted after it (:func:`~bot.render.planner.first_text_by_repost`), decided
  once; the answer then goes on as an edited message.
- **Live text**: a native stream where one may start (:mod:`bot.render.modes`), else an edited message
  while the workspace's ``chat.update`` window can serve one more, else parts (:mod:`bot.render.parts`).
- **Final**: :mod:`bot.render.finals`.
- Every text goes out through :class:`bot.render.delivery.SlackDoor` (the text filter, exactly-once posts
  and streams); rendering in :mod:`bot.render.messages`.

The writer is built in layers, one concern each: :class:`~bot.render.messages.MessageOps` (rendering and
the calls), :class:`~bot.render.parts.Overflow` (closing parts), :class:`~bot.render.finals.FinalDelivery`
(the final state), and this module's :class:`AnswerWriter` (consuming the run, going live).

Every path ends in a final state: the event source raising, ending without a terminal event, the writer's
task being cancelled (finalised under :func:`asyncio.shield`, then the cancellation propagates), Slack
refusing an edit. A placeholder is never left saying "Analyzing".
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterable, Awaitable, Callable

from slack_sdk.web.async_client import AsyncWebClient

from analyst.events import AnalystEvent, Done, Failed, FailureKind, TextDelta, ToolFinished, ToolStarted
from bot.render.delivery import METADATA_EVENT_TYPE, DeliveryError, PostSettings, SlackDoor
from bot.render.finals import FinalDelivery
from bot.render.messages import (
    CRASH_LINE,
    EMPTY_ANSWER_LINE,
    FEEDBACK_ACTION_ID,
    STOP_ACTION_ID,
    STOPPED_LINE,
    UNEXPECTED_END_LINE,
    AnswerOutcome,
    FinalState,
    Msg,
    Render,
    WriterSettings,
    with_line,
)
from bot.render.modes import NativeStream
from bot.render.pacing import Priority, SlackBudget, Slot
from bot.render.planner import edits_short, first_text_by_repost, placeholder_fits, rolls_fit

logger = logging.getLogger(__name__)

__all__ = [
    "FEEDBACK_ACTION_ID",
    "METADATA_EVENT_TYPE",
    "STOPPED_LINE",
    "STOP_ACTION_ID",
    "AnswerOutcome",
    "AnswerWriter",
    "WriterSettings",
]


class AnswerWriter(FinalDelivery):
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
        on_message_moved: Callable[[str, str], Awaitable[object]] | None = None,
        adopt_ts: str | None = None,
    ) -> None:
        self.budget = budget
        # Awaited with (channel, ts) the moment the answer's first message exists (placeholder, first post or
        # native stream), before the writer streams on: whoever must find the message later records it now.
        self._on_first_message = on_first_message
        # Awaited with (channel, ts) each time a new message takes the first one's place (a repost of the live
        # text, a placeholder replaced by its first text, a final reposted): the record of where the answer is
        # must follow it, or a survivor would finish a deleted message.
        self._on_message_moved = on_message_moved
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
        # How the live text goes out when not by a stream: "edits" of one message, "reposts" of it, or "parts"
        # (see bot.render.planner).
        self._live_how = "edits"
        self._last_part_at = 0.0
        self._roll_task: asyncio.Task[None] | None = None
        self._first_placed = False  # how a placeholder's first text goes out was decided (an edit or a repost)
        self._rolls = 0
        self._last_shown_at = 0.0  # when the live message last changed (reposts)
        self._last_shown: Render | None = None
        self._orphans: list[Msg] = []  # replaced live messages that could not be deleted yet
        self._placeholder_timer: asyncio.Task[None] | None = None
        self._first_text_timer: asyncio.Task[None] | None = None  # a placeholder's first text waits for its edit
        self._status_slot: Slot[str] | None = None
        self._feedback_msg: Msg | None = None  # the message that ends with 👍/👎
        self._clock = clock
        self._scheduler = budget.scheduler(team_id, "chat.update")
        self._msgs: list[Msg] = []
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
        self._slot_stats: list[Slot[Render]] = []
        self._first_delta_at: float | None = None
        self._first_text_at: float | None = None
        self._terminal_at: float | None = None
        self._last_live: Render | None = None

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
            msg = Msg(self._adopt_ts)
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

    def show_status(self, label: str | None, *, slow: bool = False) -> None:
        """Show ``label`` as the live message's ⏳ status line (e.g. "waiting for a free reader") until the
        next status; paced like every live edit. No-op before :meth:`start` or after the final state.

        ``slow``: the text will be slow to come (e.g. every reader is busy): a placeholder still to come is
        posted now rather than after ``placeholder_after``, if the workspace's budgets can pay for it."""
        self._status = label
        timer = self._placeholder_timer
        if slow and timer is not None and not timer.done() and not self._live_started():
            timer.cancel()
            after = self.settings.placeholder_after or 0.0
            self._placeholder_timer = asyncio.ensure_future(self._placeholder_later(after, first_wait=0.0))
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
                slot = self._open_slot(Msg(str(m["ts"])))
                try:
                    await slot.finish(Render(f"⚠️ {message}", final=True, has_text=True))
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
                doc, state = with_line(self._text, f"⚠️ {reason}"), "failed"
            else:
                doc, state = with_line(self._text, STOPPED_LINE), "stopped"
            await _shielded(self._finalise(doc, state))
            raise
        except Exception:
            logger.exception("answer %s: the event source failed", self.answer_id)
            doc, state = with_line(self._text, CRASH_LINE), "failed"
        return await _shielded(self._finalise(doc, state))

    async def fail(self, message: str) -> AnswerOutcome:
        """End the answer with an error line (no run needed), e.g. an unreadable file."""
        return await _shielded(self._finalise(with_line(self._text, f"⚠️ {message}"), "failed"))

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
                    return with_line(self._text, UNEXPECTED_END_LINE), "failed"
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
                        return with_line(self._text, EMPTY_ANSWER_LINE), "failed"
                    return event.final_text, "answered"
                elif isinstance(event, Failed):
                    self._terminal_at = self._clock()
                    text = event.partial_text or self._text
                    if event.kind == FailureKind.CANCELLED:
                        return with_line(text, STOPPED_LINE), "stopped"
                    return with_line(text, f"⚠️ {event.user_message}"), "failed"
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

    async def _placeholder_later(self, after: float, *, first_wait: float | None = None) -> None:
        await self.budget.sleep(after if first_wait is None else first_wait)
        # Text is slow to come: show the answer's message now (a stream that starts empty, or a placeholder),
        # if the workspace's budgets can pay for the placeholder's first text later (planner); else look again
        # after another interval, the first text riding on the post whenever it comes first.
        while not self._live_started() and self._finalising is None:
            if self.settings.native_stream and self.thread_ts:
                self._begin_live(force=True)
                return
            if await placeholder_fits(self.budget, self.team_id, self.settings.live_edit_room):
                # Counted as held (by the claim) until its slot holds the reservations.
                try:
                    self._begin_live(force=True)
                    await self._settle_going_live()
                finally:
                    self.budget.live_ended(self.team_id, "placeholders")
                return
            await self.budget.sleep(after)

    async def _settle_going_live(self) -> None:
        """Wait until the message that went live has landed (or failed); never raises."""
        going = self._stream_starting
        if going is not None:
            await asyncio.wait({going})
        posting = self._posting
        if posting is not None:
            await asyncio.wait({posting})

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
        short = self._text.strip() and await edits_short(self.budget, self.team_id, self.settings.live_edit_room)
        if short and await rolls_fit(self.budget, self.team_id):
            self._live_how = "reposts"
        elif short and self.thread_ts:
            self._live_how = "parts"
            self.budget.live_started(self.team_id, "parts")
            self._post_part_if_due()
            return False
        if self._live_how == "reposts":
            self.budget.live_started(self.team_id, "reposts")
        self._post_live(self._live_render(), part=0)  # an edited message (edited, or replaced by reposts)
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
        self._msgs.append(Msg(str(stream.ts)))
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

    def _submit_live(self) -> None:
        if self._live_how == "parts":
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
            render = Render(f"⏳ {self._status or self.settings.placeholder}", final=False, has_text=False)
            first = False
        if render == self._last_live:
            return
        if first and not self._first_placed:
            # A placeholder shows and the first text is ready: decide once how it goes out.
            self._first_placed = True
            if self._live_how == "edits" and len(self._msgs) == 1 and self._stream is None:
                self._roll_task = asyncio.ensure_future(self._place_first_text(self._msgs[0]))
                return
        if self._roll_task is not None and not self._roll_task.done() and self._live_how == "edits":
            return  # the first text's placement is being decided; it shows the text as of then
        self._last_live = render
        slot.submit(render, Priority.FIRST_VISIBLE if first else Priority.INTERMEDIATE)
        if self._live_how == "reposts":
            self._roll_if_due()


    async def _place_first_text(self, placeholder: Msg) -> None:
        """The first text of an answer whose placeholder is showing: an edit of the placeholder when the
        ``chat.update`` window can serve it, else a new post showing the text with the placeholder deleted
        after it (the planner's :func:`~bot.render.planner.first_text_by_repost`); the message goes on as an
        edited message either way."""
        if await first_text_by_repost(self.budget, self.team_id, self.settings.live_edit_room):
            await self._roll(placeholder)
            if not self._msgs or self._msgs[0] is not placeholder:
                # Replaced: the new message shows the text (the placeholder is deleted or an orphan) and goes on
                # as an edited message (more reposts would spend the deletes that finals need).
                return
        slot = placeholder.slot
        if slot is None or slot.closed or self._finalising is not None:
            return
        render = self._live_render()
        if render == self._last_live:
            return
        self._last_live = render
        first = render.has_text and self._first_text_at is None
        slot.submit(render, Priority.FIRST_VISIBLE if first else Priority.INTERMEDIATE)
        if first:
            self._first_text_timer = asyncio.ensure_future(self._first_text_overdue(placeholder))

    async def _first_text_overdue(self, placeholder: Msg) -> None:
        """The placeholder's first text was queued as an edit: while the window has not served it (every unit
        held for finals), look again every ``first_text_patience`` whether it may go out as a new post instead
        (the placeholder deleted after it), by the same rule as when it was first placed
        (:func:`~bot.render.planner.first_text_by_repost`: the delete window keeps room for the finals that
        will need a repost); the window may have changed since."""
        while True:
            await self.budget.sleep(self.settings.first_text_patience)
            slot = placeholder.slot
            if slot is None or not slot.reserving_first or self._finalising is not None:
                return
            if not self._msgs or self._msgs[0] is not placeholder:
                return
            if self._roll_task is not None and not self._roll_task.done():
                continue
            if not await first_text_by_repost(self.budget, self.team_id, self.settings.live_edit_room):
                continue
            if self._finalising is None and slot.reserving_first and self._msgs and self._msgs[0] is placeholder:
                self._roll_task = asyncio.ensure_future(self._roll(placeholder))
            return


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
