"""Clean split points for long standard Markdown, so an answer can continue in a second Slack message.

A cut is *clean* when both halves still render as they would have together: never inside a fenced code
block (```` ``` ```` / ``~~~``) and never between two rows of a table. Preferred, in order: a paragraph break
(blank line), the start of a list item or heading, any other line break, a sentence end, any whitespace; a
hard cut at the limit is the last resort (one enormous code block or table).

The whitespace rule: :func:`split_markdown` returns parts whose concatenation is exactly the input; every cut
sits at a line start or just after whitespace, so ``part.strip()`` is what a message shows and the original
is the shown parts joined by the whitespace at the cut points.
"""

from __future__ import annotations

import re

_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_LIST_OR_HEADING = re.compile(r"^ {0,3}(?:[-*+] |\d{1,9}[.)] |#{1,6} |> )")
_SENTENCE_END = re.compile(r"[.!?…:;](?=\s)")

# Ranks of cut points, best first.
_PARAGRAPH, _BLOCK_START, _LINE, _SENTENCE, _SPACE = 5, 4, 3, 2, 1


def _lines(text: str) -> list[str]:
    """Lines with their ``\n`` kept; only ``\n`` breaks a line (unlike ``str.splitlines``)."""
    lines = text.split("\n")
    out = [line + "\n" for line in lines[:-1]]
    if lines[-1]:
        out.append(lines[-1])
    return out


def _line_cuts(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """(position, rank) of clean cuts at line starts within ``(start, end]``, outside code fences and tables.

    The scan starts at the beginning of ``text`` so a fence opened before ``start`` is still known.
    """
    cuts: list[tuple[int, int]] = []
    fence: str | None = None
    prev_blank = False
    prev_table = False
    pos = 0
    for line in _lines(text[: end + 1]):
        stripped = line.strip()
        is_table = fence is None and stripped.startswith("|")
        if start < pos <= end and fence is None and not (is_table and prev_table):
            if prev_blank and stripped:
                rank = _PARAGRAPH
            elif _LIST_OR_HEADING.match(line) or _FENCE.match(line) or (is_table and not prev_table):
                rank = _BLOCK_START
            else:
                rank = _LINE
            cuts.append((pos, rank))
        fence = _fence_after(fence, line)
        prev_blank = not stripped
        prev_table = is_table
        pos += len(line)
    return cuts


def _fence_after(fence: str | None, line: str) -> str | None:
    """The code fence still open after ``line`` (None outside one): a fence line opens one, or closes the open
    one when it is the same character, at least as long, and alone on its line."""
    match = _FENCE.match(line)
    if not match:
        return fence
    marker = match.group(1)
    if fence is None:
        return marker
    if marker[0] == fence[0] and len(marker) >= len(fence) and line.strip() == marker:
        return None
    return fence


def _in_protected_block(text: str, pos: int) -> bool:
    """Whether ``pos`` falls inside a code fence or on a table line."""
    fence: str | None = None
    start = 0
    for line in _lines(text):
        end = start + len(line)
        stripped = line.strip()
        match = _FENCE.match(line)
        if start <= pos < end:
            return fence is not None or match is not None or stripped.startswith("|")
        fence = _fence_after(fence, line)
        start = end
    return fence is not None


def split_point(text: str, limit: int, start: int = 0) -> int:
    """Where to cut ``text[start:]`` so the first part is at most ``limit`` characters long.

    Returns an index into ``text`` with ``start < result <= start + limit``, or ``len(text)`` when the rest
    already fits. Prefers the best kind of cut in the second half of the window (so parts are not needlessly
    short), else the best anywhere, else a hard cut at ``start + limit``. What comes before ``start`` is
    context (an open code fence), never cut.
    """
    if limit <= 0:
        raise ValueError("limit must be positive")
    end = start + limit
    if len(text) <= end:
        return len(text)
    cuts = _line_cuts(text, start, end)
    line_starts = {p for p, _ in cuts}
    # Inside long lines: after a sentence end or whitespace, when that spot is in plain text.
    window = text[start:end]
    for m in _SENTENCE_END.finditer(window):
        p = start + m.end() + 1
        if p <= end and p not in line_starts:
            cuts.append((p, _SENTENCE))
    last_space = max(window.rfind(" "), window.rfind("\n"))
    if last_space > 0:
        cuts.append((start + last_space + 1, _SPACE))
    half = start + limit // 2
    for candidates in ([c for c in cuts if c[0] >= half], cuts):
        for rank in (_PARAGRAPH, _BLOCK_START, _LINE, _SENTENCE, _SPACE):
            positions = [p for p, r in candidates if r == rank]
            for p in sorted(positions, reverse=True):
                if start < p <= end and (rank >= _LINE or not _in_protected_block(text, p - 1)):
                    return p
    return end


def split_markdown(text: str, limit: int, start: int = 0) -> list[str]:
    """Cut ``text[start:]`` into parts of at most ``limit`` characters at clean points.

    ``"".join(parts) == text[start:]``; ``text[:start]`` is only context (see :func:`split_point`).
    """
    parts: list[str] = []
    pos = start
    while len(text) - pos > limit:
        cut = split_point(text, limit, pos)
        parts.append(text[pos:cut])
        pos = cut
    parts.append(text[pos:])
    return parts


def is_clean_cut(text: str, pos: int) -> bool:
    """Whether cutting ``text`` at ``pos`` leaves both halves outside code fences and tables."""
    if pos <= 0 or pos >= len(text):
        return True
    return pos in {p for p, _ in _line_cuts(text, pos - 1, pos)} or (
        text[pos - 1].isspace() and not _in_protected_block(text, pos - 1)
    )


def last_block_cut(text: str, start: int = 0, min_chars: int = 1) -> int | None:
    """The last cut of ``text[start:]`` at the start of a paragraph, list item, heading, fence or table, with at
    least ``min_chars`` of non-blank text before it and a started line after it; None if there is none.

    For posting a growing text in parts: everything before the cut is complete blocks, whatever comes later.
    """
    if len(text) - start < 2:
        return None
    for pos, rank in reversed(_line_cuts(text, start, len(text) - 1)):
        if rank >= _BLOCK_START and len(text[start:pos].strip()) >= min_chars:
            return pos
    return None
