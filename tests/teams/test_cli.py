"""``variance-bot teams`` as a process, and the app package.

The process runs in a directory holding a hostile ``.env`` (the Teams SDK loads one from the working directory
when imported): it must not switch off authentication, change the app id, the model server or the proxy.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import aiohttp

from bot.teams.package import build_package
from tests.fakes.openai_server import FakeOpenAI, text
from tests.fakes.teams_server import FakeTeams

ROOT = Path(__file__).resolve().parents[2]
HOSTILE_ENV = """
DANGEROUSLY_ALLOW_UNAUTHENTICATED_REQUESTS=true
CLIENT_ID=99999999-9999-4999-8999-999999999999
CLIENT_SECRET=from-dotenv
TEAMS_APP_ID=99999999-9999-4999-8999-999999999999
OPENAI_BASE_URL=http://127.0.0.1:9/v1
HTTPS_PROXY=http://127.0.0.1:9
HTTP_PROXY=http://127.0.0.1:9
VARIANCE_TEAMS_CHUNK_INTERVAL_S=abc
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _wait_healthy(url: str, process: subprocess.Popen[bytes], timeout: float = 90.0) -> None:
    async with asyncio.timeout(timeout), aiohttp.ClientSession() as session:
        while True:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)


async def test_a_stray_env_file_cannot_change_the_bots_settings(tmp_path: Path, example_csv: bytes) -> None:
    (tmp_path / ".env").write_text(HOSTILE_ENV)
    async with FakeTeams() as teams, FakeOpenAI() as model:
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TEAMS_", "OPENAI_", "VARIANCE_"))}
        env.update(teams.env())
        env.update(
            {
                "OPENAI_API_KEY": "sk-test",
                "OPENAI_BASE_URL": model.base_url,
                "VARIANCE_DATA_DIR": str(tmp_path / "data"),
                "VARIANCE_WORKERS": "1",
                "NO_PROXY": "127.0.0.1,localhost",
            }
        )
        process = subprocess.Popen(
            [sys.executable, "-m", "bot", "teams", "--port", str(port), "--host", "127.0.0.1"],
            cwd=tmp_path,
            env=env | {"PYTHONPATH": str(ROOT)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            await _wait_healthy(f"http://127.0.0.1:{port}/healthz", process)
            bot = f"http://127.0.0.1:{port}/api/messages"
            async with aiohttp.ClientSession() as session, session.post(bot, json=teams.message("hello")) as response:
                assert response.status == 401  # authentication is on
            assert (
                await teams.deliver(
                    bot,
                    teams.message("hi", conversation="a:x"),
                    token=teams.token(audience="99999999-9999-4999-8999-999999999999"),
                )
                == 401
            )  # the .env app id is not ours
            model.script(text("Answered by the configured model.", chunk=8))
            url = teams.host_file("budget_vs_actual.csv", example_csv, "text/csv")
            activity = teams.message("why?", files=[("budget_vs_actual.csv", url)])
            assert await teams.deliver(bot, activity) == 200
            await teams.wait_for(lambda t: any(c.kind == "final" for c in t.calls), timeout=60)
            final = next(c for c in teams.calls if c.kind == "final")
            assert final.text == "Answered by the configured model."
            assert len(model.requests) == 1
        finally:
            process.terminate()
            process.wait(timeout=30)


async def test_missing_settings_are_named_at_start(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEAMS_", "OPENAI_"))}
    result = subprocess.run(
        [sys.executable, "-m", "bot", "teams", "--port", "0"],
        cwd=tmp_path,
        env=env | {"PYTHONPATH": str(ROOT), "TEAMS_APP_PASSWORD": "s3cret-value"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    for name in ("TEAMS_APP_ID", "TEAMS_TENANT_ID", "OPENAI_API_KEY"):
        assert name in result.stderr
    assert "s3cret-value" not in result.stderr


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_the_app_package_has_the_manifest_and_icons(tmp_path: Path) -> None:
    app_id = "0f8fad5b-d9cb-469f-a165-70867728950e"
    path = build_package(tmp_path / "app.zip", app_id)
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["color.png", "manifest.json", "outline.png"]
        manifest = json.loads(archive.read("manifest.json"))
        assert _png_size(archive.read("color.png")) == (192, 192)
        assert _png_size(archive.read("outline.png")) == (32, 32)
    assert manifest["id"] == app_id
    (bot,) = manifest["bots"]
    assert bot["botId"] == app_id
    assert bot["scopes"] == ["personal", "groupChat"]
    assert bot["supportsFiles"] is True
    assert [c["title"] for c in bot["commandLists"][0]["commands"]] == ["report", "help"]
    assert manifest["icons"] == {"color": "color.png", "outline": "outline.png"}
