"""Helpers for the bot's end-to-end tests: ids, event payloads as Slack sends them, example files, expected
reports, reading the fake Slack's state."""

from __future__ import annotations

import itertools
import json
from functools import cache
from pathlib import Path
from typing import Any

from analyst.ingest import load_dataset
from analyst.report import build_report
from tests.fakes.slack_server import FakeMessage, FakeSlack

TEAM = "T0001"
USER = "U0USER"
CHANNEL = "C0GENERAL"
DM = "D0USERDM"
_ids = itertools.count(1)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "budget_vs_actual.csv"
SMALL_CSV = (
    b"Department,Account,Budget,Actual\n"
    b'Sales,Revenue,"1,000.00","1,200.00"\n'
    b"Marketing,Advertising,500.00,650.00\n"
    b"Marketing,Events,300.00,250.00\n"
    b"Engineering,Salaries,2000.00,1950.00\n"
)


def mention_event(
    channel: str,
    ts: str,
    text: str,
    *,
    files: list[dict[str, Any]] | None = None,
    thread_ts: str | None = None,
    user: str = USER,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "app_mention",
        "user": user,
        "text": text,
        "ts": ts,
        "channel": channel,
        "event_ts": ts,
        "team": TEAM,
        "client_msg_id": f"c{next(_ids)}",
    }
    if files:
        event["files"] = files
        event["upload"] = False
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def dm_event(
    ts: str,
    text: str = "",
    *,
    files: list[dict[str, Any]] | None = None,
    channel: str = DM,
    thread_ts: str | None = None,
    user: str = USER,
    subtype: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "message",
        "user": user,
        "text": text,
        "ts": ts,
        "channel": channel,
        "event_ts": ts,
        "channel_type": "im",
        "team": TEAM,
    }
    if files:
        event.update(subtype="file_share", files=files, upload=False, display_as_bot=False)
    if subtype:
        event["subtype"] = subtype
    if thread_ts:
        event["thread_ts"] = thread_ts
    event.update(extra)
    return event


@cache
def example_bytes() -> bytes:
    return EXAMPLE.read_bytes()


def expected_report(content: bytes, filename: str) -> str:
    """The deterministic report, computed here independently of the bot (same public API, no worker)."""
    return build_report(load_dataset(content, filename=filename)).to_markdown().strip()


def is_final(message: FakeMessage) -> bool:
    """An answer in its final state: Markdown (👍/👎 may sit under it), not a live stream, no Stop button, no ⏳.

    Plain-text notices are not answers."""
    live = message.streaming_since is not None or stop_button_value(message) is not None
    return final_markdown(message) is not None and not live and "⏳" not in message.visible


def final_markdown(message: FakeMessage) -> str | None:
    """The Markdown a final message shows: ``markdown_text``, or its markdown block when 👍/👎 sit under it."""
    if message.markdown_text is not None:
        return message.markdown_text
    texts = [b.get("text", "") for b in message.blocks or [] if b.get("type") == "markdown"]
    return "\n".join(texts) if texts else None


def shown_text(message: FakeMessage) -> str:
    """What a person reads in the message (the text filter's zero-width spaces are invisible)."""
    return message.visible.replace("\u200b", "")


def answers_in(slack: FakeSlack, channel: str) -> list[FakeMessage]:
    return [m for m in slack.bot_messages(channel) if not m.deleted]


def final_answers(slack: FakeSlack, channel: str) -> list[FakeMessage]:
    return [m for m in answers_in(slack, channel) if is_final(m)]


def stop_button_value(message: FakeMessage) -> str | None:
    """The answer id on the message's Stop button, if it shows one."""
    for block in message.blocks or []:
        for element in block.get("elements", []) if block.get("type") == "actions" else []:
            if element.get("action_id") == "stop_answer":
                return str(element.get("value"))
    return None


def last_user_text(request_json: dict[str, Any]) -> str:
    """The newest user message in a Responses (or Chat Completions) request body."""
    items = request_json.get("input") or request_json.get("messages") or []
    if isinstance(items, str):
        return items
    for item in reversed(items):
        if isinstance(item, dict) and item.get("role") == "user":
            content = item.get("content")
            if isinstance(content, str):
                return content
            return " ".join(part.get("text", "") for part in content or [] if isinstance(part, dict))
    return json.dumps(items)[-200:]
