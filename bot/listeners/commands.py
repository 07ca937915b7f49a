"""``/variance``: help, the channel's report, or a question; answered as a normal, streamed channel message.

The command is acknowledged at once (Slack allows 3 s); the work runs as its own task. When the bot is not in
the channel, or no dataset is known there, the user gets an ephemeral answer (``respond``) saying what to do.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError

from bot.answers import answer
from bot.conversations import channel_key
from bot.deps import BotDeps
from bot.listeners.common import refusal, within_limits
from bot.logs import log_line
from bot.overrides import is_reset, reset_message, reset_overrides
from bot.requests import AnswerRequest
from bot.retention import ForgetReport, forget
from bot.textfilter import code_span, neutralise

HELP = """*Variance Analyst* explains budget vs actual.
• Mention me in a channel with a CSV/XLSX attached and a question:
  _@Variance Analyst why is marketing over budget in Q3?_
• Or DM me the file (alone for a quick report, or with a question).
• `/variance report`: the deterministic report of this channel's latest file.
• `/variance <question>`: ask about this channel's latest file; I answer here for everyone to see.
• `/variance reset`: clear the overrides made with `/variance` here (account types, column roles).
• `/variance forget`: delete what I keep from you here (in a DM: everything from the DM).
• Press *Stop* on an answer to stop it."""

NOT_IN_CHANNEL = (
    "I'm not in this channel, so I can't answer here. Add me with `/invite @Variance Analyst`, then mention "
    "me with your CSV/XLSX attached."
)
SLACK_UNREACHABLE = "I couldn't reach Slack to check this channel just now. Please try again in a minute."
NO_DATASET_HERE = (
    "I don't have a file for this channel yet. Mention me (@Variance Analyst) with a budget-vs-actual "
    "CSV/XLSX attached, or DM me the file, then try `/variance` again."
)


async def bot_is_member(deps: BotDeps, channel: str) -> bool | None:
    """True when the bot can post in the channel (a member of it, or our DM); None when Slack can't be asked."""
    try:
        response = await deps.client.conversations_info(channel=channel)
    except SlackApiError as error:
        # channel_not_found: a private channel or a DM the bot is not part of
        log_line("error", where="conversations.info", channel=channel, error=error.response.get("error"))
        return False
    except (aiohttp.ClientError, TimeoutError) as error:
        log_line("error", where="conversations.info", channel=channel, error=type(error).__name__)
        return None
    info = response.get("channel") or {}
    return bool(info.get("is_member") or info.get("is_im"))


def forget_message(report: ForgetReport, *, dm: bool) -> str:
    """The confirmation of ``/variance forget``: what was deleted."""
    if report.nothing:
        return "I had nothing stored from " + ("this conversation." if dm else "you in this channel.")
    parts = []
    if report.items:
        items = f"{report.items} stored item{'s' if report.items != 1 else ''}"
        if dm:
            parts.append(f"our conversation here ({items})")
        else:
            count = f"{report.conversations} conversation{'s' if report.conversations != 1 else ''}"
            parts.append(f"your questions and my answers in {count} here ({items})")
    if report.datasets:
        names = ", ".join(code_span(name) for name in report.datasets[:5])
        more = f" and {len(report.datasets) - 5} more" if len(report.datasets) > 5 else ""
        parts.append(f"the data read from {names}{more}, with any overrides")
    return (
        "Forgotten: " + "; ".join(parts) + ". It is deleted from my storage; later answers start afresh. "
        "Messages already posted in Slack stay until you delete them."
    )


async def handle_forget(deps: BotDeps, command: dict[str, Any], respond: AsyncRespond) -> None:
    team = str(command.get("team_id", ""))
    channel = str(command.get("channel_id", ""))
    report = await forget(deps, team, channel, str(command.get("user_id", "")))
    try:
        await respond(text=forget_message(report, dm=channel.startswith("D")), response_type="ephemeral")
    except (aiohttp.ClientError, TimeoutError, SlackApiError) as error:  # deleted anyway; only the receipt is lost
        log_line("error", where="forget.respond", channel=channel, error=type(error).__name__)


async def handle_command(deps: BotDeps, command: dict[str, Any], respond: AsyncRespond) -> None:
    team = str(command.get("team_id", ""))
    channel = str(command.get("channel_id", ""))
    user = command.get("user_id")
    text = " ".join(str(command.get("text", "")).split())

    async def reply(message: str) -> None:
        await respond(text=neutralise(message), response_type="ephemeral")

    refused = refusal(deps, team=team, channel=channel, user=user, is_dm=channel.startswith("D"))
    if refused is not None:
        await reply(refused)
        return
    if is_reset(text):
        await reply(reset_message(await reset_overrides(deps, channel_key(team, channel))))
        return
    await within_limits(deps, team, user, reply, lambda: answer_command(deps, command, respond))


async def answer_command(deps: BotDeps, command: dict[str, Any], respond: AsyncRespond) -> None:
    team = str(command.get("team_id", ""))
    channel = str(command.get("channel_id", ""))
    text = " ".join(str(command.get("text", "")).split())
    member = await bot_is_member(deps, channel)
    if member is None:
        await respond(text=SLACK_UNREACHABLE, response_type="ephemeral")
        return
    if not member:
        await respond(text=NOT_IN_CHANNEL, response_type="ephemeral")
        return
    latest = deps.store.latest_in_channel(channel_key(team, channel))
    # Read on another instance: read the channel's latest file again here.
    new_file = None if latest is not None else await deps.sources.latest_in_channel(channel_key(team, channel))
    if latest is None and new_file is None:
        await respond(text=NO_DATASET_HERE, response_type="ephemeral")
        return
    # The channel is a conversation of its own: its overrides don't reach the thread that loaded the file.
    stored = deps.store.adopt(channel_key(team, channel), latest[1], owner=command.get("user_id")) if latest else None
    question = "" if text.lower() == "report" else text
    await answer(
        deps,
        AnswerRequest(
            entry="command",
            team=team,
            channel=channel,
            thread_ts=None,
            conversation_id=channel_key(team, channel),
            question=question,
            stored=stored,
            new_file=new_file,
            user=command.get("user_id"),
        ),
    )


def register(app: Any, deps: BotDeps) -> None:
    @app.command("/variance")
    async def on_variance(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        text = " ".join(str(command.get("text", "")).split())
        if text.lower() in {"", "help", "?"}:
            await ack(text=HELP)
            return
        await ack()
        if text.lower() == "forget":
            deps.spawn(handle_forget(deps, command, respond), name="forget")
            return
        deps.spawn(handle_command(deps, command, respond), name="command")
