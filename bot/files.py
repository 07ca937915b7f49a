"""Safe download of Slack files, and reading them off the event loop in a worker process.

Only the ``url_private_download`` of a file object that Slack itself sent (in an event, or from
``files.info``) is ever fetched, with the bot token, and only from Slack's file host (or, in tests, the
configured API origin); a path or URL typed by a user is never fetched. Redirects are not followed (the token
must not travel to another host; Slack redirects to its login page when the app lacks ``files:read``). The
declared size is checked before the download and the real size while streaming. HTML (a login page) and binary
junk are rejected with a clear message.

Reading a file and building its report run in a worker process (:mod:`bot.workers`), bounded in time and
memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from analyst.dataset import Dataset, IngestError, IngestLimits
from analyst.engine.options import AnalysisOptions
from bot.textfilter import code_span
from bot.workers import JobTimedOut, PoolClosed, WorkerFailed, WorkerOutOfMemory
from bot.workers import WorkerPool as WorkerPool  # the pool lives in bot.workers; still importable here
from bot.workers import worker_count as worker_count

SUPPORTED_EXTENSIONS = frozenset({"csv", "tsv", "txt", "xlsx"})
_CHUNK = 256 * 1024
_SNIFF = 8 * 1024


class FileRejected(Exception):
    """A file the bot will not read; ``user_message`` says why and what to do, for the person who sent it."""

    def __init__(self, user_message: str, *, reason: str) -> None:
        super().__init__(user_message)
        self.user_message = user_message
        self.reason = reason  # a short machine-readable tag for the logs: too_large, html, not_csv, ...


@dataclass(frozen=True, slots=True)
class SlackFile:
    """The parts of a Slack file object the bot uses."""

    id: str
    name: str
    filetype: str
    size: int | None
    download_url: str | None
    needs_info: bool  # the event carried a stub; ``files.info`` gives the full object

    @classmethod
    def from_object(cls, obj: Mapping[str, Any]) -> SlackFile:
        name = str(obj.get("name") or obj.get("title") or "file")
        filetype = str(obj.get("filetype") or _extension(name)).lower()
        size = obj.get("size")
        url = obj.get("url_private_download")
        return cls(
            id=str(obj.get("id", "")),
            name=name,
            filetype=filetype,
            size=int(size) if isinstance(size, int | float) else None,
            download_url=str(url) if url else None,
            needs_info=obj.get("file_access") == "check_file_info" or not url,
        )

    @property
    def extension(self) -> str:
        return _extension(self.name) or self.filetype

    @property
    def is_table(self) -> bool:
        return self.extension in SUPPORTED_EXTENSIONS or self.filetype in {"csv", "tsv", "xlsx"}


def _extension(name: str) -> str:
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def table_files(objects: Iterable[Mapping[str, Any]] | None) -> list[SlackFile]:
    """The CSV/XLSX files among a message's ``files`` (Slack sends them in upload order)."""
    files = [SlackFile.from_object(obj) for obj in objects or () if isinstance(obj, Mapping)]
    return [f for f in files if f.is_table]


def unsupported_message(objects: Sequence[Mapping[str, Any]]) -> str:
    names = ", ".join(code_span(str(o.get("name") or "file")) for o in objects[:3])
    return (
        f"I can only read CSV and Excel (.xlsx) files, and {names} is not one. "
        "Export the budget-vs-actual table as CSV or XLSX and drop it here."
    )


Origin = tuple[str, str, int]


def _default_port(scheme: str) -> int:
    return 443 if scheme == "https" else 80


def url_origin(url: str) -> Origin | None:
    """``(scheme, host, port)`` that a download of ``url`` would connect to; ``None`` for a link not to use.

    The link is read by both the standard parser and aiohttp's own (yarl), and must mean the same to both:
    a backslash, a user name or password, or anything else they read differently is refused, never fetched.
    """
    try:
        parsed = URL(url)
        parts = urlsplit(url)
        port = parts.port or _default_port(parts.scheme)
    except (ValueError, TypeError):
        return None
    if parsed.user is not None or parsed.password is not None or parts.username is not None or "\\" in url:
        return None
    origin = (parsed.scheme, parsed.host or "", parsed.port or _default_port(parsed.scheme))
    if not origin[1] or origin != (parts.scheme, parts.hostname or "", port):
        return None
    return origin


