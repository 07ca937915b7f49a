"""Streaming answers into Slack under Slack's real limits: today's writer (baseline) against the delivery modes.

    .venv/bin/python bench/bench_streaming.py                       # 1, 20 and 50 answers; every mode; both windows
    .venv/bin/python bench/bench_streaming.py --answers 20 --modes stream --windows busy

Each answer: its own DM, a reply in the thread of the user's question, one tool call (0.3-0.8 s), then ~400 words
of Markdown at ~50 deltas/s, then Done. All answers start within the first second, in one workspace. The
Slack side (:mod:`bench.fake_slack`) enforces Slack's limits with HTTP 429 + Retry-After: ``chat.update`` and
``chat.delete`` 50 per rolling 60 s per workspace, ``chat.startStream``/``chat.stopStream`` 20 (Tier 2),
``chat.appendStream`` 100 (Tier 4), ``chat.postMessage`` 1/s per channel (burst 3).

Modes (the same :class:`bot.render.AnswerWriter` and :class:`bot.render.SlackBudget` as the bot):

- ``legacy``: the baseline: a placeholder posted at once, then every visible change an edit
  (``WriterSettings(placeholder_after=0)``; its final shares today's planner: an edit, or post + delete).
- ``edits``: the first text rides on the post (a placeholder only if no text came within 1.5 s), later text
  and the final are edits; when the edit window can't serve one more live message the answer goes out in
  parts (posts of complete blocks), and a final the edit window can't take now is reposted (post + delete).
  See :mod:`bot.render.planner`.
- ``stream``: native streams while the workspace's Tier-2 windows admit them, edits otherwise.

Windows: ``fresh`` (nothing spent), ``busy`` (the previous minute's edit budget already spent by earlier
answers: 45 ``chat.update`` in the last 40 s, as counted both by Slack and by the bot's budget), ``busy-all``
(also 18 each of ``chat.startStream``/``chat.stopStream``: earlier answers were streamed).

Printed per scenario: 429s received (target 0), edits per answer, messages per answer (more than one: the
answer went out in parts), p50/p95 seconds from an answer's first delta
until Slack showed its first text, from its last delta until the thread reached its final state, the longest
gap between visible changes while text streamed (1 answer), and answers whose final thread is not exactly the
answer once (lost or duplicated text; target 0). Times are taken on the Slack side.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import re
import statistics
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from slack_sdk.web.async_client import AsyncWebClient  # noqa: E402

from analyst.events import AnalystEvent, Done, TextDelta, ToolFinished, ToolStarted  # noqa: E402
from bench.fake_slack import BenchSlack  # noqa: E402
from bot.render import DEFAULT_LIMITS, AnswerWriter, SlackBudget, WriterSettings  # noqa: E402

ZWSP = "\u200b"
MODES = {
    "legacy": WriterSettings(placeholder_after=0.0),
    "edits": WriterSettings(placeholder_after=1.5, feedback_buttons=True),
    "stream": WriterSettings(placeholder_after=1.5, native_stream=True, feedback_buttons=True),
}
# What earlier answers spent in the previous minute: "busy" as the issue measures it (the edit window), and
# "busy-all" with the native streams' Tier-2 windows spent too.
SPENT = {
    "fresh": {},
    "busy": {"chat.update": 45},
    "busy-all": {"chat.update": 45, "chat.startStream": 18, "chat.stopStream": 18},
}
WORDS = [
    "marketing",
    "spend",
    "rose",
    "above",
    "plan",
    "because",
    "paid",
    "social",
    "campaigns",
    "ran",
    "longer",
    "than",
    "budgeted",
    "while",
    "events",
    "costs",
    "came",
    "in",
    "higher",
    "and",
    "agency",
    "fees",
    "were",
    "partly",
    "offset",
    "by",
    "lower",
    "travel",
    "the",
    "variance",
    "is",
    "unfavourable",
    "for",
    "costs",
    "and",
    "concentrated",
    "in",
    "the",
    "third",
    "quarter",
]


def make_answer(rng: random.Random, words: int, index: int) -> str:
    """~``words`` words of Markdown: a heading, paragraphs, a bullet list and a small table."""
    out = [f"## Answer {index}: Q3 variance\n\n"]
    count = 0
    table = (
        "| Department | Actual | Budget | Variance |\n|---|---:|---:|---:|\n"
        "| Marketing | 412,300 | 370,000 | 42,300 |\n| Sales | 198,000 | 205,000 | -7,000 |\n\n"
    )
    while count < words:
        kind = rng.random()
        if kind < 0.15 and count > 50:
            out.append(table)
            count += 20
        elif kind < 0.35:
            items = [" ".join(rng.choices(WORDS, k=8)) for _ in range(3)]
            out.append("".join(f"- {item}\n" for item in items) + "\n")
            count += 24
        else:
            out.append(" ".join(rng.choices(WORDS, k=30)).capitalize() + ".\n\n")
            count += 30
    return "".join(out).strip()


@dataclass
class Timing:
    first_delta: float = 0.0
    last_delta: float = 0.0


async def events(text: str, timing: Timing, rate: float, rng: random.Random) -> AsyncIterator[AnalystEvent]:
    yield ToolStarted("breakdown", "{}", "Computing variance by Department…")
    await asyncio.sleep(rng.uniform(0.3, 0.8))
    yield ToolFinished("breakdown", True)
    pieces = re.findall(r"\S*\s*", text)  # token-sized deltas (~4-5 characters)
    deltas = [piece[i : i + 5] for piece in pieces for i in range(0, len(piece), 5) if piece]
    start = time.monotonic()
    for i, delta in enumerate(deltas):
        if i == 0:
            timing.first_delta = time.monotonic()
        yield TextDelta(delta)
        timing.last_delta = time.monotonic()
        delay = start + (i + 1) / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
    yield Done(text)


@dataclass
class Result:
    mode: str
    window: str
    answers: int
    ratelimited: int = 0
    edits: list[int] = field(default_factory=list)
    messages: list[int] = field(default_factory=list)
    first_visible: list[float] = field(default_factory=list)
    to_final: list[float] = field(default_factory=list)
    max_gap: list[float] = field(default_factory=list)
    streams: int = 0
    wrong: int = 0


def reassembles(parts: list[str], doc: str) -> bool:
    pattern = r"\s*" + r"\s*".join(re.escape(p) for p in parts) + r"\s*"
    return re.fullmatch(pattern, doc, flags=re.DOTALL) is not None


async def scenario(mode: str, window: str, n: int, *, words: int, rate: float, seed: int) -> Result:
    rng = random.Random(seed)
    texts = [make_answer(rng, words, i) for i in range(n)]
    timings = [Timing() for _ in range(n)]
    result = Result(mode, window, n)
    async with BenchSlack() as slack:
        client = AsyncWebClient(token=slack.token, base_url=slack.api_url, timeout=30)
        budget = SlackBudget(limits=dict(DEFAULT_LIMITS))
        for method, calls in SPENT[window].items():
            slack.spend(method, calls, 40.0)
            now = time.monotonic()
            times = [now - 40.0 + 40.0 * (i + 0.5) / calls for i in range(calls)]
            await budget.scheduler(slack.team_id, method).count_earlier(times)
        parents = [slack.user_message(f"D{i:03d}") for i in range(n)]

        async def one(i: int) -> None:
            await asyncio.sleep(rng.uniform(0, 1.0))
            source = events(texts[i], timings[i], rate, random.Random(seed * 1000 + i))
            writer = AnswerWriter(
                client,
                budget,
                team_id=slack.team_id,
                channel=f"D{i:03d}",
                thread_ts=parents[i].ts,
                settings=MODES[mode],
            )
            await writer.start()
            await writer.write(source)

        await asyncio.gather(*(one(i) for i in range(n)))
        await budget.aclose()
        result.ratelimited = slack.ratelimited
        result.streams = slack.calls["chat.startStream"]
        for i in range(n):
            thread = [m for m in slack.messages[f"D{i:03d}"].values() if m.bot and m.thread_ts == parents[i].ts]
            result.edits.append(sum(1 for m in thread for _, method, _ in m.states if method == "chat.update"))
            head = texts[i][:12]
            shown = [t for m in thread for t, _, v in m.states if head in v.replace(ZWSP, "")]
            if shown:
                result.first_visible.append(min(shown) - timings[i].first_delta)
            changes = sorted(t for m in thread for t, _, _ in m.states)
            final_at = changes[-1]
            if shown and n == 1:
                live = [t for t in changes if min(shown) <= t <= final_at]
                result.max_gap.append(max((b - a for a, b in itertools.pairwise(live)), default=0.0))
            parts = [m.text.replace(ZWSP, "") for m in thread if not m.deleted]
            result.messages.append(len(parts))
            if not reassembles(parts, texts[i]):
                result.wrong += 1
                continue
            result.to_final.append(final_at - timings[i].last_delta)
    return result


def pct(values: list[float], q: float) -> str:
    if not values:
        return "n/a"
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))
    return f"{values[k]:.2f}"


def row(r: Result) -> str:
    edits = statistics.mean(r.edits) if r.edits else 0.0
    gap = f"{max(r.max_gap):.2f}" if r.max_gap else "-"
    msgs = statistics.mean(r.messages) if r.messages else 0.0
    return (
        f"| {r.answers} | {r.window} | {r.mode} | {r.ratelimited} | {edits:.1f} | {msgs:.1f} | {r.streams} | "
        f"{pct(r.first_visible, 50)} / {pct(r.first_visible, 95)} | {pct(r.to_final, 50)} / {pct(r.to_final, 95)} | "
        f"{gap} | {r.wrong}/{r.answers} |"
    )


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--answers", type=int, nargs="+", default=[1, 20, 50])
    parser.add_argument("--modes", nargs="+", choices=list(MODES), default=list(MODES))
    parser.add_argument("--windows", nargs="+", choices=list(SPENT), default=list(SPENT))
    parser.add_argument("--words", type=int, default=400)
    parser.add_argument("--rate", type=float, default=50.0, help="deltas per second per answer")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    print(
        f"{args.words} words at {args.rate:.0f} deltas/s per answer, one DM thread each; legacy = the baseline "
        "(a placeholder at once, then every visible change an edit)"
    )
    print(
        "| answers | window | mode | 429s | edits/answer | messages/answer | streams | first text p50 / p95 s | "
        "final p50 / p95 s | max gap s | wrong |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n in args.answers:
        for window in args.windows:
            for mode in args.modes:
                res = await scenario(mode, window, n, words=args.words, rate=args.rate, seed=args.seed)
                print(row(res), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
