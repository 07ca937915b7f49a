"""UpdateScheduler in virtual time: coalescing, interval, window, reservations, fairness, 429, retries."""

from __future__ import annotations

import asyncio
import itertools
from collections import defaultdict

import pytest

from bot.render.pacing import (
    Classified,
    DeliveryError,
    FailureClass,
    Priority,
    SlackBudget,
    UpdateScheduler,
)
from tests.render.virtual_time import VirtualTime


class Boom(Exception):
    def __init__(self, kind: FailureClass, retry_after: float = 0.0, code: str = "x") -> None:
        super().__init__(code)
        self.info = Classified(kind, code, retry_after)


def classify(exc: BaseException) -> Classified:
    return exc.info if isinstance(exc, Boom) else Classified(FailureClass.FATAL, type(exc).__name__)


class Recorder:
    """A fake Slack call per slot: records (time, key, payload), can fail on demand."""

    def __init__(self, vt: VirtualTime) -> None:
        self.vt = vt
        self.sent: list[tuple[float, str, object]] = []
        self.failures: dict[str, list[Boom]] = defaultdict(list)

    def send_for(self, key: str):  # type: ignore[no-untyped-def]
        async def send(payload: object) -> None:
            if self.failures[key]:
                raise self.failures[key].pop(0)
            self.sent.append((self.vt.now, key, payload))

        return send

    def of(self, key: str) -> list[object]:
        return [p for _, k, p in self.sent if k == key]

    def times(self, key: str | None = None) -> list[float]:
        return [t for t, k, _ in self.sent if key is None or k == key]


def make(vt: VirtualTime, **kwargs: object) -> UpdateScheduler[object]:
    opts: dict[str, object] = {"limit": 10, "window": 60.0, "min_interval": 1.0}
    opts.update(kwargs)
    return UpdateScheduler(clock=vt.clock, sleep=vt.sleep, classify=classify, **opts)  # type: ignore[arg-type]


def max_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    best = 0
    j = 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


async def test_coalescing_sends_only_the_newest_payload() -> None:
    vt = VirtualTime()
    sched = make(vt)
    rec = Recorder(vt)

    async def scenario() -> None:
        slot = sched.open("m", rec.send_for("m"))
        for i in range(100):
            slot.submit(i)
        await slot.finish("final")

    await vt.run(scenario())
    assert rec.of("m") == ["final"]
    await sched.aclose()


async def test_per_message_interval_and_final_goes_at_once() -> None:
    vt = VirtualTime()
    sched = make(vt, limit=1000)
    rec = Recorder(vt)

    async def scenario() -> float:
        slot = sched.open("m", rec.send_for("m"))
        for i in range(50):  # a delta every 0.1 s for 5 s
            slot.submit(i)
            await vt.sleep(0.1)
        finished_at = vt.now
        await slot.finish("final")
        return vt.now - finished_at

    final_wait = await vt.run(scenario())
    times = rec.times("m")
    gaps = [b - a for a, b in itertools.pairwise(times[:-1])]  # between intermediate edits
    assert gaps and min(gaps) >= 1.0 - 1e-9
    assert 4 <= len(times) <= 8
    assert rec.of("m")[-1] == "final" and final_wait == 0.0
    # coalescing: every intermediate edit carried the newest text at the time it went out
    assert all(isinstance(p, int) for p in rec.of("m")[:-1])
    await sched.aclose()


async def test_rolling_window_is_never_exceeded_and_finals_all_arrive() -> None:
    vt = VirtualTime()
    sched = make(vt, limit=10, window=60.0)
    rec = Recorder(vt)

    async def answer(key: str, length: float) -> None:
        slot = sched.open(key, rec.send_for(key))
        steps = int(length / 0.5)
        for i in range(steps):
            slot.submit(f"{key}-{i}")
            await vt.sleep(0.5)
        await slot.finish(f"{key}-final")

    await vt.run(asyncio.gather(*(answer(f"a{i}", 100.0 + 20 * i) for i in range(4))))
    assert max_in_any_window(rec.times(), 60.0) <= 10
    for i in range(4):
        assert rec.of(f"a{i}")[-1] == f"a{i}-final"
    await sched.aclose()


