"""Saying so when a conversation's overrides shape an answer or a report, and how to clear them.

An override (the agent's ``set_account_type`` or ``set_column_roles``) belongs to the conversation that made it
(:class:`~analyst.context.AnalysisContext`); every answer and report it affects ends with one line naming it:
"With your overrides: Advertising counted as revenue. `/variance reset` clears them."
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any, Literal

from analyst.context import AnalysisContext
from analyst.events import AnalystEvent, Done, TextDelta
from bot.runs import WrappedRun

Entry = Literal["mention", "dm", "command"]

RESET_WORDS = frozenset({"reset", "reset overrides", "clear overrides", "reset the overrides"})

_HINTS = {
    "command": "`/variance reset` clears them.",
    "dm": "`/variance reset` (or “reset”) clears them.",
    "mention": "Mention me with “reset” in this thread to clear them.",
}


def is_reset(question: str) -> bool:
    """Whether a message asks to clear the conversation's overrides (answered without a model call)."""
    return question.strip().strip(".!").casefold() in RESET_WORDS


def overrides_note(context: AnalysisContext, entry: Entry) -> str | None:
    """The line that says which overrides shaped the numbers, or None when there are none."""
    notes = context.override_notes()
    if not notes:
        return None
    return f"_With your overrides: {'; '.join(notes)}._ {_HINTS[entry]}"


def reset_message(dropped: list[str] | None) -> str:
    """What ``/variance reset`` (or "reset") says it did."""
    if dropped is None:
        return "There is nothing to reset here: I don't have a file for this conversation."
    if not dropped:
        return "There were no overrides to clear; the numbers are as detected from the file."
    return f"Cleared your overrides ({'; '.join(dropped)}). The numbers are as detected from the file again."


def with_note(markdown: str, context: AnalysisContext, entry: Entry) -> str:
    """``markdown`` (a report) followed by the overrides line, when there is one."""
    note = overrides_note(context, entry)
    return markdown if note is None else f"{markdown.rstrip()}\n\n{note}\n"


class NotedRun(WrappedRun):
    """An analyst run whose final text ends with the overrides line (as they stand when the run ends: an
    override the run itself made counts)."""

    def __init__(self, run: Any, context: AnalysisContext, entry: Entry) -> None:
        super().__init__(run)
        self._context = context
        self._entry = entry

    async def _events(self) -> AsyncIterator[AnalystEvent]:
        async for event in self._run:
            if isinstance(event, Done) and event.final_text.strip():
                note = overrides_note(self._context, self._entry)
                if note is not None:
                    yield TextDelta(f"\n\n{note}")
                    event = replace(event, final_text=f"{event.final_text.rstrip()}\n\n{note}")
            yield event
