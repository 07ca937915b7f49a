"""How an answer's live text reaches Slack while it is being written: the delivery modes behind one interface.

The writer (:mod:`bot.render.writer`) owns the answer's state machine and the final state; a mode only carries
the *live* phase of the first message and says, when the answer ends, whether that message already shows
its final part exactly:

- **edits** (the writer's own path, always available): the first text rides on ``chat.postMessage``
  (per-channel budget), later text is coalesced ``chat.update`` edits from the workspace's Tier-3 window.
- **native stream** (:class:`NativeStream`, DMs and assistant threads, a reply in a thread):
  ``chat.startStream`` carries the first text, ``chat.appendStream`` (Tier 4, coalesced through the
  workspace's append window) the rest, ``chat.stopStream`` the tail and the final blocks (feedback buttons).
  Start and stop are Tier 2, so streams are admitted per workspace (:meth:`SlackBudget.admit_stream`): when
  the windows are full the answer uses edits instead.

Appending is not idempotent and the text filter is applied to the whole text, not to pieces: the stream sends
the difference between the filtered text so far (up to the last whitespace, so no markup can form across two
appends) and what it has already appended. When anything makes that unsafe (an append that may or may not
have landed, the filtered text no longer extending what was sent, the stream expiring with
``message_not_in_streaming_state``) the stream stops appending, and the writer ends the message with a
``chat.update`` of the exact final part (stopping the stream first on ``streaming_state_conflict``): text
may arrive late, but is never lost or repeated.

**No Stop button while streaming.** slack_sdk 3.48 has ``chunks`` on start/append/stop (``MarkdownTextChunk``,
``TaskUpdateChunk``, ``PlanUpdateChunk``, and ``BlocksChunk``: "an array of blocks within a streaming
message", Slack's April 2026 streaming update). Blocks sent in a chunk are *appended* to the message, like
``chat.stopStream``'s ``blocks``; nothing documents replacing or removing them, nor whether an interactive
element in a chunk works while the message streams. A Stop button sent at the start would stay on the finished
answer (a dead button), and taking it away costs the ``chat.update`` that streaming exists to avoid. So a
stream carries no button: the person stops it by typing "stop" in the thread (:mod:`bot.listeners.stop_words`),
and the feedback buttons go on the stop, where blocks belong.

**Exactly once.** A start that fails ambiguously (timeout, 5xx) may have created the stream: it is looked for
(:meth:`bot.render.delivery.SlackDoor.find_streams`) and used if found, so one answer is never two messages.

slack_sdk's ``chat_stream`` helper (``AsyncChatStream``) is not used: its buffer flushes from inside
``append``, outside the workspace budget's pacing, and it retries nothing safely.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Protocol

from bot.render.delivery import (
    STREAM_GONE,
    DeliveryError,
    FailureClass,
    SlackDoor,
    classify_slack_error,
)
from bot.render.pacing import Priority, SlackBudget, Slot
from bot.textfilter import neutralise

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LiveEnd:
    """How the first message stands after its live phase."""

    ts: str
    exact: bool  # it shows the final part (and its blocks) exactly: no edit needed


class LiveMode(Protocol):
    """The live phase of an answer's first message (see the module docstring)."""

    ts: str | None

    def offer(self, text: str) -> None:
        """The answer's text so far (coalesced: only the newest matters)."""

    async def end(self, final_part: str, blocks: list[dict[str, Any]] | None) -> LiveEnd | None:
        """End the live phase with the message's final part; None when no message was ever shown."""


def stable_text(raw: str) -> str:
    """The filtered text up to the last whitespace: what can be appended without markup forming later."""
    cut = max(raw.rfind(" "), raw.rfind("\n"))
    return neutralise(raw[: cut + 1]) if cut >= 0 else ""


