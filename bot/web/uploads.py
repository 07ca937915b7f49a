"""Uploads for the web chat: the multipart body read with a size cap, checked, and parsed in a worker process.

The same checks and readers as a file dropped into Slack (:mod:`bot.files`): supported extensions, no HTML page,
no old-style ``.xls``, no binary junk, the same size limit, and parsing in the shared :class:`~bot.files.WorkerPool`
(never on the event loop). The report that comes back is ``variance-bot report --json``'s object with every text
value neutralised, since labels come from the file.
"""

from __future__ import annotations

import math
import unicodedata
from dataclasses import dataclass
from typing import Any

from aiohttp import BodyPartReader, web

from analyst.dataset import Dataset
from bot.files import SUPPORTED_EXTENSIONS, FileRejected, SlackFile, check_content, read_table
from bot.textfilter import neutralise

FIELD = "file"
# Lines per list in the report object sent to the page (the rest summed into one "N more" row, as report --json
# does with --max-bytes); the page shows a summary, the analyst has the whole dataset.
REPORT_ROWS = 200
_CHUNK = 256 * 1024
_SNIFF = 8 * 1024


class UploadRejected(Exception):
    """An upload the server will not read: an HTTP status and a message for the person who sent it."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(slots=True)
class UploadResult:
    """A worker's answer: the dataset and its report object, or a message for the user."""

    dataset: Dataset | None
    report: dict[str, Any] | None
    memory_bytes: int
    error: str | None = None


def clean_filename(name: str | None) -> str:
    """A file name fit to show and to log: no path, no control characters, at most 120 characters."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if unicodedata.category(ch)[0] != "C").strip()
    return base[:120] or "upload.csv"


def _megabytes(n: int) -> str:
    return f"{n / (1024 * 1024):g} MB" if n >= 1024 * 1024 else f"{n / 1024:.0f} KB"


async def receive_upload(request: web.Request, *, max_bytes: int) -> tuple[str, bytes]:
    """The ``file`` field's name and bytes; :class:`UploadRejected` for anything the readers must not see."""
    if not request.content_type.startswith("multipart/"):
        raise UploadRejected(400, f"Send the file as multipart/form-data in a field named '{FIELD}'.")
    try:
        reader = await request.multipart()
        while True:
            part = await reader.next()
            if part is None:
                raise UploadRejected(400, f"The upload has no field named '{FIELD}'.")
            if isinstance(part, BodyPartReader) and part.name == FIELD:
                break
            await part.release()
        filename = clean_filename(part.filename)
        extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
        if extension not in SUPPORTED_EXTENSIONS:
            raise UploadRejected(
                415,
                f"I can only read CSV and Excel (.xlsx) files, and {neutralise(filename)} is not one. "
                "Export the budget-vs-actual table as CSV or XLSX and upload that.",
            )
        chunks: list[bytes] = []
        received = 0
        while chunk := await part.read_chunk(_CHUNK):
            received += len(chunk)
            if received > max_bytes:
                raise UploadRejected(
                    413,
                    f"{neutralise(filename)} is larger than the {_megabytes(max_bytes)} I can read. Export only "
                    "the lines and periods you need (or one sheet), and upload that.",
                )
            chunks.append(chunk)
    except ValueError as error:  # a malformed multipart body
        raise UploadRejected(400, "The upload is not a well-formed multipart/form-data body.") from error
    content = b"".join(chunks)
    if not content:
        raise UploadRejected(400, f"{neutralise(filename)} is empty.")
    check_upload(filename, extension, content[:_SNIFF])
    return filename, content


def check_upload(filename: str, extension: str, head: bytes) -> None:
    """The readers' content checks, with the web's own words for an HTML page."""
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if stripped.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        raise UploadRejected(
            415,
            f"{neutralise(filename)} is a web page, not a table. Export the budget-vs-actual table as CSV or XLSX.",
        )
    stub = SlackFile(
        id="upload", name=filename, filetype=extension, size=None, download_url=None, needs_info=False
    )
    try:
        check_content(stub, head)
    except FileRejected as rejected:
        raise UploadRejected(415, neutralise(rejected.user_message)) from rejected


def read_upload(content: bytes, filename: str, max_bytes: int) -> UploadResult:
    """Worker-process job: parse the file and build its report object. Never raises."""
    result = read_table(content, filename, max_bytes, False)
    if result.dataset is None:
        return UploadResult(None, None, 0, error=result.error or f"I couldn't read {filename}.")
    try:
        from analyst.report import build_report

        report = build_report(result.dataset).to_json_dict(max_rows=REPORT_ROWS)
    except Exception as error:  # the engine's own messages are written for people
        from analyst.engine.errors import AnalysisError

        message = str(error) if isinstance(error, AnalysisError) else f"I couldn't analyse {filename}."
        return UploadResult(None, None, 0, error=message)
    return UploadResult(result.dataset, inert(report), result.memory_bytes)


def inert(value: Any) -> Any:
    """``value`` (JSON data) with every string (keys too: column names) neutralised, since labels and names come
    from the file, and non-finite numbers as ``null`` (not valid JSON otherwise)."""
    if isinstance(value, str):
        return neutralise(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {inert(str(key)): inert(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [inert(item) for item in value]
    return value
