"""Where a Teams conversation's dataset came from, shared by every instance (``REDIS_URL``).

The dataset itself stays in the memory of the instance that read it (``ConversationStore``); a follow-up that
reaches another instance finds the *source* here and downloads and reads the file again (then keeps it in its
own cache). One small JSON record per conversation (``va:teams-source:{conversation id}``): the attachment's
download URL (short-lived: Teams signs it for a while), name, Teams file type and unique id, its size, who sent
it, when, and the conversation's overrides on it (column roles and account types by name, never a number). And
per user, the 1:1 chat holding the newest file they sent (``va:teams-latest:{tenant}:{user}``: the chat, the
file's id and when it was shared), which their group-chat mentions use. Nothing of the file's content is stored.

Records expire with the dataset's absolute age cap (``VARIANCE_DATASET_MAX_HOURS``, never past the retention
period), counted from when the file was shared. When Redis cannot answer, a miss stays a miss (the user is asked
for the file again) and a record not written is logged.

Writes never go back in time. ``shared_at`` is when the user shared the file (the activity's timestamp), so
:meth:`RedisTeamsSources.remember` keeps a record only if it is newer than the one there (one atomic script, for
the conversation's record and for the user's newest chat): an instance that read an older file slowly cannot
overwrite a newer file read elsewhere. :meth:`RedisTeamsSources.note_overrides` is a compare-and-set on the
record it read, so overrides made on one file never land on a newer file's record.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import redis.asyncio as aioredis

from bot.state.redis_client import REDIS_ERRORS, key
from bot.teams.files import TeamsFile

log = logging.getLogger("variance.state")


@dataclass(frozen=True, slots=True)
class TeamsSource:
    """What another instance needs to read a conversation's file again."""

    file: TeamsFile
    size: int  # bytes downloaded when it was shared
    owner: str  # tenant:user who sent it
    shared_at: float  # epoch seconds: the dataset's age counts from here on every instance
    overrides: dict[str, Any] = field(default_factory=dict)  # bot.overrides.overrides_record

    @property
    def age_s(self) -> float:
        return max(0.0, time.time() - self.shared_at)

    def newer_than(self, shared_at: float, file_id: str) -> bool:
        """Whether this source was shared after the file ``file_id`` shared at ``shared_at`` (two files shared in
        the same instant are ordered by their ids, so every instance agrees)."""
        return (self.shared_at, self.file.unique_id) > (shared_at, file_id)


def _dumps(source: TeamsSource) -> str:
    return json.dumps(asdict(source), separators=(",", ":"))


def _loads(text: object) -> TeamsSource | None:
    try:
        data = json.loads(str(text))
        overrides = data.get("overrides") or {}
        if not isinstance(overrides, dict):
            return None
        return TeamsSource(
            file=TeamsFile(**data["file"]),
            size=int(data["size"]),
            owner=str(data["owner"]),
            shared_at=float(data["shared_at"]),
            overrides=overrides,
        )
    except (TypeError, ValueError, KeyError):
        return None


# KEYS: the conversation's source, the owner's newest chat. ARGV: the source's JSON, its shared_at, its file's
# unique id, ttl ms, the conversation id. Each key is written only if what it holds was shared earlier (a record
# this script cannot read is replaced). Returns {1 if the source was written, 1 if the newest chat was}.
_REMEMBER = """
local shared_at, file_id = tonumber(ARGV[2]), ARGV[3]
local function older(text)
  if not text then return true end
  local ok, held = pcall(cjson.decode, text)
  if not ok or type(held) ~= 'table' or tonumber(held.shared_at) == nil then return true end
  local at = tonumber(held.shared_at)
  local id = ''
  if type(held.file) == 'table' and type(held.file.unique_id) == 'string' then id = held.file.unique_id end
  if type(held.file_id) == 'string' then id = held.file_id end
  return at < shared_at or (at == shared_at and id < file_id)
end
local wrote_source, wrote_latest = 0, 0
if older(redis.call('GET', KEYS[1])) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[4])
  wrote_source = 1
end
if older(redis.call('GET', KEYS[2])) then
  local latest = cjson.encode({conversation = ARGV[5], file_id = file_id})
  -- shared_at goes in as the caller wrote it: cjson would round it to 14 digits
  latest = string.sub(latest, 1, -2) .. ',"shared_at":' .. ARGV[2] .. '}'
  redis.call('SET', KEYS[2], latest, 'PX', ARGV[4])
  wrote_latest = 1
end
return {wrote_source, wrote_latest}
"""

# KEYS: the conversation's source. ARGV: the record as it was read ('' : there was none), the record to write,
# ttl ms for a new one. Writes only if the key still holds exactly what was read; returns 1 if it wrote.
_REPLACE = """
local held = redis.call('GET', KEYS[1])
if ARGV[1] == '' then
  if held then return 0 end
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
if held ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
return 1
"""

# How often note_overrides reads again after another write got in between (each retry follows a real write).
_CAS_ATTEMPTS = 5


