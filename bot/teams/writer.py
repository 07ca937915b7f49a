"""Analyst answers into Teams: streamed in 1:1 chats, one ordinary message in group chats, the report as a card.

A 1:1 answer rides on the SDK's :class:`HttpStream`: ``update()`` for tool status (an *informative* typing
activity, shown only before any text), the answer text as streaming chunks (each holds the whole text so far),
then ``close()``: one ``message`` with streamType ``final`` holding the whole answer. Chunks go out at most every
``interval_s`` (Microsoft advises 1.5–2 s); the per-conversation call limits and 429s are kept below the stream,
by :mod:`bot.teams.pacing`.

Every text shown passes through :func:`bot.textfilter.neutralise` here, in one place per path (``_shown``): the
model quotes labels from the user's file, and a label must never become an ``<at>`` mention, a tag or a link.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from analyst.events import AnalystEvent, Done, Failed, FailureKind, TextDelta, ToolStarted
from bot.textfilter import neutralise

log = logging.getLogger("variance.teams")

CARD_TYPE = "application/vnd.microsoft.card.adaptive"
EMPTY_ANSWER = "I have no answer to that. Try asking it another way."
# How long the final message of an answer may keep waiting for its conversation (pacing, 429s) before giving up.
FINAL_DEADLINE_S = 600.0


# Sends (text already shown, card attachments) as one ordinary message; True when Teams took it.
Fallback = Callable[[str, "list[dict[str, Any]] | None"], Awaitable[bool]]


def _shown(text: str) -> str:
    return neutralise(text)


def final_text(event: Done | Failed, streamed: str) -> str:
    """The whole answer to show last: the model's final output, or the text so far plus what went wrong."""
    if isinstance(event, Done):
        return event.final_text or streamed or EMPTY_ANSWER
    partial = event.partial_text or streamed
    note = "Stopped." if event.kind is FailureKind.CANCELLED else event.user_message
    return f"{partial.rstrip()}\n\n_{note}_" if partial.strip() else note


@dataclass(slots=True)
class StreamOutcome:
    delivered: bool
    chunks: int
    final: str


