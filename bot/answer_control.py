"""Stop and hand-over for one running answer: :class:`AnswerControl` and the work it can interrupt.

The Stop button (and "stop" typed in the thread) calls :meth:`AnswerControl.cancel`: the analyst run is
cancelled, or the file reading before it (:func:`unless_stopped` raises :class:`Stopped`). At shutdown,
:meth:`AnswerControl.hand_over` ends the answer's task with :data:`HANDED_OVER` so a survivor re-runs it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any, TypeVar

from bot.files import FileRejected

log = logging.getLogger("variance.bot")
T = TypeVar("T")

# The grace of a shutdown ran out: the answer ends here and a survivor re-runs it into the same message.
HANDED_OVER = "The bot is restarting: this answer continues here in a moment. If it doesn't, please ask again."


class AnswerControl:
    """The Stop button's handle for one answer: cancels the analyst run, or the file reading before it; and
    the shutdown's: :meth:`hand_over` ends the answer's task so a survivor re-runs it."""

    def __init__(self, task: asyncio.Task[Any] | None = None) -> None:
        self.stopped = asyncio.Event()
        self._run: Any = None
        self._task = task  # the answer's own task

    def hand_over(self) -> None:
        if self._task is not None:
            self._task.cancel(HANDED_OVER)

    def attach(self, run: Any) -> None:
        self._run = run
        if self.stopped.is_set():
            run.cancel()

    def cancel(self) -> None:
        self.stopped.set()
        if self._run is not None:
            self._run.cancel()


class Stopped(Exception):
    """The user pressed Stop before the work finished."""


# How long an abandoned piece of work (a download, a worker job) may take to wind down once cancelled.
_ABANDON_GRACE_SECONDS = 5.0


async def unless_stopped(control: AnswerControl, work: Awaitable[T]) -> T:
    """Await ``work`` unless the user presses Stop first (then :class:`Stopped`).

    The work never outlives this call: on Stop, and when the caller itself is cancelled (shutdown), it is
    cancelled and given a moment to wind down, so nothing downloads, parses or stores after
    :meth:`BotDeps.close` has released the HTTP session and the worker pool.
    """
    work_task = asyncio.ensure_future(work)
    stop_task = asyncio.ensure_future(control.stopped.wait())
    try:
        await asyncio.wait({work_task, stop_task}, return_when=asyncio.FIRST_COMPLETED)
        if work_task.done():
            return work_task.result()
        raise Stopped
    finally:
        stop_task.cancel()
        if not work_task.done():
            work_task.cancel()
            work_task.add_done_callback(_log_abandoned)
            await asyncio.wait({work_task}, timeout=_ABANDON_GRACE_SECONDS)


def _log_abandoned(task: asyncio.Future[Any]) -> None:
    """Retrieve an abandoned task's outcome (so asyncio never reports it as unretrieved); log a real error."""
    if task.cancelled():
        return
    error = task.exception()
    if error is not None and not isinstance(error, FileRejected):
        log.warning("abandoned work failed: %s", type(error).__name__)
