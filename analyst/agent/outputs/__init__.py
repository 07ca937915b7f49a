"""The tools' outputs: pure computations from an :class:`~analyst.context.AnalysisContext` to the compact JSON
the model receives, with no Agents SDK in sight (the SDK wrappers are :mod:`analyst.agent.tools`).

- :mod:`~analyst.agent.outputs.budget`: the size budget (strings capped, tables shrunk) and error outputs;
- :mod:`~analyst.agent.outputs.scope`: which periods the figures compare (to date, as the headline);
- :mod:`~analyst.agent.outputs.views`: the read-only views (describe, summary, breakdown, drivers, ...);
- :mod:`~analyst.agent.outputs.overrides`: the conversation's column-role and account-type overrides.
"""

from analyst.agent.outputs.budget import (
    HEADLINE_RULE,
    MAX_OUTPUT_CHARS,
    MAX_ROWS,
    error_output,
    is_error_output,
)
from analyst.agent.outputs.overrides import set_roles, set_types
from analyst.agent.outputs.views import (
    breakdown_of,
    describe,
    detail_of,
    drivers_of,
    pvm_of,
    summary,
    trend_of,
)

__all__ = [
    "HEADLINE_RULE",
    "MAX_OUTPUT_CHARS",
    "MAX_ROWS",
    "breakdown_of",
    "describe",
    "detail_of",
    "drivers_of",
    "error_output",
    "is_error_output",
    "pvm_of",
    "set_roles",
    "set_types",
    "summary",
    "trend_of",
]
