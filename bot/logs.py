"""Structured logs: every line on stderr is one JSON object, whoever logs it.

- The bot's own records (:func:`log_line`): one per request Slack sends and one per answer the bot gives, with
  identifiers, timings, counts and outcomes only; never a token, a file's content or a message's text.
- Everyone else's (Bolt, slack_sdk, aiohttp, the agent, asyncio): ``{"kind": "log", "level", "logger",
  "message"}``, the message capped and scrubbed of anything shaped like a token; an exception becomes
  ``exc_type`` and ``traceback`` fields: the frames (file, line, function), never the exception's message,
  which may quote a cell of a file.
- aiohttp's access log: ``{"kind": "access", "method", "path", "status", "ms", "bytes"}``.

Every string field is capped (:data:`FIELD_LIMIT`), so a request with a 1.5 MB field cannot make a 1.5 MB line.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import traceback
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

logger = logging.getLogger("variance.bot")

# Keys that may never appear in a log line, whatever a caller passes.
_FORBIDDEN = frozenset({"token", "text", "content", "authorization", "secret", "question", "answer"})
FIELD_LIMIT = 200  # characters per field of a log_line record
MESSAGE_LIMIT = 1000  # characters of another library's message
TRACEBACK_LIMIT = 4000  # characters of a traceback summary
# Shapes of credentials: Slack tokens, OpenAI-style keys, bearer headers, URL userinfo.
_TOKENS = re.compile(
    r"(xox[a-z]-[A-Za-z0-9-]+|xapp-[A-Za-z0-9-]+|sk-[A-Za-z0-9_-]{8,}|(?i:bearer)\s+\S+|(?<=://)[^/\s:@]+:[^/\s@]+@)"
)
_REDACTED = "[redacted]"
_secrets: set[str] = set()


def register_secrets(values: Iterable[str | None]) -> None:
    """Exact values (tokens, the signing secret, the model key) that are cut out of every log line."""
    _secrets.update(value for value in values if value and len(value) >= 6)


def scrub(text: str, limit: int) -> str:
    """``text`` without anything that looks like a credential, at most ``limit`` characters."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, _REDACTED)
    text = _TOKENS.sub(_REDACTED, text)
    if len(text) > limit:
        text = f"{text[:limit]}…(+{len(text) - limit} chars)"
    return text


def _capped(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value, FIELD_LIMIT)
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    return scrub(str(value), FIELD_LIMIT)


def log_line(kind: str, **fields: Any) -> None:
    """Emit one JSON log line; ``kind`` is "request", "answer", "privacy", "error", ..."""
    record: dict[str, Any] = {"kind": kind, "ts": round(time.time(), 3)}
    record.update(
        (key, _capped(value)) for key, value in fields.items() if key not in _FORBIDDEN and value is not None
    )
    logger.info(json.dumps(record, ensure_ascii=False, separators=(",", ":")))


@dataclass(slots=True)
class AnswerLog:
    """Collects one answer's facts as it goes, then logs them once (:meth:`emit`)."""

    entry: str  # mention, dm, command
    team: str | None
    channel: str | None
    event_id: str | None = None
    answer_id: str | None = None
    started: float = field(default_factory=time.monotonic)
    file_s: float | None = None  # download + read
    first_text_s: float | None = None
    total_s: float | None = None
    edits: int | None = None
    messages: int | None = None
    outcome: str = "unknown"  # answered, report, failed:<kind>, stopped, rejected:<reason>, ...
    rows: int | None = None
    file_bytes: int | None = None
    slack_error: str | None = None

    def elapsed(self) -> float:
        return round(time.monotonic() - self.started, 3)

    def emit(self) -> None:
        self.total_s = self.elapsed()
        log_line("answer", **asdict(self) | {"started": None})


def _traceback_summary(exc_info: Any) -> tuple[str, str]:
    """The exception's type and its frames, without its message (which may quote data)."""
    kind, error, tb = exc_info
    frames = traceback.extract_tb(tb)
    summary = " | ".join(f"{frame.filename.rsplit('/', 1)[-1]}:{frame.lineno} in {frame.name}" for frame in frames)
    name = getattr(kind, "__qualname__", str(kind))
    cause = error.__cause__ or error.__context__ if error is not None else None
    if cause is not None:
        summary += f" | caused by {type(cause).__qualname__}"
    return name, scrub(summary, TRACEBACK_LIMIT)


class JsonFormatter(logging.Formatter):
    """One JSON object per record; the bot's own records (already JSON, already capped) pass through."""

    def format(self, record: logging.LogRecord) -> str:
        try:
            message = record.getMessage()
        except Exception:  # a caller's bad format string must not lose the line
            message = str(record.msg)
        if record.name == logger.name and message.startswith("{") and record.exc_info is None:
            return message
        line: dict[str, Any] = {
            "kind": "log",
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": scrub(message, MESSAGE_LIMIT),
        }
        if record.exc_info and record.exc_info[0] is not None:
            line["exc_type"], line["traceback"] = _traceback_summary(record.exc_info)
        if record.stack_info:
            line["stack"] = scrub(record.stack_info, TRACEBACK_LIMIT)
        return json.dumps(line, ensure_ascii=False, separators=(",", ":"))


class JsonAccessLogger(AbstractAccessLogger):
    """aiohttp's access log as JSON lines: method, path (no query string), status, time, size."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        log_line(
            "access",
            method=request.method,
            path=request.path,
            status=response.status,
            ms=round(time * 1000, 1),
            bytes=response.body_length,
        )

    @property
    def enabled(self) -> bool:
        return True


def configure_logging(level: int = logging.INFO) -> None:
    """JSON lines on stderr for every logger: the bot's at ``level``, other libraries' warnings and errors."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logger.setLevel(level)
    logging.getLogger("slack_bolt").setLevel(logging.WARNING)
