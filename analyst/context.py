"""What one conversation is analysing: its dataset and the options the user set for it.

Front ends keep one ``AnalysisContext`` per conversation and hand it to each run; the agent's tools read it and
may change it (a role override, an account-type override), so the change holds for the rest of the conversation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from analyst.charts.outbox import ChartOutbox
from analyst.dataset import Dataset, RoleOverrides
from analyst.engine.options import AnalysisOptions


@dataclass(slots=True)
class AnalysisContext:
    dataset: Dataset
    options: AnalysisOptions = field(default_factory=AnalysisOptions)
    # Charts the agent's make_chart tool drew, until the surface uploads them (see analyst.charts.outbox).
    charts: ChartOutbox = field(default_factory=ChartOutbox, repr=False, compare=False)

    def override_roles(self, overrides: RoleOverrides) -> None:
        from analyst.ingest import apply_overrides

        self.dataset = apply_overrides(self.dataset, overrides)
