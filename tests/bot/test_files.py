"""Safe download of Slack files, against the fake Slack's file hosting (real HTTP, real bearer token)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from bot.files import FileRejected, SlackFile, check_content, download, table_files
from tests.fakes.slack_server import LOGIN_PAGE, FakeSlack

CSV = b"Department,Budget,Actual\nSales,100,120\nMarketing,50,45\n"
XLSX_HEAD = b"PK\x03\x04" + b"\x00" * 100


@pytest.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    async with FakeSlack() as fake:
        yield fake


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def origins(slack: FakeSlack) -> frozenset[tuple[str, str, int]]:
    port = int(slack.base_url.rsplit(":", 1)[1])
    return frozenset({("https", "files.slack.com", 443), ("http", "127.0.0.1", port)})


async def fetch(
    slack: FakeSlack,
    http: aiohttp.ClientSession,
    obj: dict,
    *,
    token: str | None = None,
    max_bytes: int = 1024 * 1024,
) -> bytes:
    return await download(
        http,
        SlackFile.from_object(obj),
        token=token or slack.bot_token,
        origins=origins(slack),
        max_bytes=max_bytes,
    )


async def test_downloads_with_the_bot_token(slack: FakeSlack, http: aiohttp.ClientSession) -> None:
    obj = slack.add_file(CSV, name="q3.csv")
    assert await fetch(slack, http, obj) == CSV
    assert slack.file_downloads == [(obj["id"], True)]


async def test_login_page_is_rejected(slack: FakeSlack, http: aiohttp.ClientSession) -> None:
    obj = slack.add_file(CSV, name="q3.csv")
    with pytest.raises(FileRejected) as caught:
        await fetch(slack, http, obj, token="xoxb-wrong")  # Slack answers 200 + its sign-in page
    assert caught.value.reason == "html"
    assert "files:read" in caught.value.user_message


async def test_html_served_as_csv_is_rejected(slack: FakeSlack, http: aiohttp.ClientSession) -> None:
    obj = slack.add_file(LOGIN_PAGE.encode(), name="q3.csv", mimetype="text/csv")
    with pytest.raises(FileRejected, match="sign-in page"):
        await fetch(slack, http, obj)


async def test_declared_size_over_the_limit_is_not_downloaded(slack: FakeSlack, http: aiohttp.ClientSession) -> None:
    obj = slack.add_file(CSV, name="big.csv", size=10 * 1024 * 1024)
    with pytest.raises(FileRejected) as caught:
        await fetch(slack, http, obj, max_bytes=1024 * 1024)
    assert caught.value.reason == "too_large" and "1 MB" in caught.value.user_message
    assert slack.file_downloads == []


async def test_real_size_is_checked_while_streaming(slack: FakeSlack, http: aiohttp.ClientSession) -> None:
    content = CSV + b"Sales,1,2\n" * 300_000  # ~3 MB, declared as tiny
    obj = slack.add_file(content, name="liar.csv", size=100)
    with pytest.raises(FileRejected) as caught:
        await fetch(slack, http, obj, max_bytes=1024 * 1024)
    assert caught.value.reason == "too_large"


async def test_only_slack_file_hosts_are_fetched(slack: FakeSlack, http: aiohttp.ClientSession) -> None:
    for url in (
        "https://evil.example.com/files-pri/x/download/a.csv",
        "file:///etc/passwd",
        "http://files.slack.com/files-pri/x/download/a.csv",
        "http://127.0.0.1:1/files-pri/a.csv",
    ):
        obj = {"id": "F1", "name": "a.csv", "filetype": "csv", "size": 10, "url_private_download": url}
        with pytest.raises(FileRejected) as caught:
            await fetch(slack, http, obj)
        assert caught.value.reason == "bad_url"
    assert slack.file_downloads == []


async def test_redirects_are_not_followed(http: aiohttp.ClientSession) -> None:
    hits: list[str] = []

    async def redirect(request: web.Request) -> web.Response:
        hits.append(request.path)
        raise web.HTTPFound("/login")

    app = web.Application()
    app.router.add_get("/{tail:.*}", redirect)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        obj = {
            "id": "F1",
            "name": "a.csv",
            "size": 10,
            "url_private_download": f"http://127.0.0.1:{port}/f/a.csv",
        }
        with pytest.raises(FileRejected) as caught:
            await download(
                http,
                SlackFile.from_object(obj),
                token="xoxb-t",
                origins=frozenset({("http", "127.0.0.1", port)}),
                max_bytes=1000,
            )
        assert caught.value.reason == "html"
        assert hits == ["/f/a.csv"]
    finally:
        await runner.cleanup()


def test_content_checks() -> None:
    csv = SlackFile.from_object({"name": "a.csv", "url_private_download": "x"})
    xlsx = SlackFile.from_object({"name": "a.xlsx", "url_private_download": "x"})
    check_content(csv, CSV)
    check_content(csv, "Статья;План;Факт\n".encode("cp1251"))
    check_content(xlsx, XLSX_HEAD)
    with pytest.raises(FileRejected, match="binary"):
        check_content(csv, bytes(range(256)) * 10)
    with pytest.raises(FileRejected, match="valid Excel"):
        check_content(xlsx, CSV)
    with pytest.raises(FileRejected, match="old-style Excel"):
        check_content(xlsx, b"\xd0\xcf\x11\xe0" + b"\x00" * 50)


def test_table_files_picks_csv_and_xlsx() -> None:
    objs = [
        {"id": "F1", "name": "photo.png", "filetype": "png"},
        {"id": "F2", "name": "q3.csv", "filetype": "csv", "url_private_download": "u"},
        {"id": "F3", "name": "Budget.XLSX", "filetype": "xlsx", "url_private_download": "u"},
        {"id": "F4", "name": "notes", "filetype": "text", "file_access": "check_file_info"},
    ]
    assert [f.id for f in table_files(objs)] == ["F2", "F3"]
    assert SlackFile.from_object(objs[3]).needs_info


async def test_links_aiohttp_would_read_differently_are_refused_clearly(
    slack: FakeSlack, http: aiohttp.ClientSession
) -> None:
    for url in (
        "https://evil.example.com\\@files.slack.com/files-pri/x/download/a.csv",  # aiohttp can't parse it
        "https://evil.example.com%2f@files.slack.com/files-pri/x/download/a.csv",  # user name in the link
        "https://user:pw@files.slack.com/files-pri/x/download/a.csv",
        "https://files.slack.com:notaport/files-pri/x/download/a.csv",
    ):
        obj = {"id": "F1", "name": "a.csv", "filetype": "csv", "size": 10, "url_private_download": url}
        with pytest.raises(FileRejected) as caught:
            await fetch(slack, http, obj)
        assert caught.value.reason == "bad_url"
        assert "Slack gave me a file link I can't use" in caught.value.user_message
    assert slack.file_downloads == []