async def test_reservations_let_simultaneous_finals_go_at_once() -> None:
    """8 answers stream against a 20/min budget and finish together: their finals are not queued."""
    vt = VirtualTime()
    sched = make(vt, limit=20, window=60.0)
    rec = Recorder(vt)
    waits: list[float] = []

    async def answer(key: str) -> None:
        slot = sched.open(key, rec.send_for(key))
        for i in range(200):  # 20 s of text
            slot.submit(f"{key}-{i}")
            await vt.sleep(0.1)
        done_at = vt.now
        await slot.finish(f"{key}-final")
        waits.append(vt.now - done_at)

    await vt.run(asyncio.gather(*(answer(f"a{i}") for i in range(8))))
    assert max(waits) == 0.0  # every final went out the moment it was submitted
    assert max_in_any_window(rec.times(), 60.0) <= 20
    # the units not reserved (20 - 8 finals - 8 first texts) were spent on visible progress
    assert sum(1 for p in rec.of("a0") + rec.of("a1") if not str(p).endswith("final")) >= 1
    await sched.aclose()


async def test_without_reservation_finals_would_queue() -> None:
    """Control for the test above: 8 finals submitted after the window is spent wait for it to roll."""
    vt = VirtualTime()
    sched = make(vt, limit=10, window=60.0, progress_burst=10)
    rec = Recorder(vt)

    async def scenario() -> float:
        spender = sched.open("spender", rec.send_for("spender"))
        for i in range(10):  # alone, it may spend the whole window (its own reservation included)
            spender.submit(i)
            await vt.sleep(1.1)
        spender.close()
        slots = [sched.open(f"late{i}", rec.send_for(f"late{i}")) for i in range(3)]
        start = vt.now
        await asyncio.gather(*(s.finish("final") for s in slots))
        return vt.now - start

    wait = await vt.run(scenario())
    assert wait > 1.0  # the window was full: finals had to wait (what reservations prevent)
    await sched.aclose()


async def test_fairness_least_recently_served_first() -> None:
    vt = VirtualTime()
    sched = make(vt, limit=12, window=60.0, min_interval=0.0)
    rec = Recorder(vt)
    keys = [f"s{i}" for i in range(4)]

    async def answer(key: str) -> None:
        slot = sched.open(key, rec.send_for(key))
        for i in range(600):
            slot.submit(i)
            await vt.sleep(0.2)
        await slot.finish("final")

    await vt.run(asyncio.gather(*(answer(k) for k in keys)))
    counts = [len(rec.of(k)) for k in keys]
    assert max(counts) - min(counts) <= 1, counts
    await sched.aclose()


async def test_first_visible_text_beats_intermediate_edits() -> None:
    vt = VirtualTime()
    sched = make(vt, limit=4, window=60.0, min_interval=0.0)
    rec = Recorder(vt)

    async def scenario() -> None:
        busy = sched.open("busy", rec.send_for("busy"))
        fresh = sched.open("fresh", rec.send_for("fresh"))
        # 2 open slots reserve 4 of 4 units (2 finals, 2 first texts): no room for progress (tool status),
        # but a first text may spend its own unit.
        assert sched.reserved == 4
        busy.submit("busy-tool-status")
        fresh.submit("fresh-first-text", Priority.FIRST_VISIBLE)
        await vt.sleep(1.0)
        assert rec.of("fresh") == ["fresh-first-text"] and rec.of("busy") == []
        assert sched.reserved == 3
        await asyncio.gather(busy.finish("b"), fresh.finish("f"))

    await vt.run(scenario())
    await sched.aclose()


async def test_429_pauses_the_method_and_loses_nothing() -> None:
    vt = VirtualTime()
    sched = make(vt, limit=100)
    rec = Recorder(vt)
    rec.failures["a"].append(Boom(FailureClass.RATE_LIMITED, retry_after=7.0, code="ratelimited"))

    async def scenario() -> None:
        a = sched.open("a", rec.send_for("a"))
        b = sched.open("b", rec.send_for("b"))
        a.submit("a1")
        await vt.sleep(0.5)  # a1 got the 429 at t=0
        b.submit("b1")
        await vt.sleep(2.0)
        assert rec.sent == []  # the whole method is paused, b included
        await asyncio.gather(a.finish("a-final"), b.finish("b-final"))

    await vt.run(scenario())
    assert min(rec.times()) >= 7.0
    assert rec.of("a") == ["a-final"] and rec.of("b") == ["b-final"]
    assert sched.ratelimited == 1
    await sched.aclose()


