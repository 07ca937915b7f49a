"""What the bot does with a Teams message: 1:1 chats stream, group chats get one message.

- **1:1 chat**: a CSV/XLSX (a ``download.info`` attachment) becomes the chat's dataset. A file alone, or
  ``report``, gets the deterministic report as an Adaptive Card; a question is answered by the analyst, streamed.
  Follow-ups continue the conversation (its memory lives in the same session store as Slack's).
- **Group chat** (``<at>Variance Analyst</at> question``): the answer is one ordinary message (Teams streams only in
  1:1 chats), about the newest file that user sent the bot in their 1:1 chat. Files shared in group chats live in
  SharePoint, behind Microsoft Graph, which the bot does not read; the reply says so when there is no file.

The activity is acknowledged at once (Teams redelivers after ~15 s) and answered in a task of its own; a
redelivered activity (same id) is answered once. The same per-user and per-tenant limits as the other surfaces
apply (:mod:`bot.limits`). With ``REDIS_URL`` (several instances) the dedupe, the limits, the conversation
memory and each conversation's dataset *source* are shared (``bot.state``): a redelivery that reaches another
instance is still answered once, and a follow-up that reaches an instance which never read the file downloads
it again from the link Teams gave (:func:`reload_file`); once that short-lived link has expired, the user is
asked to send the file again. Which of two files is a chat's newest is decided by when the user shared each
(the activity's timestamp, kept with the dataset and its shared record), never by which instance finished
reading last. A group chat's overrides (one user's thread there) are shared the same way as a 1:1 chat's.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import logging
import re
import ssl
import time
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp

from analyst.context import AnalysisContext
from bot.conversations import ConversationStore, StoredDataset
from bot.files import FileRejected, ReadResult, WorkerPool, read_table, reader_failed
from bot.limits import Admission, Limits
from bot.logs import log_line
from bot.overrides import apply_record, overrides_record
from bot.state.teams_datasets import LocalTeamsSources, TeamsSource
from bot.teams.charts import bridge_chart_message
from bot.teams.files import TeamsFile, attached_files, download, unsupported_message
from bot.teams.jobs import report_summary
from bot.teams.settings import TeamsSettings
from bot.teams.writer import StreamedAnswer, collect_answer, report_card, shown_text
from bot.workers import WorkerFailed

log = logging.getLogger("variance.teams")

HELP = (
    "I explain budget-vs-actual variances. Send me a CSV or Excel (.xlsx) export here, alone for a quick "
    'report, or with a question such as "why is marketing over budget in Q3?". Then keep asking: I remember '
    "the conversation. Type **report** for the report of the current file. In a group chat, mention me with a "
    "question about the newest file you sent me here."
)
NO_DATASET = (
    "I don't have a file to analyse here yet. Send me a budget-vs-actual CSV or XLSX (an export from your ERP or "
    "spreadsheet) and ask again, or send the file alone for a quick report."
)
NO_FILE_FOR_GROUP = (
    "I don't have a file from you yet. Send me the budget-vs-actual CSV or XLSX in a 1:1 chat with me, then "
    "mention me here again. (Files shared in group chats are stored in SharePoint, which I can't read.)"
)
# A follow-up on an instance that never read the file, after Teams' download link for it has expired.
LINK_EXPIRED = (
    "The link Teams gave me to {name} has expired (Teams' file links only last a short while), so I can't read "
    "the file again. Send {name} here once more and ask your question."
)
# The same in a group chat, where files can't be read: the file goes to the 1:1 chat.
LINK_EXPIRED_GROUP = (
    "The link Teams gave me to {name} has expired (Teams' file links only last a short while), so I can't read "
    "the file again. Send {name} to me once more in our 1:1 chat, then mention me here again."
)
INTERNAL_ERROR = "Something went wrong on my side and I stopped. Please try again."
_AT = re.compile(r"<at\b[^>]*>.*?</at>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


def question_text(text: str | None) -> str:
    """The question without the bot's ``<at>`` mention and without Teams' HTML."""
    text = _AT.sub(" ", text or "")
    text = html.unescape(_TAG.sub(" ", text))
    return " ".join(text.split())


class Claims(Protocol):
    """Claim a key once (an activity id): in this process, or across instances."""

    async def claim(self, key: str) -> bool: ...


@dataclass(slots=True)
class TeamsDeps:
    settings: TeamsSettings
    store: ConversationStore
    dedupe: Claims  # Deduplicator, or bot.state.claims.RedisClaims with REDIS_URL
    limits: Limits
    workers: WorkerPool
    ssl_context: ssl.SSLContext
    # user (tenant:aad id) -> their 1:1 conversation with the newest file they sent here, and when they sent it
    latest_personal: dict[str, tuple[str, float]] = field(default_factory=dict)
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)
    answered: int = 0
    # Conversation memory (bot.state.memory.RedisSessions with REDIS_URL); None: SQLite in the data folder.
    sessions: Any = None
    # Each conversation's dataset source (bot.state.teams_datasets.RedisTeamsSources with REDIS_URL).
    sources: Any = field(default_factory=LocalTeamsSources)
    _http: aiohttp.ClientSession | None = None

    @property
    def http(self) -> aiohttp.ClientSession:
        if self._http is None or self._http.closed:
            self._http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=self.ssl_context))
        return self._http

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s failed: %s", task.get_name(), type(task.exception()).__name__, exc_info=task.exception())

    async def idle(self, timeout: float | None = None) -> None:
        async with asyncio.timeout(timeout):
            while self.tasks:
                await asyncio.gather(*list(self.tasks), return_exceptions=True)

    async def close(self, *, shutdown_workers: bool = True) -> None:
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=10)
        if self._http is not None:
            await self._http.close()
        if shutdown_workers:
            self.workers.shutdown()


@dataclass(slots=True)
class Turn:
    """The parts of one message activity the bot uses."""

    activity_id: str
    tenant: str
    user: str
    conversation: str  # Teams' conversation id
    kind: str  # personal, groupChat, channel
    question: str
    files: list[TeamsFile]
    had_attachments: bool
    sent_at: float  # epoch seconds: when the user sent it (the activity's timestamp, else its arrival)

    @property
    def conversation_id(self) -> str:
        """Where the dataset and the agent's memory live: the 1:1 chat, or one user's thread in a group chat."""
        if self.kind == "personal":
            return f"teams:{self.tenant}:{self.conversation}"
        return f"teams:{self.tenant}:{self.conversation}:{self.user}"

    @property
    def user_key(self) -> str:
        return f"{self.tenant}:{self.user}"


def sent_at(activity: Any) -> float:
    """When the user sent ``activity``: Teams' timestamp on it (one clock for every instance), else now."""
    stamp = getattr(activity, "timestamp", None)
    if isinstance(stamp, dt.datetime):
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=dt.UTC)
        return stamp.timestamp()
    return time.time()


