"""The shared Slack budget's cost per call: one ``RedisWindow.take`` on a real loopback redis-server, side by side
with the in-process window it replaces (the degraded local share), and the answer-limit check.

    python bench/bench_redis_budget.py [--calls 5000]

Starts its own ``redis-server`` (Debian's package) on a free port. Target: Redis take p95 < 2 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from bot.limits import LimitSettings, RunLimits
from bot.state.limits import RedisLimits
from bot.state.redis_client import connect
from bot.state.window import Demand, RedisWindow, Urgency, _LocalWindow


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _percentiles(samples: list[float]) -> tuple[float, float, float]:
    ordered = sorted(samples)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return pick(0.5) * 1000, pick(0.95) * 1000, pick(0.99) * 1000


async def _measure(calls: int, url: str) -> list[tuple[str, tuple[float, float, float]]]:
    client = connect(url)
    window = RedisWindow(client, instance="bench")
    await window.declare("T1", "chat.update", Demand(finals=3, firsts=5))
    local = _LocalWindow(time.monotonic)
    rows = []
    for name, take in (
        ("in-process window (baseline)", lambda i: _sync(local.take("T1", "chat.update", 10**9, 60.0))),
        ("redis window, final", lambda i: window.take("T1", f"m{i % 3}", 10**9, Urgency.FINAL)),
        ("redis window, progress (reads demand)", lambda i: window.take("T1", "chat.update", 10**9, Urgency.PROGRESS)),
    ):
        samples = []
        for i in range(calls):
            start = time.perf_counter()
            await take(i)
            samples.append(time.perf_counter() - start)
        rows.append((name, _percentiles(samples)))
    for name, limits in (
        ("in-process limits (baseline)", RunLimits(LimitSettings(0, 0, 0))),
        ("redis limits admit+release", RedisLimits(client, LimitSettings(0, 0, 0))),
    ):
        samples = []
        for _ in range(calls):
            start = time.perf_counter()
            admission = await limits.admit("T1", "U1")
            await limits.release(admission)
            samples.append(time.perf_counter() - start)
        rows.append((name, _percentiles(samples)))
    await client.aclose()
    return rows


async def _sync(value: float) -> float:
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=5000)
    args = parser.parse_args()
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is not installed (apt-get install redis-server)")
    port = _free_port()
    with tempfile.TemporaryDirectory() as folder:
        server = subprocess.Popen(
            [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", folder],
            stdout=subprocess.DEVNULL,
        )
        try:
            for _ in range(200):
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                    break
                except OSError:
                    time.sleep(0.05)
            rows = asyncio.run(_measure(args.calls, f"redis://127.0.0.1:{port}/0"))
        finally:
            server.terminate()
            server.wait()
    print(f"{'per call':42} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}   ({args.calls} calls each)")
    for name, (p50, p95, p99) in rows:
        print(f"{name:42} {p50:8.3f} {p95:8.3f} {p99:8.3f}")


if __name__ == "__main__":
    main()
