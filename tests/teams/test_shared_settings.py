"""The Teams bot runs under the shared settings, as the Slack bot does: answer limits, the datasets' absolute
age, the readers' time and memory limits from the environment, and the retention purge of conversation memory
in the same data folder before it serves."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from pathlib import Path

from aiohttp import web

from analyst.agent.session import ConversationSession
from bot.limits import LimitSettings
from bot.teams.server import create_teams_app
from bot.teams.settings import TeamsSettings
from tests.fakes.teams_server import FakeTeams

SHARED_ENV = {
    "VARIANCE_USER_MAX_RUNNING": "1",
    "VARIANCE_USER_QUESTIONS_PER_MIN": "3",
    "VARIANCE_WORKSPACE_MAX_RUNNING": "5",
    "VARIANCE_DATASET_MAX_HOURS": "2",
    "VARIANCE_DATASET_IDLE_MINUTES": "30",
    "VARIANCE_DATASET_MEMORY_MB": "64",
    "VARIANCE_FILE_TIMEOUT_S": "9",
    "VARIANCE_WORKER_MEMORY_MB": "700",
    "VARIANCE_WORKERS": "1",
}


async def _remember(db: Path, conversation: str, words: str, *, age_days: float) -> None:
    session = ConversationSession(conversation, db)
    try:
        await session.add_items([{"role": "user", "content": words}])
    finally:
        session.close()
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE agent_messages SET created_at = datetime('now', ?) WHERE session_id = ?",
            (f"-{age_days} days", conversation),
        )


def _remembered(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("SELECT message_data FROM agent_messages")]


async def test_teams_runs_under_the_shared_limits_and_retention(teams: FakeTeams, tmp_path: Path) -> None:
    env = teams.env() | SHARED_ENV | {"VARIANCE_DATA_DIR": str(tmp_path / "data"), "VARIANCE_RETENTION_DAYS": "10"}
    settings = TeamsSettings.from_env(env | {"OPENAI_API_KEY": "sk-test"})
    assert settings.agent is not None and settings.agent.retention_days == 10.0
    db = settings.agent.session_db_path
    await _remember(db, "teams:old", "zeppelin hangar", age_days=11)
    await _remember(db, "teams:recent", "walrus pool", age_days=9)

    server = create_teams_app(replace(settings, chunk_interval_s=0.0))
    deps = server.deps
    assert deps.limits.settings == LimitSettings(user_max_running=1, user_questions_per_min=3, workspace_max_running=5)
    assert deps.store.limits == (64 * 1024 * 1024, 1800.0, 7200.0)
    assert (deps.workers.job_timeout_s, deps.workers.memory_limit_mb) == (9.0, 700)

    runner = web.AppRunner(server.web_app, access_log=None)
    await runner.setup()  # start-up: memory past VARIANCE_RETENTION_DAYS is purged before anything is served
    try:
        remembered = _remembered(db)
        assert not any("zeppelin" in item for item in remembered)
        assert any("walrus" in item for item in remembered)
        admitted = await deps.limits.admit("tenant", "user-1")
        refused = await deps.limits.admit("tenant", "user-1")  # one answer at a time per user, as configured
        assert admitted.ok and not refused.ok and refused.reason == "user_running"
        await deps.limits.release(admitted)
    finally:
        await runner.cleanup()
