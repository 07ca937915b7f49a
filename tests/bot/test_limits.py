"""The abuse limits and allowlists on their own: admission, refusal messages, release on every path."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from bot.limits import (
    NOT_DIRECT_MESSAGES,
    NOT_THIS_CHANNEL,
    NOT_THIS_USER,
    NOT_THIS_WORKSPACE,
    Allowlist,
    LimitSettings,
    RunLimits,
)
from bot.listeners.common import within_limits


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_running_answers_per_user_and_per_workspace() -> None:
    limits = RunLimits(LimitSettings(user_max_running=2, user_questions_per_min=0, workspace_max_running=3))
    a1, a2 = await limits.admit("T1", "alice"), await limits.admit("T1", "alice")
    assert a1.ok and a2.ok
    refused = await limits.admit("T1", "alice")
    assert not refused.ok and refused.reason == "user_running"
    assert refused.message == (
        "You already have answers in progress. Please ask again when one finishes (in about 30 s)."
    )
    b1 = await limits.admit("T1", "bob")
    assert b1.ok
    carol = await limits.admit("T1", "carol")
    assert not carol.ok and carol.reason == "workspace_running"
    assert (await limits.admit("T2", "carol")).ok  # another workspace has its own count
    await limits.release(a1)
    await limits.release(a1)  # twice: counted once
    assert limits.running("T1") == 2
    assert (await limits.admit("T1", "carol")).ok


async def test_questions_per_minute_say_exactly_when_to_ask_again() -> None:
    clock = Clock()
    limits = RunLimits(LimitSettings(user_max_running=0, user_questions_per_min=2), clock=clock)
    first = await limits.admit("T1", "alice")
    clock.now += 15
    await limits.release(first)
    await limits.release(await limits.admit("T1", "alice"))
    clock.now += 5
    refused = await limits.admit("T1", "alice")
    assert not refused.ok and refused.reason == "user_rate" and refused.retry_after_s == pytest.approx(40)
    assert refused.message == "That's a lot of questions in a minute. Please ask again in about 40 s."
    assert (await limits.admit("T1", "bob")).ok  # another person is unaffected
    clock.now += 40  # the first question is a minute old
    assert (await limits.admit("T1", "alice")).ok


async def test_people_who_stopped_asking_are_forgotten() -> None:
    clock = Clock()
    limits = RunLimits(LimitSettings(), clock=clock)
    limits.SWEEP_AT = 100
    for n in range(100):
        await limits.release(await limits.admit("T1", f"U{n}"))
    clock.now += 61
    await limits.release(await limits.admit("T1", "U0NEW"))
    assert len(limits._asked) == 1


async def test_zero_turns_a_limit_off() -> None:
    limits = RunLimits(LimitSettings(user_max_running=0, user_questions_per_min=0, workspace_max_running=0))
    assert all([(await limits.admit("T1", "alice")).ok for _ in range(100)])


def deps_with(limits: RunLimits) -> Any:
    return SimpleNamespace(limits=limits)


async def test_the_admission_is_released_when_the_answer_finishes_fails_or_is_cancelled() -> None:
    limits = RunLimits(LimitSettings(user_max_running=1))
    deps = deps_with(limits)
    replies: list[str] = []

    async def reply(text: str) -> None:
        replies.append(text)

    async def finishes() -> None:
        assert limits.running("T1") == 1

    async def fails() -> None:
        raise RuntimeError("model down")

    started = asyncio.Event()

    async def hangs() -> None:
        started.set()
        await asyncio.Event().wait()

    await within_limits(deps, "T1", "alice", reply, finishes)
    assert limits.running("T1") == 0
    with pytest.raises(RuntimeError):
        await within_limits(deps, "T1", "alice", reply, fails)
    assert limits.running("T1") == 0
    task = asyncio.ensure_future(within_limits(deps, "T1", "alice", reply, hangs))
    await started.wait()
    await within_limits(deps, "T1", "alice", reply, finishes)  # refused: one is running
    assert len(replies) == 1 and replies[0].startswith("You already have answers")
    task.cancel()  # shutdown
    with pytest.raises(asyncio.CancelledError):
        await task
    assert limits.running("T1") == 0


@pytest.mark.parametrize(
    ("allowlist", "where", "expected"),
    [
        (Allowlist(), {"team": "T1", "channel": "C1", "user": "U1"}, None),
        (Allowlist(teams=frozenset({"T1"})), {"team": "T2", "channel": "C1", "user": "U1"}, NOT_THIS_WORKSPACE),
        (Allowlist(users=frozenset({"U1"})), {"team": "T1", "channel": "C1", "user": "U2"}, NOT_THIS_USER),
        (Allowlist(users=frozenset({"U1"})), {"team": "T1", "channel": "C1", "user": None}, NOT_THIS_USER),
        (Allowlist(channels=frozenset({"C1"})), {"team": "T1", "channel": "C2", "user": "U1"}, NOT_THIS_CHANNEL),
        (Allowlist(channels=frozenset({"C1"})), {"team": "T1", "channel": "C1", "user": "U1"}, None),
        (Allowlist(channels=frozenset({"C1"})), {"team": "T1", "channel": "D1", "user": "U1", "is_dm": True},
         NOT_DIRECT_MESSAGES),
        (Allowlist(channels=frozenset({"C1", "dm"})), {"team": "T1", "channel": "D1", "user": "U1", "is_dm": True},
         None),
        (Allowlist(channels=frozenset({"C1"})), {"team": "T1", "channel": None, "user": "U1"}, None),
    ],
)
def test_allowlist(allowlist: Allowlist, where: dict[str, Any], expected: str | None) -> None:
    assert allowlist.refusal(**where) == expected
