"""The size budget of a tool output: compact JSON, every string capped, tables shrunk until the whole fits.

An output's size does not grow with the file: tables are capped at ``MAX_ROWS`` rows plus one "N more" row that
keeps the totals reconciling, and every output is held under ``MAX_OUTPUT_CHARS`` (about 2,500 tokens).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

# What the model is told about the headline, in every output that carries totals.
HEADLINE_RULE = (
    "Lead with 'headline': for a file mixing revenue and costs it is the effect on profit (revenue variance minus "
    "cost variance), then revenue and costs separately; 'totals' is the straight sum of every line and is not the "
    "variance of such a file."
)

MAX_ROWS = 20
MAX_OUTPUT_CHARS = 9_000  # ≈ 2,250 tokens at 4 characters a token
_SHRINK_STEPS = (MAX_ROWS, 10, 5, 2)
_TEXT_CAP = 60  # characters of any one label shown to the model
_STRING_CAP = 200  # characters of any one string in a tool output (a 57 KB header cell stays 200 characters)
# The tools' own fixed guidance is not file text: it is never cut.
_OWN_TEXT = frozenset({HEADLINE_RULE})


def dump(data: Mapping[str, Any]) -> str:
    """Compact JSON, as the model receives it."""
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), default=str)


def capped(value: Any) -> Any:
    """``value`` with every string (keys included) cut to ``_STRING_CAP`` characters: file text stays bounded data."""
    if isinstance(value, str):
        return value if len(value) <= _STRING_CAP or value in _OWN_TEXT else value[: _STRING_CAP - 1] + "…"
    if isinstance(value, Mapping):
        return {capped(k) if isinstance(k, str) else k: capped(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [capped(v) for v in value]
    return value


def bounded(render: Callable[[int], Mapping[str, Any]]) -> str:
    """Render with fewer rows until the JSON fits the output budget (every string capped first)."""
    text = ""
    for rows in _SHRINK_STEPS:
        text = dump(capped(render(rows)))
        if len(text) <= MAX_OUTPUT_CHARS:
            return text
    return dump({"error": "The result is too large to show; add filters or break down by fewer columns."})


def short(value: object) -> str:
    """A label as shown to the model: at most ``_TEXT_CAP`` characters."""
    text = str(value)
    return text if len(text) <= _TEXT_CAP else text[: _TEXT_CAP - 1] + "…"


def error_output(message: str) -> str:
    """A tool output reporting an error: a short message the model can act on."""
    return dump({"error": message})


def is_error_output(output: object) -> bool:
    """Whether a tool's output reports an error (ours: ``{"error": ...}``; the SDK's: a failure sentence)."""
    if isinstance(output, str):
        text = output.lstrip()
        if text.startswith('{"error"'):
            return True
        return text.startswith("An error occurred while running the tool")
    return isinstance(output, Mapping) and "error" in output
