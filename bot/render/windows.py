"""How one (workspace, method) budget's window is counted: :class:`RollingWindow` and the default limits.

Slack counts each method separately, per app and workspace (:data:`DEFAULT_LIMITS`, a little under Slack's
tiers). The scheduler (:mod:`bot.render.scheduler`) asks its window what was spent; the window is in this
process (:class:`InProcessWindow`) or shared by every instance through Redis (``bot.state.window``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class BudgetLimit:
    limit: int
    window: float


class RollingWindow(Protocol):
    """The calls one (workspace, method) budget made in the last ``window`` seconds, in flight ones included.

    The seam for sharing a budget between bot processes: :class:`InProcessWindow` counts in this process; a
    Redis implementation (a sorted set per workspace x method: one atomic script prunes, counts and adds in
    :meth:`acquire`; :meth:`complete` re-scores the member) replaces it by passing its class as
    :attr:`SlackBudget.window_factory`. Schedulers ask :meth:`usage` to choose what to send, claim a unit with
    :meth:`acquire` (atomic: two processes cannot both take the last one) and :meth:`complete` it when the call
    returns, so a call counts from when Slack had it and our window never looks emptier than Slack's.
    """

    async def usage(self, now: float) -> tuple[int, float]:
        """(calls counted now, when the oldest of them leaves the window; ``inf`` when none)."""
        ...

    async def acquire(self, now: float, limit: float, *, reserved: bool = False) -> object | None:
        """Count one call starting now if fewer than ``limit`` are counted; its token, or None.

        ``reserved``: the call spends a unit its process holds (a final or a first text); a window shared by
        instances then does not hold it back for the other instances' demand (that demand is theirs alike)."""
        ...

    async def complete(self, token: object, now: float) -> None:
        """The call ``token`` returned at ``now``: it counts from then."""
        ...


class InProcessWindow:
    """:class:`RollingWindow` in this process's memory."""

    def __init__(self, team_id: str, method: str, limit: BudgetLimit) -> None:
        self.key = (team_id, method)
        self.window = limit.window
        self._stamps: dict[int, float] = {}  # token -> when the call counts from
        self._tokens = itertools.count()

    def _prune(self, now: float) -> None:
        for token in [t for t, at in self._stamps.items() if at <= now - self.window]:
            del self._stamps[token]

    async def usage(self, now: float) -> tuple[int, float]:
        self._prune(now)
        oldest = min(self._stamps.values(), default=math.inf)
        return len(self._stamps), oldest + self.window

    async def acquire(self, now: float, limit: float, *, reserved: bool = False) -> object | None:
        self._prune(now)
        if len(self._stamps) >= limit:
            return None
        token = next(self._tokens)
        self._stamps[token] = now
        return token

    async def complete(self, token: object, now: float) -> None:
        if isinstance(token, int) and token in self._stamps:
            self._stamps[token] = max(self._stamps[token], now)


# What a placeholder will cost the edit window: its first text and its final.
PLACEHOLDER_UNITS = 2

WindowFactory = Callable[[str, str, BudgetLimit], RollingWindow]


DEFAULT_LIMITS: dict[str, BudgetLimit] = {
    "chat.update": BudgetLimit(45, 60.0),  # Tier 3
    "chat.delete": BudgetLimit(45, 60.0),  # Tier 3
    "chat.startStream": BudgetLimit(18, 60.0),  # Tier 2
    "chat.stopStream": BudgetLimit(18, 60.0),  # Tier 2
    "chat.appendStream": BudgetLimit(90, 60.0),  # Tier 4
    "assistant.threads.setStatus": BudgetLimit(45, 60.0),
    "reactions.add": BudgetLimit(45, 60.0),  # Tier 3
    "reactions.remove": BudgetLimit(45, 60.0),  # Tier 3
}
