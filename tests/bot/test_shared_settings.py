"""Slack, Teams and the web chat read the shared variables (file size, datasets, workers, answer limits, model,
data folder, retention) through one reader: the same environment gives every surface the same values, and a bad
value is reported once, by name, without the value, whichever surface starts."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from bot.config import ConfigError, Settings, SharedSettings
from bot.limits import LimitSettings
from bot.teams.settings import TeamsSettings
from bot.web.settings import WebSettings

SLACK_ENV = {"SLACK_BOT_TOKEN": "xoxb-1111-2222", "SLACK_SIGNING_SECRET": "signing"}
TEAMS_ENV = {"TEAMS_APP_ID": "app-id", "TEAMS_APP_PASSWORD": "app-password", "TEAMS_TENANT_ID": "tenant-id"}
SECRET = "sk-live-0123456789abcdef"

Reader = Callable[[Mapping[str, str]], SharedSettings]
SURFACES: dict[str, Reader] = {
    "slack": lambda env: Settings.from_env(SLACK_ENV | dict(env), mode="http"),
    "teams": lambda env: TeamsSettings.from_env(TEAMS_ENV | dict(env)),
    "web": lambda env: WebSettings.from_env(env),
}


def test_every_surface_reads_the_same_values(tmp_path: Path) -> None:
    env = {
        "OPENAI_API_KEY": "sk-test",
        "VARIANCE_MAX_FILE_MB": "3",
        "VARIANCE_DATASET_MEMORY_MB": "200",
        "VARIANCE_DATASET_IDLE_MINUTES": "15",
        "VARIANCE_DATASET_MAX_HOURS": "2",
        "VARIANCE_WORKERS": "3",
        "VARIANCE_FILE_TIMEOUT_S": "7.5",
        "VARIANCE_WORKER_MEMORY_MB": "300",
        "VARIANCE_USER_MAX_RUNNING": "1",
        "VARIANCE_USER_QUESTIONS_PER_MIN": "4",
        "VARIANCE_WORKSPACE_MAX_RUNNING": "0",
        "VARIANCE_DATA_DIR": str(tmp_path / "memory"),
        "VARIANCE_RETENTION_DAYS": "7",
    }
    expected: dict[str, Any] = {
        "max_file_bytes": 3 * 1024 * 1024,
        "dataset_memory_bytes": 200 * 1024 * 1024,
        "dataset_idle_seconds": 900.0,
        "dataset_max_age_seconds": 7200.0,
        "workers": 3,
        "file_timeout_s": 7.5,
        "worker_memory_mb": 300,
        "limits": LimitSettings(user_max_running=1, user_questions_per_min=4, workspace_max_running=0),
    }
    for surface, read in SURFACES.items():
        values = read(env).shared_fields()
        agent = values.pop("agent")
        assert values == expected, surface
        assert agent is not None and agent.data_dir == tmp_path / "memory" and agent.retention_days == 7.0, surface


@pytest.mark.parametrize(
    "variable",
    [
        "VARIANCE_MAX_FILE_MB",
        "VARIANCE_DATASET_MAX_HOURS",
        "VARIANCE_WORKERS",
        "VARIANCE_FILE_TIMEOUT_S",
        "VARIANCE_WORKER_MEMORY_MB",
        "VARIANCE_USER_MAX_RUNNING",
        "VARIANCE_WORKSPACE_MAX_RUNNING",
    ],
)
@pytest.mark.parametrize("surface", sorted(SURFACES))
def test_a_bad_shared_value_is_reported_once_by_name_without_the_value(surface: str, variable: str) -> None:
    with pytest.raises(ConfigError) as raised:
        SURFACES[surface]({"OPENAI_API_KEY": "sk-test", variable: SECRET})
    message = str(raised.value)
    assert message.count(variable) == 1
    assert "0123456789" not in message


@pytest.mark.parametrize("value", ["inf", "nan", "-1"])
def test_numbers_that_are_no_limit_are_refused(value: str) -> None:
    for read in SURFACES.values():
        with pytest.raises(ConfigError, match="VARIANCE_WORKERS"):
            read({"OPENAI_API_KEY": "sk-test", "VARIANCE_WORKERS": value})
        with pytest.raises(ConfigError, match="VARIANCE_MAX_FILE_MB"):
            read({"OPENAI_API_KEY": "sk-test", "VARIANCE_MAX_FILE_MB": value})


def test_a_count_must_be_plain_digits() -> None:
    for read in SURFACES.values():
        with pytest.raises(ConfigError, match="VARIANCE_USER_MAX_RUNNING"):
            read({"OPENAI_API_KEY": "sk-test", "VARIANCE_USER_MAX_RUNNING": "²"})


def test_each_surface_keeps_its_own_variables_apart() -> None:
    env = {"OPENAI_API_KEY": "sk-test", "VARIANCE_TEAMS_CHUNK_INTERVAL_S": "2", "VARIANCE_EDIT_INTERVAL_S": "0.5"}
    assert SURFACES["teams"](env).chunk_interval_s == 2.0  # type: ignore[attr-defined]
    assert SURFACES["slack"](env).edit_interval_s == 0.5  # type: ignore[attr-defined]
    assert not hasattr(SURFACES["web"](env), "chunk_interval_s")
