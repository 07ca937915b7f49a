"""Uploads: every unreadable file is a 4xx with a readable message; text from the file comes back inert."""

from __future__ import annotations

import io
import json

import aiohttp
import openpyxl
import pytest

from bot.textfilter import ZWSP
from tests.web.helpers import upload

HOSTILE = (
    "Department,Account,Budget,Actual\n"
    "<script>alert(1)</script>,Travel,1000,1500\n"
    "@channel,Visit evil.example.com,2000,1800\n"
    "[Sales](https://evil.example.com),Software,500,650\n"
)


async def test_labels_from_the_file_come_back_inert(web_chat) -> None:
    status, body = await upload(web_chat.http, web_chat.url, HOSTILE.encode(), "hostile<b>.csv")
    assert status == 200, body
    report = body["report"]
    assert report["totals"]["actual"] == 3950.0 and report["totals"]["reference"] == 3500.0
    serialised = json.dumps(report, ensure_ascii=False)
    for live in ("<script", "<b>", "@channel", "evil.example.com", "https:", "]("):
        assert live not in serialised
    assert ZWSP in serialised
    labels = {line["Department"] for line in report["lines"]}
    assert {label.replace(ZWSP, "") for label in labels} == {
        "<script>alert(1)</script>", "@channel", "[Sales](https://evil.example.com)",
    }


async def test_xlsx_upload(web_chat) -> None:
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Account", "Budget", "Actual"])
    sheet.append(["Revenue", 10000, 12500])
    sheet.append(["Rent", 3000, 3000])
    buffer = io.BytesIO()
    book.save(buffer)
    status, body = await upload(web_chat.http, web_chat.url, buffer.getvalue(), "plan.xlsx")
    assert status == 200, body
    assert body["report"]["totals"]["variance"] == 2500.0


@pytest.mark.parametrize(
    ("content", "filename", "status", "words"),
    [
        (b"%PDF-1.7 binary", "budget.pdf", 415, "CSV and Excel"),
        (b"<!DOCTYPE html><html><body>Sign in</body></html>", "budget.csv", 415, "web page"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "budget.xlsx", 415, "old-style Excel"),
        (b"PK\x03\x04 not really a workbook", "budget.xlsx", 422, "save it again"),
        (bytes(range(256)) * 40, "budget.csv", 415, "binary"),
        (b"", "budget.csv", 400, "empty"),
        (b"just some words\nand more words\n", "notes.csv", 422, ""),
    ],
)
async def test_unreadable_files_are_4xx_with_a_message(web_chat, content, filename, status, words) -> None:
    got, body = await upload(web_chat.http, web_chat.url, content, filename)
    assert got == status, body
    assert set(body) == {"error"} and words in body["error"]
    assert "Traceback" not in body["error"] and len(body["error"]) < 600


@pytest.mark.parametrize("web_settings_overrides", [{"max_file_bytes": 4096}])
async def test_a_file_over_the_limit_is_413(web_chat) -> None:
    big = ("Account,Budget,Actual\n" + "Travel,100,120\n" * 1000).encode()
    status, body = await upload(web_chat.http, web_chat.url, big, "big.csv")
    assert status == 413 and "4 KB" in body["error"]


async def test_malformed_requests_are_400(web_chat) -> None:
    async with web_chat.http.post(f"{web_chat.url}/api/files", data=b"x", headers={"Content-Type": "text/csv"}) as r:
        assert r.status == 400 and "multipart" in (await r.json())["error"]
    form = aiohttp.FormData()
    form.add_field("attachment", b"Account,Budget,Actual\n", filename="a.csv")
    async with web_chat.http.post(f"{web_chat.url}/api/files", data=form) as r:
        assert r.status == 400 and "'file'" in (await r.json())["error"]
