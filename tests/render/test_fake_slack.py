"""The fake Slack server itself: the protocol details the writer and the app rely on."""

from __future__ import annotations

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack_server import FakeSlack, FakeSlackLimits


def client_for(slack: FakeSlack, token: str | None = None, **kwargs: object) -> AsyncWebClient:
    return AsyncWebClient(token=token or slack.bot_token, base_url=slack.api_url, **kwargs)  # type: ignore[arg-type]


async def test_auth_and_post_update_history() -> None:
    async with FakeSlack() as slack:
        client = client_for(slack)
        auth = await client.auth_test()
        assert auth["team_id"] == "T0001" and auth["bot_id"] == "BBOT"
        with pytest.raises(SlackApiError) as err:
            await client_for(slack, "xoxb-wrong").auth_test()
        assert err.value.response["error"] == "invalid_auth"

        first = await client.chat_postMessage(channel="C1", text="Analyzing…")
        second = await client.chat_postMessage(channel="C1", text="x", thread_ts=first["ts"])
        assert float(second["ts"]) > float(first["ts"])
        await client.chat_update(channel="C1", ts=first["ts"], markdown_text="**hello**")
        msg = slack.messages["C1"][first["ts"]]
        assert [s.visible for s in msg.history] == ["Analyzing…", "**hello**"]
        assert msg.edits == 1
        assert [m.ts for m in slack.thread("C1", first["ts"])] == [first["ts"], second["ts"]]
        with pytest.raises(SlackApiError) as err:
            await client.chat_update(channel="C1", ts="1.000000", text="x")
        assert err.value.response["error"] == "message_not_found"


async def test_size_limits_and_argument_rules() -> None:
    async with FakeSlack() as slack:
        client = client_for(slack)
        ts = (await client.chat_postMessage(channel="C1", text="p"))["ts"]
        cases = [
            ({"text": "x" * 4001}, "msg_too_long"),
            ({"markdown_text": "x" * 12_001}, "msg_too_long"),
            ({"markdown_text": "a", "text": "b"}, "invalid_arguments"),
            ({"markdown_text": "a", "blocks": [{"type": "divider"}]}, "invalid_arguments"),
            ({"blocks": [{"type": "divider"}] * 51}, "invalid_blocks"),
            ({"blocks": [{"type": "markdown", "text": "x" * 6001}] * 2}, "invalid_blocks"),
        ]
        for kwargs, error in cases:
            with pytest.raises(SlackApiError) as err:
                await client.chat_update(channel="C1", ts=ts, **kwargs)  # type: ignore[arg-type]
            assert err.value.response["error"] == error, kwargs
        # A markdown block with a text fallback is fine.
        blocks = [{"type": "markdown", "text": "*a*"}]
        await client.chat_update(channel="C1", ts=ts, text="fallback", blocks=blocks)
        assert slack.messages["C1"][ts].visible == "*a*"
        await client.chat_postMessage(channel="C1", text="x" * 39_000)


async def test_rate_limit_window_gives_429_with_retry_after() -> None:
    limits = FakeSlackLimits.scaled(update_limit=3, update_window=2.0)
    async with FakeSlack(limits=limits) as slack:
        client = client_for(slack)
        ts = (await client.chat_postMessage(channel="C1", text="p"))["ts"]
        for i in range(3):
            await client.chat_update(channel="C1", ts=ts, text=str(i))
        with pytest.raises(SlackApiError) as err:
            await client.chat_update(channel="C1", ts=ts, text="too many")
        assert err.value.response.status_code == 429
        assert err.value.response["error"] == "ratelimited"
        assert int(err.value.response.headers["retry-after"]) >= 1
        assert slack.ratelimited == 1
        assert slack.messages["C1"][ts].visible == "2"


async def test_post_message_per_channel_bucket() -> None:
    async with FakeSlack(limits=FakeSlackLimits(post_burst=2)) as slack:
        client = client_for(slack)
        await client.chat_postMessage(channel="C1", text="a")
        await client.chat_postMessage(channel="C1", text="b")
        await client.chat_postMessage(channel="C2", text="other channel is fine")
        with pytest.raises(SlackApiError) as err:
            await client.chat_postMessage(channel="C1", text="c")
        assert err.value.response.status_code == 429


