"""The unit a file's amounts are written in: ones, thousands ("in $000s", "(000)", "тыс.") or millions.

Read from the amount headers and the title lines above the table, never guessed from the numbers: the engine's
default materiality amount scales by it (and, separately, by the size of the data; see the engine).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

UNIT_WORDS = {1_000: "thousands", 1_000_000: "millions"}

_THOUSANDS_RE = re.compile(
    r"in\s+(?:[$€£]|usd|eur|gbp)?\s*(?:'?000'?s?|thousands?)\b|\(\s*(?:[$€£]|usd|eur|gbp)?\s*'?000'?s?\s*\)"
    r"|[$€£]\s*'?000'?s?\b|(?<![\d,.])'?000s\b|\bthousands?\s+of\b|[$€£]k\b|\(k\)|\bk[$€£]|\bkeur\b|\bteur\b|t€"
    r"|тыс\.?(?:\s*руб)?|тысяч|\btsd\.?|\btausend",
    re.IGNORECASE,
)
_MILLIONS_RE = re.compile(
    r"in\s+(?:[$€£]|usd|eur|gbp)?\s*millions?\b|\(\s*(?:[$€£]|usd|eur|gbp)?\s*(?:mm|mn|m)\s*\)|[$€£]\s*mm?\b"
    r"|\bmillions?\s+of\b|\bmeur\b|\bmio\.?(?:\s|$)|\bmillionen|млн\.?",
    re.IGNORECASE,
)


def detect_unit(headers: Sequence[str], preamble: Sequence[str]) -> tuple[int, str | None]:
    """(1, None), or (1,000 / 1,000,000, the words that said so) from the headers first, then the title lines."""
    for where, texts in (("header", headers), ("title", preamble)):
        for text in texts:
            text = str(text)
            for unit, pattern in ((1_000_000, _MILLIONS_RE), (1_000, _THOUSANDS_RE)):
                found = pattern.search(text)
                if found:
                    return unit, f"{where} {text.strip()[:60]!r}"
    return 1, None
