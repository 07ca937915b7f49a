"""The Teams settings refuse endpoints that would carry the bot's secret or its signing keys in clear text."""

from __future__ import annotations

import pytest

from bot.config import ConfigError
from bot.teams.settings import TeamsSettings

BASE = {
    "TEAMS_APP_ID": "11111111-1111-4111-8111-111111111111",
    "TEAMS_APP_PASSWORD": "a-client-secret-value",
    "TEAMS_TENANT_ID": "22222222-2222-4222-8222-222222222222",
}


@pytest.mark.parametrize("name", ["TEAMS_LOGIN_ENDPOINT", "TEAMS_OPENID_METADATA_URL"])
def test_plain_http_to_another_machine_is_refused(name: str) -> None:
    # The login endpoint receives the client secret; the metadata URL decides which keys sign inbound tokens.
    with pytest.raises(ConfigError) as raised:
        TeamsSettings.from_env(
            BASE | {name: "http://login.example.net/v1/.well-known/openidconfiguration"}, load_agent=False
        )
    assert name in str(raised.value) and "https" in str(raised.value)
    assert "a-client-secret-value" not in str(raised.value)


@pytest.mark.parametrize("host", ["127.0.0.1:9000", "localhost:9000", "[::1]:9000"])
def test_plain_http_on_this_machine_is_allowed(host: str) -> None:
    settings = TeamsSettings.from_env(
        BASE | {"TEAMS_LOGIN_ENDPOINT": f"http://{host}", "TEAMS_OPENID_METADATA_URL": f"http://{host}/keys"},
        load_agent=False,
    )
    assert settings.login_endpoint == f"http://{host}"


def test_https_anywhere_is_allowed() -> None:
    settings = TeamsSettings.from_env(BASE | {"TEAMS_LOGIN_ENDPOINT": "https://login.example.net"}, load_agent=False)
    assert settings.token_url.startswith("https://login.example.net/")