class RedisTeamsSources:
    def __init__(self, client: aioredis.Redis, *, ttl_seconds: float = 24 * 3600.0) -> None:
        self._client = client
        self._ttl = ttl_seconds
        self._remember = client.register_script(_REMEMBER)
        self._replace = client.register_script(_REPLACE)

    @staticmethod
    def _source(conversation_id: str) -> str:
        return key("teams-source", conversation_id)

    @staticmethod
    def _latest(user_key: str) -> str:
        return key("teams-latest", user_key)

    def _ttl_ms(self, source: TeamsSource) -> int:
        return int((self._ttl - source.age_s) * 1000)

    async def remember(self, conversation_id: str, source: TeamsSource) -> None:
        """``conversation_id``'s dataset is ``source`` now, and it is its sender's newest file: unless a file
        shared later is already recorded there (that one stays)."""
        ttl_ms = self._ttl_ms(source)
        if ttl_ms <= 0:
            return
        keys = [self._source(conversation_id), self._latest(source.owner)]
        args: list[str | int] = [_dumps(source), repr(source.shared_at), source.file.unique_id, ttl_ms, conversation_id]
        try:
            await self._remember(keys=keys, args=args)
        except REDIS_ERRORS as error:
            log.warning("teams dataset source not shared: %s", type(error).__name__)

    async def source_for(self, conversation_id: str) -> TeamsSource | None:
        try:
            text = await self._client.get(self._source(conversation_id))
        except REDIS_ERRORS as error:
            log.warning("teams dataset source lookup failed: %s", type(error).__name__)
            return None
        return _loads(text) if text else None

    async def latest_for(self, user_key: str) -> str | None:
        """The 1:1 chat holding the newest file ``user_key`` sent (on any instance)."""
        newest = await self.newest_chat(user_key)
        return newest[0] if newest else None

    async def newest_chat(self, user_key: str) -> tuple[str, float] | None:
        """The 1:1 chat holding the newest file ``user_key`` sent (on any instance), and when it was shared."""
        try:
            text = await self._client.get(self._latest(user_key))
        except REDIS_ERRORS as error:
            log.warning("teams dataset source lookup failed: %s", type(error).__name__)
            return None
        if not text:
            return None
        try:
            held = json.loads(str(text))
        except ValueError:
            held = None
        if not isinstance(held, dict):  # a bare conversation id, written before the order was kept
            return str(text), 0.0
        try:
            return str(held["conversation"]), float(held["shared_at"])
        except (KeyError, TypeError, ValueError):
            return None

    async def note_overrides(
        self, conversation_id: str, file_id: str, record: dict[str, Any], *, basis: TeamsSource | None = None
    ) -> None:
        """The conversation's overrides on ``file_id`` are ``record`` now (kept with the source, same expiry).

        Written only while the conversation's record names ``file_id`` (compare-and-set: a newer file recorded
        meanwhile keeps its own). ``basis``, the source of ``file_id`` (a group chat's dataset is its user's 1:1
        file), starts the record when there is none, or replaces one of a file shared before it."""
        name = self._source(conversation_id)
        try:
            for _ in range(_CAS_ATTEMPTS):
                text = await self._client.get(name)
                held = _loads(text) if text else None
                if held is not None and held.file.unique_id == file_id:
                    if held.overrides == record:
                        return
                    updated = TeamsSource(held.file, held.size, held.owner, held.shared_at, record)
                elif basis is not None and basis.file.unique_id == file_id and (
                    held is None or basis.newer_than(held.shared_at, held.file.unique_id)
                ):
                    if held is None and not record:
                        return  # nothing to share
                    updated = TeamsSource(basis.file, basis.size, basis.owner, basis.shared_at, record)
                else:
                    return  # the record is another (newer) file's
                ttl_ms = self._ttl_ms(updated)
                if ttl_ms <= 0:
                    return
                args: list[str | int] = [str(text) if text else "", _dumps(updated), ttl_ms]
                if int(await self._replace(keys=[name], args=args)):
                    return
            log.warning("teams overrides not shared: the record kept changing")
        except REDIS_ERRORS as error:
            log.warning("teams overrides not shared: %s", type(error).__name__)

    async def forget(self, conversation_id: str) -> None:
        """Drop the conversation's source (its download link no longer works)."""
        try:
            await self._client.delete(self._source(conversation_id))
        except REDIS_ERRORS as error:
            log.warning("teams dataset source not forgotten: %s", type(error).__name__)


class LocalTeamsSources:
    """One instance keeps its datasets in ``ConversationStore``: a miss there is a miss."""

    async def remember(self, conversation_id: str, source: TeamsSource) -> None:
        return None

    async def source_for(self, conversation_id: str) -> TeamsSource | None:
        return None

    async def latest_for(self, user_key: str) -> str | None:
        return None

    async def newest_chat(self, user_key: str) -> tuple[str, float] | None:
        return None

    async def note_overrides(
        self, conversation_id: str, file_id: str, record: dict[str, Any], *, basis: TeamsSource | None = None
    ) -> None:
        return None

    async def forget(self, conversation_id: str) -> None:
        return None
