"""The conversation history the Agents SDK reads and writes, and where it is kept.

:class:`SessionStore` is what an analyst run needs of a history store: open a conversation's session for one
question, and close it afterwards (pruning what can never be replayed). A front end may pass its own store to
``start_run`` (the chat bot keeps histories in Redis when several instances share them); the default is
:class:`SQLiteSessions`, one SQLite file under the data folder.

:class:`ConversationSession` is the SDK's ``SQLiteSession`` over ``conversations.sqlite3`` (see
:mod:`analyst.memory`): the file is private (``0700`` folder, ``0600`` file), every connection deletes securely,
and every item it stores is attributed to the person who asked (``speaker``) and the chat message asked in
(``source``), so ``/variance forget`` and a deleted message remove exactly their turns.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from pathlib import Path
from typing import Any, Protocol

from agents import SQLiteSession
from agents.items import TResponseInputItem
from agents.memory import Session, SessionSettings

from analyst import memory

logger = logging.getLogger("analyst.agent")


class SessionStore(Protocol):
    """Where conversation histories live. ``open`` and ``close`` are called once per question."""

    async def open(self, conversation_id: str, *, speaker: str | None, source: str | None, limit: int) -> Session:
        """The conversation's session; ``limit`` is how many of its newest items a run replays; ``speaker``
        and ``source`` label what this session stores."""
        ...

    async def close(self, session: Session, *, keep: int) -> None:
        """Prune the conversation to what a run could still replay (the newest ``keep`` items), then release
        the session. Must not raise."""
        ...


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


class SQLiteSessions:
    """The default store: :class:`ConversationSession` over one SQLite file. Opening creates the file and
    schema and takes the SDK's process-wide lock for that file, so opening and closing run in a thread."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path

    async def open(self, conversation_id: str, *, speaker: str | None, source: str | None, limit: int) -> Session:
        return await asyncio.to_thread(
            ConversationSession,
            conversation_id,
            self.db_path,
            speaker=speaker,
            source=source,
            session_settings=SessionSettings(limit=limit),
        )

    async def close(self, session: Session, *, keep: int) -> None:
        assert isinstance(session, SQLiteSession)
        await asyncio.to_thread(_prune_and_close, session, keep)


def _prune_and_close(session: SQLiteSession, keep: int) -> None:
    """Worker-thread job: prune the conversation's stored history, then close the session."""
    try:
        prune_history(session, keep)
    except sqlite3.Error as error:  # pruning is housekeeping: the next run prunes again
        logger.warning("could not prune the history: %s", type(error).__name__)
    finally:
        session.close()


def prune_history(session: SQLiteSession, keep: int) -> int:
    """Delete the stored items that can never be replayed again; returns how many were deleted.

    A run replays at most the newest ``keep`` items, from the first user message among them on; everything
    before that is deleted, so the file stays bounded by the number of conversations, not of questions.
    Blocking: call it in a worker thread.
    """
    if str(session.db_path) == ":memory:":
        return 0
    table = session.messages_table
    with memory.connect(Path(session.db_path)) as conn:  # secure_delete: pruned text is overwritten
        window = conn.execute(
            f"SELECT id, message_data FROM {table} WHERE session_id = ? ORDER BY id DESC LIMIT ?",
            (session.session_id, max(keep, 0)),
        ).fetchall()[::-1]
        if not window:
            first_kept = None
        else:
            first_kept = next((row_id for row_id, data in window if _is_user_message(data)), window[-1][0] + 1)
        if first_kept is None:  # keep == 0: nothing is ever replayed
            cursor = conn.execute(f"DELETE FROM {table} WHERE session_id = ?", (session.session_id,))
        else:
            cursor = conn.execute(
                f"DELETE FROM {table} WHERE session_id = ? AND id < ?", (session.session_id, first_kept)
            )
        conn.commit()
        return cursor.rowcount


def _is_user_message(data: str) -> bool:
    try:
        item = json.loads(data)
    except (json.JSONDecodeError, TypeError):
        return False
    return isinstance(item, dict) and item.get("role") == "user"
