"""The web chat builds its readers and its dataset store from the shared settings, as the Slack bot does: a file
stops at VARIANCE_FILE_TIMEOUT_S, a reader at VARIANCE_WORKER_MEMORY_MB, a dataset at VARIANCE_DATASET_MAX_HOURS."""

from __future__ import annotations

from bot.limits import LimitSettings
from bot.web.app import STATE_KEY, create_web_app
from bot.web.settings import WebSettings


async def test_the_web_chat_runs_under_the_shared_limits() -> None:
    env = {
        "VARIANCE_FILE_TIMEOUT_S": "9",
        "VARIANCE_WORKER_MEMORY_MB": "0",  # no memory limit, as for the Slack bot
        "VARIANCE_DATASET_MAX_HOURS": "2",
        "VARIANCE_DATASET_IDLE_MINUTES": "30",
        "VARIANCE_DATASET_MEMORY_MB": "64",
        "VARIANCE_USER_MAX_RUNNING": "1",
        "VARIANCE_WORKERS": "1",
    }
    state = create_web_app(WebSettings.from_env(env))[STATE_KEY]
    try:
        assert (state.workers.job_timeout_s, state.workers.memory_limit_mb) == (9.0, None)
        assert state.store.limits == (64 * 1024 * 1024, 1800.0, 7200.0)
        assert state.limits.settings == LimitSettings(user_max_running=1)  # type: ignore[attr-defined]
    finally:
        state.workers.shutdown()
