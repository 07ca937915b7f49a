"""A file whose labels and a model whose output try to act on the workspace: what reaches Slack is inert.

The whole bot runs (listener, file reading, the analyst over the fake OpenAI, the writer); the assertion is on
every text the fake Slack received, in every delivery mode the bot uses for a DM (first text on a post with
edits at the top level, a native stream in a thread).
"""

from __future__ import annotations

import json
from typing import Any

from tests.bot.helpers import final_answers, shown_text
from tests.fakes.openai_server import FakeOpenAI, text

TEAM = "T0001"
USER = "U0USER"
HOSTILE_CSV = (
    b"Department,Account,Budget,Actual\n"
    b"<!channel> Sales,<@U123> Revenue,1000.00,1200.00\n"
    b"[x](https://evil.example),Advertising,500.00,650.00\n"
)
HOSTILE_ANSWER = (
    "Ping <!channel> and <@U123>: the driver is [x](https://evil.example) — see evil.example/steal. "
    "Advertising is over budget by 150.00."
)
TEXT_METHODS = {"chat.postMessage", "chat.update", "chat.startStream", "chat.appendStream", "chat.stopStream"}


def dm_message(channel: str, ts: str, text_: str, **extra: Any) -> dict[str, Any]:
    event = {
        "type": "message",
        "user": USER,
        "text": text_,
        "ts": ts,
        "channel": channel,
        "event_ts": ts,
        "channel_type": "im",
        "team": TEAM,
    }
    event.update(extra)
    return event


def texts_received(bot: Any) -> list[str]:
    out: list[str] = []
    for call in bot.slack.calls:
        if call.method not in TEXT_METHODS:
            continue
        for key in ("text", "markdown_text"):
            if isinstance(call.params.get(key), str):
                out.append(call.params[key])
        for field in ("blocks", "chunks"):
            value = call.params.get(field)
            if isinstance(value, str):
                value = json.loads(value)
            out.extend(str(item["text"]) for item in value or [] if isinstance(item.get("text"), str))
    return out


async def test_hostile_labels_and_model_output_reach_slack_inert(bot: Any, openai: FakeOpenAI) -> None:
    channel = "D0HOSTILE"
    file_obj = bot.slack.add_file(HOSTILE_CSV, name="<!here>.csv")
    upload = bot.slack.add_message(channel, files=[file_obj])
    event = dm_message(channel, upload.ts, "", subtype="file_share", files=[file_obj])
    assert await bot.send_event(event) == 200  # the report quotes the labels
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, channel)) == 1, timeout=20)
    for thread_ts in (None, upload.ts):  # top level (post + edits), then in a thread (native stream)
        openai.script(text(HOSTILE_ANSWER, chunk=3, delay=0.002))
        question = bot.slack.add_message(channel, text="why?", thread_ts=thread_ts)
        extra = {"thread_ts": thread_ts} if thread_ts else {}
        assert await bot.send_event(dm_message(channel, question.ts, "why?", **extra)) == 200
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, channel)) == 3, timeout=30)
    await bot.deps.idle(timeout=10)
    assert {"chat.startStream", "chat.stopStream"} <= {c.method for c in bot.slack.calls}
    answers = final_answers(bot.slack, channel)
    assert shown_text(answers[-1]).startswith("Ping <!channel> and <@U123>")  # still readable
    received = texts_received(bot) + [m.visible for m in bot.slack.bot_messages(channel)]
    assert any("Sales" in t for t in received) and any("Ping" in t for t in received)
    for t in received:
        for live in ("<!channel>", "<!here", "<@U123>", "](https://", "evil.example"):
            assert live not in t, (live, t[:200])
