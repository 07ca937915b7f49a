"""Files the bot uploads into a conversation: the bridge chart after a report, the agent's charts, the pack.

Every upload is ``files_upload_v2`` (``files.getUploadURLExternal`` → the bytes → ``files.completeUploadExternal``,
both Tier 4) and goes through the workspace's Slack budget like every other call: one unit of the
``files.upload`` window per upload, retried by the scheduler on 429 (after ``Retry-After``) and on transient
failures. Uploads run as their own tasks: the answer's text never waits for a chart.

Hooks (called from :mod:`bot.answers`):

- :func:`report_chart`: a file dropped alone in a DM gets the bridge chart after its report;
- :func:`with_charts`: wraps a run's events; when the agent's ``make_chart`` tool finishes, its chart is
  uploaded into the answer's thread;
- :func:`wants_pack` / :func:`pack_events`: "pack" or "commentary" builds the month-end XLSX, with progress in
  the message ("12 of 31 lines…"), and uploads it into the thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from analyst.engine import AnalysisError
from analyst.events import AnalystEvent, Done, Failed, FailureKind, ToolFinished, ToolStarted
from bot.render import BudgetLimit, DeliveryError
from bot.textfilter import code_span

if TYPE_CHECKING:
    from analyst.charts import Chart
    from bot.answers import AnswerRequest, BotDeps
    from bot.conversations import StoredDataset
    from bot.render import AnswerWriter

log = logging.getLogger("variance.bot.uploads")

UPLOAD_METHOD = "files.upload"  # the budget's name for one files_upload_v2 (two Tier 4 calls)
UPLOAD_LIMIT = BudgetLimit(90, 60.0)  # a little under Tier 4's 100+ a minute
_keys = itertools.count(1)
_PACK_WORDS = re.compile(r"^\s*pack\s*$|\bmonth[- ]end pack\b|\b(?:a|the|my) pack\b|\bcommentary\b", re.IGNORECASE)


async def upload(
    deps: BotDeps,
    *,
    team: str,
    channel: str,
    thread_ts: str | None,
    content: bytes,
    filename: str,
    title: str,
    alt_text: str | None = None,
) -> bool:
    """Upload ``content`` into the channel (or thread) within the workspace budget; False if Slack refused."""
    deps.budget.limits.setdefault(UPLOAD_METHOD, UPLOAD_LIMIT)
    scheduler = deps.budget.scheduler(team, UPLOAD_METHOD)

    async def send(_payload: object) -> None:
        arguments: dict[str, Any] = {"channel": channel, "content": content, "filename": filename, "title": title}
        if thread_ts:
            arguments["thread_ts"] = thread_ts
        if alt_text:
            arguments["alt_txt"] = alt_text[:1000]
        await deps.client.files_upload_v2(**arguments)

    slot = scheduler.open(f"upload:{next(_keys)}", send)
    try:
        await slot.finish(None)
        return True
    except DeliveryError as error:
        log.warning("upload failed: %s", error.code)
        return False
    finally:
        slot.close()


async def upload_chart(deps: BotDeps, request: AnswerRequest, thread_ts: str | None, chart: Chart) -> bool:
    return await upload(
        deps,
        team=request.team,
        channel=request.channel,
        thread_ts=thread_ts,
        content=chart.png,
        filename=chart.filename,
        title=chart.title,
        alt_text=chart.alt_text,
    )


class ReportChart:
    """The bridge chart of a file dropped alone: drawn and uploaded once the report is shown.

    Use as ``async with ReportChart(deps, request, stored) as chart: ...; chart.shown(outcome.delivered)``;
    leaving the block without ``shown(True)`` (the report failed, Stop, shutdown) drops the chart.
    """

    def __init__(self, deps: BotDeps, request: AnswerRequest, stored: StoredDataset) -> None:
        self.deps, self.request, self.stored = deps, request, stored
        self._shown: asyncio.Future[bool] | None = None

    async def __aenter__(self) -> ReportChart:
        if wants_report_chart(self.request):
            self._shown = asyncio.get_running_loop().create_future()
            self.deps.spawn(self._draw_and_upload(self._shown), name="report-chart")
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self.shown(False)

    def shown(self, delivered: bool) -> None:
        if self._shown is not None and not self._shown.done():
            self._shown.set_result(delivered)

    async def _draw_and_upload(self, shown: asyncio.Future[bool]) -> None:
        from analyst.charts import render_chart_async

        # Drawn once the report is up: the report comes first, and drawing (in a thread; a worker process would
        # mean pickling the whole dataset on this loop) never competes with it.
        if not await shown:
            return
        context = self.stored.context
        try:
            chart = await render_chart_async(context.dataset, "bridge", context.options)
        except AnalysisError as error:  # nothing to bridge (no amounts): the report alone says so
            log.info("no bridge chart for the report: %s", type(error).__name__)
            return
        await upload_chart(self.deps, self.request, self.request.thread_ts, chart)


def wants_report_chart(request: AnswerRequest) -> bool:
    return request.entry == "dm" and request.new_file is not None and request.wants_report


async def with_charts(
    deps: BotDeps,
    request: AnswerRequest,
    events: AsyncIterator[AnalystEvent],
    stored: StoredDataset,
    writer: AnswerWriter,
) -> AsyncIterator[AnalystEvent]:
    """Pass the run's events through; upload each chart the agent drew into the answer's thread, in a task."""
    from analyst.agent.tool_names import MAKE_CHART  # the run has loaded the agent already

    try:
        async for event in events:
            if isinstance(event, ToolFinished) and event.name == MAKE_CHART and event.ok:
                chart = stored.context.charts.take(event.call_id)
                if chart is not None:
                    thread = request.thread_ts or (writer.message_ts[0] if writer.message_ts else None)
                    deps.spawn(upload_chart(deps, request, thread, chart), name="chart-upload")
            yield event
    finally:
        close = getattr(events, "aclose", None)
        if close is not None:  # a writer that stops early closes the run at once, not when it is collected
            await close()


def wants_pack(question: str) -> bool:
    return bool(_PACK_WORDS.search(question or ""))


async def pack_events(
    deps: BotDeps, request: AnswerRequest, stored: StoredDataset, writer: AnswerWriter
) -> AsyncIterator[AnalystEvent]:
    """Build the month-end pack, reporting progress as the message's status line, then upload the XLSX."""
    from analyst.pack import build_pack

    progress: asyncio.Queue[tuple[int, int]] = asyncio.Queue()
    context = stored.context
    settings = deps.settings.agent
    yield ToolStarted(name="pack", arguments="", label="Building the month-end pack…")
    work = asyncio.ensure_future(
        build_pack(
            context.dataset,
            context.options,
            settings=settings,
            progress=lambda d, t: progress.put_nowait((d, t)),
        )
    )
    try:
        while not work.done():
            waiter = asyncio.ensure_future(progress.get())
            await asyncio.wait({work, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if waiter.done():
                done, total = waiter.result()
                yield ToolStarted(
                    name="pack", arguments="", label=f"Drafting commentary: {done} of {total} lines…"
                )
            else:
                waiter.cancel()
        try:
            pack = work.result()
        except AnalysisError as error:
            yield Failed(FailureKind.TOOL_ERROR, str(error))
            return
        yield ToolFinished(name="pack", ok=True)
        yield ToolStarted(name="pack", arguments="", label="Uploading the pack…")
        thread = request.thread_ts or (writer.message_ts[0] if writer.message_ts else None)
        uploaded = await upload(
            deps,
            team=request.team,
            channel=request.channel,
            thread_ts=thread,
            content=pack.xlsx,
            filename=pack.filename,
            title=f"Month-end variance pack: {stored.filename}",
        )
        where = "attached in this thread" if uploaded else "ready, but Slack would not take the upload; ask again"
        yield Done(
            final_text=(
                f"**Month-end pack** for {code_span(stored.filename)} is {where}: {pack.lines:,} material lines on the "
                f"Variance sheet, the bridge chart on the Summary sheet, excluded rows listed. {pack.status}"
            )
        )
    finally:
        if not work.done():
            work.cancel()
            with contextlib.suppress(BaseException):
                await work
