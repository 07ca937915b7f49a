"""Conversations: their ids, the dataset each one analyses, duplicate deliveries, and the answers running now.

A *conversation* is where a dataset and the agent's memory live:

- a direct message with the bot: the whole DM, ``"{team}:{channel}"`` (a file dropped anywhere in the DM is
  the dataset for every later question there, threaded or not);
- a mention in a channel: the mention's thread, ``"{team}:{channel}:{thread_ts}"``;
- ``/variance`` in a channel: the channel, ``"{team}:{channel}"``, using the channel's latest dataset.

Each conversation has its own :class:`~analyst.context.AnalysisContext`: a conversation that starts from
another one's dataset (a mention in a new thread, ``/variance``) gets it through :meth:`ConversationStore.adopt`,
which shares the (immutable) file as loaded but neither the context nor its overrides, so an override made in
one conversation ("treat Returns as contra revenue for this conversation") never changes the numbers in
another, in either direction. :meth:`ConversationStore.reset_overrides` drops a conversation's overrides.

Datasets are kept in memory with a cap on their total size (a dataset shared by several conversations counts
once; least recently used dropped first), an idle expiry, and an absolute age cap counted from when the file was
read (adopting or using a dataset never extends it). Each entry records who brought it into its conversation and
who uploaded the file, so ``/variance forget`` (:meth:`ConversationStore.forget`) and a deleted file
(:meth:`ConversationStore.drop_files`) remove exactly what they should.
Everything here is used from the event loop only; nothing blocks.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from analyst.context import AnalysisContext
from analyst.dataset import Dataset
from analyst.engine.options import AnalysisOptions

Clock = Callable[[], float]


def dm_conversation_id(team: str, channel: str) -> str:
    return f"{team}:{channel}"


def thread_conversation_id(team: str, channel: str, thread_ts: str) -> str:
    return f"{team}:{channel}:{thread_ts}"


def channel_key(team: str, channel: str) -> str:
    return f"{team}:{channel}"


def dataset_memory(dataset: Dataset) -> int:
    """Bytes the dataset holds in memory (its tidy frame and the raw table kept for overrides)."""
    size = int(dataset.frame.memory_usage(index=True, deep=True).sum())
    if dataset.raw is not None:
        size += int(dataset.raw.memory_usage(index=True, deep=True).sum())
    return size


@dataclass(slots=True)
class StoredDataset:
    """A conversation's dataset, where it came from, and a cache of its deterministic report."""

    context: AnalysisContext
    file_id: str
    filename: str
    memory_bytes: int
    last_used: float
    loaded_at: float = 0.0  # when the file was read: the absolute age cap counts from here
    owner: str | None = None  # who brought the dataset into this conversation (uploaded or adopted)
    uploaded_by: str | None = None  # who shared the file
    # Epoch seconds when the user shared the file (0: unknown): which of two files of a chat is newer, across
    # instances (Teams: the activity's timestamp).
    shared_at: float = 0.0
    # The report's Markdown for ``report_for`` (the dataset object it was built from) with ``report_options``;
    # a role override replaces the dataset and an account-type override the options, so either drops it.
    report_markdown: str | None = None
    report_for: Dataset | None = field(default=None, repr=False)
    report_options: AnalysisOptions | None = field(default=None, repr=False)

    def cached_report(self) -> str | None:
        """The cached report, if it was built from the context's current dataset and options."""
        if self.report_for is self.context.dataset and self.report_options == self.context.options:
            return self.report_markdown
        return None

    def cache_report(self, markdown: str, dataset: Dataset, options: AnalysisOptions) -> None:
        """Remember ``markdown`` as the report of ``dataset`` under ``options``."""
        self.report_markdown, self.report_for, self.report_options = markdown, dataset, options


