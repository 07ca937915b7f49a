"""One instance vs two on one Redis: 50 concurrent answers in one fake workspace, through real bot processes.

    python bench/bench_instances.py [--answers 50]

Each answer is a DM carrying a small CSV and a question: the bot reads the file, streams a ~3,000-character
answer from the fake OpenAI server, and ends it. Events go round-robin to the instances. Printed side by side:
Slack 429s, time to the first visible answer text (p50/p95; in any message of the answer, one the writer later
replaces included), time to the final text (p50/p95), and answers lost (not final with the whole text after
180 s). Times are taken on the fake Slack's side (when Slack had the text).
One instance runs as today (no ``REDIS_URL``); two share a real ``redis-server`` started here. The fakes are the
benchmarks' own (``bench/fake_slack.py``, ``bench/fake_openai.py``, ``bench/redis_server.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import time
from pathlib import Path
from tempfile import TemporaryDirectory

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.fake_openai import BenchOpenAI, Turn, text
from bench.fake_slack import BenchSlack, Message
from bench.redis_server import free_port, running_redis

SIGNING_SECRET = "bench-signing-secret-0123456789"
ANSWER = " ".join(f"Line {i}: marketing moved by {i}.00." for i in range(90))
CSV = b"Department,Account,Budget,Actual\nSales,Revenue,1000,1200\nMarketing,Advertising,500,650\n"


def _signed(body: str) -> dict[str, str]:
    import hashlib
    import hmac

    ts = str(int(time.time()))
    signature = hmac.new(SIGNING_SECRET.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"Content-Type": "application/json", "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": "v0=" + signature}


def _responder(_request: dict[str, object]) -> Turn:
    return text(ANSWER, chunk=30, delay=0.05)


async def _start(port: int, env: dict[str, str]) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "serve", "--http", "--host", "127.0.0.1", "--port", str(port),
        env=env, stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    async with asyncio.timeout(90):
        while b'"kind":"start"' not in (line := await process.stderr.readline()):
            if not line:
                raise RuntimeError("the bot exited at start")
    asyncio.get_running_loop().create_task(_drain(process))
    return process


async def _drain(process: asyncio.subprocess.Process) -> None:
    assert process.stderr is not None
    while await process.stderr.readline():
        pass


def _first_visible(message: Message) -> float | None:
    return next((at for at, _, visible in message.states if "Line 0" in visible), None)


def _first_method(messages: list[Message]) -> str | None:
    """The Slack method that first showed the answer's text (a post carries it, or an edit of a placeholder)."""
    shown = [(at, method) for m in messages for at, method, visible in m.states if "Line 0" in visible]
    return min(shown)[1] if shown else None


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def scenario(instances: int, answers: int, redis_url: str | None) -> dict[str, float]:
    async with BenchSlack() as slack, BenchOpenAI(responder=_responder) as openai, aiohttp.ClientSession() as http:
        with TemporaryDirectory() as data:
            env = {
                **os.environ,
                "SLACK_BOT_TOKEN": slack.token,
                "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                "SLACK_API_URL": slack.api_url,
                "OPENAI_API_KEY": "sk-bench",
                "OPENAI_BASE_URL": openai.base_url,
                "VARIANCE_MODEL": "fake-model",
                "VARIANCE_DATA_DIR": data,
                "HOME": data,
                "VARIANCE_USER_MAX_RUNNING": "0",
                "VARIANCE_USER_QUESTIONS_PER_MIN": "0",
                "VARIANCE_WORKSPACE_MAX_RUNNING": "0",
            }
            if redis_url:
                env["REDIS_URL"] = redis_url
            ports = [free_port() for _ in range(instances)]
            processes = await asyncio.gather(
                *(_start(port, {**env, "VARIANCE_INSTANCE_ID": f"bench-{i}"}) for i, port in enumerate(ports))
            )
            try:
                sent: dict[str, float] = {}
                posts = []
                for i in range(answers):
                    channel = f"D{i:07d}"
                    file_obj = slack.add_file(CSV, "q3.csv")
                    message = slack.user_message(channel)
                    event = {
                        "type": "message", "subtype": "file_share", "user": f"U{i:07d}",
                        "text": "why is marketing over?",
                        "ts": message.ts, "event_ts": message.ts, "channel": channel, "channel_type": "im",
                        "team": slack.team_id, "files": [file_obj], "upload": False,
                    }
                    body = json.dumps({
                        "token": "t", "team_id": slack.team_id, "api_app_id": "A0", "type": "event_callback",
                        "event": event, "event_id": f"EvBench{i:06d}", "event_time": int(time.time()),
                    })
                    url = f"http://127.0.0.1:{ports[i % instances]}/slack/events"
                    sent[channel] = time.monotonic()
                    posts.append(http.post(url, data=body, headers=_signed(body)))
                responses = await asyncio.gather(*(_status(p) for p in posts))
                assert all(status == 200 for status in responses), responses

                def answer_in(channel: str) -> Message | None:
                    """The answer's final message: whole, and without its Stop button."""
                    bots = [m for m in slack.messages[channel].values() if m.bot and not m.deleted]
                    return next((m for m in bots if m.done_at is not None and "Line 89:" in m.text), None)

                def first_seen(channel: str) -> float | None:
                    """When text of the answer first showed, in any message (one replaced later counts)."""
                    seen = [_first_visible(m) for m in slack.messages[channel].values() if m.bot]
                    return min((t for t in seen if t is not None), default=None)

                def done() -> bool:
                    return all(answer_in(c) is not None for c in sent)

                deadline = time.monotonic() + 180  # what is not final by then counts as lost
                while not done() and time.monotonic() < deadline:
                    await asyncio.sleep(0.2)
                first, final, lost = [], [], 0
                bots = {c: [m for m in slack.messages[c].values() if m.bot] for c in sent}
                placeholders = sum(
                    1 for ms in bots.values() if ms and ms[0].states and "Line 0" not in ms[0].states[0][2]
                )
                by_edit = sum(1 for ms in bots.values() if _first_method(ms) == "chat.update")
                for channel, at in sent.items():
                    answer, shown = answer_in(channel), first_seen(channel)
                    if answer is None or answer.done_at is None or shown is None:
                        lost += 1
                        continue
                    first.append(shown - at)
                    final.append(answer.done_at - at)
                    if os.environ.get("BENCH_DETAIL"):
                        ms = bots[channel]
                        placeholder_at = ms[0].states[0][0] - at if "Line 0" not in ms[0].states[0][2] else -1.0
                        print(
                            f"{channel} first {shown - at:.2f} by {_first_method(ms)} final {answer.done_at - at:.2f}"
                            f" placeholder_at {placeholder_at:.2f}",
                            file=sys.stderr,
                        )
                return {
                    "429s": slack.ratelimited,
                    "first_p50": _pct(first, 0.5), "first_p95": _pct(first, 0.95),
                    "final_p50": _pct(final, 0.5), "final_p95": _pct(final, 0.95),
                    "lost": lost,
                    "updates": slack.calls["chat.update"],
                    "deletes": slack.calls["chat.delete"],
                    "placeholders": placeholders,
                    "first_by_edit": by_edit,
                }
            finally:
                for process in processes:
                    process.send_signal(signal.SIGTERM)
                await asyncio.gather(*(asyncio.wait_for(p.wait(), 60) for p in processes), return_exceptions=True)


