"""An answer's dataset: a Slack file downloaded and read in a worker, kept as the conversation's dataset, and
the conversation's deterministic report. Raises :class:`~bot.files.FileRejected` with a message for the user."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from slack_sdk.errors import SlackApiError

from bot.conversations import StoredDataset, channel_key
from bot.files import (
    FileRejected,
    ReadResult,
    SlackFile,
    build_report_markdown,
    download,
    read_table,
    reader_failed,
)
from bot.logs import AnswerLog
from bot.workers import WorkerFailed

if TYPE_CHECKING:
    from bot.deps import BotDeps
    from bot.requests import AnswerRequest


async def resolve_file(deps: BotDeps, file: SlackFile) -> SlackFile:
    """Complete a stub file object from ``files.info`` (Slack sends stubs for some shares)."""
    if not file.needs_info or not file.id:
        return file
    response = await deps.client.files_info(file=file.id)
    obj = response.get("file")
    return SlackFile.from_object(obj) if isinstance(obj, dict) else file


async def load_file(
    deps: BotDeps,
    request: AnswerRequest,
    file: SlackFile,
    log_entry: AnswerLog,
    *,
    on_wait: Callable[[int], object] | None = None,
) -> StoredDataset:
    """Download and read ``file`` in a worker; keep it as the conversation's dataset. Raises FileRejected.

    ``on_wait(place)`` is called while every reader is busy (see :meth:`WorkerPool.run`)."""
    started = asyncio.get_running_loop().time()
    try:
        file = await resolve_file(deps, file)
    except SlackApiError as error:
        raise FileRejected(
            f"Slack wouldn't give me {file.name} ({error.response.get('error')}).", reason="files_info"
        ) from error
    settings = deps.settings
    content = await download(
        deps.http,
        file,
        token=settings.bot_token,
        origins=settings.file_origins,
        max_bytes=settings.max_file_bytes,
    )
    log_entry.file_bytes = len(content)
    try:
        result: ReadResult = await deps.workers.run(
            read_table, content, file.name, settings.max_file_bytes, request.wants_report, on_wait=on_wait
        )
    except WorkerFailed as error:  # over the time or memory limit, or lost: the reader was replaced
        raise reader_failed(error, file.name) from error
    del content
    if result.dataset is None:
        raise FileRejected(result.error or f"I couldn't read {file.name}.", reason="unreadable")
    log_entry.rows = result.dataset.source.data_rows
    log_entry.file_s = round(asyncio.get_running_loop().time() - started, 3)
    deps.metrics.file_read.observe(log_entry.file_s)
    await deps.sources.remember(
        request.conversation_id, file, owner=request.user, channel=channel_key(request.team, request.channel)
    )
    return deps.store.put(
        request.conversation_id,
        result.dataset,
        file_id=file.id,
        filename=file.name,
        channel=channel_key(request.team, request.channel),
        report_markdown=result.report_markdown,
        memory_bytes=result.memory_bytes,
        owner=request.user,
    )


async def report_markdown(
    deps: BotDeps, stored: StoredDataset, *, on_wait: Callable[[int], object] | None = None
) -> str:
    """The conversation's deterministic report, under its options (account-type overrides, materiality)."""
    cached = stored.cached_report()
    if cached is not None:
        return cached
    dataset, options = stored.context.dataset, stored.context.options
    try:
        markdown = await deps.workers.run(build_report_markdown, dataset, options, on_wait=on_wait)
    except WorkerFailed as error:
        raise reader_failed(error, stored.filename) from error
    stored.cache_report(markdown, dataset, options)
    return markdown