class ConversationStore:
    """Per-conversation datasets, bounded by total memory and idle time (LRU)."""

    def __init__(
        self,
        *,
        memory_cap_bytes: int,
        idle_seconds: float,
        max_age_seconds: float = float("inf"),
        clock: Clock = time.monotonic,
    ) -> None:
        self._memory_cap = memory_cap_bytes
        self._idle_seconds = idle_seconds
        self._max_age_seconds = max_age_seconds
        self._clock = clock
        self._entries: OrderedDict[str, StoredDataset] = OrderedDict()
        # team:channel -> the conversation that most recently loaded a dataset there (for /variance)
        self._latest_in_channel: dict[str, str] = {}

    def __len__(self) -> int:
        self.expire()
        return len(self._entries)

    @property
    def limits(self) -> tuple[int, float, float]:
        """(memory cap in bytes, idle seconds, absolute age in seconds) this store drops datasets by."""
        return self._memory_cap, self._idle_seconds, self._max_age_seconds

    @property
    def memory_bytes(self) -> int:
        """Bytes held by the kept datasets; one shared by several conversations counts once."""
        distinct = {id(entry.context.dataset): entry.memory_bytes for entry in self._entries.values()}
        return sum(distinct.values())

    def get(self, conversation_id: str) -> StoredDataset | None:
        self.expire()
        entry = self._entries.get(conversation_id)
        if entry is not None:
            entry.last_used = self._clock()
            self._entries.move_to_end(conversation_id)
        return entry

    def put(
        self,
        conversation_id: str,
        dataset: Dataset,
        *,
        file_id: str,
        filename: str,
        channel: str | None = None,
        report_markdown: str | None = None,
        memory_bytes: int | None = None,
        owner: str | None = None,
    ) -> StoredDataset:
        """Keep ``dataset`` as the conversation's dataset (replacing the previous one); evict to fit the cap.

        A dataset bigger than the whole cap is still kept (it is the one being used) but everything else goes.
        """
        context = AnalysisContext(dataset)
        entry = StoredDataset(
            context=context,
            file_id=file_id,
            filename=filename,
            memory_bytes=dataset_memory(dataset) if memory_bytes is None else memory_bytes,
            last_used=self._clock(),
            loaded_at=self._clock(),
            owner=owner,
            uploaded_by=owner,
        )
        if report_markdown is not None:
            entry.cache_report(report_markdown, dataset, context.options)
        self._keep(conversation_id, entry, channel)
        return entry

    def adopt(self, conversation_id: str, source: StoredDataset, *, owner: str | None = None) -> StoredDataset:
        """Give ``conversation_id`` its own context over ``source``'s dataset (another conversation's).

        The dataset is the file as ``source`` loaded it (shared, never changed in place); ``source``'s overrides
        are not carried over: they belong to the conversation that made them. From then on each conversation's
        overrides are its own. A conversation that already adopted the same file keeps its entry (and its
        overrides).
        """
        existing = self.get(conversation_id)
        if existing is not None and (existing is source or existing.file_id == source.file_id):
            return existing
        context = source.context.fresh()
        entry = StoredDataset(
            context=context,
            file_id=source.file_id,
            filename=source.filename,
            memory_bytes=source.memory_bytes,
            last_used=self._clock(),
            loaded_at=source.loaded_at,
            owner=owner,
            uploaded_by=source.uploaded_by,
            shared_at=source.shared_at,
        )
        if not source.context.has_overrides:
            cached = source.cached_report()
            if cached is not None:
                entry.cache_report(cached, context.dataset, context.options)
        self._keep(conversation_id, entry, None)
        return entry

    def reset_overrides(self, conversation_id: str) -> list[str] | None:
        """Drop the conversation's overrides; the notes of what was dropped, or None without a dataset."""
        entry = self.get(conversation_id)
        if entry is None:
            return None
        return entry.context.reset()

    def _keep(self, conversation_id: str, entry: StoredDataset, channel: str | None) -> None:
        self._entries.pop(conversation_id, None)
        self._entries[conversation_id] = entry
        if channel is not None:
            self._latest_in_channel[channel] = conversation_id
        self.expire()
        self._evict_to_cap(keep=conversation_id)

    def latest_in_channel(self, channel: str) -> tuple[str, StoredDataset] | None:
        """The most recently loaded dataset in a channel (``team:channel``), if it is still kept."""
        conversation_id = self._latest_in_channel.get(channel)
        if conversation_id is None:
            return None
        entry = self.get(conversation_id)
        if entry is None:
            del self._latest_in_channel[channel]
            return None
        return conversation_id, entry

    def expire(self) -> None:
        now = self._clock()
        deadline = now - self._idle_seconds
        while self._entries:
            conversation_id, oldest = next(iter(self._entries.items()))
            if oldest.last_used > deadline:
                break
            del self._entries[conversation_id]
        too_old = now - self._max_age_seconds
        for conversation_id in [cid for cid, entry in self._entries.items() if entry.loaded_at <= too_old]:
            del self._entries[conversation_id]

    def forget(self, place: str, user: str | None) -> list[StoredDataset]:
        """Drop the datasets (and with them their overrides) of a place (``team:channel`` and its threads).

        ``user=None``: every one there (a DM). Otherwise those the user brought into a conversation there or
        uploaded. Returns the dropped entries.
        """
        dropped: list[StoredDataset] = []
        for conversation_id, entry in list(self._entries.items()):
            if not _in_place(conversation_id, place):
                continue
            if user is None or user in (entry.owner, entry.uploaded_by):
                dropped.append(self._entries.pop(conversation_id))
        self._forget_latest(place)
        return dropped

    def drop_files(self, file_ids: set[str]) -> list[StoredDataset]:
        """Drop every dataset read from one of ``file_ids`` (a file deleted in Slack), in every conversation."""
        dropped = [
            self._entries.pop(conversation_id)
            for conversation_id, entry in list(self._entries.items())
            if entry.file_id in file_ids
        ]
        for place in list(self._latest_in_channel):
            self._forget_latest(place)
        return dropped

    def _forget_latest(self, place: str) -> None:
        conversation_id = self._latest_in_channel.get(place)
        if conversation_id is not None and conversation_id not in self._entries:
            del self._latest_in_channel[place]

    def _evict_to_cap(self, *, keep: str) -> None:
        for conversation_id in list(self._entries):
            if self.memory_bytes <= self._memory_cap:
                break
            if conversation_id != keep:
                del self._entries[conversation_id]


