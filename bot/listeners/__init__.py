"""Bolt listeners, one module per entry point (as in Slack's Bolt samples), each with ``register``."""

from __future__ import annotations

from typing import Any

from bot.deps import BotDeps


def register_all(app: Any, deps: BotDeps) -> None:
    from bot.listeners import actions, assistant, commands, direct_messages, mentions

    for module in (mentions, direct_messages, commands, actions, assistant):
        module.register(app, deps)
