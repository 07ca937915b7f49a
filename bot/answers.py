"""One answer, from a Slack request to its final message: find the dataset, read it, run the analyst, stream.

Listeners (``bot/listeners``) turn an event into an :class:`AnswerRequest` and hand it to :func:`answer`,
which runs as its own task (:meth:`BotDeps.spawn`) so the event is acknowledged at once. Every path ends with
the message in a final state: the answer, the deterministic report, or the text so far plus a clear line
saying what went wrong (the file, the model, Slack) or that it was stopped.

:class:`BotDeps` holds what the listeners share: settings, the Slack client, the conversation store, the
deduplicator, the running answers (for Stop), the worker pool and the workspace-wide Slack budget.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from analyst.context import AnalysisContext
from analyst.events import AnalystEvent, Failed, FailureKind
from bot import uploads
from bot.config import Settings
from bot.conversations import ConversationStore, RunningAnswers, StoredDataset, channel_key
from bot.files import (
    FileRejected,
    ReadResult,
    SlackFile,
    WorkerPool,
    build_report_markdown,
    download,
    read_table,
)
from bot.limits import Limits, RunLimits
from bot.logs import AnswerLog
from bot.metrics import MeteredRun, Metrics
from bot.overrides import NotedRun, with_note
from bot.render import DEFAULT_LIMITS, AnswerOutcome, AnswerWriter, BudgetLimit, DeliveryError, SlackBudget
from bot.state.local import LocalRegistry, LocalSources
from bot.state.registry import AnswerRecord
from bot.textfilter import neutralise

if TYPE_CHECKING:
    from analyst.agent import AnalystRun

log = logging.getLogger("variance.bot")
T = TypeVar("T")

Entry = Literal["mention", "dm", "command"]

NO_DATASET = (
    "I don't have a file to analyse here yet. Upload a budget-vs-actual CSV or XLSX (an export from your "
    "ERP or spreadsheet) and ask again, or send the file alone for a quick report."
)
STOPPED = "Stopped."
INTERNAL_ERROR = "Something went wrong on my side and I stopped. Please try again."
UNDELIVERED = "Slack was not responding, so I couldn't answer this. Please ask again."
SHUTDOWN = "The bot is restarting, so I stopped here. Please ask again in a minute."


@dataclass(slots=True)
class AnswerRequest:
    """What a listener decided: where to answer, about which conversation, and what."""

    entry: Entry
    team: str
    channel: str
    thread_ts: str | None  # reply in this thread; None for a top-level message
    conversation_id: str
    question: str  # empty: the deterministic report
    new_file: SlackFile | None = None  # a file to read first (replacing the conversation's dataset)
    stored: StoredDataset | None = None  # the dataset to use when no new file is given
    event_id: str | None = None
    user: str | None = None
    source_ts: str | None = None  # the user's message (its ts): a deleted message drops the turn it produced

    @property
    def wants_report(self) -> bool:
        return not self.question.strip()


class Claims(Protocol):
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
    registry: Any = field(default_factory=LocalRegistry)
    metrics: Metrics = field(default_factory=Metrics)
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


class AnswerControl:
    """The Stop button's handle for one answer: cancels the analyst run, or the file reading before it."""

    def __init__(self) -> None:
        self.stopped = asyncio.Event()
        self._run: Any = None

    def attach(self, run: Any) -> None:
        self._run = run
        if self.stopped.is_set():
            run.cancel()

    def cancel(self) -> None:
        self.stopped.set()
        if self._run is not None:
            self._run.cancel()


class _Stopped(Exception):
    pass


# How long an abandoned piece of work (a download, a worker job) may take to wind down once cancelled.
_ABANDON_GRACE_SECONDS = 5.0


