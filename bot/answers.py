"""One answer, from a Slack request to its final message: find the dataset, read it, run the analyst, stream.

Listeners (``bot/listeners``) turn an event into an :class:`AnswerRequest` and hand it to :func:`answer`,
which runs as its own task (:meth:`BotDeps.spawn`) so the event is acknowledged at once. Every path ends with
the message in a final state: the answer, the deterministic report, or the text so far plus a clear line
saying what went wrong (the file, the model, Slack) or that it was stopped.

:class:`~bot.deps.BotDeps` (in :mod:`bot.deps`) holds what the listeners share.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from slack_sdk.errors import SlackApiError

from analyst.context import AnalysisContext
from analyst.events import AnalystEvent, Failed, FailureKind
from bot import uploads
from bot.conversations import StoredDataset, channel_key
from bot.deps import SHUTDOWN, BotDeps
from bot.files import (
    FileRejected,
    ReadResult,
    SlackFile,
    build_report_markdown,
    download,
    read_table,
    reader_failed,
)
from bot.logs import AnswerLog
from bot.metrics import MeteredRun
from bot.overrides import NotedRun, with_note
from bot.render import AnswerOutcome, AnswerWriter, DeliveryError, Reaction, WriterSettings
from bot.state.registry import AnswerRecord
from bot.textfilter import neutralise
from bot.workers import WorkerFailed

if TYPE_CHECKING:
    from analyst.agent import AnalystRun

log = logging.getLogger("variance.bot")
T = TypeVar("T")

Entry = Literal["mention", "dm", "command", "assistant"]

NO_DATASET = (
    "I don't have a file to analyse here yet. Upload a budget-vs-actual CSV or XLSX (an export from your "
    "ERP or spreadsheet) and ask again, or send the file alone for a quick report."
)
STOPPED = "Stopped."
# The grace of a shutdown ran out: the answer ends here and a survivor re-runs it into the same message.
HANDED_OVER = "The bot is restarting: this answer continues here in a moment. If it doesn't, please ask again."
INTERNAL_ERROR = "Something went wrong on my side and I stopped. Please try again."
UNDELIVERED = "Slack was not responding, so I couldn't answer this. Please ask again."


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
    assistant_thread: bool = False  # a thread in Slack's assistant container (status, native stream)
    source_ts: str | None = None  # the user's message (its ts): a deleted message drops the turn it produced
    # A re-run of an answer whose instance died (bot.shared): its id, its message (written in place), and how
    # many times survivors adopted it.
    answer_id: str | None = None
    adopt_ts: str | None = None
    adoptions: int = 0

    @property
    def wants_report(self) -> bool:
        return not self.question.strip()


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


async def load_file(
    deps: BotDeps,
    request: AnswerRequest,
    file: SlackFile,
    log_entry: AnswerLog,
    *,
    on_wait: Callable[[int], object] | None = None,
) -> StoredDataset:
    """Download and read ``file`` in a worker; keep it as the conversation's dataset. Raises FileRejected.

    ``on_wait(place)`` is called while every reader is busy (see :meth:`WorkerPool.run`)."""
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
            read_table, content, file.name, settings.max_file_bytes, request.wants_report, on_wait=on_wait
        )
    except WorkerFailed as error:  # over the time or memory limit, or lost: the reader was replaced
        raise reader_failed(error, file.name) from error
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


async def report_markdown(
    deps: BotDeps, stored: StoredDataset, *, on_wait: Callable[[int], object] | None = None
) -> str:
    """The conversation's deterministic report, under its options (account-type overrides, materiality)."""
    cached = stored.cached_report()
    if cached is not None:
        return cached
    dataset, options = stored.context.dataset, stored.context.options
    try:
        markdown = await deps.workers.run(build_report_markdown, dataset, options, on_wait=on_wait)
    except WorkerFailed as error:
        raise reader_failed(error, stored.filename) from error
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
        question,
        context,
        conversation_id=conversation_id,
        settings=settings,
        speaker=speaker,
        source=source,
        sessions=deps.sessions,
    )


