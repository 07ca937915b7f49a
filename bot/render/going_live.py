"""Going live: how an answer's first message appears, and how a placeholder's first text goes out.

- **A placeholder later** (``placeholder_after > 0``): when no text has come by then, the answer's message is
  shown anyway (a native stream that starts empty, or a "⏳" placeholder), the placeholder only while the edit
  window can pay for its first text and final later (:func:`~bot.render.planner.placeholder_fits`; else it
  looks again every ``placeholder_after``).
- **The live vehicle** (:meth:`GoingLive._go_live`, chosen across the workspace's budgets by
  :mod:`bot.render.planner`): a native stream where one may start (:mod:`bot.render.modes`), else an edited
  message, replaced by reposts or posted in parts (:mod:`bot.render.parts`) when the ``chat.update`` window is
  short.
- **A placeholder's first text**: an edit of it while the edit window can serve one, else a new post showing
  the text with the placeholder deleted after it (:func:`~bot.render.planner.first_text_by_repost`), decided
  once; an edit not served yet is looked at again every ``first_text_patience``, and posted anew once the
  planner allows it.

The layer between :class:`~bot.render.finals.FinalDelivery` and :class:`~bot.render.writer.AnswerWriter`
(which decides when to go live while consuming the run).
"""

from __future__ import annotations

import asyncio

from bot.render.finals import FinalDelivery
from bot.render.messages import Msg
from bot.render.modes import NativeStream
from bot.render.planner import edits_short, first_text_by_repost, placeholder_fits, rolls_fit
from bot.render.slots import Priority


class GoingLive(FinalDelivery):
    """The answer's first message and a placeholder's first text (see the module docstring)."""

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
            if self._finalising is not None or not slot.reserving_first or not self._msgs:
                return
            if self._msgs[0] is placeholder:
                # The repost checks the delete window once more; if it held back, this loop looks again later.
                self._roll_task = asyncio.ensure_future(self._roll(placeholder))
                await asyncio.wait({self._roll_task})
