"""Inbound activities are processed only with a valid Bot Framework token for this bot; the bot's own token comes
from the login endpoint and is reused until shortly before it expires."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from bot.teams.auth import BotTokenSource, TokenError
from bot.teams.settings import TeamsSettings
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.teams_server import FakeTeams
from tests.teams.helpers import RunningBot


def _bad_tokens(teams: FakeTeams) -> dict[str, str]:
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {
        "forged (right kid, other key)": teams.token(key=other_key),
        "unknown kid": teams.token(kid="not-a-published-key"),
        "expired": teams.token(expires_in=-3600),
        "wrong audience": teams.token(audience="11111111-2222-4333-8444-555555555555"),
        "audience in api:// form": teams.token(audience=f"api://{teams.app_id}"),
        "wrong issuer": teams.token(issuer="https://sts.windows.net/tenant-1/"),
        "serviceurl of another service": teams.token(service_url="https://evil.example.com/teams/"),
        "no serviceurl claim": teams.token(claims={"serviceurl": None}),
        "HS256": teams.token(algorithm="HS256"),
        "not a JWT": "abc.def",
    }


async def test_every_bad_token_is_401_with_no_model_and_no_outbound_call(
    teams: FakeTeams, model: FakeOpenAI, bot: RunningBot, example_csv: bytes
) -> None:
    url = teams.host_file("budget_vs_actual.csv", example_csv, "text/csv")
    activity = teams.message("why is marketing over budget?", files=[("budget_vs_actual.csv", url)])
    token_requests = teams.token_requests
    for name, token in _bad_tokens(teams).items():
        assert await teams.deliver(bot.url, activity, token=token) == 401, name
    assert await teams.deliver(bot.url, activity, token="") == 401
    await bot.deps.idle(timeout=5)
    assert bot.deps.tasks == set()
    assert teams.calls == []
    assert teams.token_requests == token_requests
    assert teams.file_requests == []
    assert model.requests == []
    assert bot.server.rejected == len(_bad_tokens(teams)) + 1


async def test_a_token_for_this_service_cannot_carry_an_activity_naming_another(
    teams: FakeTeams, model: FakeOpenAI, bot: RunningBot
) -> None:
    activity = teams.message("hello") | {"serviceUrl": "https://evil.example.com/teams/"}
    assert await teams.deliver(bot.url, activity) == 401
    without = {k: v for k, v in teams.message("hello").items() if k != "serviceUrl"}
    assert await teams.deliver(bot.url, without) == 401
    assert teams.calls == []


async def test_a_valid_token_is_accepted_and_acknowledged_before_the_answer(
    teams: FakeTeams, model: FakeOpenAI, bot: RunningBot
) -> None:
    assert await teams.deliver(bot.url, teams.message("help")) == 200
    await teams.wait_for(lambda t: len(t.calls) == 1)
    assert "budget-vs-actual" in teams.calls[0].text


async def test_healthz_is_ready_once_the_keys_are_loaded(bot: RunningBot) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session, session.get(f"{bot.base}/healthz") as response:
        assert response.status == 200
        assert (await response.json())["ok"] is True


async def test_the_bot_token_is_fetched_once_and_reused(teams: FakeTeams, settings: TeamsSettings) -> None:
    import aiohttp

    async with aiohttp.ClientSession() as session:
        source = BotTokenSource(settings, lambda: session)
        first = await source.get()
        assert await source.get() == first
        assert await source("https://api.botframework.com/.default", None) == first
        assert teams.token_requests == 1


async def test_the_bot_token_is_renewed_before_it_expires(teams: FakeTeams, settings: TeamsSettings) -> None:
    import aiohttp

    now = [1000.0]
    teams.token_lifetime_s = 3600
    async with aiohttp.ClientSession() as session:
        source = BotTokenSource(settings, lambda: session, clock=lambda: now[0])
        first = await source.get()
        now[0] += 3600 - 301  # within the last five minutes of its life
        second = await source.get()
        assert second != first
        assert teams.token_requests == 2


async def test_refused_credentials_are_a_clear_error_without_the_secret(
    teams: FakeTeams, settings: TeamsSettings
) -> None:
    import dataclasses

    import aiohttp

    wrong = dataclasses.replace(settings, app_password="not-the-secret")
    async with aiohttp.ClientSession() as session:
        with pytest.raises(TokenError) as raised:
            await BotTokenSource(wrong, lambda: session).get()
    assert "invalid_client" in str(raised.value)
    assert "not-the-secret" not in str(raised.value)
