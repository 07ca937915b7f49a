"""Prometheus metrics, served as text on the HTTP port at ``GET /metrics``.

Families (all prefixed ``variance_``):

- ``answers_total{entry,outcome}``: answers by entry point (mention, dm, command, assistant, web, teams) and
  outcome (answered, report, failed, stopped, refused, orphaned);
- ``first_visible_seconds``, ``final_seconds``: from the question to its first visible text / its final text;
- ``file_read_seconds``: download + parse of a file;
- ``slack_calls_total{method,status}``: Slack Web API calls by method and outcome (``ok``, ``ratelimited``, an
  error code, or ``network``);
- ``budget_queue_depth{method}``: messages waiting for a call of ``method``'s budget;
- ``running_answers``: answers running on this instance;
- ``model_tokens_total{direction}``: model tokens in and out.

One :class:`Metrics` per app, each with its own registry (several apps in one test process never collide).
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

_LATENCY_BUCKETS = (0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.answers = Counter(
            "variance_answers", "Answers by entry point and outcome.", ["entry", "outcome"], registry=r
        )
        self.first_visible = Histogram(
            "variance_first_visible_seconds", "Question to first visible text.", buckets=_LATENCY_BUCKETS, registry=r
        )
        self.final = Histogram(
            "variance_final_seconds", "Question to final text.", buckets=_LATENCY_BUCKETS, registry=r
        )
        self.file_read = Histogram(
            "variance_file_read_seconds", "Download and parse of one file.", buckets=_LATENCY_BUCKETS, registry=r
        )
        self.slack_calls = Counter(
            "variance_slack_calls", "Slack Web API calls by method and status.", ["method", "status"], registry=r
        )
        self.queue_depth = Gauge(
            "variance_budget_queue_depth", "Messages waiting for a call of a Slack budget.", ["method"], registry=r
        )
        self.running = Gauge("variance_running_answers", "Answers running on this instance.", registry=r)
        self.tokens = Counter("variance_model_tokens", "Model tokens.", ["direction"], registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    async def handle(self, request: web.Request) -> web.Response:
        response = web.Response(body=self.render())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response
