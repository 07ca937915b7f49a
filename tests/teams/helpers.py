"""Helpers for the Teams tests: the real bot (``create_teams_app``) on a local port."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from bot.teams.server import TeamsServer, create_teams_app
from bot.teams.settings import TeamsSettings
from bot.workers import WorkerPool

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "budget_vs_actual.csv"


@dataclass(slots=True)
class RunningBot:
    server: TeamsServer
    url: str  # .../api/messages
    base: str

    @property
    def deps(self):  # type: ignore[no-untyped-def]
        return self.server.deps


async def start_bot(settings: TeamsSettings, workers: WorkerPool) -> tuple[RunningBot, web.AppRunner]:
    server = create_teams_app(settings, workers=workers)
    runner = web.AppRunner(server.web_app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    base = f"http://127.0.0.1:{port}"
    return RunningBot(server, f"{base}/api/messages", base), runner


class VirtualClock:
    """A clock the pacing tests move by hand: ``sleep`` advances it at once."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
