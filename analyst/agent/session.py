"""The conversation history the Agents SDK reads and writes: its ``SQLiteSession`` with our storage rules.

:class:`ConversationSession` is the SDK's session over ``conversations.sqlite3`` (see :mod:`analyst.memory`):
the file is private (``0700`` folder, ``0600`` file), every connection deletes securely, and every item it
stores is attributed to the person who asked (``speaker``) and the chat message asked in (``source``), so
``/variance forget`` and a deleted message remove exactly their turns.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

from agents import SQLiteSession
from agents.items import TResponseInputItem

from analyst import memory


class ConversationSession(SQLiteSession):
    """One conversation's history; ``speaker``/``source`` label everything this session object stores."""

    def __init__(
        self,
        session_id: str,
        db_path: Path,
        *,
        speaker: str | None = None,
        source: str | None = None,
        **kwargs: Any,
    ) -> None:
        memory.prepare_store(db_path)
        self.speaker = speaker
        self.source = source
        self.opened_at = time.time()  # a deletion after this moment also covers what this session stores later
        super().__init__(session_id, db_path, **kwargs)

    @staticmethod
    def _configure_connection(conn: sqlite3.Connection) -> None:
        SQLiteSession._configure_connection(conn)
        memory.configure(conn)

    def _create_schema_for_connection(self, conn: sqlite3.Connection) -> None:
        super()._create_schema_for_connection(conn)
        memory.create_turns_schema(conn)

    def _insert_items(self, conn: sqlite3.Connection, items: list[TResponseInputItem]) -> None:
        # A forget or a deleted message while this run was going: what it covers is not written back.
        if memory.suppressed(conn, self.session_id, speaker=self.speaker, source=self.source, since=self.opened_at):
            return
        super()._insert_items(conn, items)
        memory.record_turn(conn, self.session_id, len(items), speaker=self.speaker, source=self.source)
