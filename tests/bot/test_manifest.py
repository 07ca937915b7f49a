"""manifest.yml asks for exactly the events and scopes the bot uses (read as text: no YAML dependency)."""

from __future__ import annotations

import re
from pathlib import Path

MANIFEST = Path(__file__).resolve().parents[2] / "manifest.yml"


def _list_after(text: str, key: str) -> list[str]:
    match = re.search(rf"^(\s*){re.escape(key)}:\n((?:\1\s+- .+\n)+)", text, re.MULTILINE)
    assert match, key
    return [line.strip()[2:] for line in match.group(2).splitlines()]


def test_manifest_scopes_events_and_modes() -> None:
    text = MANIFEST.read_text()
    scopes = set(_list_after(text, "bot"))
    assert {"app_mentions:read", "chat:write", "files:read", "im:history", "commands"} <= scopes
    # conversations.replies (files earlier in a thread) and conversations.info (/variance membership check)
    assert {"channels:history", "groups:history", "channels:read", "groups:read", "im:read"} <= scopes
    assert "users:read" in scopes  # users.info: may this person (not the asker) stop an answer? (admins only)
    assert "files:write" in scopes  # uploads: the report's bridge chart, the analyst's charts, the pack
    assert re.search(r"#\s+files:write\s+upload", text)  # with its reason
    assert not {"chat:write.public", "channels:join", "users:read.email"} & scopes
    # message.channels/groups for message_deleted (a deleted question is forgotten), file_deleted for files
    assert set(_list_after(text, "bot_events")) == {
        "app_mention",
        "message.im",
        "message.channels",
        "message.groups",
        "file_deleted",
        "assistant_thread_started",
        "assistant_thread_context_changed",
    }
    # The assistant container: its feature, the scope for status/prompts/titles, at least 3 suggested prompts.
    assert "assistant:write" in scopes
    assert "reactions:write" in scopes and re.search(r"#\s+reactions:write\s+:eyes:", text)  # acknowledgements
    assert re.search(r"^  assistant_view:\n    assistant_description: .+", text, re.MULTILINE)
    assert len(re.findall(r"^      - title: .+", text, re.MULTILINE)) >= 3
    assert "command: /variance" in text
    assert re.search(r"interactivity:\n\s+is_enabled: true", text)
    assert "socket_mode_enabled: true" in text
    assert "display_name: Variance Analyst" in text
