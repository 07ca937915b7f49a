"""Two real bot processes (``variance-bot serve --http``) on one real Redis, against the fake Slack and fake
OpenAI running in this test process: one dedupe, datasets that follow the conversation, Stop through the other
instance, no answer left unfinished when an instance is killed, and ``/metrics`` in Prometheus' format.

The two instances start once for the module; each test uses its own channel so they never see each other's work.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
import pytest_asyncio
from prometheus_client.parser import text_string_to_metric_families
from slack_sdk.web.async_client import AsyncWebClient

from bot.answer_control import HANDED_OVER
from bot.files import SlackFile
from bot.render import AnswerWriter, SlackBudget, WriterSettings
from bot.shared import ORPHANED
from bot.state.redis_client import connect
from bot.state.registry import AnswerRecord, RedisRegistry
from tests.bot.bot_under_test import base_env, event_envelope, signed_headers, start_serve
from tests.bot.helpers import (
    SMALL_CSV,
    TEAM,
    USER,
    answers_in,
    dm_event,
    final_answers,
    final_markdown,
    is_final,
    shown_text,
    stop_button_value,
)
from tests.fakes.openai_server import FakeOpenAI, text, tool_call
from tests.fakes.redis_server import free_port
from tests.fakes.slack_server import FakeMessage, FakeSlack

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(180)]

ME = "U0MEMORY"
LONG_ANSWER = " ".join(f"Line {i}: marketing moved by {i}.00." for i in range(400))
RERUN_ANSWER = "Marketing is over budget by 300.00 in Q3: events and paid social."


@dataclass
class Instance:
    """One ``variance-bot serve --http`` process, and how to reach it like Slack does."""

    name: str
    port: int
    process: asyncio.subprocess.Process
    http: aiohttp.ClientSession

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def post_signed(self, body: str, *, content_type: str, headers: dict[str, str] | None = None) -> int:
        all_headers = signed_headers(body, content_type=content_type)
        all_headers.update(headers or {})
        async with self.http.post(f"{self.url}/slack/events", data=body.encode(), headers=all_headers) as resp:
            return resp.status

    async def send_event(self, event: dict[str, Any], *, event_id: str | None = None, retry: int | None = None) -> int:
        body = json.dumps(event_envelope(event, event_id=event_id))
        headers = {"X-Slack-Retry-Num": str(retry), "X-Slack-Retry-Reason": "http_timeout"} if retry else None
        return await self.post_signed(body, content_type="application/json", headers=headers)

    async def click_stop(self, slack: FakeSlack, answer_id: str, *, channel: str, message_ts: str) -> int:
        payload = {
            "type": "block_actions",
            "user": {"id": USER, "username": "controller", "name": "controller", "team_id": TEAM},
            "api_app_id": "A0VARIANCE",
            "token": "legacy-verification-token",
            "container": {"type": "message", "message_ts": message_ts, "channel_id": channel},
            "trigger_id": "1.1.def",
            "team": {"id": TEAM, "domain": "finance"},
            "channel": {"id": channel, "name": "directmessage"},
            "message": {"type": "message", "ts": message_ts, "bot_id": "BBOT", "text": "..."},
            "response_url": slack.new_response_url(),
            "actions": [
                {
                    "action_id": "stop_answer",
                    "block_id": "answer_controls",
                    "value": answer_id,
                    "type": "button",
                    "action_ts": "1.0",
                }
            ],
        }
        body = urlencode({"payload": json.dumps(payload)})
        return await self.post_signed(body, content_type="application/x-www-form-urlencoded")

    async def metrics(self) -> str:
        async with self.http.get(f"{self.url}/metrics") as resp:
            assert resp.status == 200
            return await resp.text()


async def start_instance(name: str, env: dict[str, str], http: aiohttp.ClientSession) -> Instance:
    port = free_port()
    process, _ = await start_serve({**env, "VARIANCE_INSTANCE_ID": name}, port)
    instance = Instance(name, port, process, http)
    # Keep reading its log so the pipe never fills up and blocks the process.
    instance.log_reader = asyncio.get_running_loop().create_task(_drain(process))  # type: ignore[attr-defined]
    return instance


async def _drain(process: asyncio.subprocess.Process) -> None:
    assert process.stderr is not None
    while line := await process.stderr.readline():
        if os.environ.get("VARIANCE_TEST_ECHO") and (b'"orphan"' in line or b'"error"' in line or b"Trace" in line):
            sys.stderr.write(line.decode()[:400])


async def stop_instance(instance: Instance) -> None:
    if instance.process.returncode is None:
        instance.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(instance.process.wait(), timeout=30)
        except TimeoutError:
            instance.process.kill()
            await instance.process.wait()
    instance.log_reader.cancel()  # type: ignore[attr-defined]


@dataclass
class Cluster:
    slack: FakeSlack
    openai: FakeOpenAI
    a: Instance
    b: Instance
    env: dict[str, str]
    http: aiohttp.ClientSession


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def cluster(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Cluster]:
    async with FakeSlack() as slack, FakeOpenAI() as openai, aiohttp.ClientSession() as http:
        # 40 answers at once in one workspace: the workspace's running-answers limit is off for this module.
        env = {
            **os.environ,
            **base_env(slack, openai, tmp_path_factory.mktemp("a")),
            "REDIS_URL": redis_url,
            "VARIANCE_WORKSPACE_MAX_RUNNING": "0",
        }
        env_b = {**env, **base_env(slack, openai, tmp_path_factory.mktemp("b")), "REDIS_URL": redis_url}
        a, b = await asyncio.gather(start_instance("bot-a", env, http), start_instance("bot-b", env_b, http))
        try:
            yield Cluster(slack, openai, a, b, env, http)
        finally:
            await asyncio.gather(stop_instance(a), stop_instance(b))


def descendants(root: int) -> list[int]:
    """Every process below ``root`` (its worker pool, the pool's fork server and its workers), from /proc."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found, frontier = [], [root]
    while frontier:
        parent = frontier.pop()
        kids = [pid for pid, ppid in parents.items() if ppid == parent]
        found.extend(kids)
        frontier.extend(kids)
    return found


def upload(slack: FakeSlack, channel: str) -> tuple[dict[str, Any], Any]:
    file_obj = slack.add_file(SMALL_CSV, name="q3.csv")
    return file_obj, slack.add_message(channel, files=[file_obj])


async def test_a_retry_delivered_to_the_other_instance_is_answered_once(cluster: Cluster) -> None:
    slack = cluster.slack
    channel = "D0RETRY"
    slack.add_channel(channel, is_im=True)
    file_obj, message = upload(slack, channel)
    event = dm_event(message.ts, files=[file_obj], channel=channel)
    assert await cluster.a.send_event(event, event_id="EvRETRY0001") == 200
    assert await cluster.b.send_event(event, event_id="EvRETRY0001", retry=1) == 200  # Slack's retry, elsewhere
    # The same message as a second event (a new event id) reaching the other instance: channel + ts dedupe.
    assert await cluster.b.send_event(event, event_id="EvRETRY0002") == 200
    await slack.wait_for(lambda: len(final_answers(slack, channel)) == 1, timeout=60)
    posts = [c for c in slack.calls_of("chat.postMessage") if c.params.get("channel") == channel]
    assert len(answers_in(slack, channel)) == 1 and len(posts) == 1


async def test_a_follow_up_on_the_other_instance_uses_the_dataset(cluster: Cluster) -> None:
    slack, openai = cluster.slack, cluster.openai
    channel = "D0FOLLOW"
    slack.add_channel(channel, is_im=True)
    file_obj, message = upload(slack, channel)
    assert await cluster.a.send_event(dm_event(message.ts, files=[file_obj], channel=channel)) == 200
    await slack.wait_for(lambda: len(final_answers(slack, channel)) == 1, timeout=60)
    # The question reaches the other instance, which never read the file: it reads it again from its source.
    openai.script(tool_call("describe_dataset", {}), text("Sales beat the plan by 200."))
    before = len(openai.requests)
    question = slack.add_message(channel, text="why is sales over?")
    assert await cluster.b.send_event(dm_event(question.ts, "why is sales over?", channel=channel)) == 200
    await slack.wait_for(lambda: len(final_answers(slack, channel)) == 2, timeout=60)
    final = final_answers(slack, channel)[-1]
    assert final_markdown(final) is not None and "Sales beat the plan by 200." in (final_markdown(final) or "")
    outputs = [
        item.get("output", "")
        for request in openai.requests[before:]
        for item in request.json.get("input", [])
        if isinstance(item, dict) and item.get("type") == "function_call_output"
    ]
    assert any("Engineering" in str(output) and "Marketing" in str(output) for output in outputs), outputs


async def test_stop_through_the_other_instance_stops_the_run(cluster: Cluster) -> None:
    slack, openai = cluster.slack, cluster.openai
    channel = "D0STOP"
    slack.add_channel(channel, is_im=True)
    file_obj, message = upload(slack, channel)
    assert await cluster.a.send_event(dm_event(message.ts, files=[file_obj], channel=channel)) == 200
    await slack.wait_for(lambda: len(final_answers(slack, channel)) == 1, timeout=60)
    openai.script(text(LONG_ANSWER, chunk=5, delay=0.05))
    question = slack.add_message(channel, text="walk me through every line")
    assert await cluster.a.send_event(dm_event(question.ts, "walk me through every line", channel=channel)) == 200
    await slack.wait_for(
        lambda: len(answers_in(slack, channel)) == 2 and "Line 1:" in answers_in(slack, channel)[-1].visible,
        timeout=60,
    )
    live = answers_in(slack, channel)[-1]
    answer_id = stop_button_value(live)
    assert answer_id is not None
    assert await cluster.b.click_stop(slack, answer_id, channel=channel, message_ts=live.ts) == 200
    await slack.wait_for(lambda: is_final(answers_in(slack, channel)[-1]), timeout=60)
    final = answers_in(slack, channel)[-1]
    assert final_markdown(final) is not None and (final_markdown(final) or "").rstrip().endswith("_Stopped._")
    assert "Line 399:" not in (final_markdown(final) or "")  # stopped mid-way, not finished


async def test_metrics_parse_on_both_instances(cluster: Cluster) -> None:
    slack = cluster.slack
    channel = "D0METRICS"
    slack.add_channel(channel, is_im=True)
    file_obj, message = upload(slack, channel)
    assert await cluster.a.send_event(dm_event(message.ts, files=[file_obj], channel=channel)) == 200
    await slack.wait_for(lambda: len(final_answers(slack, channel)) == 1, timeout=60)
    for instance in (cluster.a, cluster.b):
        families = {family.name: family for family in text_string_to_metric_families(await instance.metrics())}
        for name in (
            "variance_answers",
            "variance_first_visible_seconds",
            "variance_final_seconds",
            "variance_file_read_seconds",
            "variance_slack_calls",
            "variance_running_answers",
            "variance_model_tokens",
        ):
            assert name in families, name
    families = {f.name: f for f in text_string_to_metric_families(await cluster.a.metrics())}
    calls = {
        (s.labels["method"], s.labels["status"])
        for s in families["variance_slack_calls"].samples
        if s.name.endswith("_total")
    }
    assert ("chat.postMessage", "ok") in calls
    answered = sum(s.value for s in families["variance_answers"].samples if s.name.endswith("_total"))
    assert answered >= 1


@pytest.mark.timeout(300)
async def test_forty_concurrent_answers_over_both_instances_meet_no_429(cluster: Cluster) -> None:
    slack, openai = cluster.slack, cluster.openai
    answer = " ".join(f"Part {i}: marketing moved by {i}.00." for i in range(60))
    openai.script(*[text(answer, chunk=20, delay=0.05) for _ in range(40)])
    first_call = len(slack.calls)
    channels = []
    for i in range(40):
        channel = f"D0LOAD{i:02d}"
        slack.add_channel(channel, is_im=True)
        file_obj = slack.add_file(SMALL_CSV, name="q3.csv")
        message = slack.add_message(channel, files=[file_obj], text="why is marketing over?")
        event = dm_event(message.ts, "why is marketing over?", files=[file_obj], channel=channel, user=f"U0LOAD{i:02d}")
        channels.append((channel, event))
    statuses = await asyncio.gather(
        *((cluster.a if i % 2 else cluster.b).send_event(event) for i, (_, event) in enumerate(channels))
    )
    assert statuses == [200] * 40
    await slack.wait_for(lambda: all(len(final_answers(slack, channel)) == 1 for channel, _ in channels), timeout=170)
    for channel, _ in channels:  # nothing lost: every answer ends with its whole text
        final = final_answers(slack, channel)[0]
        assert final_markdown(final) is not None and "Part 59:" in (final_markdown(final) or "")
    limited = [c.method for c in slack.calls[first_call:] if c.status == 429]
    assert limited == []
    # It streamed: (nearly) every answer showed part of its text before the whole (in any of its messages,
    # a placeholder replaced by a post included); how fast is bench/bench_instances.py's figure.
    streamed = [channel for channel, _ in channels if _partial_before_whole(slack, channel, "Part 0:", "Part 59:")]
    assert len(streamed) >= 38, f"{40 - len(streamed)} answers showed no text before the whole answer"


def _partial_before_whole(slack: FakeSlack, channel: str, start: str, end: str) -> bool:
    """Whether Slack showed ``start`` without ``end`` in the channel's bot messages before it first showed ``end``."""
    states = sorted((s.time, s.visible) for m in slack.bot_messages(channel) for s in m.history)
    whole = next((at for at, visible in states if end in visible), None)
    return whole is not None and any(start in visible and end not in visible and at < whole for at, visible in states)


async def kill(instance: Instance) -> None:
    """SIGKILL of the whole instance (as a dead pod: its file-reading workers die with it): no chance to write a
    final state, or to say anything to Redis."""
    for pid in [instance.process.pid, *descendants(instance.process.pid)]:
        os.kill(pid, signal.SIGKILL)
    await asyncio.wait_for(instance.process.wait(), timeout=30)


async def test_an_instance_killed_mid_answer_is_re_run_into_the_same_message(cluster: Cluster, redis_url: str) -> None:
    slack, openai = cluster.slack, cluster.openai
    channel = "D0KILL"
    slack.add_channel(channel, is_im=True)
    victim = await start_instance("bot-victim", cluster.env, cluster.http)
    try:
        file_obj, message = upload(slack, channel)
        assert await victim.send_event(dm_event(message.ts, files=[file_obj], channel=channel)) == 200
        await slack.wait_for(lambda: len(final_answers(slack, channel)) == 1, timeout=60)
        # The victim streams a long answer; the survivor that re-runs the question gets the next turn.
        openai.script(text(LONG_ANSWER, chunk=5, delay=0.1), text(RERUN_ANSWER, chunk=20))
        question = slack.add_message(channel, text="walk me through every line")
        assert await victim.send_event(dm_event(question.ts, "walk me through every line", channel=channel)) == 200
        await slack.wait_for(
            lambda: len(answers_in(slack, channel)) == 2 and "Line 1:" in answers_in(slack, channel)[-1].visible,
            timeout=60,
        )
        live = answers_in(slack, channel)[-1]
        await kill(victim)
        assert not is_final(slack.messages[channel][live.ts])
        # A survivor notices the lease ran out, reads the file again and answers in the same message; when the
        # workspace's edit window is spent (the load test before this one spent it), the final is reposted in
        # its place instead (the live message deleted), as every final is: either way one answer, final.
        first = answers_in(slack, channel)[0].ts
        await slack.wait_for(
            lambda: len(answers_in(slack, channel)) == 2 and all(is_final(m) for m in answers_in(slack, channel)),
            timeout=60,
        )
        final = answers_in(slack, channel)[-1]
        assert final.ts == live.ts or slack.messages[channel][live.ts].deleted
        assert RERUN_ANSWER in (final_markdown(final) or "")
        assert "Line 1:" not in (final_markdown(final) or "") and ORPHANED not in (final_markdown(final) or "")
        assert answers_in(slack, channel)[0].ts == first
        # The conversation's history holds the question once (what the dead run stored went before the re-run).
        client = connect(redis_url)
        try:
            stored = await client.lrange(f"va:session:{TEAM}:{channel}:messages", 0, -1)
        finally:
            await client.aclose()
        assert sum("walk me through every line" in item for item in stored) == 1
        assert sum(RERUN_ANSWER in item for item in stored) == 1 and not any("Line 1:" in item for item in stored)
    finally:
        await stop_instance(victim)


def left_by_a_dead_instance(answer_id: str, channel: str, **fields: Any) -> AnswerRecord:
    """The running-answer record an instance ("bot-gone") leaves for a DM question when it dies."""
    return AnswerRecord(
        answer_id, "bot-gone", TEAM, channel, f"{TEAM}:{channel}", "dm",
        user=USER, question="why is marketing over?", **fields,
    )


@pytest.mark.parametrize(
    "why, source, adoptions",
    [
        ("no dataset source", None, 0),
        (
            "re-run once already",
            {
                "id": "F0GONE",
                "name": "q3.csv",
                "filetype": "csv",
                "size": None,
                "download_url": None,
                "needs_info": True,
            },
            1,
        ),
    ],
)
async def test_an_orphan_that_cannot_be_re_run_gets_the_note(
    cluster: Cluster, redis_url: str, why: str, source: dict[str, Any] | None, adoptions: int
) -> None:
    slack, openai = cluster.slack, cluster.openai
    channel = f"D0NOTE{adoptions}"
    slack.add_channel(channel, is_im=True)
    requests_before = len(openai.requests)
    # What an instance leaves when it dies: a live message (Stop button) and its record, never renewed again.
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    budget = SlackBudget()
    writer = AnswerWriter(client, budget, team_id=TEAM, channel=channel, settings=WriterSettings(placeholder_after=0))
    ts = await writer.start()
    # It had overflowed into a second message (a reply under the first, with the answer's marker).
    continued = await writer.door.post({"text": "Line 300: marketing moved by 300.00."}, part=1, thread_ts=ts)
    redis = connect(redis_url)
    try:
        gone = RedisRegistry(redis, instance="bot-gone", lease_s=0.5)
        record = left_by_a_dead_instance(writer.answer_id, channel, source=source, adoptions=adoptions)
        await gone.add(record)
        await gone.placed(writer.answer_id, ts)
        assert not is_final(slack.messages[channel][ts])
        await slack.wait_for(lambda: is_final(slack.messages[channel][ts]), timeout=60)
        assert ORPHANED in (final_markdown(slack.messages[channel][ts]) or ""), why
        assert slack.messages[channel][continued].deleted and [m.ts for m in answers_in(slack, channel)] == [ts]
        assert len(openai.requests) == requests_before  # nothing was re-run
        async with asyncio.timeout(10):  # the record goes once the note is written
            while await gone.get(writer.answer_id) is not None:
                await asyncio.sleep(0.05)
    finally:
        await budget.aclose()
        await redis.aclose()


async def test_an_orphan_whose_first_post_was_never_recorded_is_found_and_re_run(
    cluster: Cluster, redis_url: str
) -> None:
    slack, openai = cluster.slack, cluster.openai
    channel = "D0UNRECORDED"
    slack.add_channel(channel, is_im=True)
    file_obj, _ = upload(slack, channel)
    openai.script(text(RERUN_ANSWER, chunk=20))
    # An instance died between its first post landing and recording it: the registry knows no message.
    client = AsyncWebClient(token=slack.bot_token, base_url=slack.api_url)
    budget = SlackBudget()
    redis = connect(redis_url)
    try:
        gone = RedisRegistry(redis, instance="bot-gone", lease_s=0.5)
        record = left_by_a_dead_instance(
            "0123456789abcdef", channel, source=asdict(SlackFile.from_object(file_obj)), asked_at=time.time()
        )
        await gone.add(record)
        writer = AnswerWriter(
            client,
            budget,
            team_id=TEAM,
            channel=channel,
            answer_id=record.answer_id,
            settings=WriterSettings(placeholder_after=0),
        )
        ts = await writer.start()
        await slack.wait_for(lambda: is_final(slack.messages[channel][ts]), timeout=60)
        assert RERUN_ANSWER in (final_markdown(slack.messages[channel][ts]) or "")
        assert [m.ts for m in answers_in(slack, channel)] == [ts]  # found by its marker, not posted again
    finally:
        await budget.aclose()
        await redis.aclose()


async def test_sigterm_hands_over_an_answer_that_outlasts_the_grace(cluster: Cluster) -> None:
    slack, openai = cluster.slack, cluster.openai
    channel = "D0HANDOVER"
    slack.add_channel(channel, is_im=True)
    leaving = await start_instance("bot-leaving-fast", {**cluster.env, "VARIANCE_SHUTDOWN_GRACE_S": "1"}, cluster.http)
    try:
        openai.script(text(LONG_ANSWER, chunk=5, delay=0.1), text(RERUN_ANSWER, chunk=20))
        file_obj = slack.add_file(SMALL_CSV, name="q3.csv")
        message = slack.add_message(channel, files=[file_obj], text="walk me through every line")
        event = dm_event(message.ts, "walk me through every line", files=[file_obj], channel=channel)
        assert await leaving.send_event(event) == 200
        await slack.wait_for(lambda: any("Line 1:" in m.visible for m in answers_in(slack, channel)), timeout=60)
        [live] = answers_in(slack, channel)
        leaving.process.send_signal(signal.SIGTERM)  # the answer takes far longer than the grace
        assert await asyncio.wait_for(leaving.process.wait(), timeout=60) == 0
        # It ended saying it continues (markdown only, no Stop button left behind): by a final edit, or, when the
        # workspace's edit window is spent, by a final posted in its place (the live message deleted). A survivor
        # may be rewriting it already, so the messages' histories tell.
        states = [state for m in slack.bot_messages(channel) for state in m.history]
        assert any(HANDED_OVER in (state.markdown_text or "") and not state.blocks for state in states)
        # ... and a survivor re-runs the question into that message (or, the window spent, a final in its place):
        # one answer left, final.
        def rerun_final() -> FakeMessage | None:
            shown = answers_in(slack, channel)
            return shown[0] if len(shown) == 1 and is_final(shown[0]) and RERUN_ANSWER in shown_text(shown[0]) else None

        await slack.wait_for(lambda: rerun_final() is not None, timeout=90)
        final = rerun_final()
        assert final is not None and (final.ts == live.ts or slack.messages[channel][live.ts].deleted)
        assert HANDED_OVER not in (final_markdown(final) or "")
    finally:
        await stop_instance(leaving)


async def test_sigterm_lets_a_running_answer_finish(cluster: Cluster) -> None:
    slack, openai = cluster.slack, cluster.openai
    channel = "D0DRAIN"
    slack.add_channel(channel, is_im=True)
    leaving = await start_instance("bot-leaving", {**cluster.env, "VARIANCE_SHUTDOWN_GRACE_S": "60"}, cluster.http)
    try:
        answer = " ".join(f"Step {i}: marketing moved by {i}.00." for i in range(60))
        openai.script(text(answer, chunk=20, delay=0.1))
        file_obj = slack.add_file(SMALL_CSV, name="q3.csv")
        message = slack.add_message(channel, files=[file_obj], text="walk me through it")
        event = dm_event(message.ts, "walk me through it", files=[file_obj], channel=channel)
        assert await leaving.send_event(event) == 200
        await slack.wait_for(lambda: any("Step 1:" in m.visible for m in answers_in(slack, channel)), timeout=60)
        leaving.process.send_signal(signal.SIGTERM)  # a rolling deploy: the answer may finish first
        assert await asyncio.wait_for(leaving.process.wait(), timeout=90) == 0
        final = final_answers(slack, channel)
        assert len(final) == 1 and "Step 59:" in (final_markdown(final[0]) or "")
    finally:
        await stop_instance(leaving)


async def send_command(instance: Instance, slack: FakeSlack, text_: str, *, channel: str, user: str) -> str:
    """``/variance TEXT`` through ``instance``; the ephemeral reply's text."""
    url = slack.new_response_url()
    form = {
        "token": "legacy-verification-token", "team_id": TEAM, "team_domain": "finance", "channel_id": channel,
        "channel_name": "directmessage", "user_id": user, "user_name": "controller", "command": "/variance",
        "text": text_, "api_app_id": "A0VARIANCE", "is_enterprise_install": "false", "response_url": url,
        "trigger_id": "7.1.abc",
    }
    assert await instance.post_signed(urlencode(form), content_type="application/x-www-form-urlencoded") == 200
    await slack.wait_for(lambda: len(slack.responses[url]) == 1, timeout=30)
    return str(slack.responses[url][0]["text"])


def model_input(request: Any) -> str:
    """Everything a request to the model carried as input (earlier turns included), as one text."""
    return json.dumps(request.json.get("input", []))


async def test_a_follow_up_on_the_other_instance_sees_the_earlier_turns_and_overrides(
    cluster: Cluster, redis_url: str
) -> None:
    slack, openai = cluster.slack, cluster.openai
    channel = "D0MEMORY"
    # A person of its own: the questions-per-minute limit is counted across instances, and across this module.
    slack.add_channel(channel, is_im=True)
    file_obj, message = upload(slack, channel)
    assert await cluster.a.send_event(dm_event(message.ts, files=[file_obj], channel=channel, user=ME)) == 200
    await slack.wait_for(lambda: len(final_answers(slack, channel)) == 1, timeout=60)

    # On instance a: a question that makes an override.
    first = "treat Advertising as revenue please"
    openai.script(
        tool_call("set_account_type", {"assignments": [{"label": "Advertising", "type": "revenue"}]}),
        text("Done: Advertising now counts as revenue."),
    )
    asked = slack.add_message(channel, text=first)
    assert await cluster.a.send_event(dm_event(asked.ts, first, channel=channel, user=ME)) == 200
    await slack.wait_for(lambda: len(final_answers(slack, channel)) == 2, timeout=60)
    assert "Advertising counted as revenue" in (final_markdown(final_answers(slack, channel)[-1]) or "")

    # The follow-up reaches instance b (own data folder, never saw the conversation).
    openai.script(text("Marketing is 100 over in total."))
    before = len(openai.requests)
    follow = "and marketing overall?"
    asked = slack.add_message(channel, text=follow)
    assert await cluster.b.send_event(dm_event(asked.ts, follow, channel=channel, user=ME)) == 200
    await slack.wait_for(lambda: len(final_answers(slack, channel)) == 3, timeout=60)
    sent = model_input(openai.requests[before])
    assert first in sent and "Done: Advertising now counts as revenue." in sent and follow in sent
    # The override made on a shapes b's answer too, and says so.
    assert "Advertising counted as revenue" in (final_markdown(final_answers(slack, channel)[-1]) or "")

    # A reset through b clears the override for a as well.
    assert "Cleared your overrides" in await send_command(cluster.b, slack, "reset", channel=channel, user=ME)
    openai.script(text("Plain numbers again."))
    asked = slack.add_message(channel, text="and now?")
    assert await cluster.a.send_event(dm_event(asked.ts, "and now?", channel=channel, user=ME)) == 200
    await slack.wait_for(lambda: len(final_answers(slack, channel)) == 4, timeout=60)
    assert "overrides" not in (final_markdown(final_answers(slack, channel)[-1]) or "")

    # /variance forget on a deletes the shared history: b's next question carries none of it.
    client = connect(redis_url)
    try:
        assert await client.exists(f"va:session:{TEAM}:{channel}:messages")
        receipt = await send_command(cluster.a, slack, "forget", channel=channel, user=ME)
        assert "stored item" in receipt.replace("\u200b", "")
        assert not await client.exists(f"va:session:{TEAM}:{channel}:messages")
    finally:
        await client.aclose()
    openai.script(text("Starting fresh."))
    before = len(openai.requests)
    asked = slack.add_message(channel, files=[file_obj], text="what stands out?")
    event = dm_event(asked.ts, "what stands out?", files=[file_obj], channel=channel, user=ME)
    assert await cluster.b.send_event(event) == 200
    await slack.wait_for(lambda: len(final_answers(slack, channel)) == 5, timeout=60)
    assert first not in model_input(openai.requests[before]) and follow not in model_input(openai.requests[before])
