"""The web surface's writer side: Server-Sent Events frames, and model text made inert while it streams.

:func:`bot.textfilter.neutralise` works on whole text: whether ``example`` becomes a domain name, ``@chan`` a
mention or ``https :`` a scheme depends on what follows, up to the next word. :class:`InertText` therefore holds
back the last complete word and whatever follows it, and emits only a prefix whose neutralised form can no longer
change, so the page receives exactly what neutralising the whole answer at the end would produce, and nothing is
ever sent twice.
"""

from __future__ import annotations

import json
from typing import Any

from bot.textfilter import neutralise


def sse_frame(data: dict[str, Any], *, event: str | None = None) -> bytes:
    """One SSE event: an optional ``event:`` line and one ``data:`` line of compact JSON (which never contains a
    raw newline, so a single data line always carries the whole payload)."""
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {payload}\n\n".encode()


KEEP_ALIVE = b": keep-alive\n\n"


def _safe_cut(raw: str) -> int:
    """The end of the longest prefix of ``raw`` whose neutralisation is final: the start of the whitespace before
    the last complete word. Every rule of the filter decides from the word it is in, the word before it, and at
    most the next word (``]`` before ``(``, a scheme before ``:`` and ``//``)."""
    index = len(raw)
    while index > 0 and not raw[index - 1].isspace():  # a word still being written
        index -= 1
    while index > 0 and raw[index - 1].isspace():
        index -= 1
    while index > 0 and not raw[index - 1].isspace():  # the last complete word: the lookahead of the rest
        index -= 1
    while index > 0 and raw[index - 1].isspace():
        index -= 1
    return index


def _output_offset(raw: str, out: str, position: int) -> int:
    """Where ``raw[:position]`` ends in ``out`` (``raw`` with zero-width spaces inserted), before any inserted at
    ``position`` itself."""
    i = j = 0
    while i < position:
        if out[j] == raw[i]:
            i += 1
        j += 1
    return j


class InertText:
    """Neutralise text that arrives in pieces. ``feed()`` returns what may be sent now; ``flush()`` the rest.

    Use one instance per stretch of model text (a turn between tool calls); the concatenation of everything
    returned equals ``neutralise(all the text fed)``. Each step neutralises only a window (from the word before
    the last cut to the end), so an answer costs time in proportion to its length, not its square.
    """

    def __init__(self) -> None:
        self._raw = ""
        self._cut = 0  # raw text before this position has been sent, neutralised

    @property
    def raw(self) -> str:
        return self._raw

    def feed(self, text: str) -> str:
        self._raw += text
        cut = _safe_cut(self._raw)
        return self._advance(cut) if cut > self._cut else ""

    def flush(self) -> str:
        """Everything not yet sent (the text is complete)."""
        return self._advance(len(self._raw)) if len(self._raw) > self._cut else ""

    def _advance(self, cut: int) -> str:
        # The window starts at the word that ends at the last cut (the left context of every decision after it)
        # and runs to the end of the text (their right context).
        start = self._cut
        while start > 0 and not self._raw[start - 1].isspace():
            start -= 1
        window = self._raw[start:]
        out = neutralise(window)
        begin = _output_offset(window, out, self._cut - start)
        end = len(out) if cut == len(self._raw) else _output_offset(window, out, cut - start)
        self._cut = cut
        return out[begin:end]
