"""Typing "stop" (or "cancel") in the thread of a running answer stops it, like the Stop button.

Needed where there is no button to press: a native stream shows none while it streams (Slack takes a stream's
blocks when it stops; see :mod:`bot.render.modes`) and an answer posted in parts has none (see
:mod:`bot.render.planner`). It works everywhere the bot reads the person's messages: a DM (``message.im``), an
assistant thread, and a mention in a channel thread ("@Variance Analyst stop").

Only the person who asked can stop their answer this way (an admin uses the button). The request is
acknowledged with a reaction on the "stop" message, and the answer ends with the text so far and
``_Stopped._``. With nothing of theirs running in the thread, they get a short ephemeral note, and "stop" is
never sent to the analyst as a question.
"""

from __future__ import annotations

import re

from bot.deps import BotDeps
from bot.listeners.common import post_ephemeral
from bot.logs import log_line
from bot.render import Reaction

STOP_WORDS = frozenset({"stop", "cancel", "stop it", "cancel it", "please stop", "stop please", "abort"})
STOPPED_REACTION = "octagonal_sign"
NOTHING_TO_STOP = "There is no answer of yours running in this thread to stop."


def is_stop_request(question: str) -> bool:
    """The whole message is a stop word ("Stop!", "cancel", "please stop"), not a question mentioning one."""
    words = re.sub(r"[^\w\s]", " ", question.lower()).split()
    return " ".join(words) in STOP_WORDS


async def stop_from_thread(
    deps: BotDeps, *, team: str, channel: str, thread_ts: str | None, user: str | None, message_ts: str | None
) -> bool:
    """Stop the person's answers running in this thread; True when one was stopped."""
    mine = [
        a for a in deps.threads.running_in(team, channel, thread_ts) if (deps.running.owner(a) or ("", ""))[1] == user
    ]
    stopped = [a for a in mine if deps.running.cancel(a)]
    log_line("request", type="stop_typed", team=team, channel=channel, found=bool(stopped), answers=len(stopped))
    if not stopped:
        await post_ephemeral(deps, channel, user, thread_ts, NOTHING_TO_STOP)
        return False
    if message_ts:
        Reaction(deps.client, deps.budget, team, channel, message_ts, name=STOPPED_REACTION, lasting=True).add()
    return True
