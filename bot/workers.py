"""Worker processes that read files, each job bounded in time and each worker in memory.

Parsing runs in a separate process because pandas holds the GIL through long calls: a thread would freeze the
bot while it reads 20 MB. A file is untrusted input, so the pool does not trust the parser to finish:

- each job has a wall-clock limit (``job_timeout_s``, ``VARIANCE_FILE_TIMEOUT_S``); a job over it is killed
  with its process (:class:`JobTimedOut`);
- each worker has a memory limit (``setrlimit(RLIMIT_DATA)``, ``VARIANCE_WORKER_MEMORY_MB``): an allocation
  over it fails inside the worker, which reports :class:`WorkerOutOfMemory` (or dies, if it fails where
  Python cannot recover, which is reported the same way);
- cancelling a job (Stop, shutdown) kills its process at once rather than waiting for the parse to end;
- a killed or dead worker is replaced by a fresh one, started from the fork server that has pandas loaded;
- while every worker is busy, a job waits in line, and ``run(..., on_wait=...)`` is told its place, so the
  person who sent the file sees "waiting for a free reader" rather than a silent stall.

``RLIMIT_DATA`` counts private writable mappings, reserved or not. Arrow's default allocator (jemalloc or
mimalloc) reserves a gigabyte up front, so the workers use Arrow's system allocator
(``ARROW_DEFAULT_MEMORY_POOL=system``): the limit then follows what is really used.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import resource
import signal
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, TypeVar

log = logging.getLogger("variance.workers")

T = TypeVar("T")

DEFAULT_JOB_TIMEOUT_S = 60.0
# Two workers of 512 MB (of which about 160 MB is pandas and the parsers, shared with the fork server), the bot
# itself and the fork server stay under about 1 GB together.
DEFAULT_MEMORY_LIMIT_MB = 512
_PRELOAD = ["analyst.ingest", "analyst.report", "bot.files"]


# How a worker dies when an allocation fails where Python can't turn it into MemoryError: killed by the kernel's
# OOM killer, or aborted (std::bad_alloc) or crashed by native code that did not expect malloc to fail.
_MEMORY_DEATHS = frozenset({-signal.SIGKILL, -signal.SIGABRT, -signal.SIGSEGV, -signal.SIGBUS})


class WorkerFailed(Exception):
    """A job that did not finish; its worker was killed (or died) and has been replaced."""

    reason = "worker_died"


class JobTimedOut(WorkerFailed):
    reason = "timeout"

    def __init__(self, seconds: float) -> None:
        super().__init__(f"the job ran longer than {seconds:g} s")
        self.seconds = seconds


class WorkerOutOfMemory(WorkerFailed):
    reason = "out_of_memory"

    def __init__(self, limit_mb: int | None) -> None:
        super().__init__(f"the job needed more than the worker's {limit_mb} MB" if limit_mb else "out of memory")
        self.limit_mb = limit_mb


class PoolClosed(WorkerFailed):
    reason = "shutdown"


@dataclass(frozen=True, slots=True)
class PoolState:
    """What the pool is doing: workers running a job, jobs waiting for one, and the pool's size."""

    busy: int
    waiting: int
    size: int


