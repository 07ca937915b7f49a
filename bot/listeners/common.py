"""Small helpers the listeners share: who sent an event, what it says, whether it was seen already."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bot.deps import BotDeps

_MENTION = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>")


def team_of(body: Mapping[str, Any], event: Mapping[str, Any] | None = None) -> str:
    event = event or {}
    team = body.get("team_id") or event.get("team") or (body.get("team") or {}).get("id")
    return str(team or "")


def is_from_a_bot(event: Mapping[str, Any], bot_user_id: str | None) -> bool:
    """Any bot's message (ours included), so the bot never answers itself or another bot."""
    return bool(
        event.get("bot_id")
        or event.get("subtype") == "bot_message"
        or (bot_user_id is not None and event.get("user") == bot_user_id)
    )


def question_text(text: str | None, bot_user_id: str | None) -> str:
    """The question without the mention of the bot (other mentions stay: they may name a person)."""
    text = text or ""
    if bot_user_id:
        text = re.sub(rf"<@{re.escape(bot_user_id)}(?:\|[^>]*)?>", " ", text)
    else:
        text = _MENTION.sub(" ", text, count=1)
    return " ".join(text.split())


def first_message_delivery(deps: BotDeps, channel: str, ts: str | None) -> bool:
    """One answer per user message, even when it reaches us as two events (app_mention and message)."""
    return ts is None or deps.dedupe.first_time(f"msg:{channel}:{ts}")