async def test_faults_and_handler_override() -> None:
    async with FakeSlack() as slack:
        client = client_for(slack, retry_handlers=[])
        slack.inject("chat.postMessage", status=500, times=2)
        for _ in range(2):
            with pytest.raises(SlackApiError) as err:
                await client.chat_postMessage(channel="C1", text="a")
            assert err.value.response.status_code == 500
        await client.chat_postMessage(channel="C1", text="a")
        slack.inject("chat.postMessage", drop_connection=True, apply=True)
        with pytest.raises(aiohttp.ClientError):
            await client.chat_postMessage(channel="C1", text="went through")
        assert [m.visible for m in slack.bot_messages("C1")] == ["a", "went through"]
        slack.inject("chat.update", error="ratelimited", retry_after=3)
        with pytest.raises(SlackApiError) as err:
            await client.chat_update(channel="C1", ts=slack.bot_messages("C1")[0].ts, text="z")
        assert err.value.response.headers["retry-after"] == "3"

        async def not_member(slack: FakeSlack, method: str, params: dict, team: str) -> dict | None:
            return {"ok": False, "error": "not_in_channel"} if params.get("channel") == "C9" else None

        slack.add_handler("chat.postMessage", not_member)
        with pytest.raises(SlackApiError) as err:
            await client.chat_postMessage(channel="C9", text="a")
        assert err.value.response["error"] == "not_in_channel"
        await client.chat_postMessage(channel="C1", text="still fine")


async def test_files_need_the_token_and_replies_show_them() -> None:
    async with FakeSlack() as slack:
        client = client_for(slack)
        f = slack.add_file(b"a,b\n1,2\n", name="q3.csv")
        parent = slack.add_message("C1", text="look", files=[f])
        got = await client.conversations_replies(channel="C1", ts=parent.ts)
        assert got["messages"][0]["files"][0]["id"] == f["id"]
        assert (await client.files_info(file=f["id"]))["file"]["name"] == "q3.csv"
        async with aiohttp.ClientSession() as http:
            async with http.get(f["url_private_download"]) as resp:
                assert resp.status == 200 and "html" in resp.content_type
            headers = {"Authorization": f"Bearer {slack.bot_token}"}
            async with http.get(f["url_private_download"], headers=headers) as resp:
                assert await resp.read() == b"a,b\n1,2\n"
            url = slack.new_response_url()
            async with http.post(url, json={"text": "hi", "response_type": "ephemeral"}) as resp:
                assert resp.status == 200
        assert slack.responses[url] == [{"text": "hi", "response_type": "ephemeral"}]
        slack.add_channel("C5", is_member=False)
        info = await client.conversations_info(channel="C5")
        assert info["channel"]["is_member"] is False
        with pytest.raises(SlackApiError) as err:
            await client.chat_postMessage(channel="C5", text="x")
        assert err.value.response["error"] == "not_in_channel"
        await slack.wait_for(lambda: len(slack.calls) == 4, timeout=1)
        with pytest.raises(TimeoutError):
            await slack.wait_for(lambda: False, timeout=0.1)


async def test_native_streams_follow_slacks_rules() -> None:
    limits = FakeSlackLimits()
    limits.method_windows["chat.startStream"] = (4, 60.0)  # refused calls count too
    async with FakeSlack(limits=limits) as slack:
        client = client_for(slack)
        parent = slack.add_message("C1", text="q")
        dm_parent = slack.add_message("D1", text="q")
        with pytest.raises(SlackApiError) as err:  # outside a DM the recipient is required
            await client.chat_startStream(channel="C1", thread_ts=parent.ts, markdown_text="Hi")
        assert err.value.response["error"] == "invalid_arguments"
        with pytest.raises(SlackApiError) as err:  # a stream is always a reply in a thread
            await client.chat_startStream(channel="D1", thread_ts="", markdown_text="Hi")
        assert err.value.response["error"] == "invalid_arguments"
        started = await client.chat_startStream(channel="D1", thread_ts=dm_parent.ts, markdown_text="Hel")
        ts = started["ts"]
        await client.chat_appendStream(channel="D1", ts=ts, chunks=[{"type": "markdown_text", "text": "lo "}])
        with pytest.raises(SlackApiError) as err:
            await client.chat_update(channel="D1", ts=ts, text="x")
        assert err.value.response["error"] == "streaming_state_conflict"
        await client.chat_stopStream(channel="D1", ts=ts, markdown_text="world", blocks=[{"type": "divider"}])
        msg = slack.messages["D1"][ts]
        assert msg.visible == "Hello world" and msg.streaming_since is None and msg.thread_ts == dm_parent.ts
        assert [s.method for s in msg.history] == ["chat.startStream", "chat.appendStream", "chat.stopStream"]
        for call in (
            client.chat_appendStream(channel="D1", ts=ts, markdown_text="!"),
            client.chat_stopStream(channel="D1", ts=ts),
        ):
            with pytest.raises(SlackApiError) as err:
                await call
            assert err.value.response["error"] == "message_not_in_streaming_state"
        await client.chat_update(channel="D1", ts=ts, markdown_text="edited after the stream")  # a normal message now
        second = await client.chat_startStream(
            channel="C1", thread_ts=parent.ts, recipient_team_id="T0001", recipient_user_id="U1"
        )
        slack.expire_stream("C1", second["ts"])  # Slack's own timeout
        with pytest.raises(SlackApiError) as err:
            await client.chat_appendStream(channel="C1", ts=second["ts"], markdown_text="late")
        assert err.value.response["error"] == "message_not_in_streaming_state"
        with pytest.raises(SlackApiError) as err:  # Tier 2 (scaled to 4 here): the fifth start in the window
            await client.chat_startStream(channel="D1", thread_ts=dm_parent.ts)
        assert err.value.response.status_code == 429 and int(err.value.response.headers["Retry-After"]) >= 1


