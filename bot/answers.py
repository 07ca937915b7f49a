"""One answer, from a Slack request to its final message: find the dataset, read it, run the analyst, stream.

Listeners (``bot/listeners``) turn an event into an :class:`AnswerRequest` and hand it to :func:`answer`,
which runs as its own task (:meth:`BotDeps.spawn`) so the event is acknowledged at once. Every path ends with
the message in a final state: the answer, the deterministic report, or the text so far plus a clear line
saying what went wrong (the file, the model, Slack) or that it was stopped.

:class:`~bot.deps.BotDeps` (in :mod:`bot.deps`) holds what the listeners share. The request and how its writer
delivers it are in :mod:`bot.requests`; Stop and hand-over in :mod:`bot.answer_control`; reading the dataset in
:mod:`bot.datasets`; short notices outside an answer in :mod:`bot.notices`.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Literal

from analyst.context import AnalysisContext
from analyst.events import AnalystEvent, Failed, FailureKind
from bot import uploads
from bot.answer_control import HANDED_OVER, AnswerControl, Stopped, unless_stopped
from bot.datasets import load_file, report_markdown
from bot.deps import SHUTDOWN, BotDeps
from bot.files import FileRejected
from bot.logs import AnswerLog
from bot.metrics import MeteredRun
from bot.overrides import NotedRun, with_note
from bot.render import AnswerOutcome, AnswerWriter, DeliveryError, Reaction
from bot.requests import AnswerRequest, answer_record, writer_settings

if TYPE_CHECKING:
    from analyst.agent import AnalystRun

log = logging.getLogger("variance.bot")

NO_DATASET = (
    "I don't have a file to analyse here yet. Upload a budget-vs-actual CSV or XLSX (an export from your "
    "ERP or spreadsheet) and ask again, or send the file alone for a quick report."
)
STOPPED = "Stopped."
INTERNAL_ERROR = "Something went wrong on my side and I stopped. Please try again."
UNDELIVERED = "Slack was not responding, so I couldn't answer this. Please ask again."


async def _events(*events: AnalystEvent) -> AsyncIterator[AnalystEvent]:
    for event in events:
        yield event


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
            stored = await unless_stopped(control, work)
            writer.show_status(None)  # read: the live message no longer says "Reading <file>…"
        if stored is None:
            raise FileRejected(NO_DATASET, reason="no_dataset")
        await deps.overrides.pull(request.conversation_id, stored)  # made on another instance
        if request.wants_report:
            async with uploads.ReportChart(deps, request, stored) as chart:  # a file dropped alone in a DM
                waiting = _waiting_status(writer, "", None)
                markdown = await unless_stopped(control, report_markdown(deps, stored, on_wait=waiting))
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
    except Stopped:
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
