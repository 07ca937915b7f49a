"""Streaming answers into Slack under real Tier-3 limits: the scheduled AnswerWriter against a naive writer.

    .venv/bin/python bench/bench_streaming.py                 # 5, 20 and 50 concurrent answers, both writers
    .venv/bin/python bench/bench_streaming.py --answers 20 --naive-every 10

Each answer: a thread in its own channel, two tool calls (ToolStarted/ToolFinished), then ~400 words of
Markdown at ~50 deltas/s, then Done. All answers start within the first second, in one workspace. The fake
Slack enforces Slack's real limits: ``chat.update`` 50 per rolling 60 s per workspace, ``chat.postMessage``
1/s per channel (burst 3), with HTTP 429 + Retry-After.

- scheduled: :class:`bot.render.AnswerWriter` sharing one :class:`bot.render.SlackBudget` (defaults: 45 edits
  per 60 s, 1 s per message, one unit reserved per live answer for its final edit).
- naive: posts a placeholder, then ``chat.update`` with the whole text every N deltas and once at the end,
  awaiting each call and ignoring failures (what a first version typically does).

Printed per writer and concurrency: 429s received (target 0), edits per answer, p50/p95 time from the first
delta to the first visible text, p50/p95 time from the last delta to the final text in Slack, and answers whose
final thread state is not exactly the final text (lost text; target none). Times are measured on the fake
server's side (when Slack had the text). Each scenario gets a fresh fake server (fresh rate windows).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
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

from slack_sdk.errors import SlackApiError  # noqa: E402
from slack_sdk.web.async_client import AsyncWebClient  # noqa: E402

from analyst.events import AnalystEvent, Done, TextDelta, ToolFinished, ToolStarted  # noqa: E402
from bot.render import AnswerWriter, SlackBudget  # noqa: E402
from tests.fakes.slack_server import FakeSlack, FakeSlackLimits  # noqa: E402

WORDS = [
    *[
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
    ],
    *[
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
    ],
    *["the", "variance", "is", "unfavourable", "for", "costs", "and", "concentrated", "in", "the", "third", "quarter"],
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
            sentence = " ".join(rng.choices(WORDS, k=30))
            out.append(sentence.capitalize() + ".\n\n")
            count += 30
    return "".join(out).strip()


@dataclass
class Timing:
    first_delta: float = 0.0
    last_delta: float = 0.0


async def events(text: str, timing: Timing, rate: float, rng: random.Random) -> AsyncIterator[AnalystEvent]:
    for label in ("Describing the dataset…", "Computing variance by Department…"):
        yield ToolStarted("tool", "{}", label)
        await asyncio.sleep(rng.uniform(0.3, 0.8))
        yield ToolFinished("tool", True)
    # token-sized deltas (~4-5 characters) at ``rate`` per second
    pieces = re.findall(r"\S*\s*", text)
    deltas: list[str] = []
    for piece in pieces:
        deltas.extend(piece[i : i + 5] for i in range(0, len(piece), 5))
    start = time.monotonic()
    for i, delta in enumerate(deltas):
        if not delta:
            continue
        if i == 0:
            timing.first_delta = time.monotonic()
        yield TextDelta(delta)
        timing.last_delta = time.monotonic()
        delay = start + (i + 1) / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
    yield Done(text)


async def naive_writer(
    client: AsyncWebClient, channel: str, thread_ts: str, source: AsyncIterator[AnalystEvent], every: int
) -> None:
    resp = await client.chat_postMessage(channel=channel, thread_ts=thread_ts, text="Analyzing…")
    ts = resp["ts"]
    text = ""
    n = 0
    async for event in source:
        if isinstance(event, TextDelta):
            text += event.text
            n += 1
            if n % every == 0:
                with contextlib.suppress(SlackApiError):
                    await client.chat_update(channel=channel, ts=ts, markdown_text=text)
        elif isinstance(event, Done):
            with contextlib.suppress(SlackApiError):
                await client.chat_update(channel=channel, ts=ts, markdown_text=event.final_text)


@dataclass
class Result:
    writer: str
    answers: int
    ratelimited: int = 0
    edits: list[int] = field(default_factory=list)
    first_visible: list[float] = field(default_factory=list)
    to_final: list[float] = field(default_factory=list)
    lost: int = 0
    reposted: int = 0  # finals posted anew (placeholder deleted) because the update window was spent
    wall: float = 0.0


def reassembles(parts: list[str], doc: str) -> bool:
    pattern = r"\s*" + r"\s*".join(re.escape(p) for p in parts) + r"\s*"
    return re.fullmatch(pattern, doc, flags=re.DOTALL) is not None


async def scenario(kind: str, n: int, *, words: int, rate: float, every: int, seed: int) -> Result:
    rng = random.Random(seed)
    texts = [make_answer(rng, words, i) for i in range(n)]
    timings = [Timing() for _ in range(n)]
    result = Result(kind, n)
    async with FakeSlack(limits=FakeSlackLimits()) as slack:
        client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url, timeout=30)
        budget = SlackBudget()
        parents = [slack.add_message(f"C{i:03d}", text=f"question {i}") for i in range(n)]

        async def one(i: int) -> None:
            await asyncio.sleep(rng.uniform(0, 1.0))
            channel, parent = f"C{i:03d}", parents[i].ts
            source = events(texts[i], timings[i], rate, random.Random(seed * 1000 + i))
            if kind == "naive":
                await naive_writer(client, channel, parent, source, every)
            else:
                writer = AnswerWriter(client, budget, team_id=slack.team_id, channel=channel, thread_ts=parent)
                await writer.start()
                await writer.write(source)

        started = time.monotonic()
        await asyncio.gather(*(one(i) for i in range(n)))
        result.wall = time.monotonic() - started
        await budget.aclose()
        result.ratelimited = slack.ratelimited
        for i in range(n):
            channel = f"C{i:03d}"
            thread = [m for m in slack.messages[channel].values() if m.thread_ts == parents[i].ts]
            result.reposted += sum(1 for m in thread if m.deleted)
            msgs = [m for m in slack.thread(channel, parents[i].ts)[1:] if not m.deleted]
            result.edits.append(sum(m.edits for m in msgs))
            head = texts[i][:12]
            shown = [s.time for m in msgs for s in m.history if head in s.visible]
            if shown:
                result.first_visible.append(min(shown) - timings[i].first_delta)
            finals = [m.visible for m in msgs]
            if not reassembles(finals, texts[i]):
                result.lost += 1
                continue
            # when each message last changed (its final state reached Slack)
            result.to_final.append(max(m.history[-1].time for m in msgs) - timings[i].last_delta)
    return result


def pct(values: list[float], q: float) -> str:
    if not values:
        return "   n/a"
    values = sorted(values)
    k = min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))
    return f"{values[k]:6.2f}"


def report(r: Result) -> str:
    edits = statistics.mean(r.edits) if r.edits else 0.0
    return (
        f"{r.writer:<9} {r.answers:>3}  429s {r.ratelimited:>5}  edits/answer {edits:5.1f}  "
        f"first text p50 {pct(r.first_visible, 50)} p95 {pct(r.first_visible, 95)} s  "
        f"final p50 {pct(r.to_final, 50)} p95 {pct(r.to_final, 95)} s  lost {r.lost:>2}/{r.answers}  "
        f"reposted {r.reposted:>2}  wall {r.wall:5.1f} s"
    )


async def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--answers", type=int, nargs="+", default=[5, 20, 50])
    parser.add_argument("--words", type=int, default=400)
    parser.add_argument("--rate", type=float, default=50.0, help="deltas per second per answer")
    parser.add_argument("--naive-every", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-naive", action="store_true")
    args = parser.parse_args(argv)
    print(
        f"Slack limits: chat.update 50/60 s per workspace, chat.postMessage 1/s per channel (burst 3); "
        f"{args.words} words at {args.rate:.0f} deltas/s; naive edits every {args.naive_every} deltas"
    )
    for n in args.answers:
        kinds = ["scheduled"] if args.skip_naive else ["scheduled", "naive"]
        for kind in kinds:
            res = await scenario(kind, n, words=args.words, rate=args.rate, every=args.naive_every, seed=args.seed)
            print(report(res), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