class StreamedAnswer:
    """One answer in a 1:1 chat, on its own ``HttpStream``."""

    def __init__(self, stream: Any, *, interval_s: float, fallback: Fallback | None = None) -> None:
        self._stream = stream
        self._fallback = fallback
        self.fell_back = False
        self._interval = interval_s
        self._text = ""
        self._shown_text = ""
        self._dirty = asyncio.Event()
        self.chunks = 0

    def status(self, label: str) -> None:
        """Tool status as an informative update (Teams shows these only before the answer's text)."""
        if not self._text:
            self._stream.update(_shown(label))

    def _emit_whole(self, text: str) -> None:
        shown = _shown(text)
        if shown == self._shown_text:
            return
        # The stream appends what it is given; the answer is re-sent whole so that the filter always sees the
        # whole text (a mention split across two deltas is still caught).
        self._stream.clear_text()
        self._stream.emit(shown)
        self._shown_text = shown
        self.chunks += 1

    async def _pump(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            self._emit_whole(self._text)
            await asyncio.sleep(self._interval)

    async def write(self, events: AsyncIterator[AnalystEvent]) -> StreamOutcome:
        """Stream ``events`` to the end; the answer ends with one final message on every path."""
        terminal: Done | Failed | None = None
        pump = asyncio.get_running_loop().create_task(self._pump())
        try:
            async for event in events:
                if isinstance(event, ToolStarted):
                    self.status(event.label)
                elif isinstance(event, TextDelta):
                    self._text += event.text
                    self._dirty.set()
                elif isinstance(event, Done | Failed):
                    terminal = event
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
        if terminal is None:
            terminal = Failed(FailureKind.INTERNAL, "The answer ended early. Please ask again.", self._text)
        return await self.finish(final_text(terminal, self._text))

    async def finish(self, text: str, attachments: list[dict[str, Any]] | None = None) -> StreamOutcome:
        """Send ``text`` (and cards) as the stream's final message, waiting out pacing; never raises."""
        if attachments:
            from microsoft_teams.api.activities.message.message import MessageActivityInput
            from microsoft_teams.api.models.attachment.attachment import Attachment

            self._stream.clear_text()
            message = MessageActivityInput(text=_shown(text))
            message.add_attachments(
                *(Attachment(content_type=a["contentType"], content=a["content"]) for a in attachments)
            )
            self._stream.emit(message)
            self._shown_text = _shown(text)
        else:
            self._emit_whole(text or EMPTY_ANSWER)
        deadline = time.monotonic() + FINAL_DEADLINE_S
        try:
            while True:
                result = await self._stream.close()
                if result is not None or self._stream.closed or self._stream.canceled:
                    break
                if self._stream.sequence == 1 and self._stream.count == 0:
                    # Nothing of the stream ever reached Teams (its first call failed for good): the answer goes
                    # out as one ordinary message instead.
                    if self._fallback is not None:
                        self.fell_back = await self._fallback(self._shown_text, attachments)
                    break
                if time.monotonic() > deadline:
                    log.warning("the final message of an answer could not be sent in time")
                    break
        except Exception as error:
            log.warning("the final message of an answer failed: %s", type(error).__name__)
        return StreamOutcome(
            delivered=bool(self._stream.closed) or self.fell_back, chunks=self.chunks, final=self._shown_text
        )


async def collect_answer(events: AsyncIterator[AnalystEvent]) -> str:
    """The whole answer of a run (group chats get one ordinary message, not a stream)."""
    streamed = ""
    terminal: Done | Failed | None = None
    async for event in events:
        if isinstance(event, TextDelta):
            streamed += event.text
        elif isinstance(event, Done | Failed):
            terminal = event
    if terminal is None:
        terminal = Failed(FailureKind.INTERNAL, "The answer ended early. Please ask again.", streamed)
    return final_text(terminal, streamed)


def shown_text(text: str) -> str:
    """What a plain (non-streamed) message shows for ``text``."""
    return _shown(text)


# ----------------------------------------------------------------------------------------------------
# The deterministic report as an Adaptive Card


def _money(value: Any, *, signed: bool = False) -> str:
    if not isinstance(value, int | float):
        return "n/a"
    return f"{value:+,.2f}" if signed else f"{value:,.2f}"


def _pct(value: Any) -> str:
    return f"{value:+.1f}%" if isinstance(value, int | float) else "n/a"


def _label(row: Mapping[str, Any], keys: list[str]) -> str:
    parts = [str(row[k]) for k in keys if row.get(k) is not None]
    return " / ".join(parts) if parts else "Total"


def report_card(report: Mapping[str, Any], filename: str) -> tuple[str, dict[str, Any]]:
    """(a one-line summary, an Adaptive Card) from ``Report.to_json_dict()``; every label is neutralised."""
    totals = report.get("totals") or {}
    columns = report.get("columns") or {}
    reference = str(columns.get("reference") or "Reference")
    actual_name = str(columns.get("actual") or "Actual")
    variance = totals.get("variance")
    summary = (
        f"{filename}: {actual_name} {_money(totals.get('actual'))} vs {reference} {_money(totals.get('reference'))}, "
        f"variance {_money(variance, signed=True)} ({_pct(totals.get('variance_pct'))})."
    )
    facts = [
        {"title": _shown(actual_name), "value": _money(totals.get("actual"))},
        {"title": _shown(reference), "value": _money(totals.get("reference"))},
        {"title": "Variance", "value": f"{_money(variance, signed=True)} ({_pct(totals.get('variance_pct'))})"},
    ]
    if isinstance(report.get("net_impact"), int | float):
        facts.append({"title": "Net impact on profit", "value": _money(report["net_impact"], signed=True)})
    for row in report.get("by_account_type") or []:
        kind = str(row.get("account_type", "")).replace("_", " ")
        facts.append(
            {
                "title": _shown(kind.capitalize() or "Other"),
                "value": f"{_money(row.get('variance'), signed=True)} ({_pct(row.get('variance_pct'))})",
            }
        )
    drivers = report.get("top_drivers") or {}
    keys = [str(k) for k in drivers.get("by") or []]
    body: list[dict[str, Any]] = [
        {
            "type": "TextBlock",
            "size": "Medium",
            "weight": "Bolder",
            "wrap": True,
            "text": _shown(f"Variance report: {filename}"),
        },
        {"type": "FactSet", "facts": facts},
    ]
    for title, rows in (
        ("Top unfavourable", drivers.get("unfavourable")),
        ("Top favourable", drivers.get("favourable")),
    ):
        if not rows:
            continue
        body.append({"type": "TextBlock", "weight": "Bolder", "text": title, "wrap": True, "spacing": "Medium"})
        body.append(
            {
                "type": "FactSet",
                "facts": [
                    {
                        "title": _shown(_label(row, keys)),
                        "value": f"{_money(row.get('variance'), signed=True)} ({_pct(row.get('variance_pct'))})",
                    }
                    for row in rows[:3]
                ],
            }
        )
    counts = report.get("counts") or {}
    excluded = counts.get("excluded_rows") or 0
    note = f"{counts.get('lines', 0)} lines, {counts.get('material', 0)} material."
    if excluded:
        note += f" {excluded} total or subtotal rows were left out."
    body.append({"type": "TextBlock", "isSubtle": True, "wrap": True, "text": note})
    body.append(
        {
            "type": "TextBlock",
            "isSubtle": True,
            "wrap": True,
            "text": 'Ask me a question about this file, e.g. "why is marketing over budget?"',
        }
    )
    card = {
        "type": "AdaptiveCard",
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "version": "1.5",
        "body": body,
    }
    return _shown(summary), {"contentType": CARD_TYPE, "content": card}
