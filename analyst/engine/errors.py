"""The one error type of the engine: a bad request, explained in a sentence that names the valid choices."""

from __future__ import annotations


class AnalysisError(ValueError):
    """A request the engine cannot answer: an unknown column, a filter matching nothing, PVM without units.

    ``str(error)`` is short and names the valid choices, so the agent (or a user) can correct the request.
    """
