"""Conversation store (memory cap, idle expiry, LRU), deduplication and the running-answers registry."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analyst.dataset import ColumnRoles, Dataset, SourceInfo
from analyst.engine.options import AccountType
from bot.conversations import (
    ConversationStore,
    Deduplicator,
    RunningAnswers,
    channel_key,
    dataset_memory,
    dm_conversation_id,
    thread_conversation_id,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_dataset(rows: int) -> Dataset:
    frame = pd.DataFrame(
        {
            "Department": np.array(["Sales", "Marketing"] * (rows // 2)),
            "actual": np.arange(rows, dtype="float64"),
            "reference": np.arange(rows, dtype="float64"),
        }
    )
    roles = ColumnRoles(
        shape="wide",
        dimensions=("Department",),
        account=None,
        period=None,
        actual="Actual",
        reference="Budget",
        reference_kind="budget",
    )
    source = SourceInfo("f.csv", "csv", "utf-8", ",", 1, rows)
    return Dataset(frame=frame, roles=roles, source=source)


def test_ids() -> None:
    assert dm_conversation_id("T1", "D1") == "T1:D1"
    assert thread_conversation_id("T1", "C1", "123.4") == "T1:C1:123.4"
    assert channel_key("T1", "C1") == "T1:C1"


def test_memory_cap_evicts_least_recently_used() -> None:
    one = dataset_memory(make_dataset(1000))
    store = ConversationStore(memory_cap_bytes=int(one * 2.5), idle_seconds=3600, clock=Clock())
    for name in ("a", "b"):
        store.put(name, make_dataset(1000), file_id=name, filename=f"{name}.csv")
    assert store.get("a") is not None  # a is now more recently used than b
    store.put("c", make_dataset(1000), file_id="c", filename="c.csv")
    assert store.get("b") is None
    assert store.get("a") is not None and store.get("c") is not None
    assert store.memory_bytes <= int(one * 2.5)


def test_a_dataset_larger_than_the_cap_is_kept_alone() -> None:
    store = ConversationStore(memory_cap_bytes=10, idle_seconds=3600, clock=Clock())
    store.put("a", make_dataset(10), file_id="a", filename="a.csv")
    store.put("b", make_dataset(10), file_id="b", filename="b.csv")
    assert store.get("a") is None
    assert store.get("b") is not None


def test_idle_expiry_and_latest_in_channel() -> None:
    clock = Clock()
    store = ConversationStore(memory_cap_bytes=10**9, idle_seconds=60, clock=clock)
    store.put("T:C:1", make_dataset(4), file_id="F1", filename="a.csv", channel="T:C")
    clock.now += 30
    store.put("T:C:2", make_dataset(4), file_id="F2", filename="b.csv", channel="T:C")
    latest = store.latest_in_channel("T:C")
    assert latest is not None and latest[0] == "T:C:2" and latest[1].file_id == "F2"
    clock.now += 45  # T:C:1 idle 75 s, T:C:2 idle 45 s (it was just read by latest_in_channel at +30)
    assert store.get("T:C:1") is None
    assert store.get("T:C:2") is not None
    clock.now += 61
    assert store.latest_in_channel("T:C") is None
    assert len(store) == 0


def test_cached_report_is_dropped_when_the_dataset_changes() -> None:
    store = ConversationStore(memory_cap_bytes=10**9, idle_seconds=60, clock=Clock())
    entry = store.put("a", make_dataset(4), file_id="F", filename="a.csv", report_markdown="# report")
    assert entry.cached_report() == "# report"
    entry.context.dataset = make_dataset(6)  # a role override replaces the dataset object
    assert entry.cached_report() is None


def test_deduplicator_answers_each_key_once_within_ttl() -> None:
    clock = Clock()
    dedupe = Deduplicator(ttl_seconds=10, clock=clock)
    assert dedupe.first_time("Ev1")
    assert not dedupe.first_time("Ev1")
    assert dedupe.first_time("Ev2")
    clock.now += 11
    assert dedupe.first_time("Ev1")


def test_deduplicator_is_bounded() -> None:
    dedupe = Deduplicator(ttl_seconds=3600, max_keys=3, clock=Clock())
    for key in "abcd":
        assert dedupe.first_time(key)
    assert dedupe.first_time("a")  # forgotten: the oldest key went when the 4th arrived
    assert not dedupe.first_time("d")


def test_running_answers_cancel() -> None:
    cancelled: list[str] = []

    class Run:
        def __init__(self, name: str) -> None:
            self.name = name

        def cancel(self) -> None:
            cancelled.append(self.name)

    running = RunningAnswers()
    running.add("x", Run("x"))
    running.add("y", Run("y"))
    assert running.cancel("x") and cancelled == ["x"]
    assert not running.cancel("nope")
    running.remove("x")
    assert "x" not in running and len(running) == 1
    assert running.cancel_all() == 1 and cancelled == ["x", "y"]


def test_adopt_shares_the_file_but_not_the_overrides() -> None:
    store = ConversationStore(memory_cap_bytes=10**9, idle_seconds=60, clock=Clock())
    source = store.put("T:C:1", make_dataset(4), file_id="F1", filename="a.csv", channel="T:C")
    source.context.options = source.context.options.with_account_types({"x": AccountType.REVENUE})
    adopted = store.adopt("T:C:2", source)
    assert adopted is not source and adopted.context is not source.context
    assert adopted.context.dataset is source.context.dataset
    # The source conversation's overrides are its own: the adopting one starts from the file as loaded.
    assert dict(adopted.context.options.account_types) == {}
    assert not adopted.context.has_overrides and adopted.context.override_notes() == []
    adopted.context.options = adopted.context.options.with_account_types({"y": AccountType.EXPENSE})
    assert dict(source.context.options.account_types) == {"x": AccountType.REVENUE}
    assert store.get("T:C:2") is adopted and store.adopt("T:C:2", source) is adopted  # keeps its overrides
    assert dict(adopted.context.options.account_types) == {"y": AccountType.EXPENSE}
    assert store.latest_in_channel("T:C") == ("T:C:1", source)
    assert store.memory_bytes == source.memory_bytes  # one dataset, counted once


def test_reset_drops_the_overrides_and_says_which() -> None:
    store = ConversationStore(memory_cap_bytes=10**9, idle_seconds=60, clock=Clock())
    entry = store.put("T:C:1", make_dataset(4), file_id="F1", filename="a.csv", report_markdown="# report")
    assert store.reset_overrides("T:C:1") == []
    entry.context.options = entry.context.options.with_account_types({"x": AccountType.CONTRA_REVENUE})
    assert entry.cached_report() is None
    assert entry.context.override_notes() == ["x counted as contra revenue"]
    assert store.reset_overrides("T:C:1") == ["x counted as contra revenue"]
    assert not entry.context.has_overrides
    assert entry.cached_report() == "# report"  # the file as loaded again: its report holds again
    assert store.reset_overrides("T:C:other") is None


def test_cached_report_is_dropped_when_the_options_change() -> None:
    store = ConversationStore(memory_cap_bytes=10**9, idle_seconds=60, clock=Clock())
    entry = store.put("a", make_dataset(4), file_id="F", filename="a.csv", report_markdown="# report")
    entry.context.options = entry.context.options.with_account_types({"x": AccountType.REVENUE})
    assert entry.cached_report() is None


def test_datasets_expire_at_an_absolute_age_however_often_used() -> None:
    clock = Clock()
    store = ConversationStore(memory_cap_bytes=10**9, idle_seconds=600, max_age_seconds=3600, clock=clock)
    store.put("T:C:1", make_dataset(10), file_id="F1", filename="a.csv", channel="T:C")
    store.adopt("T:C", store.get("T:C:1"))  # type: ignore[arg-type]
    for _ in range(5):  # used every 10 minutes: never idle
        clock.now += 599
        assert store.get("T:C:1") is not None and store.get("T:C") is not None
    clock.now += 606  # an hour after the file was read: gone, also where it was adopted
    assert store.get("T:C:1") is None and store.get("T:C") is None and store.latest_in_channel("T:C") is None


def test_forget_and_dropped_files() -> None:
    store = ConversationStore(memory_cap_bytes=10**9, idle_seconds=600, clock=Clock())
    mine = store.put("T:C:1", make_dataset(10), file_id="F1", filename="a.csv", channel="T:C", owner="UA")
    store.adopt("T:C:2", mine, owner="UB")  # another person's thread over my file
    store.put("T:C:3", make_dataset(10), file_id="F3", filename="b.csv", channel="T:C", owner="UB")
    store.put("T:D:1", make_dataset(10), file_id="F4", filename="c.csv", channel="T:D", owner="UA")
    dropped = store.forget("T:C", "UA")
    assert sorted(e.filename for e in dropped) == ["a.csv", "a.csv"]  # my file, also where it was adopted
    assert store.get("T:C:3") is not None and store.get("T:D:1") is not None  # others' and elsewhere stay
    assert store.latest_in_channel("T:C") is None or store.latest_in_channel("T:C")[1].file_id != "F1"
    assert [e.file_id for e in store.drop_files({"F3"})] == ["F3"]
    assert store.get("T:C:3") is None
    assert [e.filename for e in store.forget("T:D", None)] == ["c.csv"]