# The first text rides on the post; a placeholder appears only if none has come by then.
PLACEHOLDER_AFTER_S = 1.5
# A file being read: the 👀 reaction says the question was seen; "Reading <file>…" is posted only when reading
# (and the first text) takes longer than this, so for a small file the first text rides on the post. A big file
# (or one of unknown size) takes seconds to read: it says so at once.
FILE_PLACEHOLDER_AFTER_S = 1.0
BIG_FILE_BYTES = 1_000_000


def writer_settings(request: AnswerRequest) -> WriterSettings:
    """How this answer is delivered (bot.render.modes): native streams in DMs' and assistant threads, status
    in the assistant container, 👍/👎 under every finished answer. A re-run into an orphan's message waits for
    its final edit rather than repost it: the answer stays where the person saw it begin."""
    in_dm = request.entry == "dm" or request.channel.startswith("D")
    placeholder_after: float | None = None if request.assistant_thread else PLACEHOLDER_AFTER_S
    if request.new_file is not None and not request.assistant_thread:
        # Reading a file: said by a placeholder (with a Stop button) at once for a big one, else only when slow.
        size = request.new_file.size
        placeholder_after = 0.0 if size is None or size >= BIG_FILE_BYTES else FILE_PLACEHOLDER_AFTER_S
    if uploads.wants_pack(request.question) and not request.assistant_thread:
        # A month-end pack's progress: say so at once (with a Stop button).
        placeholder_after = 0.0
    # Native streams only for a reply in a thread (a DM thread or an assistant thread). chat.startStream's
    # reference calls thread_ts optional, but whether a top-level DM message can stream is not verified (and
    # streamed messages are documented as replies to a user request), so a top-level DM answer is one edited
    # message instead (bot.render.planner); it streams natively once the person asks in a thread.
    settings = WriterSettings(
        placeholder_after=placeholder_after,
        native_stream=(in_dm or request.assistant_thread) and request.thread_ts is not None,
        feedback_buttons=True,
        assistant_status=request.assistant_thread,
    )
    return replace(settings, repost_final_after=None) if request.adopt_ts is not None else settings


def new_writer(
    deps: BotDeps,
    request: AnswerRequest,
    answer_id: str,
    on_first_message: Callable[[str, str], Awaitable[object]] | None = None,
    on_message_moved: Callable[[str, str], Awaitable[object]] | None = None,
) -> AnswerWriter:
    return AnswerWriter(
        deps.client,
        deps.budget,
        team_id=request.team,
        channel=request.channel,
        thread_ts=request.thread_ts,
        answer_id=answer_id,
        settings=writer_settings(request),
        conversation_id=request.conversation_id,
        recipient_user_id=request.user,
        on_first_message=on_first_message,
        on_message_moved=on_message_moved,
        adopt_ts=request.adopt_ts,
    )


def dataset_source(request: AnswerRequest) -> SlackFile | None:
    """The Slack file the answer's dataset comes from (a re-run reads it again): the new file, or the stored
    dataset's (a stub: ``files.info`` completes it)."""
    if request.new_file is not None:
        return request.new_file
    stored = request.stored
    if stored is None or not stored.file_id:
        return None
    filetype = stored.filename.rsplit(".", 1)[-1].lower() if "." in stored.filename else ""
    return SlackFile(stored.file_id, stored.filename, filetype, None, None, True)


def answer_record(request: AnswerRequest, answer_id: str, instance: str) -> AnswerRecord:
    """What the running-answers registry keeps of ``request``: enough to re-run it elsewhere, no file content."""
    source = dataset_source(request)
    return AnswerRecord(
        answer_id=answer_id,
        instance=instance,
        team=request.team,
        channel=request.channel,
        conversation_id=request.conversation_id,
        entry=request.entry,
        user=request.user or "",
        thread_ts=request.thread_ts,
        message_ts=request.adopt_ts,
        question=request.question,
        source=asdict(source) if source is not None else None,
        source_ts=request.source_ts,
        assistant_thread=request.assistant_thread,
        asked_at=time.time(),
        adoptions=request.adoptions,
    )