def turn_of(activity: Any) -> Turn:
    conversation = activity.conversation
    channel_data = getattr(activity, "channel_data", None)
    tenant = conversation.tenant_id or (getattr(getattr(channel_data, "tenant", None), "id", None)) or ""
    sender = activity.from_
    attachments = list(getattr(activity, "attachments", None) or [])
    return Turn(
        activity_id=str(activity.id or ""),
        tenant=str(tenant),
        user=str(getattr(sender, "aad_object_id", None) or sender.id),
        conversation=str(conversation.id),
        kind=str(conversation.conversation_type or "personal"),
        question=question_text(getattr(activity, "text", None)),
        files=attached_files(attachments),
        had_attachments=any(
            (getattr(a, "content_type", None) or "") == "application/vnd.microsoft.teams.file.download.info"
            for a in attachments
        ),
        sent_at=sent_at(activity),
    )


def register(app: Any, deps: TeamsDeps) -> None:
    """Answer message activities (acknowledged at once, answered in a task)."""

    async def on_message(ctx):  # type: ignore[no-untyped-def]
        turn = turn_of(ctx.activity)
        if turn.activity_id and not await deps.dedupe.claim(f"teams:{turn.conversation}:{turn.activity_id}"):
            log_line("request", surface="teams", activity=turn.activity_id, duplicate=True)
            return
        deps.spawn(answer(deps, ctx, turn), name="teams-answer")

    app.on_message(on_message)


