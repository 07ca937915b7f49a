"""Structured logs: one JSON line per request Slack sends and one per answer the bot gives.

Only identifiers, timings, counts and outcomes are logged: never a token, a file's content or a message's
text.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

logger = logging.getLogger("variance.bot")

# Keys that may never appear in a log line, whatever a caller passes.
_FORBIDDEN = frozenset({"token", "text", "content", "authorization", "secret", "question", "answer"})


def log_line(kind: str, **fields: Any) -> None:
    """Emit one JSON log line; ``kind`` is "request" or "answer" (or "error")."""
    record = {"kind": kind, "ts": round(time.time(), 3)}
    record.update((key, value) for key, value in fields.items() if key not in _FORBIDDEN and value is not None)
    logger.info(json.dumps(record, ensure_ascii=False, default=str, separators=(",", ":")))


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


def configure_logging(level: int = logging.INFO) -> None:
    """Plain lines on stderr: the JSON records as they are, other libraries' messages with their level."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)
    logger.setLevel(level)
    logging.getLogger("slack_bolt").setLevel(logging.WARNING)
