"""``variance-bot serve`` in Socket Mode: the real handler connects to a WebSocket endpoint handed out by the
(fake) ``apps.connections.open``, acknowledges envelopes, and answers through the Web API."""

from __future__ import annotations

import asyncio
import json
import socket
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web

from bot.app import serve
from bot.config import Settings
from tests.bot.bot_under_test import base_env, event_envelope, signed_headers
from tests.bot.helpers import DM, dm_event
from tests.fakes.openai_server import FakeOpenAI
from tests.fakes.slack_server import FakeSlack

APP_TOKEN = "xapp-1-A0VARIANCE-1-test"


class SocketModeServer:
    """Slack's side of a Socket Mode connection: says hello, pushes envelopes, records acknowledgements."""

    def __init__(self) -> None:
        self.acks: list[dict[str, Any]] = []
        self.connected = asyncio.Event()
        self._socket: web.WebSocketResponse | None = None
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/link", self._link)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"ws://127.0.0.1:{port}/link"

    async def close(self) -> None:
        if self._socket is not None:
            await self._socket.close()
        if self._runner is not None:
            await self._runner.cleanup()

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self._socket = socket
        await socket.send_json({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0VARIANCE"}})
        self.connected.set()
        async for message in socket:
            if message.type == WSMsgType.TEXT:
                self.acks.append(json.loads(message.data))
        return socket

    async def push(self, envelope_id: str, payload: dict[str, Any]) -> None:
        assert self._socket is not None
        await self._socket.send_json(
            {
                "envelope_id": envelope_id,
                "type": "events_api",
                "payload": payload,
                "accepts_response_payload": False,
                "retry_attempt": 0,
                "retry_reason": "",
            }
        )


async def test_socket_mode_acknowledges_and_answers(tmp_path: Path) -> None:
    socket_server = SocketModeServer()
    await socket_server.start()
    async with FakeSlack() as slack, FakeOpenAI() as openai:
        slack.add_channel(DM, is_im=True)
        slack.add_workspace(APP_TOKEN, slack.team_id)  # apps.connections.open is called with the app token

        async def connections_open(fake: FakeSlack, method: str, params: dict[str, Any], team: str) -> dict[str, Any]:
            return {"ok": True, "url": socket_server.url}

        slack.add_handler("apps.connections.open", connections_open)
        env = base_env(slack, openai, tmp_path) | {"SLACK_APP_TOKEN": APP_TOKEN}
        del env["SLACK_SIGNING_SECRET"]
        settings = Settings.from_env(env, mode="socket")
        stop = asyncio.Event()
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        serving = asyncio.create_task(serve(settings, http=False, host="127.0.0.1", port=port, stop=stop))
        try:
            await asyncio.wait_for(socket_server.connected.wait(), timeout=20)
            # --port in Socket Mode is for health checks only: no Events API door to knock on.
            async with aiohttp.ClientSession() as http:
                async with http.get(f"http://127.0.0.1:{port}/healthz") as resp:
                    assert resp.status == 200
                body = json.dumps({"type": "url_verification", "challenge": "knock"})
                headers = signed_headers(body, content_type="application/json", secret="")
                async with http.post(f"http://127.0.0.1:{port}/slack/events", data=body, headers=headers) as resp:
                    assert resp.status in (404, 405) and "knock" not in await resp.text()
            question = slack.add_message(DM, text="how are we doing?")
            payload = event_envelope(dm_event(question.ts, "how are we doing?"), event_id="Ev0SOCK")
            await socket_server.push("env-1", payload)
            await socket_server.push("env-2", payload)  # a redelivery: acknowledged, not answered again
            await slack.wait_for(lambda: len(socket_server.acks) == 2 and len(slack.bot_messages(DM)) == 1)
            assert [ack["envelope_id"] for ack in socket_server.acks] == ["env-1", "env-2"]
            assert "CSV or XLSX" in (slack.bot_messages(DM)[0].text or "")
            assert slack.calls_of("auth.test")  # serve checks the token at start
        finally:
            stop.set()
            assert await asyncio.wait_for(serving, timeout=20) == 0
            await socket_server.close()
    assert len(slack.bot_messages(DM)) == 1