async def test_429_on_the_final_resends_it_once() -> None:
    vt = VirtualTime()
    sched = make(vt)
    rec = Recorder(vt)
    rec.failures["a"].append(Boom(FailureClass.RATE_LIMITED, retry_after=3.0, code="ratelimited"))

    async def scenario() -> None:
        a = sched.open("a", rec.send_for("a"))
        await a.finish("final")
        assert a.stats.ratelimited == 1

    await vt.run(scenario())
    assert rec.sent == [(3.0, "a", "final")]
    await sched.aclose()


async def test_transient_failures_are_retried_with_backoff() -> None:
    vt = VirtualTime()
    sched = make(vt, backoff_base=0.5)
    rec = Recorder(vt)
    rec.failures["a"] += [Boom(FailureClass.TRANSIENT, code="internal_error") for _ in range(3)]

    async def scenario() -> None:
        a = sched.open("a", rec.send_for("a"))
        await a.finish("final")
        assert a.stats.retries == 3

    await vt.run(scenario())
    assert rec.sent == [(0.5 + 1.0 + 2.0, "a", "final")]
    await sched.aclose()


async def test_fatal_error_on_final_raises_and_transients_give_up() -> None:
    vt = VirtualTime()
    sched = make(vt, max_attempts=3)
    rec = Recorder(vt)
    rec.failures["a"].append(Boom(FailureClass.FATAL, code="msg_too_long"))
    rec.failures["b"] += [Boom(FailureClass.TRANSIENT, code="internal_error") for _ in range(5)]

    async def scenario() -> None:
        a = sched.open("a", rec.send_for("a"))
        with pytest.raises(DeliveryError) as err:
            await a.finish("too long")
        assert err.value.code == "msg_too_long"
        b = sched.open("b", rec.send_for("b"))
        with pytest.raises(DeliveryError) as err:
            await b.finish("never")
        assert err.value.code == "internal_error"

    await vt.run(scenario())
    await sched.aclose()


async def test_fatal_error_on_intermediate_is_recorded_and_final_still_tried() -> None:
    vt = VirtualTime()
    sched = make(vt)
    rec = Recorder(vt)
    rec.failures["a"].append(Boom(FailureClass.FATAL, code="invalid_blocks"))

    async def scenario() -> None:
        a = sched.open("a", rec.send_for("a"))
        a.submit("bad")
        await vt.sleep(2.0)
        assert a.failure is not None and a.failure.code == "invalid_blocks"
        await a.finish("final")

    await vt.run(scenario())
    assert rec.of("a") == ["final"]
    await sched.aclose()


async def test_closing_a_slot_releases_its_reservation() -> None:
    vt = VirtualTime()
    sched = make(vt, limit=3)
    rec = Recorder(vt)

    async def scenario() -> None:
        a = sched.open("a", rec.send_for("a"))
        b = sched.open("b", rec.send_for("b"))
        assert sched.reserved == 4
        a.submit("blocked")  # 0 used + 4 reserved > limit: progress must wait
        await vt.sleep(5.0)
        assert rec.sent == []
        b.close()
        await vt.sleep(0.1)
        assert rec.of("a") == ["blocked"]
        await a.finish("final")
        assert sched.reserved == 0

    await vt.run(scenario())
    await sched.aclose()


def test_scheduler_rejects_bad_limits() -> None:
    with pytest.raises(ValueError):
        UpdateScheduler(limit=0)


