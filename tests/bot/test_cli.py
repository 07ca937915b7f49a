"""``variance-bot serve --http --port N`` as a real process: starts, serves /healthz and signed events, logs a
start line (no secrets), and exits 0 on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
from pathlib import Path

import aiohttp
import pytest

from bot.deps import SHUTDOWN
from tests.bot.bot_under_test import SIGNING_SECRET, base_env, event_envelope, signed_headers, start_serve
from tests.bot.helpers import DM, SMALL_CSV, answers_in, dm_event, final_answers, final_markdown
from tests.fakes.openai_server import FakeOpenAI, text
from tests.fakes.slack_server import FakeSlack

LONG_ANSWER = " ".join(f"Line {i}: marketing moved by {i}.00." for i in range(300))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.timeout(60)
async def test_serve_http_process(tmp_path: Path) -> None:
    async with FakeSlack() as slack, FakeOpenAI() as openai:
        slack.add_channel(DM, is_im=True)
        port = free_port()
        # No grace period: the answer streaming at SIGTERM is cut off and must end with the restart note.
        env = {**os.environ, **base_env(slack, openai, tmp_path), "VARIANCE_SHUTDOWN_GRACE_S": "0"}
        process, seen = await start_serve(env, port, timeout=45)
        assert process.stderr is not None
        try:
            start = json.loads(next(line for line in seen if '"kind":"start"' in line))
            assert start["mode"] == "http" and start["port"] == port and start["team"] == slack.team_id
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    assert resp.status == 200 and (await resp.json())["ok"] is True
                body = json.dumps({"type": "url_verification", "challenge": "abc123", "token": "t"})
                headers = signed_headers(body, content_type="application/json")
                async with http.post(f"http://127.0.0.1:{port}/slack/events", data=body, headers=headers) as resp:
                    assert resp.status == 200 and (await resp.json()) == {"challenge": "abc123"}
                # Malformed and unsigned requests: refused at the door, no traceback.
                async with http.post(f"http://127.0.0.1:{port}/slack/events", data=b"payload=%7B") as resp:
                    assert resp.status == 401
                bad = b"[1]"
                headers = signed_headers(bad.decode(), content_type="application/json")
                async with http.post(f"http://127.0.0.1:{port}/slack/events", data=bad, headers=headers) as resp:
                    assert resp.status == 400
                # An answer streaming when SIGTERM arrives ends with the restart message, not "Stopped".
                file_obj = slack.add_file(SMALL_CSV, name="q3.csv")
                upload = slack.add_message(DM, files=[file_obj])
                await post_event(http, port, dm_event(upload.ts, files=[file_obj]))
                await slack.wait_for(lambda: len(final_answers(slack, DM)) == 1, timeout=30)
                openai.script(text(LONG_ANSWER, chunk=5, delay=0.02))
                question = slack.add_message(DM, text="why is marketing over budget?")
                await post_event(http, port, dm_event(question.ts, "why is marketing over budget?"))
                await slack.wait_for(lambda: "Line 1:" in answers_in(slack, DM)[-1].visible, timeout=30)
        finally:
            process.send_signal(signal.SIGTERM)
            rest = await asyncio.wait_for(process.stderr.read(), timeout=20)
            code = await asyncio.wait_for(process.wait(), timeout=20)
        assert code == 0
        output = "".join(seen) + rest.decode()
        assert slack.bot_token not in output and SIGNING_SECRET not in output
        lines = output.splitlines()
        assert any('"kind":"request"' in line for line in lines)
        assert any('"kind":"access"' in line for line in lines)  # aiohttp's access log, as JSON
        for line in lines:  # every line is one JSON object
            assert isinstance(json.loads(line), dict), line
        assert "Traceback" not in output
        final = answers_in(slack, DM)[-1]
        assert final_markdown(final) is not None and final_markdown(final).startswith("Line 0:")
        assert final_markdown(final).endswith(f"\n\n⚠️ {SHUTDOWN}")


async def post_event(http: aiohttp.ClientSession, port: int, event: dict[str, object]) -> None:
    body = json.dumps(event_envelope(event))
    headers = signed_headers(body, content_type="application/json")
    async with http.post(f"http://127.0.0.1:{port}/slack/events", data=body, headers=headers) as resp:
        assert resp.status == 200