async def _status(post: object) -> int:
    async with post as response:  # type: ignore[attr-defined]
        return int(response.status)


async def main(answers: int) -> None:
    start_load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    one = await scenario(1, answers, None)
    with running_redis() as redis_url:
        two = await scenario(2, answers, redis_url)
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{answers} concurrent answers, one workspace (chat.update 50/min on the fake); times in seconds")
    print(f"load average at the start: {start_load}, at the end: {load} ({os.cpu_count()} CPUs)")
    print(f"{'':28}{'1 instance':>14}{'2 instances + Redis':>22}")
    for label, name, fmt in [
        ("Slack 429s", "429s", "{:.0f}"),
        ("chat.update calls", "updates", "{:.0f}"),
        ("chat.delete calls", "deletes", "{:.0f}"),
        ("placeholders posted", "placeholders", "{:.0f}"),
        ("first text by an edit", "first_by_edit", "{:.0f}"),
        ("first visible text p50", "first_p50", "{:.2f}"),
        ("first visible text p95", "first_p95", "{:.2f}"),
        ("final text p50", "final_p50", "{:.2f}"),
        ("final text p95", "final_p95", "{:.2f}"),
        ("answers lost", "lost", "{:.0f}"),
    ]:
        print(f"{label:28}{fmt.format(one[name]):>14}{fmt.format(two[name]):>22}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=50)
    asyncio.run(main(parser.parse_args().answers))
