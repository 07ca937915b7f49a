"""Short plain messages outside an answer (no dataset yet, an unsupported file), retried while Slack answers 429."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackApiError

from bot.textfilter import neutralise

if TYPE_CHECKING:
    from bot.deps import BotDeps

log = logging.getLogger("variance.bot")

# A short message refused with 429 was not posted: wait as Slack asks (within reason) and post it again.
_NOTICE_ATTEMPTS = 3
_NOTICE_MAX_WAIT_S = 30.0


async def call_with_rate_retry(call: Callable[[], Awaitable[Any]]) -> Any:
    """``call()`` (one Slack Web API call), retried after ``Retry-After`` while Slack answers 429."""
    for attempt in range(_NOTICE_ATTEMPTS):
        try:
            return await call()
        except SlackApiError as error:
            if error.response.status_code != 429 or attempt == _NOTICE_ATTEMPTS - 1:
                raise
            headers = {str(k).lower(): v for k, v in (error.response.headers or {}).items()}
            try:
                wait = float(headers.get("retry-after", 1))
            except (TypeError, ValueError):
                wait = 1.0
            await asyncio.sleep(min(max(wait, 0.0), _NOTICE_MAX_WAIT_S))
    raise AssertionError("unreachable")


async def post_notice(deps: BotDeps, channel: str, thread_ts: str | None, text: str) -> None:
    """A short plain message (no dataset yet, unsupported file); failures are logged, never raised."""
    try:
        await call_with_rate_retry(
            lambda: deps.client.chat_postMessage(channel=channel, thread_ts=thread_ts, text=neutralise(text))
        )
    except SlackApiError as error:
        log.warning("could not post a notice: %s", error.response.get("error"))
