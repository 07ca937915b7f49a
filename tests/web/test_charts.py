"""Charts in the web chat, over HTTP: the report's bridge chart and the agent's make_chart shown inline."""

from __future__ import annotations

import asyncio
import io
import re

import pytest
from PIL import Image

from bot.textfilter import ZWSP
from bot.web.state import conversation_key
from tests.fakes.openai_server import FakeOpenAI, text, tool_call
from tests.web.helpers import ask, deltas, upload, upload_example, without_comments

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
CHART_URL = re.compile(r"/api/charts/[0-9a-f]{32}\.png")


async def _png(web_chat, url: str, **kwargs) -> bytes:
    async with web_chat.http.get(f"{web_chat.url}{url}", **kwargs) as response:
        assert response.status == 200, await response.text()
        assert response.content_type == "image/png"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        return await response.read()


async def test_the_report_chart_is_the_bridge_of_the_uploaded_file(web_chat) -> None:
    dataset = await upload_example(web_chat.http, web_chat.url)
    async with web_chat.http.get(f"{web_chat.url}/api/files/{dataset}/chart") as response:
        assert response.status == 200
        chart = await response.json()
    assert CHART_URL.fullmatch(chart["url"])
    # The example mixes revenue and costs: the bridge is of profit, budget to actual (the report's headline rule).
    assert chart["title"].startswith("Profit: budget to actual")
    assert chart["alt"].startswith(chart["title"] + ": from ")
    png = await _png(web_chat, chart["url"])
    assert png.startswith(PNG_MAGIC) and len(png) <= 300 * 1024
    assert Image.open(io.BytesIO(png)).size[0] >= 640
    # Drawn once per dataset: asking again (a page reload) gives the same chart.
    async with web_chat.http.get(f"{web_chat.url}/api/files/{dataset}/chart") as response:
        assert (await response.json())["url"] == chart["url"]
    assert len(web_chat.state.charts) == 1


async def test_concurrent_requests_share_one_drawing(web_chat) -> None:
    dataset = await upload_example(web_chat.http, web_chat.url)

    async def fetch() -> str:
        async with web_chat.http.get(f"{web_chat.url}/api/files/{dataset}/chart") as response:
            return str((await response.json())["url"])

    urls = await asyncio.gather(*(fetch() for _ in range(4)))
    assert len(set(urls)) == 1 and len(web_chat.state.charts) == 1


async def test_chart_routes_refuse_unknown_ids(web_chat) -> None:
    for path in (
        "/api/charts/" + "0" * 32 + ".png",
        "/api/charts/nothex.png",
        "/api/files/" + "0" * 32 + "/chart",
    ):
        async with web_chat.http.get(f"{web_chat.url}{path}") as response:
            assert response.status == 404, path
            assert "error" in await response.json()


@pytest.mark.parametrize("web_settings_overrides", [{"token": "t" * 24}])
async def test_chart_routes_need_the_token_like_every_api_route(web_chat) -> None:
    bearer = {"Authorization": "Bearer " + "t" * 24}
    dataset = await upload_example(web_chat.http, web_chat.url, headers=bearer)
    async with web_chat.http.get(f"{web_chat.url}/api/files/{dataset}/chart") as response:
        assert response.status == 401
    async with web_chat.http.get(f"{web_chat.url}/api/files/{dataset}/chart", headers=bearer) as response:
        url = (await response.json())["url"]
    async with web_chat.http.get(f"{web_chat.url}{url}") as response:
        assert response.status == 401
    # An <img> cannot send a header: the page adds ?token=, as for the stream.
    assert (await _png(web_chat, url, params={"token": "t" * 24})).startswith(PNG_MAGIC)
    async with web_chat.http.get(f"{web_chat.url}{url}", headers={**bearer, "Origin": "http://evil.example"}) as r:
        assert r.status == 403


async def test_make_chart_is_an_inline_chart_event_in_the_answer(web_chat, fake: FakeOpenAI) -> None:
    fake.script(
        tool_call("make_chart", {"kind": "bars", "dimension": "Department"}, call_id="c1"),
        text("The bars chart below shows each department against budget.", chunk=5),
    )
    dataset = await upload_example(web_chat.http, web_chat.url)
    events = without_comments(await ask(web_chat.http, web_chat.url, "Chart by department", dataset))
    kinds = [e.event or ("done" if e.data.get("done") else "delta") for e in events]
    # The chart comes right after its tool finished, before the text that refers to it.
    assert kinds[:3] == ["tool", "tool", "chart"]
    assert kinds[-1] == "done" and "delta" in kinds[3:]
    chart = events[2].data
    assert set(chart) == {"url", "alt", "title"}
    assert CHART_URL.fullmatch(chart["url"])
    assert chart["title"] == "Budget vs actual by Department, 2025-01 – 2025-09"
    assert chart["alt"].startswith(chart["title"])
    assert deltas(events) == "The bars chart below shows each department against budget."
    assert (await _png(web_chat, chart["url"])).startswith(PNG_MAGIC)
    # Taken from the conversation's outbox: nothing left behind.
    stored = web_chat.state.store.get(conversation_key(events[-1].data["conversation"]))
    assert stored is not None and len(stored.context.charts) == 0


async def test_a_make_chart_that_fails_sends_no_chart(web_chat, fake: FakeOpenAI) -> None:
    fake.script(tool_call("make_chart", {"kind": "bars", "dimension": "Region"}), text("No Region column."))
    dataset = await upload_example(web_chat.http, web_chat.url)
    events = without_comments(await ask(web_chat.http, web_chat.url, "Chart by region", dataset))
    assert [e for e in events if e.event == "chart"] == []
    assert events[-1].data["done"] is True


async def test_hostile_labels_reach_the_page_inert_in_the_alt_text(web_chat, fake: FakeOpenAI) -> None:
    content = (
        b"Department,Actual,Budget\n"
        b"<!channel> see https://evil.example/x,5000,1000\n"
        b"Rent,1000,1000\n"
        b"Travel,200,900\n"
    )
    status, body = await upload(web_chat.http, web_chat.url, content, "hostile.csv")
    assert status == 200, body
    async with web_chat.http.get(f"{web_chat.url}/api/files/{body['dataset']}/chart") as response:
        chart = await response.json()
    assert "<!channel>" not in chart["alt"] and "https://evil.example" not in chart["alt"]
    assert ZWSP in chart["alt"]


@pytest.mark.parametrize("web_settings_overrides", [{"chart_memory_bytes": 1}])
async def test_the_chart_store_is_bounded(web_chat, fake: FakeOpenAI) -> None:
    dataset = await upload_example(web_chat.http, web_chat.url)
    async with web_chat.http.get(f"{web_chat.url}/api/files/{dataset}/chart") as response:
        first = (await response.json())["url"]
    fake.script(tool_call("make_chart", {"kind": "bridge"}), text("See the bridge."))
    events = without_comments(await ask(web_chat.http, web_chat.url, "Bridge", dataset))
    (chart,) = [e.data for e in events if e.event == "chart"]
    # One byte of room: each new chart pushes the older out (the newest is always kept).
    assert len(web_chat.state.charts) == 1
    async with web_chat.http.get(f"{web_chat.url}{first}") as response:
        assert response.status == 404
    assert (await _png(web_chat, chart["url"])).startswith(PNG_MAGIC)