async def test_progress_is_paced_so_latecomers_still_get_their_first_text_fast() -> None:
    """Early answers spend progress edits only at limit/window per second, never the whole window at once."""
    vt = VirtualTime()
    sched = make(vt, limit=20, window=60.0, min_interval=0.0)  # progress: one per 3 s, burst 2
    rec = Recorder(vt)
    first_text_wait: list[float] = []

    async def early(key: str) -> None:
        slot = sched.open(key, rec.send_for(key))
        slot.submit(f"{key}-first", Priority.FIRST_VISIBLE)
        for i in range(100):
            slot.submit(f"{key}-{i}")
            await vt.sleep(0.1)
        await slot.finish(f"{key}-final")

    async def late(key: str) -> None:
        await vt.sleep(3.0)
        slot = sched.open(key, rec.send_for(key))
        await vt.sleep(0.5)
        asked = vt.now
        slot.submit(f"{key}-first", Priority.FIRST_VISIBLE)
        while not rec.of(key):
            await vt.sleep(0.05)
        first_text_wait.append(vt.now - asked)
        await slot.finish(f"{key}-final")

    await vt.run(asyncio.gather(*(early(f"e{i}") for i in range(3)), *(late(f"l{i}") for i in range(3))))
    first_send = {k: min(t for t, kk, _ in rec.sent if kk == k) for _, k, _ in rec.sent}
    progress_in_first_3s = [p for t, k, p in rec.sent if t < 3.0 and t > first_send[k]]
    assert len(progress_in_first_3s) <= 3  # the burst (+1 refill), not the whole window
    assert max(first_text_wait) < 0.2
    assert max_in_any_window(rec.times(), 60.0) <= 20
    await sched.aclose()


async def test_budget_has_one_scheduler_per_workspace_and_method() -> None:
    budget = SlackBudget()
    a = budget.scheduler("T1")
    assert budget.scheduler("T1", "chat.update") is a
    assert budget.scheduler("T2") is not a
    assert budget.scheduler("T1", "chat.delete") is not a
    assert (a.limit, a.window) == (45, 60.0)
    await budget.aclose()


async def test_post_turns_pace_one_channel_but_not_others() -> None:
    vt = VirtualTime()
    budget = SlackBudget(post_rate=1.0, post_burst=2, clock=vt.clock, sleep=vt.sleep)
    starts: list[tuple[str, float]] = []

    async def post(channel: str) -> None:
        async with budget.post_turn("T1", channel):
            starts.append((channel, vt.now))

    await vt.run(asyncio.gather(*(post("C1") for _ in range(4)), post("C2")))
    c1 = [t for c, t in starts if c == "C1"]
    assert c1 == [0.0, 0.0, 1.0, 2.0]  # burst of 2, then one per second
    assert [t for c, t in starts if c == "C2"] == [0.0]
    budget.post_ratelimited("T1", "C2", 5.0)
    await vt.run(post("C2"))
    assert starts[-1] == ("C2", vt.now) and vt.now >= 5.0


@pytest.mark.parametrize("answers", [23, 30, 50])
async def test_first_texts_go_out_with_more_live_answers_than_half_the_window(answers: int) -> None:
    """2 units per live answer (final + first text) exceed a 45 window from 23 answers on: the finals'
    reservations come first, first texts spend what they leave, and every final still goes out at once."""
    vt = VirtualTime()
    sched = make(vt, limit=45, window=60.0)
    rec = Recorder(vt)

    async def scenario() -> None:
        slots = [sched.open(f"s{i}", rec.send_for(f"s{i}")) for i in range(answers)]
        for i, slot in enumerate(slots):
            slot.submit(f"first-{i}", Priority.FIRST_VISIBLE)
        await vt.sleep(1.0)
        firsts = [t for t, _, p in rec.sent if str(p).startswith("first")]
        # Finals hold min(answers, 45 - floor) units; first texts get the rest straight away.
        expected = 45 - min(answers, 45 - sched.first_text_floor)
        assert len(firsts) == expected > 0 and max(firsts) == 0.0
        await vt.sleep(60.0)  # the window rolls: as many again go out
        assert sum(1 for _, _, p in rec.sent if str(p).startswith("first")) == min(answers, 2 * expected)

    await vt.run(scenario())
    assert max_in_any_window(rec.times(), 60.0) <= 45
    await sched.aclose()


async def test_a_slot_opened_after_close_fails_its_final_at_once() -> None:
    sched: UpdateScheduler[str] = UpdateScheduler(limit=5, window=60.0)
    await sched.aclose()

    async def send(_payload: str) -> None:
        raise AssertionError("nothing is sent once the scheduler is closed")

    slot = sched.open("late", send)
    with pytest.raises(DeliveryError):
        await asyncio.wait_for(slot.finish("final"), timeout=5)
    assert slot.closed and sched.reserved == 0
