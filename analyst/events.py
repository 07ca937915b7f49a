"""The typed events of one analyst run: what every front end (Slack, a web page, Teams) consumes.

A run yields any number of :class:`TextDelta`, :class:`ToolStarted` and :class:`ToolFinished`, and then exactly one
terminal event: :class:`Done` or :class:`Failed`. Nothing is raised past the stream. Cancellation ends the stream
with ``Failed(kind=FailureKind.CANCELLED, ...)`` carrying the text produced so far.

This module imports nothing heavy so that a front end can use the types without loading the agent SDK.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ToolStarted:
    name: str
    arguments: str
    label: str  # for people: "Computing variance by department…"
    call_id: str = ""


@dataclass(frozen=True, slots=True)
class ToolFinished:
    name: str
    ok: bool
    call_id: str = ""


@dataclass(frozen=True, slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    requests: int = 0


@dataclass(frozen=True, slots=True)
class Done:
    final_text: str  # the model's final output: what a front end shows last, even if the deltas differed
    usage: Usage = field(default_factory=Usage)


class FailureKind(StrEnum):
    CANCELLED = "cancelled"
    RATE_LIMITED = "rate_limited"
    SERVER_ERROR = "server_error"
    CONNECTION = "connection"
    TIMEOUT = "timeout"
    MAX_TURNS = "max_turns"
    TOOL_ERROR = "tool_error"
    BAD_OUTPUT = "bad_output"
    MISSING_KEY = "missing_key"
    AUTH = "auth"
    INTERNAL = "internal"


@dataclass(frozen=True, slots=True)
class Failed:
    kind: FailureKind
    user_message: str  # one sentence a finance person understands; no stack trace, no secrets
    partial_text: str = ""


AnalystEvent = TextDelta | ToolStarted | ToolFinished | Done | Failed
TerminalEvent = Done | Failed


def is_terminal(event: AnalystEvent) -> bool:
    return isinstance(event, Done | Failed)