def _allowed(url: str, origins: frozenset[Origin]) -> bool:
    origin = url_origin(url)
    return origin is not None and origin in origins


def _megabytes(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MB" if n >= 1024 * 1024 else f"{n / 1024:.0f} KB"


def too_large(name: str, limit: int) -> FileRejected:
    """A file over the size limit (declared, or found while downloading), for whoever sent ``name``."""
    return FileRejected(
        f"{name} is larger than the {_megabytes(limit)} I can read. Export only the lines and periods "
        "you need (or one sheet), and send that.",
        reason="too_large",
    )


def _login_page(file: SlackFile) -> FileRejected:
    return FileRejected(
        f"Slack gave me a sign-in page instead of {file.name}, so I couldn't read it. The app probably lacks "
        "the files:read permission: ask your Slack admin to reinstall Variance Analyst from its manifest.",
        reason="html",
    )


def _unusable_link(file: SlackFile) -> FileRejected:
    return FileRejected(
        f"Slack gave me a file link I can't use for {file.name}, so I couldn't download it. "
        "Try uploading the file again.",
        reason="bad_url",
    )


def check_content(file: SlackFile, head: bytes) -> None:
    """Reject what is certainly not a table: an HTML page, an old .xls, a broken .xlsx, binary junk."""
    xlsx = file.extension == "xlsx" or file.filetype == "xlsx"
    check_table_head(file.name, head, xlsx=xlsx, web_page=_login_page(file))
    if xlsx:
        return
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):  # UTF-16 text from Excel's "Unicode text": let ingest decide
        return
    sample = head[:_SNIFF]
    control = sum(1 for b in sample if b < 9 or 13 < b < 32)
    if sample and (b"\x00" in sample or control > len(sample) // 100):
        raise FileRejected(
            f"{file.name} doesn't look like a CSV file (it contains binary data). Export the table as CSV or "
            "XLSX and send it again.",
            reason="binary",
        )


def check_table_head(name: str, head: bytes, *, xlsx: bool, web_page: FileRejected) -> None:
    """What every downloaded file is checked for, on its first bytes: an HTML page (``web_page``, in the
    surface's own words), and where ``xlsx``, an old-style .xls or a broken .xlsx."""
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if stripped.startswith((b"<!doctype html", b"<html", b"<head", b"<body")):
        raise web_page
    if xlsx:
        if head.startswith(b"\xd0\xcf\x11\xe0"):
            raise FileRejected(
                f"{name} is an old-style Excel file (or a protected one). "
                "Save it as .xlsx or CSV and send it again.",
                reason="xls",
            )
        if not head.startswith(b"PK\x03\x04"):
            raise FileRejected(
                f"{name} is not a valid Excel .xlsx file. Save it again from Excel as .xlsx or CSV.",
                reason="bad_xlsx",
            )


async def download(
    session: aiohttp.ClientSession,
    file: SlackFile,
    *,
    token: str,
    origins: frozenset[tuple[str, str, int]],
    max_bytes: int,
    timeout_s: float = 120.0,
) -> bytes:
    """Fetch a Slack file's bytes, or raise :class:`FileRejected` with a message for the user."""
    if file.size is not None and file.size > max_bytes:
        raise too_large(file.name, max_bytes)
    url = file.download_url
    origin = url_origin(url) if url else None
    if url is None or origin is None:
        raise _unusable_link(file)
    if origin not in origins:
        raise FileRejected(
            f"I couldn't download {file.name}: Slack didn't give me a download link I trust.",
            reason="bad_url",
        )
    try:
        async with session.get(
            url,
            headers={"Authorization": f"Bearer {token}"},
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout_s, sock_read=30),
        ) as response:
            if 300 <= response.status < 400:
                raise _login_page(file)
            if response.status != 200:
                raise FileRejected(
                    f"I couldn't download {file.name} (Slack answered HTTP {response.status}). Try uploading it again.",
                    reason=f"http_{response.status}",
                )
            if response.content_type == "text/html":
                raise _login_page(file)
            return await read_capped(
                response, file.name, max_bytes=max_bytes, check_head=lambda head: check_content(file, head)
            )
    except aiohttp.InvalidURL as error:  # checked above; aiohttp is the last word on what it can fetch
        raise _unusable_link(file) from error
    except (aiohttp.ClientError, TimeoutError) as error:
        raise FileRejected(
            f"I couldn't download {file.name} from Slack (the connection failed). Try again in a minute.",
            reason=f"network:{type(error).__name__}",
        ) from error


