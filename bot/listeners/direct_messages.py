"""Direct messages: a CSV/XLSX dropped in the DM becomes its dataset; questions are answered about it.

A file without text gets the deterministic report at once (no model call). A reply goes to the user's thread
when they wrote in one, else to the DM itself. "reset" clears the DM's overrides. Edits, deletions, other
subtypes and bots' messages are ignored. Outside the allowlists, or over the abuse limits, the person gets a
short ephemeral reply (a refusal, or when to ask again) and no model call is made.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.context.async_context import AsyncBoltContext

from bot.answers import NO_DATASET, answer
from bot.conversations import dm_conversation_id
from bot.deps import BotDeps
from bot.files import table_files, unsupported_message
from bot.listeners.common import (
    ephemeral_reply,
    first_message_delivery,
    is_from_a_bot,
    question_text,
    refusal,
    team_of,
    within_limits,
)
from bot.listeners.stop_words import is_stop_request, stop_from_thread
from bot.notices import post_notice
from bot.overrides import is_reset, reset_message, reset_overrides
from bot.requests import AnswerRequest

HANDLED_SUBTYPES = frozenset({None, "file_share", "thread_broadcast"})


async def handle_direct_message(
    deps: BotDeps, body: dict[str, Any], event: dict[str, Any], bot_user_id: str | None
) -> None:
    team = team_of(body, event)
    channel = str(event["channel"])
    thread_ts = event.get("thread_ts")
    user = event.get("user")
    reply = ephemeral_reply(deps, channel, user, thread_ts)
    refused = refusal(deps, team=team, channel=channel, user=user, is_dm=True)
    if refused is not None:
        await reply(refused)
        return
    question = question_text(event.get("text"), bot_user_id)
    if is_stop_request(question) and not event.get("files"):
        await stop_from_thread(
            deps, team=team, channel=channel, thread_ts=thread_ts, user=user, message_ts=event.get("ts")
        )
        return
    if is_reset(question) and not event.get("files"):
        dropped = await reset_overrides(deps, dm_conversation_id(team, channel))
        await post_notice(deps, channel, thread_ts, reset_message(dropped))
        return
    await within_limits(deps, team, user, reply, lambda: answer_direct_message(deps, body, event, question))


async def answer_direct_message(deps: BotDeps, body: dict[str, Any], event: dict[str, Any], question: str) -> None:
    team = team_of(body, event)
    channel = str(event["channel"])
    thread_ts = event.get("thread_ts")
    conversation_id = dm_conversation_id(team, channel)
    attached = event.get("files") or []
    files = table_files(attached)
    if attached and not files:
        await post_notice(deps, channel, thread_ts, unsupported_message(attached))
        return
    stored = deps.store.get(conversation_id)
    new_file = files[-1] if files else None
    if new_file is None and stored is None and question:
        new_file = await deps.sources.file_for(conversation_id)  # read on another instance: read it again here
    if new_file is None and stored is None:
        await post_notice(deps, channel, thread_ts, NO_DATASET)
        return
    if new_file is None and not question:
        return  # an empty message with nothing attached: nothing to answer
    await answer(
        deps,
        AnswerRequest(
            entry="dm",
            team=team,
            channel=channel,
            thread_ts=thread_ts,
            conversation_id=conversation_id,
            question=question,
            new_file=new_file,
            stored=stored,
            event_id=body.get("event_id"),
            user=event.get("user"),
            source_ts=event.get("ts"),
        ),
    )


def register(app: Any, deps: BotDeps) -> None:
    # One listener for every message event: Bolt would answer unmatched ones (edits, deletions) with 404, and
    # Slack retries those.
    @app.event("message")
    async def on_message(body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext) -> None:
        if event.get("channel_type") != "im" or event.get("subtype") not in HANDLED_SUBTYPES:
            return
        if is_from_a_bot(event, context.bot_user_id):
            return
        if not await first_message_delivery(deps, str(event.get("channel")), event.get("ts")):
            return
        deps.spawn(handle_direct_message(deps, body, event, context.bot_user_id), name="dm")
