"""The final state: one finalisation per answer that delivers the final plan across Slack's budgets.

How a final reaches Slack (the planner's rules, :mod:`bot.render.planner`): a native stream's stop carries the
tail; an edited message gets one final edit, or, when the ``chat.update`` window can't take it now, the
final is posted anew and the live message deleted (post first, delete after); parts already posted stay as
they are and the rest is posted. When the final text differs from what is shown, changed messages are
edited, missing ones posted, surplus ones deleted (through the workspace's ``chat.delete`` budget; one that
can't be deleted is ended with :data:`SURPLUS_LINE` and the outcome reports ``delete_failed``). A final edit
that fails transiently even after the scheduler's retries is queued again (twice); if it still fails, the last
message is posted anew and the old one deleted. A part whose post may have landed is looked for before it is
posted (:mod:`bot.render.delivery`); if Slack still can't tell, the answer ends as ``slack_error`` rather than
risk a double post; parts posted again after an ambiguous failure, and streams that may have started, are
swept at the end.

There is one finalisation per answer (a task): ``write``/``fail``/``write_markdown`` called again, or while
it runs, await that same one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from bot.render.delivery import CONTENT_REFUSED, DeliveryError, transient
from bot.render.messages import SURPLUS_LINE, AnswerOutcome, FinalState, Msg, Render
from bot.render.parts import Overflow
from bot.render.planner import delete_room, final_waits

logger = logging.getLogger("bot.render.writer")


class FinalDelivery(Overflow):
    """The answer's finalisation (see the module docstring)."""

    def _finalise(self, doc: str, state: FinalState) -> asyncio.Task[AnswerOutcome]:
        """The answer's one finalisation, as a task: whoever comes later awaits the same one."""
        if self._finalising is None:
            self._finalising = asyncio.ensure_future(self._run_finalise(doc, state))
        return self._finalising

    async def _run_finalise(self, doc: str, state: FinalState) -> AnswerOutcome:
        for timer in (self._placeholder_timer, self._first_text_timer):
            if timer is not None:
                timer.cancel()
        try:
            return await self._deliver_final(doc, state)
        finally:
            if self._live_how != "edits":
                self.budget.live_ended(self.team_id, self._live_how)

    async def _deliver_final(self, doc: str, state: FinalState) -> AnswerOutcome:
        if self._status_slot is not None:
            self._status_slot.close()  # Slack clears the status when the reply lands
        if self._stream_starting is not None:
            await asyncio.wait({self._stream_starting})
        if self._roll_task is not None:
            await asyncio.wait({self._roll_task})
        await self._settle_posting()
        terminal_at = self._terminal_at if self._terminal_at is not None else self._clock()
        error: str | None = None
        parts = self._plan_parts(doc)
        feedback = self.settings.feedback_buttons and state == "answered"
        futures: list[tuple[Msg, str, asyncio.Future[None]]] = []
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
                    msg = Msg(found)
                    self._msgs.append(msg)
                    futures.append((msg, shown, self._queue_final(msg, shown)))
                    continue
            try:
                render = Render(shown, final=True, has_text=True, feedback=last)
                ts = await self._post(render, part=i, thread_ts=root)
            except DeliveryError as err:
                error = err.code
                break
            self._msgs.append(Msg(ts, final_text=shown))
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
        for orphan in self._orphans:  # live messages replaced by reposts that could not be deleted then
            if not await self._delete(orphan.ts):
                error = error or "delete_failed"
                futures.append((orphan, SURPLUS_LINE, self._queue_final(orphan, SURPLUS_LINE)))
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
        self, entry: tuple[Msg, str, asyncio.Future[None]]
    ) -> list[tuple[Msg, str, asyncio.Future[None]]]:
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
            render = Render(shown, final=True, has_text=True, feedback=feedback)
            ts = await self._post(render, part=1000, thread_ts=self.thread_ts)
        except DeliveryError:
            msg.final_future = None
            return [(msg, shown, self._queue_final(msg, shown))]  # back to the edit path
        logger.info("answer %s: final reposted, the update budget was spent", self.answer_id)
        if self._first_text_at is None:
            self._first_text_at = self._clock()
        new = Msg(ts, final_text=shown)
        if feedback:
            self._feedback_msg = new
        self._msgs[0] = new
        await self._message_moved(ts)
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
        self, futures: list[tuple[Msg, str, asyncio.Future[None]]], *, rounds: int = 3
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
            again: list[tuple[Msg, str, BaseException]] = []
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

    async def _replace_by_post(self, msg: Msg, shown: str) -> bool:
        """Deliver a final that can't be edited in: post it as a new message and delete the old one.

        Only for the last message (a later one would land out of order) and never for a thread's root.
        """
        index = next((i for i, m in enumerate(self._msgs) if m is msg), -1)
        if index != len(self._msgs) - 1 or (index == 0 and len(self._msgs) > 1):
            return False
        thread = self.thread_ts if index == 0 else (self.thread_ts or self._msgs[0].ts)
        feedback = msg is self._feedback_msg
        try:
            render = Render(shown, final=True, has_text=True, feedback=feedback)
            ts = await self._post(render, part=2000 + index, thread_ts=thread)
        except DeliveryError:
            return False
        new = Msg(ts, final_text=shown)
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
            first_text_at=self._first_text_at,
            final_text=doc,
        )


def _failed(fut: asyncio.Future[None]) -> bool:
    return fut.done() and (fut.cancelled() or fut.exception() is not None)


def _transient(exc: BaseException) -> bool:
    """A final that failed for reasons that may pass (5xx, timeouts, resets outlasting the retries)."""
    return transient(exc)
