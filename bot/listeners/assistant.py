"""Slack's assistant container ("Agents & AI Apps"), through Bolt's ``AsyncAssistant`` middleware.

- ``assistant_thread_started``: a greeting and suggested prompts (``assistant.threads.setSuggestedPrompts``);
  the thread's context (the channel the user is viewing) is kept.
- ``assistant_thread_context_changed``: the new context is kept.
- A question in the thread: its title becomes the first question (``setTitle``), the status says what is being
  computed while tools run (the writer's ``setStatus``), and the answer streams natively in the thread. The
  dataset is a CSV/XLSX attached to the message, else the one this thread loaded before, else the latest file
  in the context channel (one the bot read there, or the newest table file in its recent history).

Bolt's middleware takes every message event of a DM *thread* (a user's message, and also edits and deletions,
which it acknowledges and drops), whether or not the thread belongs to the container. So it only sees the
container's own events and the users' messages in threads this process saw start; everything else (ordinary DM
threads, deletions that must reach the deletion listener) passes it by.

Thread contexts live in :class:`ThreadContexts` (memory of this process), not in Bolt's default store, which
keeps them in the metadata of the bot's first reply and so spends a ``chat.update`` per context change.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from slack_bolt.context.assistant.thread_context import AssistantThreadContext
from slack_bolt.context.assistant.thread_context_store.async_store import AsyncAssistantThreadContextStore
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.middleware.assistant.async_assistant import AsyncAssistant
from slack_sdk.errors import SlackApiError

from bot.answers import NO_DATASET, answer
from bot.conversations import StoredDataset, channel_key, thread_conversation_id
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
from bot.listeners.direct_messages import handle_direct_message
from bot.listeners.stop_words import is_stop_request, stop_from_thread
from bot.logs import log_line
from bot.notices import post_notice
from bot.overrides import is_reset, reset_message, reset_overrides
from bot.requests import AnswerRequest
from bot.textfilter import neutralise

GREETING = (
    "Hi! I explain budget vs actual with exact numbers. Attach a CSV or XLSX export here, or open me next to a "
    "channel where one was shared, and ask a question."
)
PROMPTS_TITLE = "Try asking"
SUGGESTED_PROMPTS = [
    {"title": "Summarise the variance", "message": "Summarise the variance: the totals and what drives them."},
    {"title": "Top 5 drivers", "message": "What are the top 5 drivers of the variance?"},
    {"title": "What changed since last month?", "message": "What changed since last month?"},
    {"title": "Where are we over budget?", "message": "Which departments are over budget, and by how much?"},
]
TITLE_CHARS = 80
HISTORY_LOOKBACK = 50  # messages of the context channel searched for its latest table file


class ThreadContexts(AsyncAssistantThreadContextStore):
    """Assistant threads seen by this process and their context (the channel the user is viewing)."""

    def __init__(self) -> None:
        self._contexts: dict[tuple[str, str], dict[str, str]] = {}

    async def save(self, *, channel_id: str, thread_ts: str, context: dict[str, str]) -> None:
        self._contexts[(channel_id, thread_ts)] = dict(context or {})

    async def find(self, *, channel_id: str, thread_ts: str) -> AssistantThreadContext | None:
        context = self._contexts.get((channel_id, thread_ts))
        return AssistantThreadContext(context) if context and context.get("channel_id") else None

    def known(self, channel_id: str, thread_ts: str) -> bool:
        return (channel_id, thread_ts) in self._contexts


async def latest_channel_file(deps: BotDeps, channel: str) -> SlackFile | None:
    """The newest table file in the context channel's recent history (None if unreadable or none)."""
    try:
        response = await deps.client.conversations_history(channel=channel, limit=HISTORY_LOOKBACK)
    except SlackApiError as error:
        log_line("error", where="conversations.history", channel=channel, error=error.response.get("error"))
        return None
    except (aiohttp.ClientError, TimeoutError) as error:
        log_line("error", where="conversations.history", channel=channel, error=type(error).__name__)
        return None
    for message in response.get("messages") or []:  # newest first
        files = table_files(message.get("files"))
        if files:
            return files[-1]
    return None


