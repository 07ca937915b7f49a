"""Who may use the chat: the access token (Bearer or query), same-origin requests, loopback Host names."""

from __future__ import annotations

import pytest

from tests.fakes.openai_server import FakeOpenAI, text
from tests.web.helpers import EXAMPLE, sse_events, upload, without_comments

TOKEN = "q3-close-token-0123456789abcdef"


@pytest.mark.parametrize("web_settings_overrides", [{"token": TOKEN}])
async def test_token_is_required_for_the_api_but_not_for_health_or_the_page(web_chat, fake: FakeOpenAI) -> None:
    for path in ("/healthz", "/", "/static/app.js"):
        async with web_chat.http.get(web_chat.url + path) as response:
            assert response.status == 200, path
    status, body = await upload(web_chat.http, web_chat.url, EXAMPLE.read_bytes(), EXAMPLE.name)
    assert status == 401 and "token" in body["error"]
    status, body = await upload(
        web_chat.http, web_chat.url, EXAMPLE.read_bytes(), EXAMPLE.name, headers={"Authorization": "Bearer nope"}
    )
    assert status == 401
    status, body = await upload(
        web_chat.http, web_chat.url, EXAMPLE.read_bytes(), EXAMPLE.name, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    assert status == 200
    dataset = body["dataset"]
    stream = f"{web_chat.url}/api/chat/stream"
    async with web_chat.http.get(stream, params={"message": "Why?", "dataset": dataset}) as response:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    fake.script(text("Because."))
    # EventSource cannot send headers: the page passes the token as a query parameter.
    params = {"message": "Why?", "dataset": dataset, "token": TOKEN}
    async with web_chat.http.get(stream, params=params) as response:
        assert response.status == 200
        events = without_comments([event async for event in sse_events(response)])
    assert events[-1].data["done"] is True


async def test_cross_site_requests_are_refused(web_chat, fake: FakeOpenAI) -> None:
    headers = {"Origin": "https://evil.example"}
    status, body = await upload(web_chat.http, web_chat.url, EXAMPLE.read_bytes(), EXAMPLE.name, headers=headers)
    assert status == 403 and "other sites" in body["error"]
    same = {"Origin": web_chat.url}
    status, _ = await upload(web_chat.http, web_chat.url, EXAMPLE.read_bytes(), EXAMPLE.name, headers=same)
    assert status == 200


async def test_a_rebound_host_name_is_refused_without_a_token(web_chat) -> None:
    headers = {"Host": "attacker.example:8080"}
    status, body = await upload(web_chat.http, web_chat.url, EXAMPLE.read_bytes(), EXAMPLE.name, headers=headers)
    assert status == 403 and "loopback" in body["error"]
    status, _ = await upload(
        web_chat.http, web_chat.url, EXAMPLE.read_bytes(), EXAMPLE.name, headers={"Host": "localhost:8080"}
    )
    assert status == 200
