"""One streamed analyst run as a typed event stream: :func:`start_run` → :class:`AnalystRun`.

``AnalystRun`` wraps ``Runner.run_streamed`` and translates the SDK's stream into :mod:`analyst.events`:

- ``TextDelta`` for each live text delta of the model (``ResponseTextDeltaEvent``; ``None`` deltas skipped);
- ``ToolStarted`` / ``ToolFinished`` from the ``tool_called`` / ``tool_output`` run items;
- exactly one terminal event: ``Done(final_output, usage)``, or ``Failed(kind, user_message, partial_text)``.

Nothing raises past the stream. The run never outlives its consumer: :meth:`AnalystRun.cancel` (from any
task), breaking out of ``async for``, closing the iterator, or cancelling the consuming task all call
``result.cancel()``, which cancels the SDK's run task and closes the model's HTTP stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from agents import Agent, RunConfig, Runner, RunResultStreaming
from agents.items import TResponseInputItem
from agents.memory import Session
from agents.stream_events import RawResponsesStreamEvent, RunItemStreamEvent
from openai.types.responses import ResponseTextDeltaEvent

from analyst.agent.analyst import build_agent, configure_tracing
from analyst.agent.errors import classify, user_message
from analyst.agent.outputs import is_error_output
from analyst.agent.session import SessionStore, SQLiteSessions
from analyst.agent.settings import AgentSettings
from analyst.agent.tool_names import tool_label
from analyst.context import AnalysisContext
from analyst.events import (
    AnalystEvent,
    Done,
    Failed,
    FailureKind,
    TextDelta,
    ToolFinished,
    ToolStarted,
    Usage,
)

logger = logging.getLogger("analyst.agent")

# How long closing a run may wait for the SDK's run task to wind down (it is already cancelled by then).
_CLOSE_GRACE_SECONDS = 2.0
# Closings of sessions whose run was cancelled while they opened (kept referenced until done).
_ABANDONED: set[asyncio.Future[None]] = set()


def start_run(
    question: str,
    context: AnalysisContext,
    *,
    conversation_id: str,
    settings: AgentSettings,
    speaker: str | None = None,
    source: str | None = None,
    sessions: SessionStore | None = None,
) -> AnalystRun:
    """Start answering ``question`` about ``context``'s dataset; iterate the result for events.

    The model call begins on the first iteration. The conversation's history (bounded to
    ``settings.history_items``) is kept in ``sessions`` (default: SQLite under ``settings.data_dir``), keyed
    by ``conversation_id``; an empty ``conversation_id`` asks a one-off question with no memory. ``speaker``
    (who asks) and ``source`` (the chat message asked in) label what this run stores, so it can be forgotten
    by person or by message.
    """
    return AnalystRun(
        question,
        context,
        conversation_id=conversation_id,
        settings=settings,
        speaker=speaker,
        source=source,
        sessions=sessions,
    )


class AnalystRun:
    """An async iterator of :data:`~analyst.events.AnalystEvent` ending with exactly one ``Done``/``Failed``.

    Iterate it once (``async for event in run``). ``cancel()`` is safe from any task and at any time; the
    stream then ends with ``Failed(kind=CANCELLED, partial_text=...)``. ``aclose()`` stops everything without
    a final event (for a consumer that is going away).
    """

    def __init__(
        self,
        question: str,
        context: AnalysisContext,
        *,
        conversation_id: str,
        settings: AgentSettings,
        agent: Agent[AnalysisContext] | None = None,
        speaker: str | None = None,
        source: str | None = None,
        sessions: SessionStore | None = None,
    ) -> None:
        self.question = question
        self.speaker = speaker
        self.source = source
        self.context = context
        self.conversation_id = conversation_id
        self.settings = settings
        self._agent = agent
        self._result: RunResultStreaming | None = None
        self._sessions = sessions if sessions is not None else SQLiteSessions(settings.session_db_path)
        self._session: Session | None = None
        self._cancelled = False
        self._finished = False
        self._text: list[str] = []
        self._events = self._generate()

    # ----------------------------------------------------------------- public surface
    @property
    def partial_text(self) -> str:
        """The text streamed so far (all turns)."""
        return "".join(self._text)

    @property
    def finished(self) -> bool:
        return self._finished

    def cancel(self) -> None:
        """Stop the run; the stream ends with ``Failed(CANCELLED)`` (no-op after the terminal event)."""
        if self._finished:
            return
        self._cancelled = True
        if self._result is not None:
            self._result.cancel()

    async def aclose(self) -> None:
        """Stop the run and release it, without producing a terminal event."""
        self._cancelled = True
        if self._result is not None and not self._finished:
            self._result.cancel()
        await self._events.aclose()

    def __aiter__(self) -> AsyncIterator[AnalystEvent]:
        # A fresh generator per `async for`: leaving the loop by `break` drops it at once, and its finaliser
        # closes this run, so the model call never goes on in the background.
        return self._guarded()

    async def __anext__(self) -> AnalystEvent:
        return await self._events.__anext__()

    def __del__(self) -> None:
        # Last line of defence for a consumer that neither finished, cancelled nor closed the run.
        result = getattr(self, "_result", None)
        if result is not None and not getattr(self, "_finished", True):
            with contextlib.suppress(Exception):
                result.cancel()

    # ----------------------------------------------------------------- the stream
    async def _guarded(self) -> AsyncGenerator[AnalystEvent, None]:
        try:
            async for event in self._events:
                yield event
        finally:
            if not self._finished:
                await self.aclose()

    async def _generate(self) -> AsyncGenerator[AnalystEvent, None]:
        started = time.monotonic()
        terminal: Done | Failed | None = None
        graceful = False
        try:
            missing = self.settings.missing_key_message()
            if missing is not None:
                terminal = self._failure(FailureKind.MISSING_KEY, missing)
            elif self._cancelled:
                terminal = self._failure(FailureKind.CANCELLED)
            else:
                try:
                    result = await self._start()
                except Exception as error:  # configuration problems: a bad data dir, an unusable client
                    terminal = self._failure_from(error, stage="start")
                else:
                    if self._cancelled:  # cancelled while the history was being opened: no model call
                        result.cancel()
                    try:
                        async with contextlib.aclosing(self._translate(result)) as events:
                            async for event in events:
                                yield event
                                if self._cancelled:
                                    break
                    except Exception as error:
                        terminal = self._failure_from(error, stage="stream")
                    else:
                        if self._cancelled:
                            terminal = self._failure(FailureKind.CANCELLED)
                        else:
                            graceful = True
                            terminal = Done(final_text=self._final_text(result), usage=_usage(result))
        finally:
            # Before the terminal event, so that when a front end sees Done the run is over and its
            # conversation history is saved; also on every early exit (break, aclose, task cancelled).
            await self._shutdown(graceful=graceful)
            logger.info(
                "analyst run ended: outcome=%s conversation=%s seconds=%.2f",
                _outcome(terminal),
                self.conversation_id,
                time.monotonic() - started,
            )
        if terminal is not None:
            self._finished = True
            yield terminal

    def _failure(self, kind: FailureKind, message: str | None = None) -> Failed:
        if self._cancelled and kind is not FailureKind.MISSING_KEY:
            kind, message = FailureKind.CANCELLED, None
        return Failed(kind=kind, user_message=message or user_message(kind), partial_text=self.partial_text)

    def _failure_from(self, error: Exception, *, stage: str) -> Failed:
        kind, message = classify(error)
        if not self._cancelled:
            logger.warning(
                "analyst run failed at %s: kind=%s error=%s conversation=%s",
                stage,
                kind.value,
                type(error).__name__,
                self.conversation_id,
            )
        return self._failure(kind, message)

    def _final_text(self, result: RunResultStreaming) -> str:
        final = result.final_output
        if isinstance(final, str):
            return final
        return self.partial_text if final is None else str(final)

    async def _start(self) -> RunResultStreaming:
        configure_tracing(self.settings)
        agent = self._agent if self._agent is not None else build_agent(self.settings)
        session = await self._open_session() if self.conversation_id else None
        self._session = session
        self._result = Runner.run_streamed(
            agent,
            self.question,
            context=self.context,
            max_turns=self.settings.max_turns,
            session=session,
            run_config=RunConfig(
                tracing_disabled=not self.settings.tracing,
                trace_include_sensitive_data=False,
                workflow_name="Variance Analyst",
                session_input_callback=_bounded_history if session is not None else None,
            ),
        )
        return self._result

    async def _open_session(self) -> Session:
        # Opening may wait on I/O (a file and its lock, a network store). A session opened after its run was
        # cancelled is closed, not leaked.
        opening = asyncio.ensure_future(
            self._sessions.open(
                self.conversation_id, speaker=self.speaker, source=self.source, limit=self.settings.history_items
            )
        )
        try:
            return await asyncio.shield(opening)
        except asyncio.CancelledError:
            opening.add_done_callback(self._close_abandoned)
            raise

    def _close_abandoned(self, opening: asyncio.Future[Session]) -> None:
        if opening.cancelled() or opening.exception() is not None:
            return
        closing = asyncio.ensure_future(self._sessions.close(opening.result(), keep=self.settings.history_items))
        _ABANDONED.add(closing)
        closing.add_done_callback(_ABANDONED.discard)

    async def _translate(self, result: RunResultStreaming) -> AsyncGenerator[AnalystEvent, None]:
        names: dict[str, str] = {}
        async for event in result.stream_events():
            if isinstance(event, RawResponsesStreamEvent):
                data = event.data
                if isinstance(data, ResponseTextDeltaEvent) and data.delta:
                    self._text.append(data.delta)
                    yield TextDelta(data.delta)
            elif isinstance(event, RunItemStreamEvent):
                if event.name == "tool_called":
                    raw = event.item.raw_item
                    name = str(_field(raw, "name") or "tool")
                    arguments = str(_field(raw, "arguments") or "")
                    call_id = str(_field(raw, "call_id") or "")
                    names[call_id] = name
                    yield ToolStarted(
                        name=name, arguments=arguments, label=tool_label(name, arguments), call_id=call_id
                    )
                elif event.name == "tool_output":
                    raw = event.item.raw_item
                    call_id = str(_field(raw, "call_id") or "")
                    output = getattr(event.item, "output", None)
                    yield ToolFinished(
                        name=names.get(call_id, "tool"), ok=not is_error_output(output), call_id=call_id
                    )

    async def _shutdown(self, *, graceful: bool) -> None:
        """Make sure nothing of this run keeps going.

        After a normal end, let the SDK's run task finish its bookkeeping (saving the session); otherwise, or
        if it lingers, cancel it; then wait for it to wind down, which closes the model's HTTP stream.
        """
        result = self._result
        if result is not None:
            task = result.run_loop_task
            if graceful and task is not None and not task.done():
                with contextlib.suppress(Exception):
                    await asyncio.wait({task}, timeout=_CLOSE_GRACE_SECONDS)
            if task is None or not task.done() or not graceful:
                with contextlib.suppress(Exception):
                    result.cancel()
            if task is not None and not task.done():
                with contextlib.suppress(Exception):
                    await asyncio.wait({task}, timeout=_CLOSE_GRACE_SECONDS)
        session, self._session = self._session, None
        if session is not None:
            # Shielded, so a cancellation here cannot leave the session open: the closing finishes on its own.
            closing = asyncio.ensure_future(self._sessions.close(session, keep=self.settings.history_items))
            with contextlib.suppress(Exception):
                await asyncio.shield(closing)


def _bounded_history(
    history: list[TResponseInputItem], new_input: list[TResponseInputItem]
) -> list[TResponseInputItem]:
    """Replay the stored history from its first user message on.

    The SDK already fetched only the newest ``history_items``; a window may begin in the middle of an exchange
    (a tool output without its call), which the model API rejects, so drop items until a user message.
    """
    start = next((i for i, item in enumerate(history) if _field(item, "role") == "user"), len(history))
    return [*history[start:], *new_input]


def _field(item: Any, name: str) -> Any:
    if isinstance(item, dict):
        return item.get(name)
    return getattr(item, name, None)


def _outcome(terminal: Done | Failed | None) -> str:
    if terminal is None:
        return "closed"
    return "done" if isinstance(terminal, Done) else terminal.kind.value


def _usage(result: RunResultStreaming) -> Usage:
    usage = result.context_wrapper.usage
    return Usage(input_tokens=usage.input_tokens, output_tokens=usage.output_tokens, requests=usage.requests)
