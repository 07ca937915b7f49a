"""Small helpers the listeners share: who sent an event, what it says, whether it was seen already, whether they
may ask here (allowlists), whether an answer may start now (abuse limits), and short replies only they see."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError

from bot.deps import BotDeps
from bot.logs import log_line
from bot.notices import call_with_rate_retry, post_notice
from bot.textfilter import neutralise

_MENTION = re.compile(r"<@([A-Z0-9]+)(?:\|[^>]*)?>")

Reply = Callable[[str], Awaitable[None]]


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


async def first_message_delivery(deps: BotDeps, channel: str, ts: str | None) -> bool:
    """One answer per user message, even when it reaches us as two events (app_mention and message), on
    whichever instance each arrives."""
    return ts is None or await deps.dedupe.claim(f"msg:{channel}:{ts}")


async def post_ephemeral(deps: BotDeps, channel: str, user: str | None, thread_ts: str | None, text: str) -> None:
    """A short message only ``user`` sees, in the thread of their message; failures are logged, never raised.

    Without a user (never from a person's message) it falls back to a normal notice.
    """
    if not user:
        await post_notice(deps, channel, thread_ts, text)
        return
    try:
        await call_with_rate_retry(
            lambda: deps.client.chat_postEphemeral(
                channel=channel, user=user, thread_ts=thread_ts, text=neutralise(text)
            )
        )
    except SlackApiError as error:
        log_line("error", where="chat.postEphemeral", channel=channel, error=error.response.get("error"))
    except (aiohttp.ClientError, TimeoutError) as error:
        log_line("error", where="chat.postEphemeral", channel=channel, error=type(error).__name__)


def ephemeral_reply(deps: BotDeps, channel: str, user: str | None, thread_ts: str | None) -> Reply:
    async def reply(text: str) -> None:
        await post_ephemeral(deps, channel, user, thread_ts, text)

    return reply


def refusal(deps: BotDeps, *, team: str, channel: str | None, user: str | None, is_dm: bool = False) -> str | None:
    """The polite refusal when the allowlists leave this person or place out (logged), else None."""
    message = deps.settings.allowlist.refusal(team=team, channel=channel, user=user, is_dm=is_dm)
    if message is not None:
        log_line("refused", reason="allowlist", team=team, channel=channel)
    return message


async def within_limits(
    deps: BotDeps, team: str, user: str | None, reply: Reply, work: Callable[[], Awaitable[None]]
) -> None:
    """Run ``work`` (one answer) if the abuse limits admit it now, and release the admission on every path
    (finished, failed, stopped, shut down); otherwise tell the person when to ask again (no model call).
    """
    admission = await deps.limits.admit(team, user or "")
    if not admission.ok:
        log_line(
            "refused",
            reason=admission.reason,
            team=team,
            retry_after_s=round(admission.retry_after_s, 1),
        )
        await reply(admission.message)
        return
    try:
        await work()
    finally:
        await deps.limits.release(admission)
