"""Conversation memory on disk: one SQLite file, private to the bot's user, whose deletions leave no text behind.

The agent's history lives in the Agents SDK's tables (``agent_sessions``, ``agent_messages``) in
``conversations.sqlite3`` under the data folder. This module owns what the SDK does not do:

- **Permissions.** The folder is ``0700`` and the database ``0600`` (SQLite creates its ``-wal`` and ``-shm``
  files with the database's mode), created so and tightened when they already exist (a shared sticky folder
  such as ``/tmp`` keeps its mode).
- **Who said what.** ``conversation_turns`` records, for every stored item, the person whose question produced it
  (``speaker``) and the chat message it answered (``source``). A trigger removes the record with its item.
- **Deletion that deletes.** Every connection runs with ``PRAGMA secure_delete=ON`` (deleted rows are
  overwritten with zeros) and every deletion here ends with a ``wal_checkpoint(TRUNCATE)``, so neither the
  database nor its write-ahead log keeps a copy of the deleted text.
- **Retention.** :func:`purge_older_than` deletes items older than the retention period.
- **No resurrection.** A deletion leaves a mark (place, speaker, source, time) in ``deletion_marks``; a run that
  started before it and finishes after it stores nothing the deletion covered (:func:`suppressed`).

Conversation ids are ``team:channel`` (a DM, or ``/variance`` in a channel) or ``team:channel:thread_ts``; a
*place* (``team:channel``) covers the conversation of that id and every thread under it.

Everything here blocks on file I/O: call it from a worker thread. It never imports the Agents SDK.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DB_NAME = "conversations.sqlite3"
SESSIONS_TABLE = "agent_sessions"  # the Agents SDK's default table names (SQLiteSession)
MESSAGES_TABLE = "agent_messages"
TURNS_TABLE = "conversation_turns"
MARKS_TABLE = "deletion_marks"
MARK_LIFETIME_SECONDS = 86400.0  # far longer than any run lasts
_SIDE_FILES = ("-wal", "-shm", "-journal")


def db_path(data_dir: Path) -> Path:
    return data_dir / DB_NAME


def prepare_store(path: Path) -> None:
    """Create (or tighten) the data folder as ``0700`` (a shared sticky folder such as ``/tmp`` keeps its mode)
    and the database file as ``0600``."""
    folder = path.parent
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    if not folder.stat().st_mode & stat.S_ISVTX:
        # A sticky folder is a shared one (/tmp): locking it would lock every other user out; the file is 0600.
        os.chmod(folder, 0o700)
    if str(path) == ":memory:":
        return
    descriptor = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.close(descriptor)
    os.chmod(path, 0o600)
    for suffix in _SIDE_FILES:
        side = Path(f"{path}{suffix}")
        with contextlib.suppress(FileNotFoundError):
            os.chmod(side, 0o600)


def configure(conn: sqlite3.Connection) -> None:
    """Per-connection settings every connection to the memory uses (the SDK's and ours)."""
    conn.execute("PRAGMA secure_delete=ON")


def create_turns_schema(conn: sqlite3.Connection) -> None:
    """The attribution table and the trigger that drops a record with its item (no commit)."""
    conn.execute(
        f"""CREATE TABLE IF NOT EXISTS {TURNS_TABLE} (
            message_id INTEGER PRIMARY KEY,
            session_id TEXT NOT NULL,
            speaker TEXT,
            source TEXT
        )"""
    )
    conn.execute(f"CREATE INDEX IF NOT EXISTS idx_{TURNS_TABLE}_session ON {TURNS_TABLE} (session_id, speaker)")
    conn.execute(f"CREATE INDEX IF NOT EXISTS idx_{TURNS_TABLE}_source ON {TURNS_TABLE} (source)")
    conn.execute(
        f"""CREATE TRIGGER IF NOT EXISTS {TURNS_TABLE}_follow AFTER DELETE ON {MESSAGES_TABLE}
            BEGIN DELETE FROM {TURNS_TABLE} WHERE message_id = old.id; END"""
    )
    conn.execute(f"CREATE TABLE IF NOT EXISTS {MARKS_TABLE} (place TEXT NOT NULL, speaker TEXT, source TEXT, at REAL)")


def suppressed(
    conn: sqlite3.Connection, session_id: str, *, speaker: str | None, source: str | None, since: float
) -> bool:
    """True when a deletion made after ``since`` covers what this session would store now."""
    row = conn.execute(
        f"""SELECT 1 FROM {MARKS_TABLE} WHERE at >= ? AND (? = place OR substr(?, 1, length(place) + 1) = place || ':')
            AND (speaker IS NULL OR speaker = ?) AND (source IS NULL OR source = ?) LIMIT 1""",
        (since, session_id, session_id, speaker, source),
    ).fetchone()
    return row is not None


def _mark(conn: sqlite3.Connection, place: str, *, speaker: str | None = None, source: str | None = None) -> None:
    conn.execute(
        f"INSERT INTO {MARKS_TABLE} (place, speaker, source, at) VALUES (?, ?, ?, ?)",
        (place, speaker, source, time.time()),
    )


def record_turn(
    conn: sqlite3.Connection, session_id: str, count: int, *, speaker: str | None, source: str | None
) -> None:
    """Attribute the session's ``count`` newest items (just inserted, in the same transaction)."""
    if count <= 0 or (speaker is None and source is None):
        return
    rows = conn.execute(
        f"SELECT id FROM {MESSAGES_TABLE} WHERE session_id = ? ORDER BY id DESC LIMIT ?", (session_id, count)
    ).fetchall()
    conn.executemany(
        f"INSERT OR REPLACE INTO {TURNS_TABLE} (message_id, session_id, speaker, source) VALUES (?, ?, ?, ?)",
        [(row_id, session_id, speaker, source) for (row_id,) in rows],
    )


@contextlib.contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    """A configured connection to the memory (closed on exit; the caller commits)."""
    conn = sqlite3.connect(str(path), timeout=10)
    try:
        configure(conn)
        yield conn
    finally:
        conn.close()


@dataclass(frozen=True, slots=True)
class Forgotten:
    """What a deletion removed: whole conversations, and stored items (questions, answers, tool results)."""

    conversations: int = 0
    items: int = 0

    def __add__(self, other: Forgotten) -> Forgotten:
        return Forgotten(self.conversations + other.conversations, self.items + other.items)


def _open_existing(path: Path) -> sqlite3.Connection | None:
    if not path.exists():
        return None
    conn = sqlite3.connect(str(path), timeout=10)
    configure(conn)
    tables = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if MESSAGES_TABLE not in tables:
        conn.close()
        return None
    create_turns_schema(conn)
    conn.commit()
    return conn


def _in_place(column: str) -> str:
    # team:channel itself, or team:channel:<thread>; ids are Slack ids, but compare literally (no LIKE patterns).
    return f"({column} = ? OR substr({column}, 1, ?) = ?)"


def _place_args(place: str) -> tuple[str, int, str]:
    return place, len(place) + 1, place + ":"


def _delete(conn: sqlite3.Connection, where: str, args: tuple[object, ...]) -> Forgotten:
    """Delete the items matching ``where``; drop sessions left empty; commit; truncate the WAL.

    The checkpoint copies the zeroed pages into the database and empties the write-ahead log, so no old copy
    of a deleted page survives in either file.
    """
    conversations, items = conn.execute(
        f"SELECT COUNT(DISTINCT session_id), COUNT(*) FROM {MESSAGES_TABLE} WHERE {where}", args
    ).fetchone()
    if items:
        conn.execute(f"DELETE FROM {MESSAGES_TABLE} WHERE {where}", args)
        conn.execute(
            f"DELETE FROM {SESSIONS_TABLE} "
            f"WHERE session_id NOT IN (SELECT DISTINCT session_id FROM {MESSAGES_TABLE})"
        )
    conn.commit()
    if items:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    return Forgotten(conversations=int(conversations), items=int(items))


def forget_place(path: Path, place: str, *, speaker: str | None = None) -> Forgotten:
    """Delete the memory of a place (``team:channel`` and its threads).

    With ``speaker``, only the items that person's questions produced (their turns, also in shared threads);
    without, everything there (a DM: the person's own place).
    """
    conn = _open_existing(path)
    if conn is None:
        return Forgotten()
    with contextlib.closing(conn):
        _mark(conn, place, speaker=speaker)
        if speaker is None:
            return _delete(conn, _in_place("session_id"), _place_args(place))
        return _delete(
            conn,
            f"id IN (SELECT message_id FROM {TURNS_TABLE} WHERE speaker = ? AND {_in_place('session_id')})",
            (speaker, *_place_args(place)),
        )


def forget_source(path: Path, place: str, source: str) -> Forgotten:
    """Delete the turn a chat message (``source``, its ts) produced in a place: the question and its answer."""
    conn = _open_existing(path)
    if conn is None:
        return Forgotten()
    with contextlib.closing(conn):
        _mark(conn, place, source=source)
        return _delete(
            conn,
            f"id IN (SELECT message_id FROM {TURNS_TABLE} WHERE source = ? AND {_in_place('session_id')})",
            (source, *_place_args(place)),
        )


def purge_older_than(path: Path, seconds: float, *, now: float | None = None) -> Forgotten:
    """Delete every stored item older than ``seconds`` (and conversations left empty)."""
    conn = _open_existing(path)
    if conn is None:
        return Forgotten()
    cutoff = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime((time.time() if now is None else now) - seconds))
    with contextlib.closing(conn):
        conn.execute(f"DELETE FROM {MARKS_TABLE} WHERE at < ?", (time.time() - MARK_LIFETIME_SECONDS,))
        return _delete(conn, "created_at < ?", (cutoff,))