class NativeStream:
    """One answer's native Slack stream: start, coalesced appends, stop. See the module docstring."""

    def __init__(
        self,
        door: SlackDoor,
        budget: SlackBudget,
        *,
        thread_ts: str,
        recipient_team_id: str | None = None,
        recipient_user_id: str | None = None,
    ) -> None:
        self.door = door
        self.budget = budget
        self.thread_ts = thread_ts
        self.recipient = {"recipient_team_id": recipient_team_id, "recipient_user_id": recipient_user_id}
        self.ts: str | None = None
        self.sent = ""  # filtered text Slack has appended
        self.appends = 0
        self.broken: str | None = None  # why appending stopped (the final part then goes in by an edit)
        self._slot: Slot[str] | None = None
        self._admitted = False
        # One call on the stream at a time: an append still in flight when the answer ends must land (or
        # fail) before the stop's tail is worked out, or its piece would be appended twice.
        self._calls = asyncio.Lock()
        self._ended = False

    async def start(self, raw: str) -> bool:
        """Start the stream with the first text; False (nothing shown) when the workspace can't take one now."""
        if not await self.budget.admit_stream(self.door.team_id):
            return False
        self._admitted = True
        first = stable_text(raw)  # may be empty: a stream started before the text (an acknowledgement)
        started_wall = time.time()
        try:
            self.ts = await self.door.start_stream(self.thread_ts, first, **self.recipient)
        except Exception as exc:
            info = classify_slack_error(exc)
            self.ts = await self._find_started(first, started_wall) if info.ambiguous else None
            if self.ts is None:
                logger.info("answer %s: stream refused (%s), editing instead", self.door.answer_id, info.code)
                if info.kind == FailureClass.RATE_LIMITED:
                    self.budget.scheduler(self.door.team_id, "chat.startStream").pause(info.retry_after)
                self._release()
                return False
        self.sent = first
        sched = self.budget.scheduler(self.door.team_id, "chat.appendStream")
        self._slot = sched.open(f"{self.door.channel}:{self.ts}:{self.door.answer_id}:append", self._append)
        self._slot.first_shown()
        return True

    async def _find_started(self, first: str, started_wall: float) -> str | None:
        """After an ambiguous start: the stream if it did start (see :mod:`bot.render.delivery`); when Slack
        can't tell, None, and the attempt is remembered so the writer looks again at the end."""
        await self.budget.sleep(self.door.post_settings.lookup_settle)
        try:
            found = await self.door.find_streams(self.thread_ts, first, started_wall)
        except DeliveryError:
            self.door.unconfirmed_streams.append((self.thread_ts, first, started_wall))
            return None
        if len(found) != 1:
            if found:  # more than one look the same: none is surely ours; look again at the end
                self.door.unconfirmed_streams.append((self.thread_ts, first, started_wall))
            return None
        logger.info("answer %s: the stream had started after all", self.door.answer_id)
        return found[0]

    def offer(self, text: str) -> None:
        if self._slot is not None and self.broken is None:
            self._slot.submit(text, Priority.INTERMEDIATE if self.sent else Priority.FIRST_VISIBLE)

    async def _append(self, raw: str) -> None:
        async with self._calls:
            await self._append_locked(raw)

    async def _append_locked(self, raw: str) -> None:
        if self._ended or self.broken is not None or self.ts is None:
            return
        target = stable_text(raw)
        if not target.startswith(self.sent):
            self.broken = "diverged"
            return
        piece = target[len(self.sent) :]
        if not piece:
            return
        try:
            await self.door.append_stream(self.ts, piece)
        except Exception as exc:
            info = classify_slack_error(exc)
            if info.kind == FailureClass.RATE_LIMITED:
                raise  # not appended: the scheduler pauses and sends the newest text later
            # Gone, refused, or perhaps appended (timeout, 5xx): never append blindly again.
            self.broken = info.code
            return
        self.sent = target
        self.appends += 1

    async def end(self, final_part: str, blocks: list[dict[str, Any]] | None) -> LiveEnd | None:
        if self._slot is not None:
            self._slot.close()
        async with self._calls:
            self._ended = True
            return await self._stop(final_part, blocks)

    async def _stop(self, final_part: str, blocks: list[dict[str, Any]] | None) -> LiveEnd | None:
        if self.ts is None:
            self._release()
            return None
        target = neutralise(final_part)
        exact = self.broken is None and target.startswith(self.sent)
        tail = target[len(self.sent) :] if exact else None
        sched = self.budget.scheduler(self.door.team_id, "chat.stopStream")
        ts = self.ts

        async def stop(_payload: object) -> None:
            await self.door.stop_stream(ts, tail, blocks if exact else None)

        slot: Slot[object] = sched.open(f"{self.door.channel}:{ts}:{self.door.answer_id}:stop", stop)
        slot.first_shown()
        try:
            await slot.finish(None)
        except DeliveryError as err:
            # Expired (message_not_in_streaming_state) or failed: the message keeps what was appended.
            if err.code != STREAM_GONE:
                logger.warning("answer %s: stream stop failed: %s", self.door.answer_id, err.code)
            exact = False
        finally:
            self._release()
        return LiveEnd(ts, exact)

    def _release(self) -> None:
        if self._admitted:
            self._admitted = False
            self.budget.stream_ended(self.door.team_id)
