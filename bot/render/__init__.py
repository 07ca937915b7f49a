"""Rendering analyst answers into Slack.

- :mod:`bot.render.delivery`: Slack's error vocabulary and the one door through which every text reaches
  Slack (text filter, exactly-once posts found again by their metadata marker).
- :mod:`bot.render.pacing`: the budgets. :class:`SlackBudget` holds one :class:`UpdateScheduler` per
  ``(team_id, method)`` (its window counted by a :class:`RollingWindow`, in-process today) plus per-channel
  post pacing and native-stream admission; create one per process and share it.
- :mod:`bot.render.modes`: how live text travels (edits, or a native stream).
- :class:`AnswerWriter` (:mod:`bot.render.writer`): one answer's state machine, from the first text through
  overflow to the final state.
- :mod:`bot.render.markdown`: clean split points for long Markdown.
"""

from bot.render.acknowledge import WORKING_REACTION, Reaction
from bot.render.delivery import (
    METADATA_EVENT_TYPE,
    Classified,
    DeliveryError,
    FailureClass,
    classify_slack_error,
)
from bot.render.markdown import is_clean_cut, split_markdown, split_point
from bot.render.pacing import (
    DEFAULT_LIMITS,
    BudgetLimit,
    InProcessWindow,
    Priority,
    RollingWindow,
    SlackBudget,
    Slot,
    SlotStats,
    UpdateScheduler,
)
from bot.render.writer import (
    FEEDBACK_ACTION_ID,
    STOP_ACTION_ID,
    STOPPED_LINE,
    AnswerOutcome,
    AnswerWriter,
    WriterSettings,
)

__all__ = [
    "DEFAULT_LIMITS",
    "FEEDBACK_ACTION_ID",
    "METADATA_EVENT_TYPE",
    "STOPPED_LINE",
    "STOP_ACTION_ID",
    "WORKING_REACTION",
    "AnswerOutcome",
    "AnswerWriter",
    "BudgetLimit",
    "Classified",
    "DeliveryError",
    "FailureClass",
    "InProcessWindow",
    "Priority",
    "Reaction",
    "RollingWindow",
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