def _in_place(conversation_id: str, place: str) -> bool:
    return conversation_id == place or conversation_id.startswith(place + ":")


class Deduplicator:
    """Remembers keys (event ids, message timestamps) for a while, so that a redelivery is answered once."""

    def __init__(self, *, ttl_seconds: float = 3600.0, max_keys: int = 100_000, clock: Clock = time.monotonic):
        self._ttl = ttl_seconds
        self._max_keys = max_keys
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()

    def first_time(self, key: str) -> bool:
        """True the first time ``key`` is offered (within the TTL); False for every repeat."""
        now = self._clock()
        while self._seen:
            oldest_key, seen_at = next(iter(self._seen.items()))
            if now - seen_at < self._ttl and len(self._seen) < self._max_keys:
                break
            del self._seen[oldest_key]
        if key in self._seen:
            return False
        self._seen[key] = now
        return True

    async def claim(self, key: str) -> bool:
        """:meth:`first_time` behind the interface the shared claims (``bot.state.claims``) offer."""
        return self.first_time(key)


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class RunningAnswers:
    """The answers streaming now, by answer id (the Stop button's value), so a click can cancel one; with
    who asked each (``(team, user)``), so that only they (or an admin) may stop it."""

    def __init__(self) -> None:
        self._running: dict[str, Cancellable] = {}
        self._owners: dict[str, tuple[str, str]] = {}

    def __len__(self) -> int:
        return len(self._running)

    def __contains__(self, answer_id: object) -> bool:
        return answer_id in self._running

    def add(self, answer_id: str, run: Cancellable, *, owner: tuple[str, str] | None = None) -> None:
        self._running[answer_id] = run
        if owner is not None:
            self._owners[answer_id] = owner

    def remove(self, answer_id: str) -> None:
        self._running.pop(answer_id, None)
        self._owners.pop(answer_id, None)

    def owner(self, answer_id: str) -> tuple[str, str] | None:
        """``(team, user)`` who asked for a running answer; None when unknown or not running."""
        return self._owners.get(answer_id)

    def cancel(self, answer_id: str) -> bool:
        """Cancel a running answer; False when it is not running (finished already, or unknown)."""
        run = self._running.get(answer_id)
        if run is None:
            return False
        run.cancel()
        return True

    def cancel_all(self) -> int:
        runs = list(self._running.values())
        for run in runs:
            run.cancel()
        return len(runs)
