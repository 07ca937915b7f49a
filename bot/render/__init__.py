"""Rendering analyst answers into Slack: the shared update budget and the streaming answer writer.

- :class:`SlackBudget`: one :class:`UpdateScheduler` per ``(team_id, method)`` plus per-channel post pacing;
  create one per process and share it.
- :class:`AnswerWriter`: one answer, placeholder → throttled edits → overflow → final state.
- :mod:`bot.render.markdown`: clean split points for long Markdown.
"""

from bot.render.markdown import is_clean_cut, split_markdown, split_point
from bot.render.scheduler import (
    DEFAULT_LIMITS,
    BudgetLimit,
    Classified,
    DeliveryError,
    FailureClass,
    Priority,
    SlackBudget,
    Slot,
    SlotStats,
    UpdateScheduler,
    classify_slack_error,
)
from bot.render.writer import (
    METADATA_EVENT_TYPE,
    STOP_ACTION_ID,
    STOPPED_LINE,
    AnswerOutcome,
    AnswerWriter,
    WriterSettings,
)

__all__ = [
    "DEFAULT_LIMITS",
    "METADATA_EVENT_TYPE",
    "STOPPED_LINE",
    "STOP_ACTION_ID",
    "AnswerOutcome",
    "AnswerWriter",
    "BudgetLimit",
    "Classified",
    "DeliveryError",
    "FailureClass",
    "Priority",
    "SlackBudget",
    "Slot",
    "SlotStats",
    "UpdateScheduler",
    "WriterSettings",
    "classify_slack_error",
    "is_clean_cut",
    "split_markdown",
    "split_point",
]
