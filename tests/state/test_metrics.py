"""``/metrics`` speaks Prometheus' text format: it parses, and the families carry what was recorded."""

from __future__ import annotations

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from bot.metrics import Metrics


async def test_metrics_parse_and_carry_what_was_recorded() -> None:
    metrics = Metrics()
    metrics.answers.labels(entry="dm", outcome="answered").inc()
    metrics.first_visible.observe(0.4)
    metrics.slack_calls.labels(method="chat.update", status="ratelimited").inc(2)
    metrics.tokens.labels(direction="in").inc(1500)
    app = web.Application()
    app.router.add_get("/metrics", metrics.handle)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/metrics")
        assert response.status == 200 and response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    answers = {s.labels["outcome"]: s.value for s in families["variance_answers"].samples if s.name.endswith("_total")}
    assert answers == {"answered": 1.0}
    calls = [s for s in families["variance_slack_calls"].samples if s.name.endswith("_total")]
    assert [(s.labels["method"], s.labels["status"], s.value) for s in calls] == [("chat.update", "ratelimited", 2.0)]
    first = {s.name: s.value for s in families["variance_first_visible_seconds"].samples if not s.labels.get("le")}
    assert first["variance_first_visible_seconds_count"] == 1.0
    assert {"variance_final_seconds", "variance_file_read_seconds", "variance_budget_queue_depth",
            "variance_running_answers", "variance_model_tokens"} <= set(families)
