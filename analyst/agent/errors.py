"""Turn whatever ended a run badly into one :class:`~analyst.events.Failed` a finance person understands.

The messages never carry a stack trace, a key, or file contents; the exception type is logged for operators.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import openai
from agents import MaxTurnsExceeded, ModelBehaviorError, UserError
from agents.exceptions import ModelTimeoutError, ToolTimeoutError

from analyst.events import FailureKind

_MESSAGES: dict[FailureKind, str] = {
    FailureKind.CANCELLED: "Stopped.",
    FailureKind.RATE_LIMITED: "The AI service is rate-limiting us right now. Please try again in a minute.",
    FailureKind.SERVER_ERROR: "The AI service had a temporary error. Please try again in a moment.",
    FailureKind.CONNECTION: "Could not reach the AI service (network error). Please try again in a moment.",
    FailureKind.TIMEOUT: (
        "The AI service took too long to answer. Please try again, or ask a narrower question."
    ),
    FailureKind.MAX_TURNS: (
        "The question needed more analysis steps than allowed. Try a narrower question "
        "(one department, one period)."
    ),
    FailureKind.TOOL_ERROR: "A calculation failed while answering. Please rephrase or narrow the question.",
    FailureKind.BAD_OUTPUT: "The AI service sent an incomplete or malformed answer. Please try again.",
    FailureKind.MISSING_KEY: (
        "No OpenAI API key is configured (set OPENAI_API_KEY). The deterministic report works without one."
    ),
    FailureKind.AUTH: "The AI service rejected our credentials. An admin needs to check OPENAI_API_KEY.",
    FailureKind.INTERNAL: "Something went wrong while answering. Please try again.",
}


def user_message(kind: FailureKind) -> str:
    return _MESSAGES[kind]


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def classify(error: BaseException) -> tuple[FailureKind, str]:
    """The failure kind and the user's message for an exception raised out of a run."""
    for candidate in _chain(error):
        kind = _classify_one(candidate)
        if kind is not None:
            if kind is FailureKind.INTERNAL and isinstance(candidate, openai.NotFoundError):
                return kind, (
                    "The AI service does not know the configured model. "
                    "An admin needs to check VARIANCE_MODEL."
                )
            return kind, user_message(kind)
    return FailureKind.INTERNAL, user_message(FailureKind.INTERNAL)


def _classify_one(error: BaseException) -> FailureKind | None:
    # Order matters: APITimeoutError is an APIConnectionError; RateLimitError is an APIStatusError.
    if isinstance(error, MaxTurnsExceeded):
        return FailureKind.MAX_TURNS
    if isinstance(error, ModelTimeoutError | openai.APITimeoutError | asyncio.TimeoutError | TimeoutError):
        return FailureKind.TIMEOUT
    if isinstance(error, ToolTimeoutError):
        return FailureKind.TOOL_ERROR
    if isinstance(error, openai.APIConnectionError):
        return FailureKind.CONNECTION
    if isinstance(error, openai.RateLimitError):
        return FailureKind.RATE_LIMITED
    if isinstance(error, openai.AuthenticationError | openai.PermissionDeniedError):
        return FailureKind.AUTH
    if isinstance(error, openai.NotFoundError):
        return FailureKind.INTERNAL
    if isinstance(error, openai.InternalServerError):
        return FailureKind.SERVER_ERROR
    if isinstance(error, openai.APIStatusError):
        return FailureKind.SERVER_ERROR if error.status_code >= 500 else FailureKind.BAD_OUTPUT
    if isinstance(error, ModelBehaviorError | openai.APIResponseValidationError):
        return FailureKind.BAD_OUTPUT
    if isinstance(error, openai.APIError):
        # An error object inside an SSE stream (Chat Completions servers send one mid-stream).
        return FailureKind.BAD_OUTPUT
    if isinstance(error, UserError) and "tool" in str(error).lower():
        return FailureKind.TOOL_ERROR
    return None
