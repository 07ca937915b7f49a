"""The pacer on a virtual clock: Teams' four windows per conversation, and Retry-After."""

from __future__ import annotations

import httpx

from bot.teams.pacing import MAX_WAIT_S, TEAMS_LIMITS, ConversationPacer, conversation_of, retry_after_seconds
from tests.teams.helpers import VirtualClock


async def test_calls_to_one_conversation_stay_inside_every_window() -> None:
    clock = VirtualClock()
    pacer = ConversationPacer(clock=clock, sleep=clock.sleep, margin_s=0.0)
    times = []
    for _ in range(200):
        pacer.completed(await pacer.acquire("a:1"))  # answered at once
        times.append(clock.now)
    for count, window in TEAMS_LIMITS:
        for i in range(len(times)):
            inside = [t for t in times[i:] if t < times[i] + window]
            assert len(inside) <= count, (count, window)
    # 60 per 30 s is the binding limit over a long stream
    assert 90 <= times[-1] <= 100


async def test_conversations_are_paced_independently() -> None:
    clock = VirtualClock()
    pacer = ConversationPacer(clock=clock, sleep=clock.sleep)
    for n in range(7):
        pacer.completed(await pacer.acquire(f"a:{n}"))
    assert clock.now == 0.0


async def test_windows_count_from_a_slow_calls_response_not_its_send() -> None:
    # Teams counts a call when it arrives: a call whose response took 0.8 s may have arrived 0.8 s after its send.
    clock = VirtualClock()
    pacer = ConversationPacer(clock=clock, sleep=clock.sleep, margin_s=0.0)
    slow = [await pacer.acquire("a:1") for _ in range(7)]  # seven sent at once, answered 0.8 s later
    assert pacer.delay("a:1") == 1.0  # in flight: they may arrive any moment
    clock.now = 0.8
    for entry in slow:
        pacer.completed(entry)
    # All seven may have arrived just before 0.8: the eighth waits a full second after their responses.
    assert pacer.delay("a:1") == 1.0
    pacer.completed(await pacer.acquire("a:1"))
    assert clock.now == 1.8


async def test_a_429_pauses_the_conversation_for_retry_after_or_a_backoff() -> None:
    clock = VirtualClock()
    pacer = ConversationPacer(clock=clock, sleep=clock.sleep, margin_s=0.0)
    assert pacer.throttled("a:1", 4.5) == 4.5
    pacer.completed(await pacer.acquire("a:1"))
    assert clock.now == 4.5
    assert pacer.throttled("a:2", None) == 1.0
    assert pacer.throttled("a:2", None) == 2.0
    pacer.succeeded("a:2")
    assert pacer.throttled("a:2", None) == 1.0


def test_retry_after_and_conversation_parsing() -> None:
    assert retry_after_seconds(httpx.Headers({"Retry-After": "3"})) == 3.0
    assert retry_after_seconds(httpx.Headers({"Retry-After": "0.25"})) == 0.25
    assert retry_after_seconds(httpx.Headers({})) is None
    assert retry_after_seconds(httpx.Headers({"Retry-After": "soon"})) is None
    assert conversation_of("https://smba.trafficmanager.net/emea/v3/conversations/a:1xZ/activities/17") == "a:1xZ"
    assert conversation_of("https://smba.trafficmanager.net/emea/v3/conversations/19:x@thread.v2/activities") == (
        "19:x@thread.v2"
    )
    assert conversation_of("https://login.example.com/token") is None


async def test_an_absurd_retry_after_cannot_pause_a_conversation_for_ever() -> None:
    # "inf" parses as a float; a day-long value from a misbehaving proxy would leave every later answer to that
    # conversation waiting that long. Neither is taken beyond the longest wait a call may have.
    assert retry_after_seconds(httpx.Headers({"Retry-After": "inf"})) is None
    assert retry_after_seconds(httpx.Headers({"Retry-After": "nan"})) is None
    assert retry_after_seconds(httpx.Headers({"Retry-After": "86400"})) == MAX_WAIT_S
    clock = VirtualClock()
    pacer = ConversationPacer(clock=clock, sleep=clock.sleep, margin_s=0.0)
    pacer.throttled("a:1", retry_after_seconds(httpx.Headers({"Retry-After": "1e12"})))
    pacer.completed(await pacer.acquire("a:1"))
    assert clock.now == MAX_WAIT_S
