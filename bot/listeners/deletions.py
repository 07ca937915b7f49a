"""Deletions in Slack: a deleted message or file takes with it what the bot kept from it.

- ``message`` with subtype ``message_deleted`` (DMs, and channels the bot is in): the conversation turn that
  message's question produced (question, tool results, answer) is deleted from the memory, and the datasets read
  from files it carried are dropped.
- ``file_deleted``: every dataset read from that file is dropped, with its overrides.

Registered before the other ``message`` listener (Bolt runs the first listener that matches).
"""

from __future__ import annotations

from typing import Any

from bot.deps import BotDeps
from bot.listeners.common import team_of
from bot.retention import drop_file, drop_message


def _file_ids(message: Any) -> set[str]:
    if not isinstance(message, dict):
        return set()
    files = message.get("files")
    return {str(f["id"]) for f in files if isinstance(f, dict) and f.get("id")} if isinstance(files, list) else set()


def register(app: Any, deps: BotDeps) -> None:
    @app.event({"type": "message", "subtype": "message_deleted"})
    async def on_message_deleted(body: dict[str, Any], event: dict[str, Any]) -> None:
        ts = event.get("deleted_ts") or (event.get("previous_message") or {}).get("ts")
        channel = event.get("channel")
        if not ts or not channel:
            return
        team = team_of(body, event)
        files = _file_ids(event.get("previous_message"))
        deps.spawn(drop_message(deps, team, str(channel), str(ts), files), name="message_deleted")

    @app.event("file_deleted")
    async def on_file_deleted(body: dict[str, Any], event: dict[str, Any]) -> None:
        file_id = event.get("file_id")
        if file_id:
            drop_file(deps, team_of(body, event), str(file_id))