async def _send(ctx: Any, text: str, attachments: list[dict[str, Any]] | None = None) -> bool:
    """One ordinary message (paced like every call); failures are logged, never raised."""
    from microsoft_teams.api.activities.message.message import MessageActivityInput
    from microsoft_teams.api.models.attachment.attachment import Attachment

    message = MessageActivityInput(text=shown_text(text))
    if attachments:
        message.add_attachments(
            *(
                Attachment(
                    content_type=a["contentType"],
                    content=a.get("content"),
                    content_url=a.get("contentUrl"),
                    name=a.get("name"),
                )
                for a in attachments
            )
        )
    try:
        await ctx.send(message)
        return True
    except Exception as error:
        log.warning("could not send a message to Teams: %s", type(error).__name__)
        return False


async def answer(deps: TeamsDeps, ctx: Any, turn: Turn) -> None:
    started = time.monotonic()
    answer_id = uuid.uuid4().hex[:16]
    outcome = "unknown"
    admission: Admission | None = None
    try:
        command = turn.question.lower().strip(" .!?")
        if command == "help":
            await _send(ctx, HELP)
            outcome = "help"
            return
        if turn.kind == "personal":
            if turn.had_attachments and not any(f.is_table for f in turn.files):
                await _send(ctx, unsupported_message(turn.files))
                outcome = "unsupported"
                return
            new_file = next((f for f in reversed(turn.files) if f.is_table), None)
            stored = deps.store.get(turn.conversation_id)
            shared = None
            if new_file is None and turn.question:  # the file may have been read, or replaced, on another instance
                shared = await deps.sources.source_for(turn.conversation_id)
                if stored is not None and shared is not None and _replaces(shared, stored):
                    stored = None  # a newer file was sent through another instance: read that one
            if new_file is None and stored is None and shared is None:
                await _send(ctx, NO_DATASET)
                outcome = "no_dataset"
                return
            if new_file is None and not turn.question:
                outcome = "empty"
                return
        else:
            new_file = None
            source_id = await _newest_chat(deps, turn.user_key)
            source = deps.store.get(source_id) if source_id else None
            shared = await deps.sources.source_for(source_id) if source_id else None  # sent to another instance?
            if source is not None and shared is not None and _replaces(shared, source):
                source = None  # a newer file was sent through another instance: read that one
            if source is None and shared is None:
                await _send(ctx, NO_FILE_FOR_GROUP)
                outcome = "no_dataset"
                return
            stored = deps.store.adopt(turn.conversation_id, source) if source is not None else None
        admission = await deps.limits.admit(turn.tenant, turn.user)
        if not admission.ok:
            await _send(ctx, admission.message)
            outcome = f"limited:{admission.reason}"
            return
        wants_report = command in {"", "report"}
        if turn.kind == "personal":
            outcome = await _personal(deps, ctx, turn, new_file, stored, wants_report, shared)
        elif stored is None:
            assert shared is not None and source_id is not None
            try:
                source = await reload_file(deps, source_id, shared, in_group=True)
            except FileRejected as rejected:
                await _send(ctx, rejected.user_message)
                outcome = f"rejected:{rejected.reason}"
                return
            deps.latest_personal[turn.user_key] = (source_id, shared.shared_at)
            stored = deps.store.adopt(turn.conversation_id, source)
            outcome = await _group(deps, ctx, turn, stored, wants_report, shared)
        else:
            outcome = await _group(deps, ctx, turn, stored, wants_report, shared)
    except asyncio.CancelledError:
        outcome = "shutdown"
        raise
    except Exception as error:
        log.exception("teams answer %s failed", answer_id)
        outcome = f"error:{type(error).__name__}"
    finally:
        if admission is not None:
            await deps.limits.release(admission)
        deps.answered += 1
        log_line(
            "answer",
            surface="teams",
            answer_id=answer_id,
            activity=turn.activity_id,
            tenant=turn.tenant,
            chat=turn.kind,
            outcome=outcome,
            total_s=round(time.monotonic() - started, 3),
        )


