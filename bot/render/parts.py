"""Overflow and parts: how an answer grows past one message, or goes out in several by design.

- **Overflow**: a message holds at most ``max_chars`` (11,000 of Slack's 12,000 for Markdown). When the
  live text outgrows it (minus room for the status line), the live message is closed at a clean Markdown
  boundary (:mod:`bot.render.markdown`: paragraph or list item, never inside a table or code block) and
  the answer continues in a new message in the thread (``thread_ts`` of the answer, or of its first
  message).
- **Parts** (when the planner chose them, :mod:`bot.render.planner`): the complete blocks written so far are
  posted as a message that is final from birth, the next ones at most every ``part_interval``.
- **Reposts** (when the planner chose them): one live message, replaced while the edit window is spent: the
  text so far is posted as a new live message (with its Stop button, exactly once by its marker) and the old
  one deleted (post first, delete after), at most every ``repost_interval`` and only while the workspace's
  ``chat.delete`` window keeps room for every answer's final; a message that can't be deleted is deleted or
  ended as a pointer when the answer ends.
- **The final plan**: the final text split the same way, the closed parts first: the messages' texts, joined
  by the whitespace at the cut points, are exactly the final text (``"".join(split_markdown(text, max_chars))
  == text``; each message shows its part stripped). When the final text differs from the streamed deltas,
  parts are re-planned (:mod:`bot.render.finals`).
"""

from __future__ import annotations

import asyncio
import logging

from bot.render.delivery import DeliveryError
from bot.render.markdown import is_clean_cut, last_block_cut, split_markdown, split_point
from bot.render.messages import MessageOps, Msg, Render
from bot.render.planner import roll_now

logger = logging.getLogger("bot.render.writer")


class Overflow(MessageOps):
    """Closing parts of the answer: overflow while live, parts, reposts, and the final plan."""

    def _roll_if_due(self) -> None:
        """Reposts: replace the live message by a new one showing the text so far, when it is due."""
        if self._finalising is not None or (self._roll_task is not None and not self._roll_task.done()):
            return
        if self._posting is not None and not self._posting.done():
            return
        if len(self._msgs) != 1 or self._msgs[0].slot is None or self._msgs[0].slot.closed:
            return
        if self._clock() - self._last_shown_at < self.settings.repost_interval:
            return
        self._roll_task = asyncio.ensure_future(self._roll(self._msgs[0]))

    async def _roll(self, msg: Msg) -> None:
        render = self._live_render()
        if render == self._last_shown:
            return
        if not await roll_now(self.budget, self.team_id):
            self._last_shown_at = self._clock()  # look again after another interval
            return
        self._rolls += 1
        try:
            ts = await self._post(render, part=3000 + self._rolls, thread_ts=self.thread_ts)
        except DeliveryError as err:
            logger.info("answer %s: live repost failed: %s", self.answer_id, err.code)
            self._last_shown_at = self._clock()
            return
        new = Msg(ts)
        self._msgs[0] = new
        await self._message_moved(ts)
        if msg.slot is not None:
            msg.slot.close()
        slot = self._open_slot(new)
        slot.first_shown()
        self._last_live = self._last_shown = render
        self._last_shown_at = self._clock()
        if render.has_text and self._first_text_at is None:
            self._first_text_at = self._clock()
        if not await self._delete(msg.ts):
            self._orphans.append(msg)  # deleted, or ended as a pointer, when the answer ends

    async def _overflow_if_needed(self) -> None:
        live_limit = self.settings.max_chars - self.settings.status_reserve
        if self._live_how == "parts":
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
        task = asyncio.ensure_future(self._post(Render(shown, final=True, has_text=True), part=index, thread_ts=root))
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
            self._msgs.append(Msg(done.result(), final_text=shown, final_future=delivered))
            if self._first_text_at is None:
                self._first_text_at = self._clock()

        task.add_done_callback(landed)

    def _plan_parts(self, doc: str) -> list[str]:
        closed_prefix = "".join(self._closed_parts)
        if self._closed_parts and doc.startswith(closed_prefix):
            rest = split_markdown(doc, self.settings.max_chars, len(closed_prefix))
            raw = list(self._closed_parts) + rest
        else:
            raw = split_markdown(doc, self.settings.max_chars)
        shown = [p.strip() for p in raw if p.strip()]
        return shown or [doc.strip() or "…"]
