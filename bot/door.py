"""The door of the Events API (``POST /slack/events``): who may come in, and in what shape.

Order matters: the signature is checked over the raw bytes first (401 for a missing, forged or stale one), before
a single byte is decoded or parsed; then the body must be UTF-8 and a JSON or form object of the shapes Slack sends
(400 otherwise). Only then does Bolt see the request. Bolt's own aiohttp adapter parses before it verifies, so the
app does not use it for requests.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence
from typing import Any

from aiohttp import web
from slack_bolt.request.async_request import AsyncBoltRequest

SIGNATURE_MAX_AGE_SECONDS = 5 * 60


class BadRequest(Exception):
    """A request refused at the door; ``status`` (400/401) and a short reason for the response and the log."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def verify_signature(secret: str, raw: bytes, headers: Mapping[str, str], *, now: float | None = None) -> None:
    """Slack's v0 signature over the raw bytes (HMAC-SHA256 of ``v0:{timestamp}:{body}``); raises 401."""
    timestamp = headers.get("X-Slack-Request-Timestamp", "")
    signature = headers.get("X-Slack-Signature", "")
    if not timestamp or not signature:
        raise BadRequest(401, "unsigned")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise BadRequest(401, "bad_timestamp")
    if abs((time.time() if now is None else now) - int(timestamp)) > SIGNATURE_MAX_AGE_SECONDS:
        raise BadRequest(401, "stale")
    expected = "v0=" + hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + raw, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
        raise BadRequest(401, "bad_signature")


def parse_request(raw: bytes, request: web.Request) -> AsyncBoltRequest:
    """The Bolt request for a signed body; raises 400 when it is not UTF-8 or not a JSON/form object."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest(400, "not_utf8") from None
    try:
        parsed = AsyncBoltRequest(body=text, query=request.query_string, headers=request.headers)  # type: ignore[arg-type]
    except (ValueError, TypeError, AttributeError, KeyError, IndexError):
        raise BadRequest(400, "malformed_body") from None
    if not isinstance(parsed.body, dict) or not _expected_shape(parsed.body):
        raise BadRequest(400, "not_an_object" if not isinstance(parsed.body, dict) else "unexpected_shape")
    return parsed


# Fields Slack always sends as strings, and as objects or lists of objects: a signed body with other shapes
# is refused at the door rather than left to fail somewhere inside Bolt or a listener.
_TEXT_FIELDS = ("type", "command", "text", "team_id", "channel_id", "user_id", "response_url", "event_id")
_EVENT_TEXT_FIELDS = ("type", "subtype", "channel", "channel_type", "user", "text", "ts", "thread_ts", "deleted_ts",
                      "file_id", "team", "bot_id")
_HANDLED_EVENTS = frozenset({"message", "app_mention", "file_deleted"})
_OBJECT_FIELDS = ("team", "channel", "user", "container", "message", "view", "enterprise", "previous_message")


def _expected_shape(body: dict[str, Any]) -> bool:
    def text_or_absent(obj: dict[str, Any], names: Sequence[str]) -> bool:
        return all(obj.get(name) is None or isinstance(obj[name], str) for name in names)

    def objects(value: Any) -> bool:
        return value is None or (isinstance(value, list) and all(isinstance(item, dict) for item in value))

    if not text_or_absent(body, _TEXT_FIELDS) or not objects(body.get("authorizations")):
        return False
    if not objects(body.get("actions")):
        return False
    if not all(body.get(name) is None or isinstance(body[name], (dict, str)) for name in _OBJECT_FIELDS):
        return False
    event = body.get("event")
    if event is None:
        return True
    if not isinstance(event, dict) or not isinstance(event.get("type", ""), str):
        return False
    if event.get("type") not in _HANDLED_EVENTS:  # other events are not ours to judge: Bolt ignores them
        return True
    if not text_or_absent(event, _EVENT_TEXT_FIELDS):
        return False
    return objects(event.get("files")) and all(
        event.get(name) is None or isinstance(event[name], dict) for name in ("previous_message", "message")
    )


def request_fields(body: Any, request: AsyncBoltRequest) -> dict[str, Any]:
    """Identifiers of a request for its log line; any shape of body is survived (values are capped there)."""

    def obj(value: Any) -> dict[str, Any]:
        return value if isinstance(value, dict) else {}

    def scalar(*values: Any) -> Any:
        return next((v for v in values if isinstance(v, (str, int, float)) and v != ""), None)

    body = obj(body)
    event = obj(body.get("event"))
    team = scalar(body.get("team_id"), obj(body.get("team")).get("id"), event.get("team"))
    channel = scalar(event.get("channel"), body.get("channel_id"), obj(body.get("channel")).get("id"))
    retry = next(iter(request.headers.get("x-slack-retry-num") or []), None)
    return {
        "type": scalar(body.get("type")) or ("command" if body.get("command") else None),
        "event": scalar(event.get("type")),
        "subtype": scalar(event.get("subtype")),
        "command": scalar(body.get("command")),
        "team": team,
        "channel": channel,
        "event_id": scalar(body.get("event_id")),
        "retry": retry,
        "retry_reason": next(iter(request.headers.get("x-slack-retry-reason") or []), None),
    }
