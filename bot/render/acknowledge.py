"""Acknowledging a question at once without spending ``chat.update``: a reaction on the user's message.

In a DM or a channel the bot reacts with :eyes: (``reactions.add``) on the question when its answer starts and
takes the reaction away (``reactions.remove``) when the answer has reached its final state, so the question
says "being worked on" exactly while it is. Both methods are Tier 3 with windows of their own, shared by the
workspace through :class:`bot.render.SlackBudget`: the reaction is added only while the add window has room
now *and* the remove window has room for every reaction still on a question, so a reaction is never left
behind for lack of budget (under that load the question goes without one; the answer's first text follows
within seconds anyway). In an assistant thread the status line (``assistant.threads.setStatus``) does this.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from bot.render.delivery import DeliveryError, classify_slack_error, without_retries
from bot.render.pacing import SlackBudget, UpdateScheduler

logger = logging.getLogger(__name__)

WORKING_REACTION = "eyes"
# Slack's answers that mean the reaction is already as we want it.
_ALREADY = frozenset({"already_reacted", "no_reaction", "message_not_found"})


@dataclass
class Reaction:
    """:data:`WORKING_REACTION` on one question while its answer runs. See the module docstring."""

    client: AsyncWebClient
    budget: SlackBudget
    team_id: str
    channel: str
    ts: str
    name: str = WORKING_REACTION
    lasting: bool = False  # an acknowledgement that stays (e.g. on a "stop" message): never removed
    added: bool = False
    _adding: asyncio.Task[bool] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.client = without_retries(self.client)

    def add(self) -> None:
        """React now (in the background) if the workspace's budgets allow adding and later removing it."""
        if self._adding is None:
            self._adding = asyncio.ensure_future(self._add())

    async def _add(self) -> bool:
        adds = self.budget.scheduler(self.team_id, "reactions.add")
        if self.lasting:
            return await adds.room() > 0 and await self._call(adds, "add")
        removes = self.budget.scheduler(self.team_id, "reactions.remove")
        if await adds.room() <= 0 or await removes.room() <= self.budget.reactions_on(self.team_id):
            return False
        self.budget.reaction_placed(self.team_id, +1)
        if await self._call(adds, "add"):
            self.added = True
            return True
        self.budget.reaction_placed(self.team_id, -1)
        return False

    async def remove(self) -> None:
        """Take the reaction away (after the answer reached its final state); waits for the add to settle."""
        if self._adding is None:
            return
        await asyncio.wait({self._adding})
        if not self.added:
            return
        try:
            await self._call(self.budget.scheduler(self.team_id, "reactions.remove"), "remove")
        finally:
            self.added = False
            self.budget.reaction_placed(self.team_id, -1)

    async def _call(self, scheduler: UpdateScheduler[object], verb: str) -> bool:
        async def send(_payload: object) -> None:
            call = self.client.reactions_add if verb == "add" else self.client.reactions_remove
            try:
                await call(channel=self.channel, timestamp=self.ts, name=self.name)
            except SlackApiError as exc:
                if classify_slack_error(exc).code not in _ALREADY:
                    raise

        slot = scheduler.open(f"{self.channel}:{self.ts}:reaction:{verb}", send)
        slot.first_shown()
        try:
            await slot.finish(None)
        except DeliveryError as err:
            logger.info("reaction %s on a question failed: %s", verb, err.code)
            return False
        return True
