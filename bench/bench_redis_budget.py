"""What sharing state through Redis costs per call, on a real loopback redis-server, side by side with the
in-process twins in the same run:

- the Slack budget: one ``SharedWindow.acquire`` + ``complete`` (the pacing module's window seam, one round
  trip each) against ``InProcessWindow``;
- the answer limits: ``RedisLimits.admit`` and ``release`` (one script call each) against ``RunLimits``;
- Teams' per-conversation pacing: one ``SharedConversationPacer.acquire`` + ``release`` (one script call each, the
  conversation's log growing to ``--calls`` entries, past Teams' 1,800 an hour) against ``ConversationPacer``.

    python bench/bench_redis_budget.py [--calls 5000]

Starts its own ``redis-server`` (Debian's package) on a free port. Target: p95 < 2 ms per budget call and per
admit + release on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.redis_server import running_redis
from bot.limits import Admission, LimitSettings, RunLimits
from bot.render.pacing import BudgetLimit, InProcessWindow
from bot.state.call_log import SharedCallLog
from bot.state.limits import RedisLimits
from bot.state.redis_client import connect
from bot.state.window import SharedWindow
from bot.teams.pacing import ConversationPacer, SharedConversationPacer


def _percentiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return pick(0.5) * 1000, pick(0.95) * 1000, pick(0.99) * 1000


async def _timed(calls: int, step: Callable[[int], Awaitable[object]]) -> tuple[float, float, float]:
    samples = []
    for i in range(calls):
        start = time.perf_counter()
        await step(i)
        samples.append(time.perf_counter() - start)
    return _percentiles(samples)


async def _measure(calls: int, url: str) -> list[tuple[str, tuple[float, float, float]]]:
    client = connect(url)
    await client.ping()
    rows = []
    limit = BudgetLimit(10**9, 60.0)
    for name, window in (
        ("in-process window acquire+complete (baseline)", InProcessWindow("T1", "chat.update", limit)),
        ("redis window acquire+complete", SharedWindow(client, "T1", "chat.update", limit.limit, limit.window)),
    ):

        async def budget_call(i: int, window: Any = window) -> None:
            token = await window.acquire(float(i), float(limit.limit))
            await window.complete(token, float(i))

        rows.append((name, await _timed(calls, budget_call)))
    off = LimitSettings(0, 0, 0)  # limits off: every admit is admitted, so each one is released
    for label, limits in (("in-process limits", RunLimits(off)), ("redis limits", RedisLimits(client, off))):
        held: list[Admission] = []

        async def admit(i: int, limits: Any = limits, held: list[Admission] = held) -> None:
            held.append(await limits.admit("T1", "U1"))

        async def release(i: int, limits: Any = limits, held: list[Admission] = held) -> None:
            await limits.release(held[i])

        async def both(i: int, limits: Any = limits) -> None:
            await limits.release(await limits.admit("T1", "U1"))

        suffix = " (baseline)" if label.startswith("in-process") else ""
        rows.append((f"{label} admit{suffix}", await _timed(calls, admit)))
        rows.append((f"{label} release{suffix}", await _timed(calls, release)))
        rows.append((f"{label} admit+release{suffix}", await _timed(calls, both)))
    wide = ((10**9, 1.0), (10**9, 3600.0))  # never waits: the figure is the pacer's own cost
    pacers: list[tuple[str, Any]] = [
        ("in-process teams pacer acquire+release (baseline)", ConversationPacer(wide)),
        (
            "redis teams pacer acquire+release",
            SharedConversationPacer(SharedCallLog(client, "bench", wide, margin_s=0.15), wide),
        ),
    ]
    for name, pacer in pacers:

        async def paced_call(i: int, pacer: Any = pacer) -> None:
            await pacer.release(await pacer.acquire("19:bench"))

        rows.append((name, await _timed(calls, paced_call)))
    await client.aclose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=5000)
    args = parser.parse_args()
    with running_redis() as url:
        rows = asyncio.run(_measure(args.calls, url))
    print(f"{'per call':48} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}   ({args.calls} calls each)")
    for name, (p50, p95, p99) in rows:
        print(f"{name:48} {p50:8.3f} {p95:8.3f} {p99:8.3f}")


if __name__ == "__main__":
    main()
