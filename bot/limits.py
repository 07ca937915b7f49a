"""Abuse limits on answers: how many run at once per user and per workspace, and how many questions a user asks
a minute. Shared by every surface (Slack, the web chat, Teams); a surface names its scope (a Slack team, a web
token or client, a Teams tenant) and its user.

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
