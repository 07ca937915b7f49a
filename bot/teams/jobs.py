"""Worker-process jobs for the Teams side (pandas work stays off the event loop)."""

from __future__ import annotations

from typing import Any

from analyst.dataset import Dataset
from analyst.engine.options import AnalysisOptions

CARD_ROWS = 5


def report_summary(dataset: Dataset, options: AnalysisOptions | None = None) -> dict[str, Any]:
    """The deterministic report as JSON-able data, lists capped, for the report card."""
    from analyst.report import build_report

    report = build_report(dataset, opts=options if options is not None else AnalysisOptions())
    return report.to_json_dict(max_rows=CARD_ROWS)
