"""Conversation memory on disk (analyst.memory + ConversationSession): private files, attribution of every item,
deletions that leave no bytes behind, retention."""

from __future__ import annotations

import asyncio
import os
import stat
import time
from pathlib import Path

from analyst import memory
from analyst.agent.session import ConversationSession


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


async def store(path: Path, session_id: str, speaker: str | None, source: str | None, *items: dict[str, str]) -> None:
    session = ConversationSession(session_id, path, speaker=speaker, source=source)
    try:
        await session.add_items(list(items))
    finally:
        session.close()


def on_disk(folder: Path, word: str) -> bool:
    return any(word.encode() in p.read_bytes() for p in folder.iterdir() if p.is_file())


async def read(path: Path, session_id: str) -> list[str]:
    session = ConversationSession(session_id, path)
    try:
        return [str(item["content"]) for item in await session.get_items()]  # type: ignore[index]
    finally:
        session.close()


async def test_files_are_private_even_when_they_existed_before(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir(mode=0o755)
    path = memory.db_path(folder)
    path.touch(mode=0o644)
    os.chmod(path, 0o644)
    await store(path, "T:D1", "U1", "1.0", user("hello"), assistant("hi"))
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    files = [p for p in folder.iterdir()]
    assert {p.name for p in files} >= {"conversations.sqlite3"}
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in files), [(p.name, oct(p.stat().st_mode)) for p in files]


async def test_forget_by_speaker_and_by_source_leave_no_bytes(tmp_path: Path) -> None:
    path = memory.db_path(tmp_path)
    await store(path, "T:C1:1.0", "UA", "1.0", user("alpha zeppelin"), assistant("alpha helium answer"))
    await store(path, "T:C1:1.0", "UB", "2.0", user("bravo walrus"), assistant("bravo answer"))
    await store(path, "T:C1:3.0", "UA", "3.0", user("charlie quokka"), assistant("charlie answer"))
    await store(path, "T:C2:1.0", "UA", "4.0", user("delta narwhal"), assistant("delta answer"))
    await store(path, "T:C10:1.0", "UA", "5.0", user("echo ibis"), assistant("echo answer"))  # a prefix look-alike

    forgotten = await asyncio.to_thread(memory.forget_place, path, "T:C1", speaker="UA")
    assert forgotten == memory.Forgotten(conversations=2, items=4)
    assert await read(path, "T:C1:1.0") == ["bravo walrus", "bravo answer"]
    assert await read(path, "T:C1:3.0") == []
    for word in ("zeppelin", "helium", "quokka"):
        assert not on_disk(tmp_path, word), word
    assert on_disk(tmp_path, "walrus") and on_disk(tmp_path, "narwhal") and on_disk(tmp_path, "ibis")

    assert await asyncio.to_thread(memory.forget_source, path, "T:C1", "2.0") == memory.Forgotten(1, 2)
    assert not on_disk(tmp_path, "walrus") and on_disk(tmp_path, "narwhal")
    assert await asyncio.to_thread(memory.forget_place, path, "T:C2") == memory.Forgotten(1, 2)
    assert not on_disk(tmp_path, "narwhal") and on_disk(tmp_path, "ibis")


async def test_a_session_opened_before_a_forget_does_not_write_back(tmp_path: Path) -> None:
    path = memory.db_path(tmp_path)
    running = ConversationSession("T:C1:1.0", path, speaker="UA", source="1.0")
    try:
        await running.add_items([user("alpha zeppelin")])
        await asyncio.to_thread(memory.forget_place, path, "T:C1", speaker="UA")
        await running.add_items([assistant("alpha helium answer")])  # the run ends after the forget
    finally:
        running.close()
    await store(path, "T:C1:1.0", "UA", "2.0", user("later question"))  # a new run is stored again
    assert await read(path, "T:C1:1.0") == ["later question"]
    assert not on_disk(tmp_path, "helium")


async def test_purge_deletes_items_past_retention(tmp_path: Path) -> None:
    path = memory.db_path(tmp_path)
    await store(path, "T:D1", "U1", "1.0", user("old zeppelin"), assistant("old answer"))
    assert await asyncio.to_thread(memory.purge_older_than, path, 30 * 86400) == memory.Forgotten()
    later = time.time() + 31 * 86400
    purged = await asyncio.to_thread(memory.purge_older_than, path, 30 * 86400, now=later)
    assert purged == memory.Forgotten(conversations=1, items=2)
    assert not on_disk(tmp_path, "zeppelin")
    assert await asyncio.to_thread(memory.purge_older_than, tmp_path / "missing.sqlite3", 1) == memory.Forgotten()


async def test_a_shared_sticky_folder_keeps_its_mode_and_the_file_stays_private(tmp_path: Path) -> None:
    # VARIANCE_DATA_DIR=/tmp (or any world-writable sticky folder): making it 0700 would lock every other user
    # and service out of it. The folder is left as it is; the database file itself is 0600.
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    path = memory.db_path(shared)
    await store(path, "T:D1", "U1", "1.0", user("hello"), assistant("hi"))
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert await read(path, "T:D1") == ["hello", "hi"]
