"""What the listeners share (:class:`BotDeps`), and the process-wide Slack budget it carries.

Settings, the Slack client, the conversation store, the deduplicator, the running answers (for Stop, by id and by
thread), the worker
pool that reads files, the workspace-wide Slack budget (:class:`bot.render.SlackBudget`) and the answer tasks.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.conversations import ConversationStore, RunningAnswers
from bot.files import WorkerPool
from bot.limits import Limits, RunLimits
from bot.metrics import Metrics
from bot.overrides import LocalOverrides, SharedOverrides
from bot.render import DEFAULT_LIMITS, BudgetLimit, SlackBudget
from bot.state.local import LocalRegistry, LocalSources

log = logging.getLogger("variance.bot")

SHUTDOWN = "The bot is restarting, so I stopped here. Please ask again in a minute."


class AnswerThreads:
    """Which answers run in which thread (``(team, channel, thread_ts or "")``), so that typing "stop" in the
    thread of a running answer can stop it (:mod:`bot.listeners.stop_words`)."""

    def __init__(self) -> None:
        self._by_thread: dict[tuple[str, str, str], list[str]] = {}

    def add(self, team: str, channel: str, thread_ts: str | None, answer_id: str) -> None:
        self._by_thread.setdefault((team, channel, thread_ts or ""), []).append(answer_id)

    def remove(self, team: str, channel: str, thread_ts: str | None, answer_id: str) -> None:
        key = (team, channel, thread_ts or "")
        ids = self._by_thread.get(key, [])
        if answer_id in ids:
            ids.remove(answer_id)
        if not ids:
            self._by_thread.pop(key, None)

    def running_in(self, team: str, channel: str, thread_ts: str | None) -> list[str]:
        return list(self._by_thread.get((team, channel, thread_ts or ""), []))


class Claims(Protocol):
    """Claim a key once (an event id, a message's channel + ts): in this process, or across instances."""

    async def claim(self, key: str) -> bool: ...


@dataclass(slots=True)
class BotDeps:
    settings: Settings
    client: AsyncWebClient
    store: ConversationStore
    dedupe: Claims
    running: RunningAnswers
    workers: WorkerPool
    budget: SlackBudget
    limits: Limits = field(default_factory=RunLimits)
    # Shared with other instances through Redis when REDIS_URL is set (bot.state); in-process twins otherwise.
    sources: Any = field(default_factory=LocalSources)
    # Conversation memory (an analyst SessionStore with forget/purge, bot.state.memory); None: SQLite here.
    sessions: Any = None
    overrides: SharedOverrides = field(default_factory=LocalOverrides)
    registry: Any = field(default_factory=LocalRegistry)
    metrics: Metrics = field(default_factory=Metrics)
    threads: AnswerThreads = field(default_factory=AnswerThreads)
    accepting: bool = True  # False once a shutdown began: new events are left to the other instances
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    _http: aiohttp.ClientSession | None = None

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str | None = None) -> asyncio.Task[Any]:
        """Run ``coro`` as a tracked task (kept alive, cancelled and finalised at shutdown)."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            error = task.exception()
            log.error("%s failed: %s", task.get_name(), type(error).__name__, exc_info=error)

    @property
    def http(self) -> aiohttp.ClientSession:
        """One HTTP session for file downloads (created in the running loop on first use)."""
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession()
        return self._http

    async def idle(self, timeout: float | None = None) -> None:
        """Wait until no answer task is running (tests, graceful shutdown)."""
        async with asyncio.timeout(timeout):
            while self.tasks:
                await asyncio.gather(*list(self.tasks), return_exceptions=True)

    async def close(self, *, shutdown_workers: bool = True) -> None:
        """Stop every running answer (each ends in a final state saying the bot restarts), then release resources.

        The answer tasks are cancelled with the restart message as the reason; cancelling the analyst runs
        first would end them as if the user had pressed Stop.
        """
        for task in list(self.tasks):
            task.cancel(SHUTDOWN)
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=10)
        self.running.cancel_all()  # anything still running outside a task
        # After the answers: their final edits go through the budget's schedulers.
        await self.budget.aclose()
        if self._http is not None:
            await self._http.close()
        if shutdown_workers:
            self.workers.shutdown()


def new_budget(settings: Settings) -> SlackBudget:
    """The process-wide Slack budget: ``chat.update`` per workspace, and per-message edit spacing."""
    limits = dict(DEFAULT_LIMITS)
    limits["chat.update"] = BudgetLimit(settings.update_budget_per_minute, 60.0)
    return SlackBudget(limits=limits, min_interval=settings.edit_interval_s)
