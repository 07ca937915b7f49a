"""``variance-bot web``: its settings, the token rule for non-loopback hosts, and the command as a process."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from bot.cli import main
from bot.config import ConfigError
from bot.web.settings import TOKEN_VARIABLE, WebSettings, is_loopback

TOKEN = "q3-close-token-0123456789abcdef"


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.53", "localhost", "::1", "[::1]"])
def test_loopback_hosts(host: str) -> None:
    assert is_loopback(host)
    assert WebSettings.from_env({}, host=host).token is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "192.168.1.20", "chat.internal"])
def test_a_non_loopback_host_needs_the_token(host: str) -> None:
    assert not is_loopback(host)
    with pytest.raises(ConfigError) as raised:
        WebSettings.from_env({}, host=host)
    assert TOKEN_VARIABLE in str(raised.value)
    settings = WebSettings.from_env({TOKEN_VARIABLE: TOKEN}, host=host)
    assert settings.token == TOKEN
    assert TOKEN not in repr(settings)


def test_every_problem_is_reported_at_once_without_values() -> None:
    env = {TOKEN_VARIABLE: "short", "VARIANCE_MAX_FILE_MB": "lots", "VARIANCE_API": "soap"}
    with pytest.raises(ConfigError) as raised:
        WebSettings.from_env(env, host="0.0.0.0", port=70000)
    message = str(raised.value)
    for words in (TOKEN_VARIABLE, "VARIANCE_MAX_FILE_MB", "VARIANCE_API", "--port"):
        assert words in message
    assert "short" not in message.replace("too short", "")


def test_shared_limits_come_from_the_same_variables() -> None:
    settings = WebSettings.from_env({"VARIANCE_MAX_FILE_MB": "2", "VARIANCE_WORKERS": "3", "OPENAI_API_KEY": "sk-x"})
    assert settings.max_file_bytes == 2 * 1024 * 1024 and settings.workers == 3
    assert settings.agent is not None and settings.agent.api_key == "sk-x"


def test_web_command_refuses_a_public_host_without_the_token(monkeypatch, capsys) -> None:
    monkeypatch.delenv(TOKEN_VARIABLE, raising=False)
    assert main(["web", "--host", "0.0.0.0", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert TOKEN_VARIABLE in err and "Traceback" not in err


def test_web_is_listed_in_the_usage(capsys) -> None:
    main(["--help"])
    assert "web" in capsys.readouterr().out


def test_web_command_serves_until_sigterm(tmp_path: Path) -> None:
    env = {
        key: value for key, value in os.environ.items() if not key.startswith(("OPENAI_", "VARIANCE_"))
    } | {"VARIANCE_DATA_DIR": str(tmp_path), "VARIANCE_WORKERS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "web", "--port", "0"],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        assert process.stderr is not None
        url = None
        for line in process.stderr:  # the command says where it listens once it does
            found = re.search(r"open (http://127\.0\.0\.1:\d+/)", line)
            if found:
                url = found.group(1)
                break
        assert url is not None
        with urllib.request.urlopen(url + "healthz", timeout=10) as response:
            assert response.status == 200
        with urllib.request.urlopen(url, timeout=10) as response:
            assert b"Variance Analyst" in response.read()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_answer_limits_and_dataset_age_come_from_the_bots_variables() -> None:
    from bot.limits import LimitSettings

    env = {"VARIANCE_USER_MAX_RUNNING": "0", "VARIANCE_USER_QUESTIONS_PER_MIN": "3", "VARIANCE_DATASET_MAX_HOURS": "2"}
    settings = WebSettings.from_env(env)
    assert settings.limits == LimitSettings(user_max_running=0, user_questions_per_min=3, workspace_max_running=20)
    assert settings.dataset_max_age_seconds == 7200.0
    with pytest.raises(ConfigError) as raised:
        WebSettings.from_env({"VARIANCE_WORKSPACE_MAX_RUNNING": "lots"})
    assert "VARIANCE_WORKSPACE_MAX_RUNNING" in str(raised.value)
