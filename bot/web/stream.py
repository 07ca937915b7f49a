"""The web surface's writer side: Server-Sent Events frames, and model text made inert while it streams.

:func:`bot.textfilter.neutralise` works on whole text: whether ``example`` becomes a domain name or ``@chan`` a
broadcast depends on what follows. :class:`InertText` therefore holds back the text after the last whitespace and
emits only a prefix whose neutralised form can no longer change, so every byte the page receives is exactly what
neutralising the whole answer at the end would have produced, and nothing is ever sent twice.
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
    """The end of the longest prefix of ``raw`` whose neutralisation is final: the start of the last run of
    whitespace. Every rule of the filter decides from the word it is in plus, at most, one run of whitespace and
    the character after it; a decision that waits on that run only ever inserts at or after the run's start."""
    index = len(raw) - 1
    while index >= 0 and not raw[index].isspace():
        index -= 1
    while index > 0 and raw[index - 1].isspace():
        index -= 1
    return max(index, 0)


class InertText:
    """Neutralise text that arrives in pieces. ``feed()`` returns what may be sent now; ``flush()`` the rest.

    Use one instance per stretch of model text (a turn between tool calls); the concatenation of everything
    returned equals ``neutralise(all the text fed)``. Each step neutralises only a window (the word before the
    last cut and the new text), so an answer costs time in proportion to its length, not its square.
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
        # The window starts at the word that ends at the last cut: every decision the filter makes at or after
        # that cut looks back at most into that word ("]" before "(", a scheme before ":", a domain name).
        start = self._cut
        while start > 0 and not self._raw[start - 1].isspace():
            start -= 1
        before = neutralise(self._raw[start : self._cut])
        window = neutralise(self._raw[start:cut])
        if not window.startswith(before):  # cannot happen with the filter's rules; never resend text
            window, before = neutralise(self._raw[:cut]), neutralise(self._raw[: self._cut])
        self._cut = cut
        return window[len(before) :]
