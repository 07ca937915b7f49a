"""With ``REDIS_URL`` set but Redis unreachable, the bot still starts and answers health checks and scrapes
(each shared piece falls back to this process); it never refuses to run."""

from __future__ import annotations

from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from bot.app import DEPS_KEY, create_app
from bot.config import Settings
from bot.workers import WorkerPool


async def test_the_bot_starts_and_serves_with_redis_down() -> None:
    settings = Settings(
        bot_token="xoxb-test", signing_secret="secret", slack_api_url="http://127.0.0.1:9/api/",
        redis_url="redis://127.0.0.1:1/0", workers=1,
    )
    pool = WorkerPool(1)
    try:
        _, web_app = create_app(settings, workers=pool)
        async with TestClient(TestServer(web_app)) as client:
            health = await client.get("/healthz")
            assert health.status == 200 and (await health.json())["ok"] is True
            deps = web_app[DEPS_KEY]
            assert await deps.dedupe.claim("event:Ev1") is True  # local fallback: first time
            assert await deps.dedupe.claim("event:Ev1") is False  # and a repeat is still a repeat
            admission = await deps.limits.admit("T1", "U1")
            assert admission.ok
            await deps.limits.release(admission)
            scrape = await client.get("/metrics")
            names = {f.name for f in text_string_to_metric_families(await scrape.text())}
            assert "variance_running_answers" in names
    finally:
        pool.shutdown()
