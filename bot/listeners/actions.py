"""The Stop button (``action_id="stop_answer"``, value = the answer id): cancels that answer's run.

Only the person who asked may stop an answer, or a workspace admin or owner (``users.info``: ``is_admin``,
``is_owner``, ``is_primary_owner``; cached for a few minutes). Anyone else gets an ephemeral "only … can stop
this". The writer then ends the message with the text so far, marked stopped. With ``REDIS_URL``, a click on
an answer another instance runs is checked against the shared registry's owner and relayed to that instance.
A click on an answer that has already finished gets a short ephemeral note.

The 👍/👎 buttons under a finished answer (``action_id="answer_feedback"``, value
``"up|<answer_id>|<conversation_id>"``): each vote is one structured log line (``kind: "feedback"``).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

import aiohttp
from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.deps import BotDeps
from bot.listeners.common import refusal
from bot.logs import log_line
from bot.render import FEEDBACK_ACTION_ID

STOP_ACTION_ID = "stop_answer"
ALREADY_FINISHED = "That answer has already finished."
VOTES = frozenset({"up", "down"})
_USER_ID = re.compile(r"[UW][A-Z0-9]{1,31}")


def only_owner_can_stop(owner: str) -> str:
    # The owner's id comes from Slack's own event (checked above to be an id), never from a file or the model.
    who = f"<@{owner}>" if _USER_ID.fullmatch(owner) else "the person who asked"
    return f"Only {who} (who asked) or a workspace admin can stop this answer."


class WorkspaceAdmins:
    """Whether a user is a workspace admin or owner, from ``users.info``, cached per (team, user).

    A lookup that fails counts as "not an admin" (the click is refused) and is cached only briefly.
    """

    def __init__(
        self,
        client: AsyncWebClient,
        *,
        ttl_s: float = 600.0,
        failure_ttl_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._ttl = ttl_s
        self._failure_ttl = failure_ttl_s
        self._clock = clock
        self._cache: dict[tuple[str, str], tuple[bool, float]] = {}

    async def is_admin(self, team: str, user: str) -> bool:
        now = self._clock()
        cached = self._cache.get((team, user))
        if cached is not None and cached[1] > now:
            return cached[0]
        admin, ttl = False, self._failure_ttl
        try:
            response = await self._client.users_info(user=user)
            info = response.get("user") or {}
            admin = bool(info.get("is_admin") or info.get("is_owner") or info.get("is_primary_owner"))
            ttl = self._ttl
        except SlackApiError as error:
            log_line("error", where="users.info", team=team, error=error.response.get("error"))
        except (aiohttp.ClientError, TimeoutError) as error:
            log_line("error", where="users.info", team=team, error=type(error).__name__)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[(team, user)] = (admin, now + ttl)
        return admin


def register(app: Any, deps: BotDeps) -> None:
    admins = WorkspaceAdmins(deps.client)

    @app.action(STOP_ACTION_ID)
    async def on_stop(ack: AsyncAck, action: dict[str, Any], body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        answer_id = str(action.get("value", ""))
        team = str((body.get("team") or {}).get("id") or "")
        user = str((body.get("user") or {}).get("id") or "")
        channel = (body.get("channel") or {}).get("id")
        fields = {"type": "stop", "team": team, "channel": channel, "answer_id": answer_id}

        async def reply(text: str) -> None:
            await respond(text=text, response_type="ephemeral", replace_original=False)

        refused = refusal(deps, team=team, channel=None, user=user)
        if refused is not None:
            log_line("request", **fields, found=None, allowed=False)
            await reply(refused)
            return
        owner = deps.running.owner(answer_id)
        record = None
        if owner is None:  # not running here: maybe on another instance (REDIS_URL)
            record = await deps.registry.get(answer_id)
            owner = (record.team, record.user) if record is not None else None
        # User ids are unique across workspaces (a Slack Connect guest clicks with their own team's id).
        if owner is not None and owner[1] != user and not await admins.is_admin(team, user):
            log_line("request", **fields, found=True, allowed=False)
            await reply(only_owner_can_stop(owner[1]))
            return
        if record is None:
            stopped = deps.running.cancel(answer_id)
        else:  # the instance that runs it cancels it; its writer ends the message as stopped
            stopped = await deps.registry.request_stop(answer_id, user)
        log_line("request", **fields, found=stopped, relayed=record is not None or None)
        if not stopped:
            await reply(ALREADY_FINISHED)

    @app.action(FEEDBACK_ACTION_ID)
    async def on_feedback(ack: AsyncAck, action: dict[str, Any], body: dict[str, Any]) -> None:
        await ack()
        vote, _, rest = str(action.get("value", "")).partition("|")
        answer_id, _, conversation_id = rest.partition("|")
        log_line(
            "feedback",
            vote=vote if vote in VOTES else "unknown",
            answer_id=answer_id[:64] or None,
            conversation_id=conversation_id[:200] or None,
            team=(body.get("team") or {}).get("id"),
            channel=(body.get("channel") or {}).get("id"),
            user=(body.get("user") or {}).get("id"),
            message_ts=(body.get("message") or {}).get("ts") or (body.get("container") or {}).get("message_ts"),
        )
