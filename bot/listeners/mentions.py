"""``@Variance Analyst <question>`` in a channel: answer in the mention's thread.

The dataset is a CSV/XLSX attached to the mention, else the newest one posted earlier in the same thread
(``conversations.replies``), else the one this thread loaded before, else the channel's latest one (which the
thread then keeps, with overrides of its own). A mention with a file and no question gets the deterministic
report; "reset" clears the thread's overrides.

Outside the allowlists the person gets a polite refusal; over the abuse limits, a line saying when to ask again.
Both are ephemeral replies in the mention's thread (only the asker sees them), and cost no model call.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_sdk.errors import SlackApiError

from bot.answers import NO_DATASET, answer
from bot.conversations import channel_key, thread_conversation_id
from bot.deps import BotDeps
from bot.files import SlackFile, table_files, unsupported_message
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
from bot.logs import log_line
from bot.notices import post_notice
from bot.overrides import is_reset, reset_message, reset_overrides
from bot.requests import AnswerRequest

HANDLED_SUBTYPES = frozenset({None, "file_share", "thread_broadcast"})
HELLO = (
    "Hi! Mention me with a budget-vs-actual CSV or XLSX attached and a question, e.g. "
    '"why is marketing over budget in Q3?". A file without a question gets a quick report.'
)


async def thread_files(deps: BotDeps, channel: str, thread_ts: str, before_ts: str) -> list[SlackFile]:
    """Table files posted in the thread before the mention, oldest first (the first 200 messages)."""
    try:
        response = await deps.client.conversations_replies(channel=channel, ts=thread_ts, limit=200)
    except SlackApiError as error:
        log_line("error", where="conversations.replies", channel=channel, error=error.response.get("error"))
        return []
    except (aiohttp.ClientError, TimeoutError) as error:
        log_line("error", where="conversations.replies", channel=channel, error=type(error).__name__)
        return []
    files: list[SlackFile] = []
    for message in response.get("messages") or []:
        if float(message.get("ts", "0")) <= float(before_ts):
            files.extend(table_files(message.get("files")))
    return files


async def handle_mention(deps: BotDeps, body: dict[str, Any], event: dict[str, Any], bot_user_id: str | None) -> None:
    team = team_of(body, event)
    channel = str(event["channel"])
    ts = str(event["ts"])
    thread_ts = str(event.get("thread_ts") or ts)
    user = event.get("user")
    reply = ephemeral_reply(deps, channel, user, thread_ts)
    refused = refusal(deps, team=team, channel=channel, user=user)
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
        dropped = await reset_overrides(deps, thread_conversation_id(team, channel, thread_ts))
        await post_notice(deps, channel, thread_ts, reset_message(dropped))
        return
    await within_limits(deps, team, user, reply, lambda: answer_mention(deps, body, event, question))


async def answer_mention(deps: BotDeps, body: dict[str, Any], event: dict[str, Any], question: str) -> None:
    team = team_of(body, event)
    channel = str(event["channel"])
    ts = str(event["ts"])
    thread_ts = str(event.get("thread_ts") or ts)
    conversation_id = thread_conversation_id(team, channel, thread_ts)
    attached = event.get("files") or []
    files = table_files(attached)
    if attached and not files:
        await post_notice(deps, channel, thread_ts, unsupported_message(attached))
        return
    stored = deps.store.get(conversation_id)
    new_file = files[-1] if files else None
    if new_file is None and thread_ts != ts:
        earlier = await thread_files(deps, channel, thread_ts, ts)
        if earlier and (stored is None or stored.file_id != earlier[-1].id):
            new_file = earlier[-1]
    if new_file is None and stored is None and question:
        # Nothing in this thread: fall back on the channel's latest file, as /variance does, in a context of
        # this thread's own (overrides made here or in the thread that loaded the file stay where they were made).
        latest = deps.store.latest_in_channel(channel_key(team, channel))
        stored = deps.store.adopt(conversation_id, latest[1], owner=event.get("user")) if latest else None
    if new_file is None and stored is None and question:
        # Read on another instance: this thread's file, else the channel's latest, read again here.
        new_file = await deps.sources.file_for(conversation_id) or await deps.sources.latest_in_channel(
            channel_key(team, channel)
        )
    if new_file is None and stored is None:
        await post_notice(deps, channel, thread_ts, HELLO if not question else NO_DATASET)
        return
    await answer(
        deps,
        AnswerRequest(
            entry="mention",
            team=team,
            channel=channel,
            thread_ts=thread_ts,
            conversation_id=conversation_id,
            question=question,
            new_file=new_file,
            stored=stored,
            event_id=body.get("event_id"),
            user=event.get("user"),
            source_ts=ts,
        ),
    )


def register(app: Any, deps: BotDeps) -> None:
    @app.event("app_mention")
    async def on_app_mention(body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext) -> None:
        if is_from_a_bot(event, context.bot_user_id) or event.get("subtype") not in HANDLED_SUBTYPES:
            return
        if not await first_message_delivery(deps, str(event.get("channel")), event.get("ts")):
            return
        deps.spawn(handle_mention(deps, body, event, context.bot_user_id), name="mention")
