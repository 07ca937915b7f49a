"""What the web chat's handlers share: the state of one running app, ids and keys, and JSON errors."""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from bot.conversations import ConversationStore, StoredDataset
from bot.limits import Limits
from bot.web.charts import ChartStore
from bot.web.settings import WebSettings
from bot.workers import WorkerPool

SCOPE = "web"  # the limits' scope: per client address within it
ID_PATTERN = re.compile(r"[0-9a-f]{32}")  # dataset, conversation and chart ids (:func:`new_id`)

UNKNOWN_DATASET = (
    "I don't have that file any more (the server restarted, or it was idle too long). Upload it again."
)
INTERNAL_ERROR = "Something went wrong on my side and I stopped. Please try again."


@dataclass(slots=True)
class WebState:
    """What the handlers share: settings, the datasets and conversations, the worker pool, the limits."""

    settings: WebSettings
    store: ConversationStore
    workers: WorkerPool
    limits: Limits
    owns_workers: bool
    charts: ChartStore
    runs: set[Any] = field(default_factory=set)  # the analyst runs streaming now (cancelled at shutdown)
    closing: bool = False
    purging: asyncio.Task[None] | None = None


STATE_KEY = web.AppKey("web_state", WebState)


def dataset_key(dataset_id: str) -> str:
    return f"web:dataset:{dataset_id}"


def conversation_key(conversation_id: str) -> str:
    """The conversation's key in the dataset store and in the analyst's session store (shared with the bot)."""
    return f"web:{conversation_id}"


def stored_upload(state: WebState, dataset_id: str) -> StoredDataset | None:
    """The upload ``dataset_id`` names; None when it is unknown, has gone, or is not an id at all."""
    return state.store.get(dataset_key(dataset_id)) if ID_PATTERN.fullmatch(dataset_id) else None


def new_id() -> str:
    return uuid.uuid4().hex


def json_error(status: int, message: str, **headers: str) -> web.Response:
    return web.json_response({"error": message}, status=status, headers=headers or None)


def client_of(request: web.Request) -> str:
    """Whom the per-user limits count: the connecting address (forwarded headers are not trusted)."""
    return request.remote or "unknown"
