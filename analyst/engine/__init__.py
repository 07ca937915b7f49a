"""The variance engine: exact, vectorised budget-vs-actual analysis over a :class:`~analyst.dataset.Dataset`.

Every function takes a dataset (and :class:`AnalysisOptions`) and returns a small frozen result with
``to_dict(max_rows=None)``. Amounts are summed in integer minor units, so every breakdown reconciles
exactly to the grand total and the row order never matters. Bad requests raise :class:`AnalysisError`.
"""

from analyst.engine.accounts import classify_accounts
from analyst.engine.errors import AnalysisError
from analyst.engine.headline import Headline, HeadlinePart, headline, headline_sentence, headlines_by
from analyst.engine.options import AccountType, AnalysisOptions, Materiality, MaterialityMode
from analyst.engine.periods import PeriodView, period_view
from analyst.engine.pvm import PVMResult, price_volume_mix
from analyst.engine.variance import (
    Breakdown,
    Drivers,
    LineDetail,
    VarianceSummary,
    breakdown,
    line_detail,
    summarize,
    top_drivers,
)

__all__ = [
    "AccountType",
    "AnalysisError",
    "AnalysisOptions",
    "Breakdown",
    "Drivers",
    "Headline",
    "HeadlinePart",
    "LineDetail",
    "Materiality",
    "MaterialityMode",
    "PVMResult",
    "PeriodView",
    "VarianceSummary",
    "breakdown",
    "classify_accounts",
    "headline",
    "headline_sentence",
    "headlines_by",
    "line_detail",
    "period_view",
    "price_volume_mix",
    "summarize",
    "top_drivers",
]
