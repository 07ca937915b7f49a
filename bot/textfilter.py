"""The one place where text bound for a chat surface is made inert.

Everything a surface shows may carry text from a user's file (labels, headers, sheet and file names) or from the
model (which quotes those labels). Such text is data: it must never become a mention, a broadcast, a link, an HTML
tag or a way out of a code span. Every writer (Slack, the web page, Teams) passes its outgoing text through
:func:`neutralise`; file names shown in code spans go through :func:`code_span`.

The approach is to break the syntax, not to delete the text: a zero-width space (U+200B) is inserted where a
surface would start parsing:

- after ``<`` (Slack's ``<@U…>``, ``<!channel>``, ``<#C…>``, ``<https://…|text>``; HTML tags; Teams' ``<at>``);
- after ``@`` when a name follows (``@here``, ``@channel``, ``@everyone``, ``@john.doe``: linked by surfaces
  that resolve plain names);
- between ``]`` and ``(``, ``[`` or ``:`` (Markdown links and images, reference links and their definitions);
- before the ``:`` of a URL scheme (``https://``, ``mailto:``, ``javascript:``, ``slack://`` ...);
- before each dot of something that looks like a host name (``evil.com``, ``a.b.co.uk``, ``пример.рф``), which
  chats autolink; a final table-file extension (``q3.csv``, ``plan.xlsx``) is no host name and keeps its dot.

The reader sees the same characters; the surface sees no markup. Markdown structure the bot writes itself
(headings, lists, tables, emphasis, quotes, fenced code) is untouched, and the function is idempotent, so
text that passes through two layers is not changed twice.
"""

from __future__ import annotations

import re

ZWSP = "\u200b"

# "<" followed by anything a surface could parse as markup: Slack's <@U…>, <!channel>, <#C…>, <http…|…>;
# HTML and Teams' <at>…</at> tags, comments and processing instructions.
_ANGLE = re.compile(r"<(?=[^\s\u200b])")
# "@" starting a name: broadcasts (@here, @channel, @everyone) and plain mentions that some surfaces resolve.
_AT = re.compile(r"@(?=[^\s\u200b@])")
# Markdown links and images: [text](url), ![alt](url); reference links [x][y] and definitions [x]: url.
_LINK = re.compile(r"\](?=\s*[(\[:])")
# URL schemes: anything followed by "//", and the schemes that link without it.
_SCHEME = re.compile(
    r"(?<![\w+.\-])("
    r"[A-Za-z][A-Za-z0-9+.\-]*(?=\s*:\s*//)"
    r"|(?:mailto|tel|sms|callto|skype|javascript|vbscript|data|file|slack|msteams|zoommtg|intent|market"
    r"|ms-[a-z\-]+|itms-[a-z]+)(?=\s*:)"
    r")(\s*):",
    re.IGNORECASE,
)
# Something that may be a host name: word labels (any script, with hyphens) joined by dots, or the ideographic
# and full-width dots that IDN treats as dots. Possessive and anchored at a word start, so that the scan stays
# linear on any input; which dots to break is decided per chain.
_DOT = "[.\u3002\uff0e\uff61]"
_CHAIN = re.compile(rf"(?<![\w\-])[\w\-]++(?:{_DOT}[\w\-]++)++")
# A dot before two letters may start a top-level domain (.com, .co.uk, .рф, .xn--p1ai); "e.g." and "1.5" keep theirs.
_HOST_DOT = re.compile(rf"{_DOT}(?=[^\W\d_]{{2}})")
# Extensions of the table files the bot reads: no top-level domain has these names, so "q3.csv" keeps its dot.
_FILE_EXTENSIONS = frozenset({"csv", "tsv", "txt", "xls", "xlsx", "xlsm", "json"})
# A backtick would end a code span early; a look-alike keeps the text readable.
_BACKTICK = "\u02cb"


def _break_hosts(match: re.Match[str]) -> str:
    chain = match.group(0)
    head, dot, last = chain.rpartition(".")
    if dot and last.lower() in _FILE_EXTENSIONS:
        return _HOST_DOT.sub(ZWSP + r"\g<0>", head) + dot + last
    return _HOST_DOT.sub(ZWSP + r"\g<0>", chain)


def neutralise(text: str) -> str:
    """``text`` with every mention, broadcast, link, autolink and tag made inert (idempotent)."""
    if not text:
        return text
    text = _ANGLE.sub("<" + ZWSP, text)
    text = _AT.sub("@" + ZWSP, text)
    text = _LINK.sub("]" + ZWSP, text)
    text = _SCHEME.sub(lambda m: m.group(1) + m.group(2) + ZWSP + ":", text)
    return _CHAIN.sub(_break_hosts, text)


def code_span(text: str, *, limit: int = 120) -> str:
    """``text`` (a file or sheet name) as one inline code span that it cannot end early, on one line."""
    flat = " ".join(str(text).split()).replace("`", _BACKTICK)
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return f"`{neutralise(flat) or ' '}`"
