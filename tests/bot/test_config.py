"""Settings are read and validated at start; problems are named, token values never shown."""

from __future__ import annotations

import pytest

from bot.config import DEFAULT_SLACK_API_URL, ConfigError, Settings

BOT = "xoxb-1111-2222-secretvalue"
APP = "xapp-1-A1-3333-secretapp"


def test_http_mode_needs_bot_token_and_signing_secret() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({}, mode="http", load_agent=False)
    message = str(caught.value)
    assert "SLACK_BOT_TOKEN" in message
    assert "SLACK_SIGNING_SECRET" in message
    assert "SLACK_APP_TOKEN" not in message


def test_socket_mode_needs_app_token_not_signing_secret() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env({"SLACK_BOT_TOKEN": BOT}, mode="socket", load_agent=False)
    assert "SLACK_APP_TOKEN" in str(caught.value)
    assert "SLACK_SIGNING_SECRET" not in str(caught.value)
    settings = Settings.from_env({"SLACK_BOT_TOKEN": BOT, "SLACK_APP_TOKEN": APP}, mode="socket", load_agent=False)
    assert settings.app_token == APP


def test_malformed_values_are_named_without_showing_tokens() -> None:
    env = {
        "SLACK_BOT_TOKEN": "xoxp-user-token-secretvalue",
        "SLACK_APP_TOKEN": "not-an-app-token-secret",
        "SLACK_API_URL": "ftp://example",
        "VARIANCE_MAX_FILE_MB": "lots",
        "VARIANCE_WORKERS": "0",
    }
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env, mode="socket", load_agent=False)
    message = str(caught.value)
    for name in (
        "SLACK_BOT_TOKEN",
        "SLACK_APP_TOKEN",
        "SLACK_API_URL",
        "VARIANCE_MAX_FILE_MB",
        "VARIANCE_WORKERS",
    ):
        assert name in message
    assert "secret" not in message


def test_defaults_and_overrides() -> None:
    env = {"SLACK_BOT_TOKEN": BOT, "SLACK_SIGNING_SECRET": "s3cr3t"}
    settings = Settings.from_env(env, mode="http", load_agent=False)
    assert settings.slack_api_url == DEFAULT_SLACK_API_URL
    assert settings.max_file_bytes == 50 * 1024 * 1024
    assert settings.file_origins == frozenset({("https", "files.slack.com", 443)})
    assert "secret" not in repr(settings) and "s3cr3t" not in repr(settings)

    env |= {
        "SLACK_API_URL": "http://127.0.0.1:8123/api",
        "VARIANCE_MAX_FILE_MB": "2",
        "VARIANCE_EDIT_INTERVAL_S": "0.5",
    }
    settings = Settings.from_env(env, mode="http", load_agent=False)
    assert settings.slack_api_url == "http://127.0.0.1:8123/api/"
    assert settings.max_file_bytes == 2 * 1024 * 1024
    assert settings.edit_interval_s == 0.5
    assert ("http", "127.0.0.1", 8123) in settings.file_origins


def test_serve_requires_the_model_key() -> None:
    env = {"SLACK_BOT_TOKEN": BOT, "SLACK_SIGNING_SECRET": "s"}
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        Settings.from_env(env, mode="http")


def test_serve_exits_with_a_clear_message(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.app import cli_main

    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN", "OPENAI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert cli_main(["--http", "--port", "0"]) == 2
    err = capsys.readouterr().err
    assert "SLACK_BOT_TOKEN" in err and "SLACK_SIGNING_SECRET" in err and "OPENAI_API_KEY" in err


def test_rejected_values_are_never_echoed() -> None:
    secret = "sk-live-0123456789abcdef"
    env = {
        "SLACK_BOT_TOKEN": BOT,
        "SLACK_SIGNING_SECRET": "signing",
        "OPENAI_API_KEY": "sk-test",
        "VARIANCE_WORKERS": secret,
        "VARIANCE_DATASET_MAX_HOURS": secret,
        "VARIANCE_API": secret,
    }
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env, mode="http")
    message = str(caught.value)
    assert "VARIANCE_WORKERS" in message and "VARIANCE_DATASET_MAX_HOURS" in message and "VARIANCE_API" in message
    assert "0123456789" not in message
    env.update(VARIANCE_API="responses", VARIANCE_WORKERS="2", VARIANCE_DATASET_MAX_HOURS="1")
    for name in ("VARIANCE_MODEL_TIMEOUT", "VARIANCE_TRACING", "VARIANCE_RETENTION_DAYS"):
        with pytest.raises(ConfigError) as caught:
            Settings.from_env(env | {name: secret}, mode="http")
        assert name in str(caught.value) and "0123456789" not in str(caught.value)


async def test_an_unreachable_slack_url_is_shown_without_its_userinfo(capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    from bot.app import serve

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        "SLACK_BOT_TOKEN": BOT,
        "SLACK_SIGNING_SECRET": "signing",
        "SLACK_API_URL": f"http://admin:hunter2pass@127.0.0.1:{port}/api/?key=querysecret",
    }
    settings = Settings.from_env(env, mode="http", load_agent=False)
    assert "hunter2pass" not in repr(settings)
    assert await serve(settings, http=True, host="127.0.0.1", port=None) == 2
    err = capsys.readouterr().err
    assert f"127.0.0.1:{port}/api/" in err
    assert "hunter2pass" not in err and "admin" not in err and "querysecret" not in err