async def handle_assistant_message(
    deps: BotDeps, contexts: ThreadContexts, body: dict[str, Any], event: dict[str, Any], bot_user_id: str | None
) -> None:
    """The allowlists, "reset", and the abuse limits, as for any DM; then the answer."""
    team = team_of(body, event)
    channel = str(event["channel"])
    thread_ts = str(event["thread_ts"])
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
        dropped = await reset_overrides(deps, thread_conversation_id(team, channel, thread_ts))
        await post_notice(deps, channel, thread_ts, reset_message(dropped))
        return
    await within_limits(
        deps, team, user, reply, lambda: answer_assistant_message(deps, contexts, body, event, question)
    )


async def answer_assistant_message(
    deps: BotDeps, contexts: ThreadContexts, body: dict[str, Any], event: dict[str, Any], question: str
) -> None:
    team = team_of(body, event)
    channel = str(event["channel"])
    thread_ts = str(event["thread_ts"])
    conversation_id = thread_conversation_id(team, channel, thread_ts)
    attached = event.get("files") or []
    files = table_files(attached)
    if attached and not files:
        await post_notice(deps, channel, thread_ts, unsupported_message(attached))
        return
    if question and await deps.dedupe.claim(f"title:{channel}:{thread_ts}"):
        await set_title(deps, channel, thread_ts, question)
    stored: StoredDataset | None = deps.store.get(conversation_id)
    new_file = files[-1] if files else None
    if new_file is None and stored is None:
        context = await contexts.find(channel_id=channel, thread_ts=thread_ts)
        viewing = context.channel_id if context is not None else None
        if viewing:
            latest = deps.store.latest_in_channel(channel_key(team, viewing))
            if latest is not None:
                stored = deps.store.adopt(conversation_id, latest[1])
            else:
                new_file = await latest_channel_file(deps, viewing)
    if new_file is None and stored is None:
        await post_notice(deps, channel, thread_ts, NO_DATASET)
        return
    await answer(
        deps,
        AnswerRequest(
            entry="assistant",
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
            assistant_thread=True,
        ),
    )


async def set_title(deps: BotDeps, channel: str, thread_ts: str, question: str) -> None:
    title = " ".join(question.split())
    if len(title) > TITLE_CHARS:
        title = title[: TITLE_CHARS - 1].rstrip() + "…"
    try:
        await deps.client.assistant_threads_setTitle(channel_id=channel, thread_ts=thread_ts, title=neutralise(title))
    except (SlackApiError, aiohttp.ClientError, TimeoutError) as error:
        log_line("error", where="assistant.threads.setTitle", channel=channel, error=type(error).__name__)


def register(app: Any, deps: BotDeps) -> None:
    contexts = ThreadContexts()
    assistant = AsyncAssistant(thread_context_store=contexts)

    @assistant.thread_started
    async def on_thread_started(payload: dict[str, Any], say: Any, set_suggested_prompts: Any) -> None:
        thread = payload.get("assistant_thread") or {}
        await contexts.save(
            channel_id=str(thread.get("channel_id")),
            thread_ts=str(thread.get("thread_ts")),
            context=thread.get("context") or {},
        )
        await say(GREETING)
        await set_suggested_prompts(prompts=SUGGESTED_PROMPTS, title=PROMPTS_TITLE)

    @assistant.user_message
    async def on_user_message(body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext) -> None:
        if is_from_a_bot(event, context.bot_user_id):
            return
        if not await first_message_delivery(deps, str(event.get("channel")), event.get("ts")):
            return
        channel, thread_ts = str(event.get("channel")), str(event.get("thread_ts"))
        if not contexts.known(channel, thread_ts):  # a reply in an ordinary DM thread
            deps.spawn(handle_direct_message(deps, body, event, context.bot_user_id), name="dm")
            return
        deps.spawn(handle_assistant_message(deps, contexts, body, event, context.bot_user_id), name="assistant")

    async def assistant_threads_only(req: Any, resp: Any, next: Any) -> Any:
        event = (req.body or {}).get("event") or {}
        kind = event.get("type")
        ours = kind in {"assistant_thread_started", "assistant_thread_context_changed"} or (
            kind == "message"
            and event.get("channel_type") == "im"
            and event.get("subtype") in (None, "file_share")
            and contexts.known(str(event.get("channel")), str(event.get("thread_ts")))
        )
        if ours:
            return await assistant.async_process(req=req, resp=resp, next=next)
        return await next()

    app.middleware(assistant_threads_only)
