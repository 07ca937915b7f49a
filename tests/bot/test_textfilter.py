"""The outgoing text filter: file text and model output never become a mention, broadcast, link or tag.

Each hostile string is checked two ways: the live syntax is gone (no regex a chat surface uses to find it
matches), and the reader still sees the same characters (only zero-width spaces were added).
"""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.textfilter import ZWSP, code_span, neutralise

# What Slack, Markdown renderers, HTML and Teams look for. A neutralised text must match none of them.
LIVE_SYNTAX = {
    "slack angle markup": re.compile(r"<[@!#a-zA-Z/]"),
    "markdown link": re.compile(r"\]\s*[(\[:]"),
    "url scheme": re.compile(r"(?i)\b(?:https?|ftp|mailto|javascript|slack|tel|data)\s*:"),
    "broadcast word": re.compile(r"(?i)@(?:here|channel|everyone|all)\b"),
    "plain mention": re.compile(r"@\w"),
    "host name": re.compile(r"\b[\w-]+(?:[.。．｡][\w-]+)*[.。．｡](?:com|io|net|org|ru|co\.uk|рф|dev|xyz|ly)\b"),
}


def visible(text: str) -> str:
    return text.replace(ZWSP, "")


def live(text: str) -> list[str]:
    return [name for name, pattern in LIVE_SYNTAX.items() if pattern.search(text)]


HOSTILE = [
    "<!channel>",
    "<!here|here>",
    "<!everyone>",
    "<!subteam^S0123ABC|finance-leads>",
    "<@U0ADMIN>",
    "<@W0123|ceo>",
    "<#C0GENERAL|general>",
    "[Open the report](https://evil.example.com/login)",
    "![chart](https://evil.example.com/pixel.png)",
    "[click][1]\n\n[1]: https://evil.example.com",
    "<https://evil.example.com|Q3 report>",
    "<mailto:cfo@evil.com|write to the CFO>",
    "Visit evil.com now",
    "see www.evil.io/path?x=1",
    "http://10.0.0.1/admin",
    "HTTPS://EVIL.COM",
    "javascript:alert(1)",
    "slack://open?team=T1",
    "payroll@evil.com",
    "@here please approve",
    "@channel",
    "@everyone look",
    "ping @john.doe",
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    "<!-- comment -->",
    '<at id="0">Finance Team</at>',
    "пример.рф",
    "xn--80ak6aa92e.com",
    "evil。com",
    "ask at sub-domain.evil.co.uk today",
]


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_text_is_inert_and_reads_the_same(hostile: str) -> None:
    assert live(hostile), "the example must be live before filtering (else the test proves nothing)"
    safe = neutralise(hostile)
    assert live(safe) == [], safe
    assert visible(safe) == hostile


@pytest.mark.parametrize(
    ("hostile", "expected"),
    [
        ("<!channel>", f"<{ZWSP}!channel>"),
        ("<@U0ADMIN>", f"<{ZWSP}@{ZWSP}U0ADMIN>"),
        ("[x](https://e.com)", f"]{ZWSP}".join(["[x", f"(https{ZWSP}://e{ZWSP}.com)"])),
        ("@here", f"@{ZWSP}here"),
        ("evil.com", f"evil{ZWSP}.com"),
        ('<at id="0">Team</at>', f'<{ZWSP}at id="0">Team<{ZWSP}/at>'),
    ],
)
def test_exact_breaks(hostile: str, expected: str) -> None:
    assert neutralise(hostile) == expected


@pytest.mark.parametrize("hostile", HOSTILE)
def test_idempotent(hostile: str) -> None:
    once = neutralise(hostile)
    assert neutralise(once) == once


@given(st.text(alphabet=st.sampled_from(list("<>@[]():/.!#|`hcnatelps.comrфр-_ \n\u200b")), max_size=60))
def test_idempotent_and_lossless_on_any_mix(text: str) -> None:
    once = neutralise(text)
    assert neutralise(once) == once
    assert visible(once) == visible(text)


REPORT = """\
## Q3 variance

**Budget vs actual** for `budget_vs_actual.csv`: 1,234 rows; actual = `Actual`, budget = `Budget`.

**Total:** actual 1,234,567.89 vs budget 1,200,000.00: variance **+34,567.89** (+2.9%); effect on profit \
−34,567.89 (unfavourable).

- Marketing / Advertising: +150.00 (+30.0%) · material
- Events: −50.00 (−16.7%)

| Department / Account | Actual | Budget | Variance | Var % |
|---|---:|---:|---:|---:|
| Sales / Revenue | 1,200.00 | 1,000.00 | +200.00 | +20.0% |
| R&D \\| Labs | (1,950.00) | 2,000.00 | −50.00 | −2.5% |

> Note: x < 5% is immaterial, e.g. Q3 vs. Q2; see plan.xlsx and the U.S. numbers.

```
code block stays
```

_2 total/subtotal rows excluded from sums._
"""


def test_markdown_the_bot_writes_is_untouched() -> None:
    assert neutralise(REPORT) == REPORT


def test_plain_finance_text_is_untouched() -> None:
    for text in ("1,234.56", "(12.5%)", "€1.234,56", "Q3 2025", "FY2025-Q3", "a < b", "5 @ 10", "i.e. e.g. vs."):
        assert neutralise(text) == text


def test_table_files_keep_their_names_but_hosts_inside_them_break() -> None:
    assert neutralise("q3.csv") == "q3.csv"
    assert neutralise("plan 2025.XLSX") == "plan 2025.XLSX"
    assert neutralise("evil.com.csv") == f"evil{ZWSP}.com.csv"


def test_empty_text() -> None:
    assert neutralise("") == ""


def test_long_text_is_fast() -> None:
    # Text of the shapes the patterns look for, repeated: no pattern may backtrack quadratically.
    nasty = (
        ("a." * 50_000) + "b" + ("<" * 20_000) + ("@" * 20_000) + ("x-" * 30_000) + ("y" * 50_000)
        + ("http" + " " * 20_000 + ":") + ("]" + " " * 10) * 5_000 + ("a.b-" * 20_000)
    )
    started = time.perf_counter()
    neutralise(nasty)
    assert time.perf_counter() - started < 5  # generous: a quadratic pattern takes minutes here


# ------------------------------------------------------------------------------------------- code spans


def test_a_backtick_cannot_end_the_code_span() -> None:
    span = code_span("q3`<!channel>`[x](https://evil.com).csv")
    assert span.startswith("`") and span.endswith("`") and span.count("`") == 2
    assert live(span) == []


def test_code_span_is_one_line_and_bounded() -> None:
    span = code_span("a\nb\r\n# heading\t" + "x" * 500, limit=40)
    assert "\n" not in span and "\r" not in span
    assert len(visible(span)) <= 42 and span.endswith("…`")


def test_code_span_of_nothing_is_still_a_span() -> None:
    assert code_span("") == "` `"
    assert code_span("q3.csv") == "`q3.csv`"