async def _personal(
    deps: TeamsDeps,
    ctx: Any,
    turn: Turn,
    new_file: TeamsFile | None,
    stored: StoredDataset | None,
    wants_report: bool,
    shared: TeamsSource | None = None,
) -> str:
    from microsoft_teams.apps import HttpStream

    async def fallback(text: str, attachments: list[dict[str, Any]] | None) -> bool:
        return await _send(ctx, text, attachments)

    writer = StreamedAnswer(
        HttpStream(ctx.api, ctx.conversation_ref), interval_s=deps.settings.chunk_interval_s, fallback=fallback
    )
    try:
        if new_file is not None:
            writer.status(f"Reading {new_file.name}…")
            stored = await load_file(deps, turn, new_file)
            deps.latest_personal[turn.user_key] = (turn.conversation_id, turn.sent_at)
        elif stored is None and shared is not None:
            writer.status(f"Reading {shared.file.name} again…")
            stored = await reload_file(deps, turn.conversation_id, shared)
        if stored is None:
            raise FileRejected(NO_DATASET, reason="no_dataset")
        await _pull_overrides(deps, turn.conversation_id, stored, shared)
        if wants_report:
            summary = await deps.workers.run(report_summary, stored.context.dataset, stored.context.options)
            text, card = report_card(summary, stored.filename)
            result = await writer.finish(text, [card])
            if not result.delivered:
                return "report:undelivered"
            return "report" if await _send_report_chart(ctx, stored) else "report:no_chart"
        writer.status("Looking at the numbers…")
        run = _start_run(deps, turn.question, stored.context, turn.conversation_id)
        result = await writer.write(run)
        # An override the run made (an account type, a column role) holds on every instance from now on.
        await deps.sources.note_overrides(turn.conversation_id, stored.file_id, overrides_record(stored.context))
        return "answered" if result.delivered else "answered:undelivered"
    except FileRejected as rejected:
        await writer.finish(rejected.user_message)
        return f"rejected:{rejected.reason}"
    except asyncio.CancelledError:
        await asyncio.shield(writer.finish("The bot is restarting, so I stopped here. Please ask again in a minute."))
        raise
    except Exception:
        log.exception("teams answer failed")
        await writer.finish(INTERNAL_ERROR)
        return "error"


async def _newest_chat(deps: TeamsDeps, user_key: str) -> str | None:
    """The user's 1:1 chat with the newest file they sent: the one this instance knows, unless another instance
    recorded a file sent after it."""
    mine = deps.latest_personal.get(user_key)
    shared = await deps.sources.newest_chat(user_key)
    if mine is None or (shared is not None and shared[1] > mine[1]):
        mine = shared
    return mine[0] if mine else None


def _replaces(shared: TeamsSource, stored: StoredDataset) -> bool:
    """Whether the shared record names another file, shared after the one this instance holds."""
    return shared.file.unique_id != stored.file_id and shared.newer_than(stored.shared_at, stored.file_id)


async def _group(
    deps: TeamsDeps,
    ctx: Any,
    turn: Turn,
    stored: StoredDataset,
    wants_report: bool,
    personal: TeamsSource | None = None,
) -> str:
    """One user's thread in a group chat, over the file of their 1:1 chat (``personal``: its shared record)."""
    # The thread's overrides, as another instance may have left them (kept under the thread's own id).
    await _pull_overrides(deps, turn.conversation_id, stored, None)
    if wants_report:
        summary = await deps.workers.run(report_summary, stored.context.dataset, stored.context.options)
        text, card = report_card(summary, stored.filename)
        if not await _send(ctx, text, [card]):
            return "report:undelivered"
        return "report" if await _send_report_chart(ctx, stored) else "report:no_chart"
    before = overrides_record(stored.context)
    text = await collect_answer(_start_run(deps, turn.question, stored.context, turn.conversation_id))
    after = overrides_record(stored.context)
    if after != before:  # the run changed them: they hold on every instance from now on
        basis = personal if personal is not None and personal.file.unique_id == stored.file_id else None
        await deps.sources.note_overrides(turn.conversation_id, stored.file_id, after, basis=basis)
    return "answered" if await _send(ctx, text) else "answered:undelivered"


