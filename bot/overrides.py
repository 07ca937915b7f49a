"""Saying so when a conversation's overrides shape an answer or a report, and how to clear them.

An override (the agent's ``set_account_type`` or ``set_column_roles``) belongs to the conversation that made it
(:class:`~analyst.context.AnalysisContext`); every answer and report it affects ends with one line naming it:
"With your overrides: Advertising counted as revenue. `/variance reset` clears them."

With several instances (``REDIS_URL``) a conversation's overrides are shared (:mod:`bot.state.overrides`): an
answer pulls them onto its context before it starts (:meth:`SharedOverrides.pull`), pushes them when its run ends
(:class:`NotedRun`), and a reset (:func:`reset_overrides`) clears them for every instance. They travel as a small
record (:func:`overrides_record`): the column roles and account types the user set, never any data.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import fields, replace
from typing import Any, Literal, Protocol

from analyst.context import AnalysisContext, describe_overrides
from analyst.dataset import RoleOverrides
from analyst.engine.options import AccountType, Materiality, MaterialityMode
from analyst.events import AnalystEvent, Done, Failed, TextDelta
from bot.conversations import StoredDataset
from bot.runs import WrappedRun

log = logging.getLogger("variance.bot")

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
    override the run itself made counts). ``on_end`` (sharing the overrides) is awaited before the terminal
    event, so a follow-up asked once the answer is final finds them."""

    def __init__(
        self,
        run: Any,
        context: AnalysisContext,
        entry: Entry,
        *,
        on_end: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        super().__init__(run)
        self._context = context
        self._entry = entry
        self._on_end = on_end

    async def _events(self) -> AsyncIterator[AnalystEvent]:
        async for event in self._run:
            if isinstance(event, Done | Failed) and self._on_end is not None:
                await self._on_end()
            if isinstance(event, Done) and event.final_text.strip():
                note = overrides_note(self._context, self._entry)
                if note is not None:
                    yield TextDelta(f"\n\n{note}")
                    event = replace(event, final_text=f"{event.final_text.rstrip()}\n\n{note}")
            yield event


# ----------------------------------------------------------------- sharing overrides between instances
Record = dict[str, Any]


def overrides_record(context: AnalysisContext) -> Record:
    """The conversation's overrides as plain data: column roles the user set, account types that differ from
    the file's, materiality if changed. ``{}`` when there are none."""
    record: Record = {}
    if context.dataset is not context.base_dataset:
        roles = context.dataset.roles
        chosen = {
            f.name: getattr(roles, f.name) for f in fields(RoleOverrides) if f.name in roles.overridden
        }
        if "dimensions" in chosen:
            chosen["dimensions"] = list(chosen["dimensions"])
        if chosen:
            record["roles"] = chosen
    base_types = context.base_options.account_types
    types = {k: v.value for k, v in context.options.account_types.items() if base_types.get(k) != v}
    if types:
        record["types"] = types
    if context.options.materiality != context.base_options.materiality:
        m = context.options.materiality
        record["materiality"] = [m.amount, m.percent, m.mode.value, m.auto_amount]
    return record


def apply_record(context: AnalysisContext, record: Record) -> None:
    """Make ``context``'s overrides exactly ``record``'s (from another instance): reset, then set each one."""
    context.reset()
    roles = record.get("roles") or {}
    if roles:
        if "dimensions" in roles:
            roles = {**roles, "dimensions": tuple(roles["dimensions"] or ())}
        context.override_roles(RoleOverrides(**roles))
    types = record.get("types") or {}
    if types:
        context.options = context.options.with_account_types({k: AccountType(v) for k, v in types.items()})
    materiality = record.get("materiality")
    if materiality:
        amount, percent, mode, auto = materiality
        chosen = Materiality(float(amount), float(percent), MaterialityMode(mode), bool(auto))
        context.options = replace(context.options, materiality=chosen)


class SharedOverrides(Protocol):
    """Overrides shared by instances (``bot.state.overrides.RedisOverrides``), or not (:class:`LocalOverrides`).
    A record belongs to the conversation *and* the file it was made on: a new file starts without overrides."""

    async def pull(self, conversation_id: str, stored: StoredDataset) -> None: ...

    async def push(self, conversation_id: str, stored: StoredDataset) -> None: ...

    async def forget(self, place: str, user: str | None) -> None: ...

    async def drop_files(self, file_ids: set[str]) -> None: ...

    async def clear(self, conversation_id: str) -> Record | None:
        """Record "no overrides" for the conversation's file for every instance; the overrides it had (``{}``:
        none), or None when no instance recorded a file for it."""
        ...


class LocalOverrides:
    """One instance: the context in this process's ``ConversationStore`` is the only copy."""

    async def pull(self, conversation_id: str, stored: StoredDataset) -> None:
        return None

    async def push(self, conversation_id: str, stored: StoredDataset) -> None:
        return None

    async def forget(self, place: str, user: str | None) -> None:
        return None

    async def drop_files(self, file_ids: set[str]) -> None:
        return None

    async def clear(self, conversation_id: str) -> Record | None:
        return None


def record_notes(record: Record) -> list[str]:
    """The notes naming the overrides in a shared record (as :meth:`AnalysisContext.override_notes` would)."""
    types: dict[str, AccountType] = {}
    for label, value in (record.get("types") or {}).items():
        try:
            types[str(label)] = AccountType(value)
        except ValueError:
            continue
    return describe_overrides(record.get("roles") or {}, types, bool(record.get("materiality")))


async def reset_overrides(deps: Any, conversation_id: str) -> list[str] | None:
    """``/variance reset`` (or "reset"): drop the conversation's overrides here and for every instance; the
    notes of what was dropped, or None when no instance has a dataset for the conversation. An instance without
    its own copy of the file clears the shared record all the same."""
    stored = deps.store.get(conversation_id)
    if stored is None:
        cleared = await deps.overrides.clear(conversation_id)
        if cleared is not None:
            return record_notes(cleared)
        # A file read on another instance, where no override was ever recorded: nothing to clear.
        return None if await deps.sources.file_for(conversation_id) is None else []
    await deps.overrides.pull(conversation_id, stored)
    dropped = deps.store.reset_overrides(conversation_id)
    await deps.overrides.push(conversation_id, stored)
    return dropped
