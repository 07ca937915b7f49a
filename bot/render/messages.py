"""One answer's messages in Slack: what they show and the calls that put it there (posts, edits, deletes).

The settings (:class:`WriterSettings`), the outcome (:class:`AnswerOutcome`) and the lines every answer may end
with live here, with :class:`MessageOps`, the part of :class:`~bot.render.writer.AnswerWriter` that renders a
message (:class:`Render`) into Slack's fields and sends it through the answer's
:class:`~bot.render.delivery.SlackDoor` (the text filter, exactly-once posts) and the workspace's budgets.

Rendering (checked against slack_sdk 3.48 and Slack's method docs, enforced the same way by the fake):

- **While live** the message is ``blocks=[{"type": "markdown", "text": <text so far + "⏳ <what is
  being computed>">}, {"type": "actions", "elements": [<Stop button>]}]`` plus a short ``text``
  fallback (for notifications and screen readers; Slack allows ``text`` together with ``blocks``, and a
  markdown block renders the same standard Markdown as ``markdown_text``). ``markdown_text`` cannot carry
  the Stop button: it may not be combined with ``text`` or ``blocks`` (``invalid_arguments``). The button
  has ``action_id`` :data:`STOP_ACTION_ID` and ``value`` = the answer id.
- **Final**: ``markdown_text`` only (the button disappears): exactly ``Done.final_text``, or the text so
  far plus an error line (``⚠️ ...``) or ``_Stopped._``. With ``feedback_buttons`` an answered question's
  last message is ``blocks`` (the markdown block and a ``context_actions`` block of 👍/👎
  ``feedback_buttons``) plus a ``text`` fallback instead. A native stream shows no Stop button while live
  (a stream carries blocks only when it stops; typing "stop" stops it).
- A live message's post runs to the end even if its caller is cancelled, and is recorded the moment it
  lands, so the finalisation edits it rather than post the part again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from slack_sdk.errors import SlackApiError

from bot.render.delivery import STREAM_CONFLICT, DeliveryError, SlackDoor, classify_slack_error
from bot.render.modes import NativeStream
from bot.render.pacing import SlackBudget
from bot.render.scheduler import UpdateScheduler
from bot.render.slots import Slot

logger = logging.getLogger("bot.render.writer")

STOP_ACTION_ID = "stop_answer"
FEEDBACK_ACTION_ID = "answer_feedback"
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
    # beyond every live message's reserved final, its live message is replaced by reposts (every
    # repost_interval) while the chat.delete window has plenty of room, else the answer is posted in parts:
    # complete blocks as final-from-birth messages, one every part_interval, the rest with the final (see
    # bot.render.planner). 0: always an edited message.
    live_edit_room: int = 3
    # A placeholder's first text queued as an edit that the chat.update window has not served this long (every
    # unit held for finals) is posted anew after all, the placeholder deleted after it (bot.render.planner).
    first_text_patience: float = 0.75
    part_interval: float = 1.8
    # How often a live message is replaced when it goes live by reposts (each costs a post and a delete).
    repost_interval: float = 1.5
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
    first_text_at: float | None = None  # when Slack first showed the answer's text (the writer's clock)
    time_to_final: float | None = None  # terminal event → final text delivered
    final_text: str = ""  # the document the thread shows


@dataclass(frozen=True, slots=True)
class Render:
    """What one message shows, and whether it is final."""

    markdown: str
    final: bool
    has_text: bool
    feedback: bool = False  # a finished answer's last message: 👍/👎 under it


@dataclass
class Msg:
    """One of the answer's messages in Slack."""

    ts: str
    slot: Slot[Render] | None = None
    final_text: str | None = None  # what its final edit says (queued or delivered)
    final_future: asyncio.Future[None] | None = None


def with_line(text: str, line: str) -> str:
    return f"{text.rstrip()}\n\n{line}" if text.strip() else line


