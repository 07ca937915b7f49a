"""The deterministic budget-vs-actual report: ``variance-bot report FILE`` and the bot's no-question answer.

One :class:`Report` (:mod:`.model`, with its JSON contract) renders three ways: ``to_json_dict()`` (machines,
tests), ``to_text()`` (:mod:`.text`, a terminal) and ``to_markdown()`` (:mod:`.markdown`, one chat message).
:mod:`.cli` is the command line.
"""

from analyst.report.cli import cli_main
from analyst.report.model import Report, build_report

__all__ = ["Report", "build_report", "cli_main"]
