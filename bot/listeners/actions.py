"""The Stop button (``action_id="stop_answer"``, value = the answer id): cancels that answer's run.

The writer then ends the message with the text so far, marked stopped. A click on an answer that has already
finished (or that another bot instance is writing) gets a short ephemeral note.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot.deps import BotDeps
from bot.logs import log_line

STOP_ACTION_ID = "stop_answer"
ALREADY_FINISHED = "That answer has already finished."


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