class MessageOps:
    """Rendering and sending one answer's messages (see the module docstring)."""

    # The answer's state, shared by the writer's parts (set in AnswerWriter.__init__).
    budget: SlackBudget
    team_id: str
    channel: str
    thread_ts: str | None
    answer_id: str
    conversation_id: str
    recipient_user_id: str | None
    settings: WriterSettings
    door: SlackDoor
    _clock: Callable[[], float]
    _scheduler: UpdateScheduler[Render]
    _on_first_message: Callable[[str, str], Awaitable[object]] | None
    _on_message_moved: Callable[[str, str], Awaitable[object]] | None
    _stream: NativeStream | None
    _stream_starting: asyncio.Task[bool] | None
    _placeholder_timer: asyncio.Task[None] | None
    _first_text_timer: asyncio.Task[None] | None
    _status_slot: Slot[str] | None
    _feedback_msg: Msg | None
    _msgs: list[Msg]
    _text: str
    _closed_parts: list[str]
    _live_from: int
    _status: str | None
    _slot_counter: int
    _finalising: asyncio.Task[AnswerOutcome] | None
    _finalised: AnswerOutcome | None
    _start_error: DeliveryError | None
    _posting: asyncio.Task[str] | None
    _overflow_error: DeliveryError | None
    _live_how: str
    _last_part_at: float
    _roll_task: asyncio.Task[None] | None
    _rolls: int
    _last_shown_at: float
    _last_shown: Render | None
    _orphans: list[Msg]
    _deletes: int
    _slot_stats: list[Slot[Render]]
    _first_delta_at: float | None
    _first_text_at: float | None
    _terminal_at: float | None
    _last_live: Render | None

    # ------------------------------------------------------------------ slack calls

    def _live_render(self) -> Render:
        body = self._text[self._live_from :].strip()
        status = self._status
        if not body:
            return Render(f"⏳ {status or self.settings.placeholder}", final=False, has_text=False)
        if status:
            body = f"{body}\n\n⏳ _{status}_"
        return Render(body, final=False, has_text=True)

    def _post_live(self, render: Render, *, part: int, thread_ts: str | None = None) -> asyncio.Task[str]:
        """Post a new live message as a task of its own; the message is recorded the moment it lands."""
        task = asyncio.ensure_future(self._post(render, part=part, thread_ts=thread_ts))
        self._posting = task

        def landed(done: asyncio.Task[str]) -> None:
            if done.cancelled() or done.exception() is not None:
                return
            msg = Msg(done.result())
            self._msgs.append(msg)
            self._last_live = self._last_shown = render
            self._last_shown_at = self._clock()
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

    def _open_slot(self, msg: Msg) -> Slot[Render]:
        self._slot_counter += 1
        key = f"{self.channel}:{msg.ts}:{self.answer_id}:{self._slot_counter}"

        async def send(render: Render) -> None:
            try:
                await self.door.update(msg.ts, **self._content(render))
            except SlackApiError as exc:
                if classify_slack_error(exc).code != STREAM_CONFLICT:
                    raise
                # Still a live native stream (its stop failed or is late): stop it, then edit.
                with contextlib.suppress(SlackApiError):
                    await self.door.stop_stream(msg.ts, None, None)
                await self.door.update(msg.ts, **self._content(render))
            self._last_shown, self._last_shown_at = render, self._clock()
            if render.has_text and self._first_text_at is None:
                self._first_text_at = self._clock()

        slot = self._scheduler.open(key, send)
        msg.slot = slot
        self._slot_stats.append(slot)
        return slot

    async def _end_stream(self, msg: Msg, shown: str, blocks: list[dict[str, Any]] | None) -> bool:
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

    def _queue_final(self, msg: Msg, shown: str, feedback: bool | None = None) -> asyncio.Future[None]:
        """Queue ``shown`` as the final content of ``msg`` (after any final already queued for it)."""
        if feedback is None:
            feedback = msg is self._feedback_msg
        elif feedback:
            self._feedback_msg = msg
        render = Render(shown, final=True, has_text=True, feedback=feedback)
        if msg.final_future is None and msg.slot is not None and not msg.slot.closed:
            fut = msg.slot.submit_final(render)
        else:
            fut = asyncio.ensure_future(self._refinal(msg, render, msg.final_future))
        msg.final_text = shown
        msg.final_future = fut
        return fut

    async def _refinal(self, msg: Msg, render: Render, previous: asyncio.Future[None] | None) -> None:
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

    def _blocks(self, render: Render) -> list[dict[str, Any]]:
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

    def _fallback(self, render: Render) -> str:
        text = render.markdown
        limit = self.settings.fallback_chars
        return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"

    async def _post(self, render: Render, *, part: int, thread_ts: str | None = None) -> str:
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

    async def _message_moved(self, ts: str) -> None:
        """Tell ``on_message_moved`` that ``ts`` now holds the answer; its failure never stops the answer."""
        if self._on_message_moved is not None:
            try:
                await self._on_message_moved(self.channel, ts)
            except Exception:
                logger.exception("answer %s: on_message_moved failed", self.answer_id)

    def _content(self, render: Render) -> dict[str, Any]:
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
