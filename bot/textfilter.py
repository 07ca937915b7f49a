"""The one place where text bound for a chat surface is made inert.

Everything a surface shows may carry text from a user's file (labels, headers, sheet and file names) or from the
model (which quotes those labels). Such text is data: it must never become a mention, a broadcast, a link, an HTML
tag or a way out of a code span. Every writer (Slack, the web page, Teams) passes its outgoing text through
:func:`neutralise`; file names shown in code spans go through :func:`code_span`.

The approach is to break the syntax, not to delete the text: a zero-width space (U+200B) is inserted where a
surface would start parsing (after ``<``, after ``@`` of a broadcast word, between ``]`` and ``(``, after a URL
scheme, before the dot of something that looks like a domain name). The reader sees the same characters; the
surface sees no markup. Markdown structure the bot writes itself (headings, lists, tables, emphasis, fenced code)
is untouched.
"""

from __future__ import annotations

import re

ZWSP = "\u200b"

# "<" followed by anything a surface could parse as markup: Slack's <@U…>, <!channel>, <#C…>, <http…|…>;
# HTML and Teams' <at>…</at> tags, comments and processing instructions.
_ANGLE = re.compile(r"<(?=[^\s\u200b])")
# Broadcast and mention words that Slack, Teams and most chats expand even without angle brackets.
_BROADCAST = re.compile(r"@(?=(?:channel|here|everyone|all)\b)", re.IGNORECASE)
# Markdown links and images: [text](url), ![alt](url); reference definitions [x]: url.
_LINK = re.compile(r"\]\s*(?=[(\[:])")
# URL schemes that turn into links.
_SCHEME = re.compile(r"\b((?:https?|ftp|mailto|slack|tel|javascript|data|file|ms-[a-z-]+))\s*:", re.IGNORECASE)
# Something that looks like a host name (example.com, a.b.co.uk, evil.io/path): autolinked by Slack and Teams.
_DOMAIN_DOT = re.compile(r"(?<=[A-Za-z0-9-])\.(?=[A-Za-z][A-Za-z0-9-]*(?:\b|/))")
_DOMAIN = re.compile(r"\b[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
# Backticks end a code span early; a look-alike keeps the text readable.
_BACKTICK = "\u02cb"


def _break_domains(match: re.Match[str]) -> str:
    return _DOMAIN_DOT.sub(ZWSP + ".", match.group(0))


def neutralise(text: str) -> str:
    """``text`` with every mention, broadcast, link, autolink and tag made inert (idempotent)."""
    if not text:
        return text
    text = _ANGLE.sub("<" + ZWSP, text)
    text = _BROADCAST.sub("@" + ZWSP, text)
    text = _LINK.sub(lambda m: m.group(0) + ZWSP, text)
    text = _SCHEME.sub(lambda m: m.group(1) + ZWSP + ":", text)
    return _DOMAIN.sub(_break_domains, text)


def code_span(text: str, *, limit: int = 120) -> str:
    """``text`` (a file or sheet name) as one inline code span that it cannot end early, on one line."""
    flat = " ".join(str(text).split()).replace("`", _BACKTICK)
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return f"`{neutralise(flat) or ' '}`"
