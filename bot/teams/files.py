"""Files sent to the bot in a Teams 1:1 chat: which attachment is the file, and a safe download of it.

Teams delivers a file the user sends in a 1:1 chat as an attachment of type
``application/vnd.microsoft.teams.file.download.info`` whose ``content.downloadUrl`` is a short-lived pre-signed
HTTPS link: a plain GET with no Authorization header (the bot's token must not travel to the file host). A
``text/html`` attachment beside it is the message's own rendering and is ignored. Only links from the activity
(which passed the Bot Framework token check) are fetched, only over HTTPS (redirects too, at most three), with the
size checked before and during the download and the trusted CAs of :func:`bot.teams.auth.trust_context`. The
size cap, the streaming and the checks for a web page, an old .xls or a broken .xlsx are Slack's own
(:func:`bot.files.read_capped`, :func:`bot.files.check_table_head`); other bytes go to the readers as they are.

Group chat and channel files live in SharePoint, behind Microsoft Graph; they are not read.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp

from bot.files import SUPPORTED_EXTENSIONS, FileRejected, check_table_head, read_capped

DOWNLOAD_INFO = "application/vnd.microsoft.teams.file.download.info"
_MAX_REDIRECTS = 3


@dataclass(frozen=True, slots=True)
class TeamsFile:
    name: str
    file_type: str
    download_url: str
    unique_id: str

    @property
    def extension(self) -> str:
        return self.name.rsplit(".", 1)[-1].lower() if "." in self.name else self.file_type.lower()

    @property
    def is_table(self) -> bool:
        return self.extension in SUPPORTED_EXTENSIONS or self.file_type.lower() in {"csv", "tsv", "xlsx"}


def attached_files(attachments: Iterable[Any] | None) -> list[TeamsFile]:
    """The files (download.info attachments) of a message, in order; other attachments are skipped."""
    files: list[TeamsFile] = []
    for attachment in attachments or ():
        data = attachment if isinstance(attachment, Mapping) else _as_dict(attachment)
        if data.get("contentType", data.get("content_type")) != DOWNLOAD_INFO:
            continue
        content = data.get("content") or {}
        if not isinstance(content, Mapping):
            continue
        url = content.get("downloadUrl")
        if not isinstance(url, str) or not url:
            continue
        files.append(
            TeamsFile(
                name=str(data.get("name") or "file"),
                file_type=str(content.get("fileType") or ""),
                download_url=url,
                unique_id=str(content.get("uniqueId") or url),
            )
        )
    return files


def _as_dict(attachment: Any) -> Mapping[str, Any]:
    dump = getattr(attachment, "model_dump", None)
    return dump(by_alias=True) if callable(dump) else {}


def unsupported_message(files: list[TeamsFile]) -> str:
    names = ", ".join(f.name for f in files[:3])
    return (
        f"I can only read CSV and Excel (.xlsx) files, and {names} is not one. "
        "Export the budget-vs-actual table as CSV or XLSX and send it here."
    )


def _failed(file: TeamsFile, why: str, reason: str) -> FileRejected:
    return FileRejected(f"I couldn't download {file.name} from Teams ({why}). Try sending it again.", reason=reason)


def _check_head(file: TeamsFile, head: bytes) -> None:
    web_page = FileRejected(
        f"Teams gave me a web page instead of {file.name}, so I couldn't read it. Try sending the file again.",
        reason="html",
    )
    check_table_head(file.name, head, xlsx=file.extension == "xlsx", web_page=web_page)


async def download(
    session: aiohttp.ClientSession,
    file: TeamsFile,
    *,
    ssl_context: ssl.SSLContext,
    max_bytes: int,
    timeout_s: float = 120.0,
) -> bytes:
    """The file's bytes, or :class:`FileRejected` with a message for the person who sent it."""
    url = file.download_url
    for _ in range(_MAX_REDIRECTS + 1):
        if urlsplit(url).scheme != "https" or not urlsplit(url).hostname:
            raise FileRejected(
                f"Teams gave me a download link for {file.name} that is not HTTPS, so I didn't use it.",
                reason="bad_url",
            )
        try:
            async with session.get(
                url,
                ssl=ssl_context,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=timeout_s, sock_read=30),
            ) as response:
                if response.status in {301, 302, 303, 307, 308} and response.headers.get("Location"):
                    url = urljoin(url, response.headers["Location"])
                    continue
                if response.status != 200:
                    raise _failed(file, f"HTTP {response.status}", f"http_{response.status}")
                return await read_capped(
                    response, file.name, max_bytes=max_bytes, check_head=lambda head: _check_head(file, head)
                )
        except aiohttp.ClientSSLError as error:
            raise _failed(file, "its certificate is not trusted here", "tls") from error
        except (aiohttp.ClientError, TimeoutError) as error:
            raise _failed(file, "the connection failed", f"network:{type(error).__name__}") from error
    raise _failed(file, "too many redirects", "redirects")
