"""The Stop button (``action_id="stop_answer"``, value = the answer id): cancels that answer's run.

The writer then ends the message with the text so far, marked stopped. A click on an answer that has already
finished (or that another bot instance is writing) gets a short ephemeral note.

The 👍/👎 buttons under a finished answer (``action_id="answer_feedback"``, value
``"up|<answer_id>|<conversation_id>"``): each vote is one structured log line (``kind: "feedback"``).
"""

from __future__ import annotations

from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot.deps import BotDeps
from bot.logs import log_line
from bot.render import FEEDBACK_ACTION_ID

STOP_ACTION_ID = "stop_answer"
ALREADY_FINISHED = "That answer has already finished."
VOTES = frozenset({"up", "down"})


def register(app: Any, deps: BotDeps) -> None:
    @app.action(STOP_ACTION_ID)
    async def on_stop(ack: AsyncAck, action: dict[str, Any], body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        answer_id = str(action.get("value", ""))
        stopped = deps.running.cancel(answer_id)
        log_line(
            "request",
            type="stop",
            team=(body.get("team") or {}).get("id"),
            channel=(body.get("channel") or {}).get("id"),
            answer_id=answer_id,
            found=stopped,
        )
        if not stopped:
            await respond(text=ALREADY_FINISHED, response_type="ephemeral", replace_original=False)

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