async def _unless_stopped(control: AnswerControl, work: Awaitable[T]) -> T:
    """Await ``work`` unless the user presses Stop first (then :class:`_Stopped`).

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
        raise _Stopped
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


async def _events(*events: AnalystEvent) -> AsyncIterator[AnalystEvent]:
    for event in events:
        yield event


# A short message refused with 429 was not posted: wait as Slack asks (within reason) and post it again.
_NOTICE_ATTEMPTS = 3
_NOTICE_MAX_WAIT_S = 30.0


async def call_with_rate_retry(call: Callable[[], Awaitable[Any]]) -> Any:
    """``call()`` (one Slack Web API call), retried after ``Retry-After`` while Slack answers 429."""
    for attempt in range(_NOTICE_ATTEMPTS):
        try:
            return await call()
        except SlackApiError as error:
            if error.response.status_code != 429 or attempt == _NOTICE_ATTEMPTS - 1:
                raise
            headers = {str(k).lower(): v for k, v in (error.response.headers or {}).items()}
            try:
                wait = float(headers.get("retry-after", 1))
            except (TypeError, ValueError):
                wait = 1.0
            await asyncio.sleep(min(max(wait, 0.0), _NOTICE_MAX_WAIT_S))
    raise AssertionError("unreachable")


async def post_notice(deps: BotDeps, channel: str, thread_ts: str | None, text: str) -> None:
    """A short plain message (no dataset yet, unsupported file); failures are logged, never raised."""
    try:
        await call_with_rate_retry(
            lambda: deps.client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=neutralise(text))
        )
    except SlackApiError as error:
        log.warning("could not post a notice: %s", error.response.get("error"))


async def resolve_file(deps: BotDeps, file: SlackFile) -> SlackFile:
    """Complete a stub file object from ``files.info`` (Slack sends stubs for some shares)."""
    if not file.needs_info or not file.id:
        return file
    response = await deps.client.files_info(file=file.id)
    obj = response.get("file")
    return SlackFile.from_object(obj) if isinstance(obj, dict) else file


async def load_file(deps: BotDeps, request: AnswerRequest, file: SlackFile, log_entry: AnswerLog) -> StoredDataset:
    """Download and read ``file`` in a worker; keep it as the conversation's dataset. Raises FileRejected."""
    started = asyncio.get_running_loop().time()
    try:
        file = await resolve_file(deps, file)
    except SlackApiError as error:
        raise FileRejected(
            f"Slack wouldn't give me {file.name} ({error.response.get('error')}).", reason="files_info"
        ) from error
    settings = deps.settings
    content = await download(
        deps.http,
        file,
        token=settings.bot_token,
        origins=settings.file_origins,
        max_bytes=settings.max_file_bytes,
    )
    log_entry.file_bytes = len(content)
    try:
        result: ReadResult = await deps.workers.run(
            read_table, content, file.name, settings.max_file_bytes, request.wants_report
        )
    except BrokenProcessPool as error:  # the reader died (out of memory, killed): the pool is renewed
        raise FileRejected(
            f"I ran out of room while reading {file.name}. Try a smaller export (fewer lines or periods).",
            reason="worker_died",
        ) from error
    del content
    if result.dataset is None:
        raise FileRejected(result.error or f"I couldn't read {file.name}.", reason="unreadable")
    log_entry.rows = result.dataset.source.data_rows
    log_entry.file_s = round(asyncio.get_running_loop().time() - started, 3)
    deps.metrics.file_read.observe(log_entry.file_s)
    await deps.sources.remember(
        request.conversation_id, file, owner=request.user, channel=channel_key(request.team, request.channel)
    )
    return deps.store.put(
        request.conversation_id,
        result.dataset,
        file_id=file.id,
        filename=file.name,
        channel=channel_key(request.team, request.channel),
        report_markdown=result.report_markdown,
        memory_bytes=result.memory_bytes,
        owner=request.user,
    )


async def report_markdown(deps: BotDeps, stored: StoredDataset) -> str:
    """The conversation's deterministic report, under its options (account-type overrides, materiality)."""
    cached = stored.cached_report()
    if cached is not None:
        return cached
    dataset, options = stored.context.dataset, stored.context.options
    markdown = await deps.workers.run(build_report_markdown, dataset, options)
    stored.cache_report(markdown, dataset, options)
    return markdown


def _start_run(
    deps: BotDeps,
    question: str,
    context: AnalysisContext,
    conversation_id: str,
    *,
    speaker: str | None = None,
    source: str | None = None,
) -> AnalystRun:
    # The agents SDK loads on first use, not when the bot is imported. Without model settings the run ends at
    # once with a "no API key configured" failure, which the writer shows.
    from analyst.agent import AgentSettings, start_run

    settings = deps.settings.agent or AgentSettings()
    return start_run(
        question, context, conversation_id=conversation_id, settings=settings, speaker=speaker, source=source
    )


def new_budget(settings: Settings) -> SlackBudget:
    """The process-wide Slack budget: ``chat.update`` per workspace, and per-message edit spacing."""
    limits = dict(DEFAULT_LIMITS)
    limits["chat.update"] = BudgetLimit(settings.update_budget_per_minute, 60.0)
    return SlackBudget(limits=limits, min_interval=settings.edit_interval_s)


def new_writer(deps: BotDeps, request: AnswerRequest, answer_id: str) -> AnswerWriter:
    return AnswerWriter(
        deps.client,
        deps.budget,
        team_id=request.team,
        channel=request.channel,
        thread_ts=request.thread_ts,
        answer_id=answer_id,
    )


