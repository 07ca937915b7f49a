"""The pieces of an answer's life that end-to-end tests can't pin down: abandoning work on Stop and shutdown."""

from __future__ import annotations

import asyncio

import pytest

from bot.answer_control import AnswerControl, Stopped, unless_stopped


class Work:
    """A stand-in for reading a file (download, worker parse, store): runs until released or cancelled."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.cancelled = False
        self.finished = False

    async def __call__(self) -> str:
        self.started.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        self.finished = True
        return "dataset"


async def test_the_work_result_is_returned() -> None:
    work = Work()
    work.release.set()
    assert await unless_stopped(AnswerControl(), work()) == "dataset"


async def test_stop_cancels_the_work() -> None:
    work, control = Work(), AnswerControl()
    caller = asyncio.create_task(unless_stopped(control, work()))
    await work.started.wait()
    control.cancel()
    with pytest.raises(Stopped):
        await caller
    assert work.cancelled and not work.finished


async def test_cancelling_the_caller_cancels_the_work() -> None:
    # Shutdown cancels the answer task; the file reading must not go on after the HTTP session and the
    # worker pool are closed.
    work = Work()
    caller = asyncio.create_task(unless_stopped(AnswerControl(), work()))
    await work.started.wait()
    caller.cancel("shutdown")
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert work.cancelled and not work.finished
