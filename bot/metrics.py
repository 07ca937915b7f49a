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

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from analyst.events import AnalystEvent, Done
from bot.runs import WrappedRun

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

        # Called just before each scrape, to read gauges that are cheaper to compute than to keep up to date.
        self.refreshers: list[Callable[[Metrics], None]] = []

    def render(self) -> bytes:
        for refresh in self.refreshers:
            try:
                refresh(self)
            except Exception:  # a gauge that cannot be read must not cost the whole scrape
                continue
        return generate_latest(self.registry)

    async def handle(self, request: web.Request) -> web.Response:
        response = web.Response(body=self.render())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response


class MeteredWebClient(AsyncWebClient):
    """The Slack Web API client with every call counted in ``slack_calls_total{method,status}``: the one place all
    of the bot's Slack calls pass (the writer's retry-less copy is a shallow copy of this object)."""

    metrics: Metrics | None = None
    # Told of every 429 (method, Retry-After seconds): with REDIS_URL the pause is shared with other instances.
    on_ratelimited: Callable[[str, float], None] | None = None

    async def api_call(self, api_method: str, **kwargs: Any) -> AsyncSlackResponse:
        try:
            response = await super().api_call(api_method, **kwargs)
        except SlackApiError as error:
            status = _status(error.response)
            self._count(api_method, status)
            if status == "ratelimited" and self.on_ratelimited is not None:
                self.on_ratelimited(api_method, _retry_after(error.response))
            raise
        except (aiohttp.ClientError, TimeoutError, OSError):
            self._count(api_method, "network")
            raise
        self._count(api_method, "ok")
        return response

    def _count(self, method: str, status: str) -> None:
        if self.metrics is not None:
            self.metrics.slack_calls.labels(method=method[:40], status=status[:40]).inc()


def _retry_after(response: Any) -> float:
    headers = {str(k).lower(): v for k, v in (getattr(response, "headers", None) or {}).items()}
    try:
        return max(1.0, float(headers.get("retry-after", 1)))
    except (TypeError, ValueError):
        return 1.0


def _status(response: Any) -> str:
    if getattr(response, "status_code", None) == 429:
        return "ratelimited"
    try:
        return str(response.get("error") or f"http_{response.status_code}")
    except Exception:
        return "error"


class MeteredRun(WrappedRun):
    """An analyst event stream whose ``Done`` usage is counted in ``model_tokens_total``."""

    def __init__(self, run: Any, metrics: Metrics) -> None:
        super().__init__(run)
        self._metrics = metrics

    async def _events(self) -> AsyncIterator[AnalystEvent]:
        async for event in self._run:
            if isinstance(event, Done):
                self._metrics.tokens.labels(direction="in").inc(max(0, event.usage.input_tokens))
                self._metrics.tokens.labels(direction="out").inc(max(0, event.usage.output_tokens))
            yield event
