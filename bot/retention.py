"""What the bot keeps about people, for how long, and how it is deleted.

- Conversation memory (questions, answers, tool results) lives in SQLite under the data folder
  (:mod:`analyst.memory`): private to the bot's user, purged after ``VARIANCE_RETENTION_DAYS`` at start and
  every hour (:func:`purge_loop`).
- With ``REDIS_URL`` conversation memory lives in Redis instead (:mod:`bot.state.memory`, with a TTL of the
  retention period), and the same forget, deletion and purge rules apply there (and to the SQLite file, which
  may hold memory from before Redis).
- Datasets (the tables read from files) and overrides live in memory only (:class:`ConversationStore`), dropped
  after an idle time and an absolute age; with ``REDIS_URL`` the file's *source* and the overrides' record are
  shared (:mod:`bot.state.datasets`, :mod:`bot.state.overrides`) and deleted with them.
- ``/variance forget`` (:func:`forget`): in a DM, everything from that DM; in a channel, the caller's turns in
  every conversation there and the datasets they brought or uploaded there, with their overrides.
- A deleted message (:func:`drop_message`) drops the turn it produced and the datasets read from its files; a
  deleted file (:func:`drop_file`) drops the datasets read from it.

The file work runs in a worker thread, so the event loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from analyst import memory
from bot.config import SharedSettings
from bot.conversations import ConversationStore, StoredDataset, channel_key
from bot.logs import log_line

if TYPE_CHECKING:
    from bot.deps import BotDeps

PURGE_INTERVAL_SECONDS = 3600.0


class Keeper(Protocol):
    """What a surface keeps about people: conversation memory (where its settings say) and datasets. The Slack
    bot's and the Teams bot's dependencies and the web chat's state all are one, so all purge by the same rules."""

    @property
    def settings(self) -> SharedSettings: ...

    @property
    def store(self) -> ConversationStore: ...


def memory_path(deps: Keeper) -> Path:
    """The conversation memory file the analyst runs use (the agent's default data folder without settings)."""
    agent = deps.settings.agent
    return memory.db_path(agent.data_dir if agent is not None else Path(".data"))


def retention_seconds(deps: Keeper) -> float:
    agent = deps.settings.agent
    return (agent.retention_days if agent is not None else 30.0) * 86400.0


@dataclass(frozen=True, slots=True)
class ForgetReport:
    """What one ``/variance forget`` deleted."""

    conversations: int
    items: int
    datasets: tuple[str, ...]  # file names, one per dropped dataset

    @property
    def nothing(self) -> bool:
        return not (self.items or self.datasets)


def _dataset_names(dropped: list[StoredDataset]) -> tuple[str, ...]:
    return tuple(sorted({entry.filename for entry in dropped}))


async def forget(deps: BotDeps, team: str, channel: str, user: str) -> ForgetReport:
    """``/variance forget`` in ``channel``: a DM loses everything, a channel the caller's part."""
    place = channel_key(team, channel)
    everything = channel.startswith("D")  # a DM with the bot is the caller's own place
    speaker = None if everything else user
    dropped = deps.store.forget(place, None if everything else user)
    await deps.overrides.forget(place, None if everything else user)  # before the sources: it reads their owners
    await deps.sources.forget(place, None if everything else user)
    forgotten = await asyncio.to_thread(memory.forget_place, memory_path(deps), place, speaker=speaker)
    if deps.sessions is not None:
        forgotten += await deps.sessions.forget_place(place, speaker=speaker)
    report = ForgetReport(forgotten.conversations, forgotten.items, _dataset_names(dropped))
    log_line(
        "privacy",
        action="forget",
        team=team,
        channel=channel,
        user=user,
        scope="dm" if everything else "caller",
        conversations=report.conversations,
        items=report.items,
        datasets=len(dropped),
    )
    return report


async def drop_message(deps: BotDeps, team: str, channel: str, ts: str, file_ids: set[str]) -> None:
    """A message was deleted in Slack: drop the turn it produced and the datasets read from its files."""
    dropped = deps.store.drop_files(file_ids) if file_ids else []
    if file_ids:
        await deps.sources.drop_files(file_ids)
        await deps.overrides.drop_files(file_ids)
    forgotten = await asyncio.to_thread(memory.forget_source, memory_path(deps), channel_key(team, channel), ts)
    if deps.sessions is not None:
        forgotten += await deps.sessions.forget_source(channel_key(team, channel), ts)
    log_line(
        "privacy",
        action="message_deleted",
        team=team,
        channel=channel,
        items=forgotten.items,
        datasets=len(dropped),
    )


def drop_file(deps: BotDeps, team: str, file_id: str) -> None:
    """A file was deleted in Slack: every dataset read from it goes (with its overrides)."""
    dropped = deps.store.drop_files({file_id})
    deps.spawn(deps.sources.drop_files({file_id}), name="drop-file-sources")
    deps.spawn(deps.overrides.drop_files({file_id}), name="drop-file-overrides")
    log_line("privacy", action="file_deleted", team=team, file=file_id, datasets=len(dropped))


async def purge_expired(deps: Keeper) -> memory.Forgotten:
    """Delete conversation memory older than the retention period, and expired datasets."""
    deps.store.expire()
    shared = getattr(deps, "sessions", None)
    try:
        purged = await asyncio.to_thread(memory.purge_older_than, memory_path(deps), retention_seconds(deps))
    except sqlite3.Error as error:  # housekeeping: the next round tries again
        log_line("error", where="retention", error=type(error).__name__)
        purged = memory.Forgotten()
    if shared is not None:
        purged += await shared.purge_older_than(retention_seconds(deps))
    if purged.items:
        log_line("privacy", action="retention", conversations=purged.conversations, items=purged.items)
    return purged


async def purge_loop(deps: Keeper, interval: float = PURGE_INTERVAL_SECONDS) -> None:
    """Purge every ``interval`` seconds until cancelled (the first purge runs at start, before serving)."""
    while True:
        await asyncio.sleep(interval)
        try:
            await purge_expired(deps)
        except OSError as error:  # the data folder unreadable for a moment: the next round tries again
            log_line("error", where="retention", error=type(error).__name__)