def rerun_request(deps: BotDeps, record: AnswerRecord) -> AnswerRequest | None:
    """The request that re-runs an orphaned answer here, into its message; None when it can't be re-run (no
    dataset source known, or a record this version does not understand). The dataset is read again from its
    source unless this instance holds that very file for the conversation already."""
    if record.source is None or record.entry not in ("mention", "dm", "command", "assistant"):
        return None
    try:
        source = SlackFile(**{k: record.source[k] for k in SlackFile.__dataclass_fields__})
    except (KeyError, TypeError):
        return None
    stored = deps.store.get(record.conversation_id)
    reuse = stored is not None and stored.file_id == source.id
    return AnswerRequest(
        entry=record.entry,  # type: ignore[arg-type]  # checked above
        team=record.team,
        channel=record.channel,
        thread_ts=record.thread_ts,
        conversation_id=record.conversation_id,
        question=record.question,
        new_file=None if reuse else source,
        stored=stored if reuse else None,
        user=record.user or None,
        assistant_thread=record.assistant_thread,
        source_ts=record.source_ts,
        answer_id=record.answer_id,
        adopt_ts=record.message_ts,
        adoptions=record.adoptions,
    )


async def answer(deps: BotDeps, request: AnswerRequest) -> AnswerOutcome | None:
    """Answer one request in Slack; never raises (every failure becomes the message's final state).

    Returns how the answer ended, or ``None`` when Slack refused even the placeholder.
    """
    answer_id = request.answer_id or uuid.uuid4().hex[:16]
    log_entry = AnswerLog(
        entry=request.entry,
        team=request.team,
        channel=request.channel,
        event_id=request.event_id,
        answer_id=answer_id,
    )
    asked = time.monotonic()

    async def placed(channel: str, ts: str) -> None:
        """The first message exists: record where it is before streaming on, so a survivor finds it if this
        instance dies."""
        await deps.registry.placed(answer_id, ts)

    async def moved(_channel: str, ts: str) -> None:
        """A new message took the answer's place (a repost): the record follows it."""
        await deps.registry.placed(answer_id, ts)

    writer = new_writer(deps, request, answer_id, placed, moved)
    control = AnswerControl(asyncio.current_task())
    deps.running.add(answer_id, control, owner=(request.team, request.user or ""))
    deps.threads.add(request.team, request.channel, request.thread_ts, answer_id)
    reaction = _acknowledge(deps, request)
    deps.metrics.running.inc()
    record = answer_record(request, answer_id, deps.settings.instance_id)
    # Handed over at shutdown only if a survivor can re-run it (a dataset to read, not re-run before).
    can_hand_over = record.source is not None and record.adoptions == 0
    outcome: AnswerOutcome | None = None
    try:
        await deps.registry.add(record, hand_over=control.hand_over if can_hand_over else None)
        label = f"Reading {request.new_file.name}…" if request.new_file is not None else None
        try:
            await writer.start(tool_label=label)
        except DeliveryError as refused:
            log_entry.outcome = f"slack_refused:{refused.code}"
            if refused.code == "post_unconfirmed":  # it may have landed: find it later and end it
                await writer.retire_unconfirmed(UNDELIVERED)
            return None
        stored = request.stored
        if request.new_file is not None:
            name = request.new_file.name
            waiting = _waiting_status(writer, f" for {name}", f"Reading {name}…")
            work = load_file(deps, request, request.new_file, log_entry, on_wait=waiting)
            stored = await _unless_stopped(control, work)
            writer.show_status(None)  # read: the live message no longer says "Reading <file>…"
        if stored is None:
            raise FileRejected(NO_DATASET, reason="no_dataset")
        await deps.overrides.pull(request.conversation_id, stored)  # made on another instance
        if request.wants_report:
            async with uploads.ReportChart(deps, request, stored) as chart:  # a file dropped alone in a DM
                waiting = _waiting_status(writer, "", None)
                markdown = await _unless_stopped(control, report_markdown(deps, stored, on_wait=waiting))
                outcome = await writer.write_markdown(with_note(markdown, stored.context, _note_entry(request)))
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
            share = functools.partial(deps.overrides.push, request.conversation_id, stored)  # for every instance
            noted = MeteredRun(NotedRun(run, stored.context, _note_entry(request), on_end=share), deps.metrics)
            outcome = await writer.write(uploads.with_charts(deps, request, aiter(noted), stored, writer))
    except _Stopped:
        outcome = await writer.write(_events(Failed(FailureKind.CANCELLED, STOPPED)))
    except FileRejected as rejected:
        log_entry.outcome = f"rejected:{rejected.reason}"
        outcome = await _fail(writer, rejected.user_message)
    except asyncio.CancelledError as cancelled:
        handed_over = bool(cancelled.args) and cancelled.args[0] == HANDED_OVER
        log_entry.outcome = "handed_over" if handed_over else "shutdown"
        outcome = await asyncio.shield(_fail(writer, HANDED_OVER if handed_over else SHUTDOWN))
        raise
    except Exception as error:
        log.exception("answer %s failed", answer_id)
        log_entry.outcome = f"error:{type(error).__name__}"
        outcome = await _fail(writer, INTERNAL_ERROR)
    finally:
        deps.running.remove(answer_id)
        deps.threads.remove(request.team, request.channel, request.thread_ts, answer_id)
        if reaction is not None:
            deps.spawn(reaction.remove(), name="reaction")
        deps.metrics.running.dec()
        undelivered = log_entry.outcome == "shutdown" and (outcome is None or not outcome.delivered)
        if log_entry.outcome == "handed_over" or undelivered:
            await asyncio.shield(deps.registry.release(answer_id))  # a survivor brings it to a final state now
        else:  # awaited directly: the in-process registry returns without yielding to the loop
            await deps.registry.remove(answer_id)
        if outcome is not None:
            deps.metrics.final.observe(time.monotonic() - asked)
            if outcome.first_text_at is not None:  # the answer's text, not a placeholder (writer: monotonic)
                deps.metrics.first_visible.observe(outcome.first_text_at - asked)
            if log_entry.outcome == "unknown":
                log_entry.outcome = outcome.state if outcome.delivered else f"{outcome.state}:undelivered"
            log_entry.edits = outcome.edits
            log_entry.messages = len(outcome.message_ts)
            log_entry.slack_error = outcome.slack_error
        deps.metrics.answers.labels(entry=request.entry, outcome=_metric_outcome(log_entry.outcome)).inc()
        log_entry.emit()
    return outcome


