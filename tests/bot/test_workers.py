"""The file readers' pool with real worker processes: a job over its time or memory limit is killed and its
worker replaced, cancelling a job (Stop, shutdown) kills its process at once, and a job that has to wait for
a free reader says so. Jobs that must stay running block on a FIFO that the test opens when it is done."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.workers import JobTimedOut, PoolClosed, WorkerOutOfMemory, WorkerPool


def read_fifo(path: str) -> str:
    """Blocks until the test opens ``path`` for writing and writes to it."""
    with open(path) as fifo:
        return fifo.read()


def block_forever() -> None:
    import threading

    threading.Event().wait()


def allocate(megabytes: int) -> int:
    chunks = [bytearray(1024 * 1024) for _ in range(megabytes)]
    return len(chunks)


def add(a: int, b: int) -> int:
    return a + b


def process_alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, killed but not yet reaped by its parent, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):  # gone between open and read
        return False


async def wait_until(predicate: object, timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # type: ignore[operator]
            await asyncio.sleep(0.01)


@pytest.fixture
async def pool() -> AsyncIterator[WorkerPool]:
    workers = WorkerPool(1, job_timeout_s=30, memory_limit_mb=384)
    await workers.warm_up()
    yield workers
    workers.shutdown()


@pytest.fixture
def fifo(tmp_path: Path) -> str:
    path = tmp_path / "hold"
    os.mkfifo(path)
    return str(path)


async def release(fifo: str) -> None:
    def write() -> None:
        with open(fifo, "w") as handle:
            handle.write("go")

    await asyncio.to_thread(write)


async def test_a_job_over_the_time_limit_is_killed_and_its_worker_replaced() -> None:
    pool = WorkerPool(1, job_timeout_s=0.5, memory_limit_mb=384)
    try:
        await pool.warm_up()
        (first,) = pool.pids
        with pytest.raises(JobTimedOut) as raised:
            await pool.run(block_forever)
        assert raised.value.seconds == 0.5
        assert pool.replaced == 1
        await wait_until(lambda: not process_alive(first))
        pool.job_timeout_s = 30  # a fresh worker's first job imports this module
        assert await pool.run(add, 2, 3) == 5  # the replacement works
        assert pool.pids and pool.pids != [first]
    finally:
        pool.shutdown()


async def test_a_job_over_the_memory_limit_is_stopped_and_its_worker_replaced(pool: WorkerPool) -> None:
    (first,) = pool.pids
    with pytest.raises(WorkerOutOfMemory) as raised:
        await pool.run(allocate, 2048)
    assert raised.value.limit_mb == 384
    assert pool.replaced == 1
    await wait_until(lambda: not process_alive(first))
    assert await pool.run(allocate, 16) == 16  # the replacement works, under the limit


async def test_cancelling_a_job_kills_its_process_at_once(pool: WorkerPool) -> None:
    (first,) = pool.pids
    job = asyncio.ensure_future(pool.run(block_forever))
    await wait_until(lambda: pool.state.busy == 1)
    job.cancel()
    with pytest.raises(asyncio.CancelledError):
        await job
    await wait_until(lambda: not process_alive(first))
    assert pool.replaced == 1
    assert await pool.run(add, 1, 1) == 2


async def test_a_job_waiting_for_a_free_reader_is_told_its_place(pool: WorkerPool, fifo: str) -> None:
    places: list[int] = []
    first = asyncio.ensure_future(pool.run(read_fifo, fifo))
    await wait_until(lambda: pool.state.busy == 1)
    second = asyncio.ensure_future(pool.run(add, 20, 22, on_wait=places.append))
    await wait_until(lambda: pool.state.waiting == 1)
    assert places == [1]
    assert pool.state.busy == 1
    await release(fifo)
    assert await first == "go"
    assert await second == 42
    assert places == [1, 0]  # told again when a reader took it
    assert pool.state.waiting == 0


async def test_a_waiting_job_that_is_cancelled_leaves_the_line(pool: WorkerPool, fifo: str) -> None:
    first = asyncio.ensure_future(pool.run(read_fifo, fifo))
    await wait_until(lambda: pool.state.busy == 1)
    waiting = asyncio.ensure_future(pool.run(add, 1, 2))
    await wait_until(lambda: pool.state.waiting == 1)
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    assert pool.state.waiting == 0
    await release(fifo)
    assert await first == "go"
    assert pool.replaced == 0  # nothing was killed for it
    assert await pool.run(add, 2, 2) == 4


async def test_shutdown_kills_a_running_job_without_waiting_for_it(fifo: str) -> None:
    pool = WorkerPool(1, job_timeout_s=30)
    await pool.warm_up()
    (worker,) = pool.pids
    running = asyncio.ensure_future(pool.run(block_forever))
    await wait_until(lambda: pool.state.busy == 1)
    queued = asyncio.ensure_future(pool.run(add, 1, 2))
    await wait_until(lambda: pool.state.waiting == 1)
    pool.shutdown()
    with pytest.raises(PoolClosed):
        await queued
    with pytest.raises(PoolClosed):
        await running
    await wait_until(lambda: not process_alive(worker))
    with pytest.raises(PoolClosed):
        await pool.run(add, 1, 2)
