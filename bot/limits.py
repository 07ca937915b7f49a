"""Abuse limits on answers: how many run at once per user and per workspace, and how many questions a user asks
a minute; and the allowlists of workspaces, channels and users. Shared by every surface (Slack, the web chat,
Teams); a surface names its scope (a Slack team, a web token or client, a Teams tenant) and its user.

``admit()`` either returns a held :class:`Admission` (release it when the answer ends, on every path) or a refusal
that says how long to wait. A refused question costs no model call. The in-process implementation below is the
default; a shared (Redis) implementation offers the same two coroutines so callers do not know which they have.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal, Protocol

Reason = Literal["user_running", "user_rate", "workspace_running"]


@dataclass(frozen=True, slots=True)
class LimitSettings:
    """0 turns a limit off."""

    user_max_running: int = 2
    user_questions_per_min: int = 10
    workspace_max_running: int = 20


@dataclass(slots=True)
class Admission:
    """The outcome of :meth:`RunLimits.admit`: ``ok`` and a slot held, or a refusal with a wait."""

    ok: bool
    scope: str
    user: str
    reason: Reason | None = None
    retry_after_s: float = 0.0
    released: bool = field(default=False)
    # What a shared implementation needs to release this admission (empty for the in-process one).
    token: str = ""

    @property
    def message(self) -> str:
        """A short line for the person whose question was refused (empty when admitted)."""
        if self.ok:
            return ""
        wait = max(1, math.ceil(self.retry_after_s))
        when = f"in about {wait} s" if wait < 90 else f"in about {math.ceil(wait / 60)} min"
        if self.reason == "user_running":
            return f"You already have answers in progress. Please ask again when one finishes ({when})."
        if self.reason == "user_rate":
            return f"That's a lot of questions in a minute. Please ask again {when}."
        return f"I'm answering many questions in this workspace right now. Please ask again {when}."


class Limits(Protocol):
    async def admit(self, scope: str, user: str) -> Admission: ...

    async def release(self, admission: Admission) -> None: ...


class RunLimits:
    """In-process limits (one bot process). Callers hold no lock across awaits: each call is atomic on the loop."""

    # When an answer is running the wait is unknown; this is the hint given to the user.
    RUNNING_HINT_S = 30.0
    # Forget the question times of people who stopped asking once this many are remembered.
    SWEEP_AT = 10_000

    def __init__(self, settings: LimitSettings | None = None, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings or LimitSettings()
        self._clock = clock
        self._running_user: dict[tuple[str, str], int] = {}
        self._running_scope: dict[str, int] = {}
        self._asked: dict[tuple[str, str], deque[float]] = {}

    async def admit(self, scope: str, user: str) -> Admission:
        s = self.settings
        now = self._clock()
        key = (scope, user)
        if len(self._asked) >= self.SWEEP_AT:
            self._sweep(now)
        asked = self._asked.setdefault(key, deque())
        while asked and now - asked[0] >= 60.0:
            asked.popleft()
        if s.user_questions_per_min > 0 and len(asked) >= s.user_questions_per_min:
            return Admission(False, scope, user, "user_rate", 60.0 - (now - asked[0]))
        if s.user_max_running > 0 and self._running_user.get(key, 0) >= s.user_max_running:
            return Admission(False, scope, user, "user_running", self.RUNNING_HINT_S)
        if s.workspace_max_running > 0 and self._running_scope.get(scope, 0) >= s.workspace_max_running:
            return Admission(False, scope, user, "workspace_running", self.RUNNING_HINT_S)
        asked.append(now)
        self._running_user[key] = self._running_user.get(key, 0) + 1
        self._running_scope[scope] = self._running_scope.get(scope, 0) + 1
        return Admission(True, scope, user)

    async def release(self, admission: Admission) -> None:
        if not admission.ok or admission.released:
            return
        admission.released = True
        key = (admission.scope, admission.user)
        self._running_user[key] = max(0, self._running_user.get(key, 0) - 1)
        self._running_scope[admission.scope] = max(0, self._running_scope.get(admission.scope, 0) - 1)
        if not self._running_user[key]:
            del self._running_user[key]
        if not self._running_scope[admission.scope]:
            del self._running_scope[admission.scope]

    def running(self, scope: str) -> int:
        return self._running_scope.get(scope, 0)

    def _sweep(self, now: float) -> None:
        for key, asked in list(self._asked.items()):
            if not asked or now - asked[-1] >= 60.0:
                del self._asked[key]


# ----------------------------------------------------------------------------------------------------
# Allowlists

DM_KEYWORD = "dm"

NOT_THIS_WORKSPACE = (
    "Sorry, Variance Analyst isn't enabled for this workspace. Ask the person who runs it to add this workspace."
)
NOT_THIS_CHANNEL = (
    "Sorry, I'm not enabled in this channel. Ask the person who runs Variance Analyst to add it, or use a "
    "channel where I already answer."
)
NOT_DIRECT_MESSAGES = (
    "Sorry, I'm not enabled for direct messages here. Please ask in a channel where I answer."
)
NOT_THIS_USER = (
    "Sorry, I'm not enabled for you yet. Ask the person who runs Variance Analyst to add you."
)


@dataclass(frozen=True, slots=True)
class Allowlist:
    """Who may use the bot, where. An empty set allows everyone (no list set).

    ``channels`` may hold the word ``dm``: direct messages with the bot are then allowed as well; when
    ``channels`` is set without it, direct messages are refused (the list says where answers may go).
    """

    teams: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()
    users: frozenset[str] = frozenset()

    @property
    def open(self) -> bool:
        return not (self.teams or self.channels or self.users)

    def refusal(self, *, team: str, channel: str | None, user: str | None, is_dm: bool = False) -> str | None:
        """A polite line for the person when ``user`` may not ask in ``channel`` of ``team``; else None.

        ``channel=None`` skips the channel check (an action on a message, where only the person matters).
        """
        if self.teams and team not in self.teams:
            return NOT_THIS_WORKSPACE
        if self.users and (user or "") not in self.users:
            return NOT_THIS_USER
        if channel is not None and self.channels and channel not in self.channels:
            if not is_dm:
                return NOT_THIS_CHANNEL
            if DM_KEYWORD not in self.channels:
                return NOT_DIRECT_MESSAGES
        return None
