"""The web chat keeps conversation memory no longer than the Slack and Teams bots do: purged at start."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from analyst import memory
from bot.web.settings import WebSettings
from bot.workers import WorkerPool
from tests.fakes.openai_server import FakeOpenAI, text
from tests.web.helpers import WebUnderTest, ask, start_web, upload_example


def stored_messages(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM agent_messages").fetchone()[0])


async def test_a_restart_purges_conversations_past_retention(
    web_chat: WebUnderTest, web_settings: WebSettings, workers: WorkerPool, fake: FakeOpenAI
) -> None:
    dataset = await upload_example(web_chat.http, web_chat.url)
    fake.script(text("Events ran over plan."))
    events = await ask(web_chat.http, web_chat.url, "why is marketing over budget?", dataset)
    assert any(e.data and e.data.get("done") for e in events)
    assert web_settings.agent is not None
    db = memory.db_path(web_settings.agent.data_dir)
    assert stored_messages(db) >= 2  # the question and the answer
    with sqlite3.connect(db) as conn:  # the exchange happened 31 days ago (retention: 30 days by default)
        conn.execute("UPDATE agent_messages SET created_at = datetime('now', '-31 days')")
    again = await start_web(web_settings, workers)
    try:
        assert stored_messages(db) == 0
    finally:
        await again.http.close()
        await again.runner.cleanup()