async def read_capped(
    response: aiohttp.ClientResponse, name: str, *, max_bytes: int, check_head: Callable[[bytes], None]
) -> bytes:
    """The body of a download, at most ``max_bytes`` (declared and received), streamed; ``check_head`` sees its
    first bytes as soon as they arrive, so a large web page or junk is refused without reading it all."""
    if response.content_length is not None and response.content_length > max_bytes:
        raise too_large(name, max_bytes)
    chunks: list[bytes] = []
    received = 0
    checked = False
    async for chunk in response.content.iter_chunked(_CHUNK):
        received += len(chunk)
        if received > max_bytes:
            raise too_large(name, max_bytes)
        chunks.append(chunk)
        if not checked and received >= _SNIFF:
            check_head(b"".join(chunks)[:_SNIFF])
            checked = True
    content = b"".join(chunks)
    if not content:
        raise FileRejected(f"{name} is empty.", reason="empty")
    if not checked:
        check_head(content[:_SNIFF])
    return content


# ----------------------------------------------------------------------------------------------------
# Reading in a worker process


@dataclass(slots=True)
class ReadResult:
    """What a worker sends back: the dataset (and its report, if asked), or a message for the user."""

    dataset: Dataset | None
    report_markdown: str | None
    memory_bytes: int
    error: str | None = None


def read_table(content: bytes, filename: str, max_bytes: int, with_report: bool) -> ReadResult:
    """Worker-process job: parse the file (and build the deterministic report).

    Raises only :class:`MemoryError` (the worker pool reports it with the worker's limit); everything else
    becomes a message for the user."""
    try:
        from analyst.ingest import load_dataset
        from bot.conversations import dataset_memory

        dataset = load_dataset(content, filename=filename, limits=IngestLimits(max_bytes=max_bytes))
        report = build_report_markdown(dataset) if with_report else None
        return ReadResult(dataset, report, dataset_memory(dataset))
    except IngestError as error:
        if isinstance(error.__cause__, MemoryError):
            raise MemoryError from error  # the pool replaces the worker and says which limit was hit
        return ReadResult(None, None, 0, error=str(error))
    except MemoryError:
        raise
    except Exception as error:  # any parser surprise: a message, never a traceback in Slack
        return ReadResult(None, None, 0, error=f"I couldn't read {filename} as a table ({type(error).__name__}).")


def build_report_markdown(dataset: Dataset, options: AnalysisOptions | None = None) -> str:
    """Worker-process job (or called from one): the deterministic report as standard Markdown, under the
    conversation's ``options`` (account-type overrides, materiality)."""
    from analyst.report import build_report

    return build_report(dataset, opts=options if options is not None else AnalysisOptions()).to_markdown()

def reader_failed(error: WorkerFailed, name: str) -> FileRejected:
    """What the person who sent the file is told when its reader was stopped or lost."""
    name = code_span(name)
    if isinstance(error, JobTimedOut):
        message = (
            f"Reading {name} took longer than {error.seconds:g} seconds, so I stopped. Send a smaller export "
            "(fewer lines or periods, or just the sheet with the table), or save it as CSV."
        )
    elif isinstance(error, WorkerOutOfMemory):
        limit = f" ({error.limit_mb} MB)" if error.limit_mb else ""
        message = (
            f"Reading {name} needed more memory than I allow for one file{limit}, so I stopped. Send a smaller "
            "export (fewer lines or periods, or just the sheet with the table)."
        )
    elif isinstance(error, PoolClosed):
        message = "The bot is restarting, so I stopped here. Please ask again in a minute."
    else:
        message = f"Something went wrong while reading {name}, so I stopped. Try again, or send it as CSV."
    return FileRejected(message, reason=error.reason)