async def test_stream_chunks_blocks_are_appended_and_stay_after_the_stop() -> None:
    """slack_sdk 3.48's chunks: a blocks chunk adds blocks to the streaming message; nothing takes them away
    (why the writer never streams a Stop button: it would stay on the finished answer)."""
    async with FakeSlack() as slack:
        client = client_for(slack)
        parent = slack.add_message("D1", text="q")
        stop_button = {
            "type": "actions",
            "elements": [
                {"type": "button", "action_id": "stop_answer", "text": {"type": "plain_text", "text": "Stop"}}
            ],
        }
        started = await client.chat_startStream(
            channel="D1",
            thread_ts=parent.ts,
            chunks=[{"type": "markdown_text", "text": "Hel"}, {"type": "blocks", "blocks": [stop_button]}],
        )
        ts = started["ts"]
        await client.chat_appendStream(
            channel="D1",
            ts=ts,
            chunks=[
                {"type": "task_update", "id": "1", "title": "Computing variance", "status": "in_progress"},
                {"type": "markdown_text", "text": "lo"},
            ],
        )
        for bad in ([{"type": "blocks", "blocks": []}], [{"type": "blocks", "blocks": [{"type": "nope"}]}], [{"x": 1}]):
            with pytest.raises(SlackApiError) as err:
                await client.chat_appendStream(channel="D1", ts=ts, chunks=bad)
            assert err.value.response["error"] == "invalid_chunks"
        await client.chat_stopStream(channel="D1", ts=ts, blocks=[{"type": "divider"}])
        msg = slack.messages["D1"][ts]
        assert msg.visible == "Hello"
        assert [b["type"] for b in msg.blocks or []] == ["actions", "divider"]  # the button is still there


async def test_assistant_thread_methods() -> None:
    async with FakeSlack() as slack:
        client = client_for(slack)
        root = slack.add_message("D1", text="")
        await client.assistant_threads_setStatus(channel_id="D1", thread_ts=root.ts, status="is thinking…")
        prompts = [{"title": f"P{i}", "message": f"m{i}"} for i in range(5)]
        with pytest.raises(SlackApiError) as err:  # at most 4
            await client.assistant_threads_setSuggestedPrompts(channel_id="D1", thread_ts=root.ts, prompts=prompts)
        assert err.value.response["error"] == "invalid_arguments"
        await client.assistant_threads_setSuggestedPrompts(channel_id="D1", thread_ts=root.ts, prompts=prompts[:3])
        await client.assistant_threads_setTitle(channel_id="D1", thread_ts=root.ts, title="Q3 marketing")
        thread = slack.assistant_threads[("D1", root.ts)]
        assert thread.status == "is thinking…" and len(thread.prompts) == 3 and thread.title == "Q3 marketing"
        await client.chat_postMessage(channel="D1", thread_ts=root.ts, text="answer")
        assert thread.status == ""  # the bot's reply clears the status
        with pytest.raises(SlackApiError) as err:
            await client.assistant_threads_setTitle(channel_id="D1", thread_ts="1.000000", title="x")
        assert err.value.response["error"] == "invalid_thread_ts"