def _worker_main(conn: Connection, memory_limit_bytes: int | None) -> None:
    """A worker's life: run jobs sent over ``conn`` until it is closed (or the process is killed)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the bot, which ends its workers
    if memory_limit_bytes:
        resource.setrlimit(resource.RLIMIT_DATA, (memory_limit_bytes, memory_limit_bytes))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        except MemoryError:
            conn.send(("memory", None))
            continue
        if job is None:
            return
        fn, args = job
        try:
            outcome: tuple[str, Any] = ("ok", fn(*args))
        except MemoryError:
            outcome = ("memory", None)
        except BaseException as error:  # reported to the caller by type only, never with file content
            outcome = ("error", type(error).__name__)
        try:
            conn.send(outcome)
        except MemoryError:  # the result itself did not fit
            del outcome
            conn.send(("memory", None))


def _warm(*_: Any) -> bool:
    return True


class _Worker:
    def __init__(self, process: Any, conn: Connection) -> None:
        self.process = process
        self.conn = conn
        self.calling = False

    @property
    def pid(self) -> int | None:
        return int(self.process.pid) if self.process.pid is not None else None

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[str, Any]:
        """Runs in a thread: send the job, wait for its outcome (unpickling off the event loop).

        Only this thread closes the connection of a worker that dies during a call: closed from another
        thread, its descriptor could be reused by a new worker's pipe before this thread reads from it, and the
        read would steal that worker's answer."""
        self.calling = True
        try:
            self.conn.send((fn, args))
            return self.conn.recv()  # type: ignore[no-any-return]
        except (EOFError, OSError):
            self.conn.close()
            return ("died", None)
        finally:
            self.calling = False

    def kill(self) -> None:
        with contextlib.suppress(Exception):
            self.process.kill()

    def reap(self) -> int | None:
        """Wait for the (killed or finished) process and return its exit code; close an idle connection."""
        with contextlib.suppress(Exception):
            self.process.join(5)
        if not self.calling:
            with contextlib.suppress(Exception):
                self.conn.close()
        return self.process.exitcode  # type: ignore[no-any-return]