async def answer(deps: BotDeps, request: AnswerRequest) -> AnswerOutcome | None:
    """Answer one request in Slack; never raises (every failure becomes the message's final state).

    Returns how the answer ended, or ``None`` when Slack refused even the placeholder.
    """
    answer_id = uuid.uuid4().hex[:16]
    log_entry = AnswerLog(
        entry=request.entry,
        team=request.team,
        channel=request.channel,
        event_id=request.event_id,
        answer_id=answer_id,
    )
    writer = new_writer(deps, request, answer_id)
    control = AnswerControl()
    deps.running.add(answer_id, control, owner=(request.team, request.user or ""))
    deps.metrics.running.inc()
    asked = time.monotonic()
    record = AnswerRecord(
        answer_id=answer_id,
        instance=deps.settings.instance_id,
        team=request.team,
        channel=request.channel,
        conversation_id=request.conversation_id,
        entry=request.entry,
        user=request.user or "",
        thread_ts=request.thread_ts,
        question=request.question,
    )
    outcome: AnswerOutcome | None = None
    try:
        await deps.registry.add(record)
        label = f"Reading {request.new_file.name}…" if request.new_file is not None else None
        try:
            message_ts = await writer.start(tool_label=label)
            deps.metrics.first_visible.observe(time.monotonic() - asked)
            await deps.registry.placed(answer_id, message_ts)
        except DeliveryError as refused:
            log_entry.outcome = f"slack_refused:{refused.code}"
            if refused.code == "post_unconfirmed":  # it may have landed: find it later and end it
                await writer.retire_unconfirmed(UNDELIVERED)
            return None
        stored = request.stored
        if request.new_file is not None:
            stored = await _unless_stopped(control, load_file(deps, request, request.new_file, log_entry))
        if stored is None:
            raise FileRejected(NO_DATASET, reason="no_dataset")
        if request.wants_report:
            async with uploads.ReportChart(deps, request, stored) as chart:  # a file dropped alone in a DM
                markdown = await _unless_stopped(control, report_markdown(deps, stored))
                outcome = await writer.write_markdown(with_note(markdown, stored.context, request.entry))
                chart.shown(outcome.delivered)
        elif uploads.wants_pack(request.question):
            outcome = await writer.write(uploads.pack_events(deps, request, stored, writer))
        else:
            run = _start_run(
                deps,
                request.question,
                stored.context,
                request.conversation_id,
                speaker=request.user,
                source=request.source_ts,
            )
            control.attach(run)
            noted = MeteredRun(NotedRun(run, stored.context, request.entry), deps.metrics)
            outcome = await writer.write(uploads.with_charts(deps, request, aiter(noted), stored, writer))
    except _Stopped:
        outcome = await writer.write(_events(Failed(FailureKind.CANCELLED, STOPPED)))
    except FileRejected as rejected:
        log_entry.outcome = f"rejected:{rejected.reason}"
        outcome = await _fail(writer, rejected.user_message)
    except asyncio.CancelledError:
        log_entry.outcome = "shutdown"
        await asyncio.shield(_fail(writer, SHUTDOWN))
        raise
    except Exception as error:
        log.exception("answer %s failed", answer_id)
        log_entry.outcome = f"error:{type(error).__name__}"
        outcome = await _fail(writer, INTERNAL_ERROR)
    finally:
        deps.running.remove(answer_id)
        deps.metrics.running.dec()
        if log_entry.outcome == "shutdown" and (outcome is None or not outcome.delivered):
            await asyncio.shield(deps.registry.release(answer_id))  # a survivor brings it to a final state now
        else:
            await asyncio.shield(deps.registry.remove(answer_id))
        if outcome is not None:
            deps.metrics.final.observe(time.monotonic() - asked)
            if log_entry.outcome == "unknown":
                log_entry.outcome = outcome.state if outcome.delivered else f"{outcome.state}:undelivered"
            log_entry.edits = outcome.edits
            log_entry.messages = len(outcome.message_ts)
            log_entry.slack_error = outcome.slack_error
        deps.metrics.answers.labels(entry=request.entry, outcome=_metric_outcome(log_entry.outcome)).inc()
        log_entry.emit()
    return outcome


def _metric_outcome(outcome: str) -> str:
    """A bounded label for ``answers_total``: the outcome's kind (``rejected``, ``error``, ...), not its detail."""
    return outcome.split(":", 1)[0][:32] or "unknown"


async def _fail(writer: AnswerWriter, message: str) -> AnswerOutcome | None:
    try:
        return await writer.fail(message)
    except Exception:
        log.exception("could not write the final error state")
        return None
