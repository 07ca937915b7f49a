"""Rendering analyst answers into Slack.

- :mod:`bot.render.delivery`: Slack's error vocabulary and the one door through which every text reaches
  Slack (text filter, exactly-once posts found again by their metadata marker, streams found by their text).
- :mod:`bot.render.windows`: how one (workspace, method) window is counted (:class:`RollingWindow`, in this
  process or shared through Redis) and the default limits.
- :mod:`bot.render.scheduler`: the priority queue that spends one window (:class:`UpdateScheduler`: finals
  first, first texts never starved, coalescing, 429 and retries); :mod:`bot.render.slots`: one live message's
  place in it (:class:`Slot`, :class:`Priority`).
- :mod:`bot.render.pacing`: :class:`SlackBudget`, one scheduler per ``(team_id, method)`` plus per-channel post
  pacing, native-stream admission and answers in parts; create one per process and share it.
- :mod:`bot.render.planner`: which budget carries an answer's next visible change (stream, edits, parts; a
  final by edit or by post + delete).
- :mod:`bot.render.modes`: the native stream behind the live-mode interface.
- :mod:`bot.render.messages`, :mod:`bot.render.parts`, :mod:`bot.render.finals`, :mod:`bot.render.going_live`,
  :mod:`bot.render.writer`: the answer writer in layers: rendering and calls; overflow and parts; the final
  state; the first message and a placeholder's first text; the state machine (:class:`AnswerWriter`).
- :mod:`bot.render.acknowledge`: the :eyes: reaction on a question while its answer runs.
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