class WorkerPool:
    """A fixed number of worker processes; see the module docstring."""

    def __init__(
        self,
        workers: int = 2,
        *,
        job_timeout_s: float = DEFAULT_JOB_TIMEOUT_S,
        memory_limit_mb: int | None = DEFAULT_MEMORY_LIMIT_MB,
    ) -> None:
        self.size = max(1, workers)
        self.job_timeout_s = job_timeout_s
        self.memory_limit_mb = memory_limit_mb or None
        self._context: Any = None
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._starting = 0
        self._waiters: deque[asyncio.Future[_Worker]] = deque()
        self._threads = ThreadPoolExecutor(max_workers=self.size + 2, thread_name_prefix="worker-io")
        self._lock = threading.Lock()
        self._closed = False
        self.replaced = 0  # workers killed or lost and replaced (for the logs and the tests)

    # ------------------------------------------------------------------ public

    @property
    def state(self) -> PoolState:
        return PoolState(busy=len(self._busy), waiting=len(self._waiters), size=self.size)

    @property
    def pids(self) -> list[int]:
        """Process ids of the live workers (idle and busy)."""
        return [w.pid for w in [*self._idle, *self._busy] if w.pid is not None]

    async def run(self, fn: Callable[..., T], *args: Any, on_wait: Callable[[int], Any] | None = None) -> T:
        """Run ``fn(*args)`` in a worker and return its result.

        Raises :class:`JobTimedOut`, :class:`WorkerOutOfMemory`, :class:`WorkerFailed` (the worker died, or
        ``fn`` raised: its exception type is in the message) or :class:`PoolClosed`. When every worker is
        busy, ``on_wait(place)`` is called (place 1 is next in line), and ``on_wait(0)`` when a worker takes
        the job; it may return an awaitable, which is run as a task. Cancelling the call kills the job's
        worker.
        """
        worker = await self._acquire(on_wait)
        loop = asyncio.get_running_loop()
        call = loop.run_in_executor(self._threads, worker.call, fn, args)
        try:
            async with asyncio.timeout(self.job_timeout_s):
                status, payload = await asyncio.shield(call)
        except TimeoutError:
            self._discard(worker)
            raise JobTimedOut(self.job_timeout_s) from None
        except BaseException:  # cancelled (Stop, shutdown): the job dies with its process
            self._discard(worker)
            raise
        if status == "ok":
            self._release(worker)
            return payload  # type: ignore[no-any-return]
        if status == "memory":
            self._discard(worker)  # its heap may be in any state: start afresh
            raise WorkerOutOfMemory(self.memory_limit_mb)
        if status == "error":
            self._release(worker)
            raise WorkerFailed(f"the job raised {payload}")
        code = await asyncio.to_thread(worker.reap)
        self._discard(worker)
        if self._closed:
            raise PoolClosed("the bot is shutting down")
        if code in _MEMORY_DEATHS and self.memory_limit_mb:
            raise WorkerOutOfMemory(self.memory_limit_mb)
        raise WorkerFailed(f"the worker exited with code {code}")

    async def warm_up(self) -> None:
        """Start every worker now, in a thread: the first start of the fork server imports pandas and would
        otherwise block the event loop for a second on the first file."""
        while len(self._idle) + len(self._busy) + self._starting < self.size and not self._closed:
            self._starting += 1
            try:
                worker = await asyncio.to_thread(self._start_worker)
            finally:
                self._starting -= 1
            self._release(worker)

    def shutdown(self) -> None:
        """Kill every worker now (a running job is abandoned; its caller gets :class:`PoolClosed` or is
        being cancelled) and fail the jobs waiting in line."""
        self._closed = True
        for worker in [*self._idle, *self._busy]:
            worker.kill()
        for worker in [*self._idle, *self._busy]:
            self._threads.submit(worker.reap)
        self._idle.clear()
        self._busy.clear()
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(PoolClosed("the bot is shutting down"))
        self._threads.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ internals

    def _start_worker(self) -> _Worker:
        """Start one worker process (blocking: call it in a thread)."""
        with self._lock:
            if self._context is None:
                # Arrow picks its allocator when it loads, from the environment: the fork server (and so every
                # worker) inherits this process's environment when it starts.
                os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
                method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() else "spawn"
                context = multiprocessing.get_context(method)
                if method == "forkserver":
                    context.set_forkserver_preload(_PRELOAD)
                self._context = context
            context = self._context
        parent, child = context.Pipe(duplex=True)
        limit = self.memory_limit_mb * 1024 * 1024 if self.memory_limit_mb else None
        process = context.Process(target=_worker_main, args=(child, limit), name="variance-reader", daemon=True)
        process.start()
        child.close()
        return _Worker(process, parent)

    async def _acquire(self, on_wait: Callable[[int], Any] | None) -> _Worker:
        if self._closed:
            raise PoolClosed("the bot is shutting down")
        if self._idle:
            worker = self._idle.pop()
            self._busy.add(worker)
            return worker
        waiter: asyncio.Future[_Worker] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        waiting = False
        if len(self._idle) + len(self._busy) + self._starting < self.size:
            self._spawn_replacement()  # a slot is free: its worker is on its way
        elif on_wait is not None:
            waiting = True
            self._notify(on_wait, len(self._waiters))
        try:
            worker = await waiter
        except BaseException:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            elif waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                self._release(waiter.result())  # handed a worker just as we were cancelled: pass it on
            raise
        if waiting and on_wait is not None:
            self._notify(on_wait, 0)
        return worker

    def _notify(self, on_wait: Callable[[int], Any], place: int) -> None:
        try:
            result = on_wait(place)
        except Exception:
            log.warning("waiting callback failed", exc_info=True)
            return
        if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
            task = asyncio.ensure_future(result)
            task.add_done_callback(_ignore_result)

    def _release(self, worker: _Worker) -> None:
        """``worker`` is free: hand it to the first job in line, or keep it idle."""
        self._busy.discard(worker)
        if self._closed:
            worker.kill()
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._busy.add(worker)
                waiter.set_result(worker)
                return
        self._idle.append(worker)

    def _discard(self, worker: _Worker) -> None:
        """Kill ``worker`` (its job is abandoned) and start a replacement."""
        self._busy.discard(worker)
        worker.kill()
        self.replaced += 1
        if not self._closed:
            self._threads.submit(worker.reap)
            self._spawn_replacement()

    def _spawn_replacement(self) -> None:
        self._starting += 1
        loop = asyncio.get_running_loop()
        future = loop.run_in_executor(self._threads, self._start_worker)

        def started(done: asyncio.Future[_Worker]) -> None:
            self._starting -= 1
            if done.cancelled() or done.exception() is not None:
                log.error("could not start a file reader: %r", None if done.cancelled() else done.exception())
                self._fail_waiters_if_empty()
                return
            self._release(done.result())

        future.add_done_callback(started)

    def _fail_waiters_if_empty(self) -> None:
        if self._idle or self._busy or self._starting:
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(WorkerFailed("no file reader could be started"))


def _ignore_result(task: asyncio.Future[Any]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("waiting callback failed: %s", type(task.exception()).__name__)


def worker_count(requested: int) -> int:
    return max(1, min(requested, os.cpu_count() or 1))
