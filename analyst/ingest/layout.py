"""From the table as read to the tidy frame: choose the shape, drop totals and headings, stack and pivot.

The steps, each in its own module: :mod:`~analyst.ingest.columns` (the table as read),
:mod:`~analyst.ingest.plan` (the shape and the column roles; :mod:`~analyst.ingest.period_column` finds the
period), :mod:`~analyst.ingest.exclusions` (totals, computed lines, headings) and :mod:`~analyst.ingest.tidy` (the
frame; :mod:`~analyst.ingest.stated_variance` checks the file's own variance columns). This module names them in
one place.

Shapes:
- ``wide``: one actual and one reference column (``Account, Budget, Actual``);
- ``long``: a Scenario/Type column whose values are Budget/Actual and one amount column;
- ``wide_by_period``: ``Jan Budget, Jan Actual, ...`` pairs, or ``Jan .. Dec`` columns with a Scenario column;
- ``metric_pairs``: ``Actual_Revenue, Budget_Revenue, Actual_COGS, ...``: the metric becomes the account.
Every step is columnar (stack with numpy, pivot with one groupby); nothing loops over rows.

Account types: a type column when the file has one (or the user names one). Otherwise, in a QuickBooks-style
report, the P&L section headings ("Income", "Cost of Goods Sold", "Expenses", "Other Income", "Доходы",
"Расходы", "Erträge", "Aufwendungen") are carried down to the account lines under them as the raw
``account_type`` text, and ``ColumnRoles.account_type`` is then :data:`SECTION_HEADINGS` (``"section
headings"``), which names no column. The headings stay excluded from the sums and listed as headings.
"""

from analyst.ingest.columns import Columns
from analyst.ingest.exclusions import MAX_LISTED_EXCLUSIONS, Exclusions, find_exclusions, section_types
from analyst.ingest.period_column import detect_period_column
from analyst.ingest.plan import METRIC, SECTION_HEADINGS, Plan, amount_columns, plan_layout
from analyst.ingest.tidy import BLANK_LABEL, build_frame

__all__ = [
    "BLANK_LABEL",
    "MAX_LISTED_EXCLUSIONS",
    "METRIC",
    "SECTION_HEADINGS",
    "Columns",
    "Exclusions",
    "Plan",
    "amount_columns",
    "build_frame",
    "detect_period_column",
    "find_exclusions",
    "plan_layout",
    "section_types",
]