def _acknowledge(deps: BotDeps, request: AnswerRequest) -> Reaction | None:
    """:eyes: on the question while its answer runs (DMs and channels; an assistant thread shows its status)."""
    if request.assistant_thread or not request.source_ts:
        return None
    reaction = Reaction(deps.client, deps.budget, request.team, request.channel, request.source_ts)
    reaction.add()
    return reaction


def _waiting_status(writer: AnswerWriter, what: str, after: str | None) -> Callable[[int], None]:
    """The pool's ``on_wait``: the message shows its place in line while every reader is busy, then ``after``."""

    def show(place: int) -> None:
        if place:
            writer.show_status(f"Waiting for a free reader{what} ({_ordinal(place)} in line)…", slow=True)
        else:
            writer.show_status(after)

    return show


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _metric_outcome(outcome: str) -> str:
    """A bounded label for ``answers_total``: the outcome's kind (``rejected``, ``error``, ...), not its detail."""
    return outcome.split(":", 1)[0][:32] or "unknown"


def _note_entry(request: AnswerRequest) -> Literal["mention", "dm", "command"]:
    """How the overrides line tells this person to reset: an assistant thread is a DM with the bot."""
    return "dm" if request.entry == "assistant" else request.entry


async def _fail(writer: AnswerWriter, message: str) -> AnswerOutcome | None:
    try:
        return await writer.fail(message)
    except Exception:
        log.exception("could not write the final error state")
        return None
