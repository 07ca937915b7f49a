"""Teams benchmark: one 1:1 answer's time to first chunk and to final, and 10 concurrent 1:1 chats.

Everything runs as separate processes talking HTTP, as in production: the fake Teams (connector with Teams' real
per-conversation limits and 429s, login, signing keys, TLS file host) together with the fake OpenAI server, started
by path from ``tests/fakes/teams_server.py`` (this script imports nothing from ``tests/``), and the real bot,
``python -m bot teams``. Each chat sends the example CSV with a question; the model asks for one tool, then streams
a ~700-character answer at ~50 deltas/s.

Printed side by side: the model's own streaming time for the same answer (the floor no chat surface can beat) and
what the Teams user sees (first streamed chunk, final message), plus 429s and lost or duplicated answers (target 0).

    .venv/bin/python bench/bench_teams.py
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
FAKE = ROOT / "tests" / "fakes" / "teams_server.py"
EXAMPLE = ROOT / "examples" / "budget_vs_actual.csv"
ANSWER = " ".join(
    [
        "Marketing is over budget by 224,000 for the year so far, almost all of it in Events & Conferences",
        "(+193,449.71, +47.8%) and Travel & Entertainment (+26,938.18, +33.3%).",
        "Paid Advertising is close to plan (+1.9%) and salaries are slightly under (-0.7%).",
        "The overspend is unfavourable because these are expense lines: actual above budget lowers profit.",
        "Events ran hot in Q3: September alone is 60% above its monthly budget, which suggests a conference",
        "that was budgeted in Q4 but paid early. Check the invoice dates before treating it as a permanent",
        "overspend; if it is timing, the full-year projection is on plan.",
    ]
)
CHUNK, DELAY = 6, 0.02


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(0.05)
    raise TimeoutError(what)


class Harness:
    def __init__(self, session: aiohttp.ClientSession, control: str, bot_url: str) -> None:
        self.session, self.control, self.bot_url = session, control, bot_url
        self.csv_b64 = base64.b64encode(EXAMPLE.read_bytes()).decode()

    async def get(self, path: str) -> Any:
        async with self.session.get(self.control + path) as response:
            return await response.json()

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        async with self.session.post(self.control + path, json=body) as response:
            return await response.json()

    async def chat(self, conversation: str, user: str) -> float:
        """Deliver one file + question; returns the fake's clock at delivery."""
        activity = await self.post(
            "/_control/message",
            {
                "text": "why is marketing over budget?",
                "conversation": conversation,
                "user": user,
                "files": [{"name": "budget_vs_actual.csv", "content_b64": self.csv_b64}],
            },
        )
        started = (await self.get("/_control/clock"))["now"]
        result = await self.post("/_control/deliver", {"bot_url": self.bot_url, "activity": activity})
        assert result["status"] == 200, result
        return float(started)

    async def finals(self, conversations: set[str]) -> list[dict[str, Any]]:
        calls = await self.get("/_control/calls")
        done = {c["conversation"] for c in calls if c["kind"] == "final" and c["status"] < 300}
        return calls if conversations <= done else []


def _timings(calls: list[dict[str, Any]], conversation: str, started: float) -> dict[str, Any]:
    mine = [c for c in calls if c["conversation"] == conversation and c["status"] < 300]
    first_chunk = next(c["at"] for c in mine if c["kind"] == "streaming")
    finals = [c for c in mine if c["kind"] == "final"]
    return {
        "first_chunk": first_chunk - started,
        "final": finals[-1]["at"] - started,
        "finals": len(finals),
        "text_ok": finals[-1]["text"].replace("\u200b", "") == ANSWER,
        "calls": len(mine),
    }


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def run(chats: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="bench-teams-"))
    ready = work / "fake.json"
    fake = subprocess.Popen([sys.executable, str(FAKE), "--ready-file", str(ready)], cwd=work)
    bot: subprocess.Popen[bytes] | None = None
    try:
        await _wait(lambda: asyncio.sleep(0, ready.exists()), 60, "fake Teams did not start")
        fake_env = json.loads(ready.read_text())
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TEAMS_", "OPENAI_", "VARIANCE_"))}
        env.update({k: v for k, v in fake_env.items() if k != "control"})
        env.update(
            {
                "OPENAI_API_KEY": "sk-bench",
                "VARIANCE_DATA_DIR": str(work / "data"),
                "PYTHONPATH": str(ROOT),
                "NO_PROXY": "127.0.0.1,localhost",
            }
        )
        bot = subprocess.Popen(
            [sys.executable, "-m", "bot", "teams", "--port", str(port), "--host", "127.0.0.1"],
            cwd=work,
            env=env,
            stderr=subprocess.DEVNULL,
        )
        async with aiohttp.ClientSession() as session:

            async def healthy() -> bool:
                try:
                    async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                        return response.status == 200
                except aiohttp.ClientError:
                    return False

            await _wait(healthy, 120, "the bot did not become healthy")
            h = Harness(session, fake_env["control"], f"http://127.0.0.1:{port}/api/messages")
            await h.post("/_control/script", {"answer": ANSWER, "chunk": CHUNK, "delay": DELAY, "tool": True})
            model_floor = len(ANSWER) / CHUNK * DELAY

            # one chat (a warm-up first, so that process start-up is not measured)
            started = await h.chat("a:warm-up", "user-warm")
            await _wait(lambda: h.finals({"a:warm-up"}), 120, "warm-up answer")
            started = await h.chat("a:single", "user-single")
            calls = await _wait(lambda: h.finals({"a:single"}), 120, "single answer")
            single = _timings(calls, "a:single", started)
            throttled_before = (await h.get("/_control/stats"))["throttled"]

            # N concurrent chats, one user each
            conversations = {f"a:chat-{n}": f"user-{n}" for n in range(chats)}
            starts = await asyncio.gather(*(h.chat(c, u) for c, u in conversations.items()))
            calls = await _wait(lambda: h.finals(set(conversations)), 300, "concurrent answers")
            results = [_timings(calls, c, s) for c, s in zip(conversations, starts, strict=True)]
            stats = await h.get("/_control/stats")

        print(f"Teams 1:1 answers (chunk interval 1.5 s, ~{len(ANSWER)} characters, one tool call)")
        print(f"{'':34}{'model alone':>14}{'first chunk':>14}{'final':>10}")
        print(f"{'one chat':34}{model_floor:>13.2f}s{single['first_chunk']:>13.2f}s{single['final']:>9.2f}s")
        firsts = [r["first_chunk"] for r in results]
        finals = [r["final"] for r in results]
        print(
            f"{f'{chats} concurrent chats, p50':34}{model_floor:>13.2f}s{statistics.median(firsts):>13.2f}s"
            f"{statistics.median(finals):>9.2f}s"
        )
        print(f"{f'{chats} concurrent chats, p95':34}{'':>14}{_pct(firsts, 0.95):>13.2f}s{_pct(finals, 0.95):>9.2f}s")
        lost = sum(1 for r in results if not r["text_ok"])
        doubled = sum(1 for r in results if r["finals"] != 1)
        print(
            f"429s during the concurrent run: {stats['throttled'] - throttled_before}; "
            f"answers lost or not whole: {lost}; answered more than once: {doubled}; "
            f"connector calls per answer: {statistics.mean(r['calls'] for r in results):.1f}"
        )
    finally:
        for process in (bot, fake):
            if process is not None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, default=10)
    args = parser.parse_args()
    asyncio.run(run(args.chats))


if __name__ == "__main__":
    main()