async def _send_report_chart(ctx: Any, stored: StoredDataset) -> bool:
    """The bridge chart after the report card, as its own message (drawn once the card is up)."""
    chart = await bridge_chart_message(stored.context)
    return chart is not None and await _send(ctx, chart[0], [chart[1]])


def _start_run(deps: TeamsDeps, question: str, context: AnalysisContext, conversation_id: str) -> Any:
    from analyst.agent import AgentSettings, start_run

    settings = deps.settings.agent or AgentSettings()
    return start_run(question, context, conversation_id=conversation_id, settings=settings, sessions=deps.sessions)


async def _pull_overrides(
    deps: TeamsDeps, conversation_id: str, stored: StoredDataset, shared: TeamsSource | None
) -> None:
    """Bring the context to the overrides another instance recorded for this file, if they differ."""
    source = shared or await deps.sources.source_for(conversation_id)
    if source is not None and source.file.unique_id == stored.file_id:
        _apply_overrides(stored, source.overrides)


def _apply_overrides(stored: StoredDataset, record: dict[str, Any]) -> None:
    if record == overrides_record(stored.context):
        return
    try:
        apply_record(stored.context, record)
    except (ValueError, TypeError, KeyError) as error:  # e.g. a column this read of the file does not have
        log.warning("shared overrides not applied: %s", type(error).__name__)


async def load_file(deps: TeamsDeps, turn: Turn, file: TeamsFile) -> StoredDataset:
    """Download and read ``file`` in a worker; keep it as the conversation's dataset (and share its source
    with the other instances). Raises FileRejected."""
    settings = deps.settings
    content = await download(deps.http, file, ssl_context=deps.ssl_context, max_bytes=settings.max_file_bytes)
    stored = await _read(deps, turn.conversation_id, file, content)
    # Taken when the user sent it, not now: a slower read of an older file must not pass for the newer one.
    stored.shared_at = turn.sent_at
    source = TeamsSource(file=file, size=len(content), owner=turn.user_key, shared_at=turn.sent_at)
    await deps.sources.remember(turn.conversation_id, source)
    return stored


async def reload_file(
    deps: TeamsDeps, conversation_id: str, source: TeamsSource, *, in_group: bool = False
) -> StoredDataset:
    """Read again a file another instance read (a follow-up that reached this one), with the conversation's
    overrides on it; its age counts from when it was shared. Raises FileRejected (:data:`LINK_EXPIRED`, or
    :data:`LINK_EXPIRED_GROUP` for a group chat's mention, once Teams' download link no longer works)."""
    file = source.file
    try:
        content = await download(deps.http, file, ssl_context=deps.ssl_context, max_bytes=deps.settings.max_file_bytes)
    except FileRejected as rejected:
        if rejected.reason not in {"http_401", "http_403", "http_404", "http_410"}:
            raise
        await deps.sources.forget(conversation_id)
        expired = LINK_EXPIRED_GROUP if in_group else LINK_EXPIRED
        raise FileRejected(expired.format(name=file.name), reason="link_expired") from rejected
    stored = await _read(deps, conversation_id, file, content)
    stored.loaded_at -= source.age_s  # the dataset's age cap counts from when the file was shared
    stored.shared_at = source.shared_at
    _apply_overrides(stored, source.overrides)
    log_line("dataset", surface="teams", action="reloaded", bytes=len(content), age_s=round(source.age_s, 1))
    return stored


async def _read(deps: TeamsDeps, conversation_id: str, file: TeamsFile, content: bytes) -> StoredDataset:
    max_bytes = deps.settings.max_file_bytes
    try:
        result: ReadResult = await deps.workers.run(read_table, content, file.name, max_bytes, False)
    except WorkerFailed as error:  # over the time or memory limit, or lost: the reader was replaced
        raise reader_failed(error, file.name) from error
    if result.dataset is None:
        raise FileRejected(result.error or f"I couldn't read {file.name}.", reason="unreadable")
    return deps.store.put(
        conversation_id,
        result.dataset,
        file_id=file.unique_id,
        filename=file.name,
        memory_bytes=result.memory_bytes,
    )
