"""Running as several instances (``REDIS_URL``): the Redis-backed state wired behind the in-process interfaces,
the loops that keep it alive, the orphan sweep, and the graceful drain at shutdown.

- :func:`connect_shared_state` swaps ``BotDeps``' dedupe, limits, dataset sources, running-answer registry and
  the Slack budget's windows for their ``bot.state`` twins (the listeners and the writer never know which).
- :func:`shared_state_loop` renews this instance's leases (running answers every few seconds, limit slots every
  ``lease / 4``) and sweeps for orphans: answers whose instance died (lease ended) or handed them over. One
  survivor adopts each (atomically) within ``lease + sweep`` (about 30 s) and :func:`finish_orphan` re-runs the
  question into the same message; when it can't (no dataset source, already re-run once, orphaned too long, the
  re-run not delivered) the message is replaced with a clear note to ask again.
- :func:`drain` (SIGTERM): new events are refused already (``BotDeps.accepting``); running answers get
  ``grace`` seconds to finish; those that can be re-run are then handed over (ended with a line saying the
  answer continues, their lease released so a survivor re-runs them at its next sweep); the rest end with the
  restart note, and one whose note could not be delivered is handed over all the same.
"""

from __future__ import annotations

import asyncio
import logging
import time
from functools import partial
from typing import TYPE_CHECKING

import redis.asyncio as aioredis
from slack_sdk.errors import SlackApiError

from bot.logs import log_line
from bot.render import AnswerWriter, DeliveryError
from bot.render.delivery import SlackDoor
from bot.state.claims import RedisClaims
from bot.state.datasets import RedisSources
from bot.state.limits import LIMIT_LEASE_S, RedisLimits
from bot.state.memory import RedisSessions
from bot.state.overrides import RedisOverrides
from bot.state.redis_client import connect, redacted
from bot.state.registry import AnswerRecord, RedisRegistry
from bot.state.window import SharedWindows
from bot.textfilter import neutralise

if TYPE_CHECKING:
    from bot.deps import BotDeps

log = logging.getLogger("variance.bot")

HEARTBEAT_S = 5.0
ANSWER_LEASE_S = 20.0
SWEEP_S = 10.0
RERUN_WITHIN_S = 300.0  # an orphan left longer than this gets the note, not a re-run
HANDOVER_WAIT_S = 10.0  # for the handed-over answers to write their last line at shutdown
# The writer numbers an answer's messages 0, 1, 2, ... (its reposted finals 1000 and up: those are final already).
MAX_CONTINUATION_PART = 1000
ORPHANED = (
    "The bot instance writing this answer stopped before it finished, so this answer is incomplete. Please ask again."
)


def connect_shared_state(deps: BotDeps) -> aioredis.Redis:
    """Put the Redis-backed twins into ``deps``; returns the client (closed with the app)."""
    settings = deps.settings
    assert settings.redis_url is not None
    client = connect(settings.redis_url)
    deps.dedupe = RedisClaims(client)
    deps.limits = RedisLimits(client, settings.limits, lease_s=LIMIT_LEASE_S)
    deps.sources = RedisSources(client, ttl_seconds=settings.dataset_max_age_seconds)
    # The agent's history and a conversation's overrides follow it to whichever instance answers.
    from bot.retention import retention_seconds

    deps.sessions = RedisSessions(client, ttl_seconds=retention_seconds(deps))
    deps.overrides = RedisOverrides(client, ttl_seconds=settings.dataset_max_age_seconds)
    # One rolling window per workspace x method for all instances (the pacing module's window seam), and a 429
    # met by any instance pauses that method for all of them.
    # Each instance declares what its scheduler holds for finals and first texts, so another instance's
    # progress edits never take the calls this one's finals wait for.
    budget = deps.budget
    windows = SharedWindows(client, instance=settings.instance_id, demand=budget.demand)
    deps.budget.window_factory = windows
    on_ratelimited = getattr(deps.client, "on_ratelimited", False)
    if on_ratelimited is None:  # the metered client: tell the shared windows of every 429
        deps.client.on_ratelimited = windows.ratelimited  # type: ignore[attr-defined]

    def stop_here(answer_id: str, by_user: str) -> None:
        stopped = deps.running.cancel(answer_id)
        log_line("request", type="stop", answer_id=answer_id, found=stopped, relayed=True)

    deps.registry = RedisRegistry(client, instance=settings.instance_id, lease_s=ANSWER_LEASE_S, on_stop=stop_here)
    log_line("shared_state", redis=redacted(settings.redis_url), instance=settings.instance_id)
    return client


async def shared_state_loop(deps: BotDeps) -> None:
    """Heartbeat, limit-lease renewal and the orphan sweep, until cancelled; errors are logged, never fatal."""
    loop = asyncio.get_running_loop()
    next_sweep = next_renew = loop.time()
    while True:
        try:
            await deps.registry.heartbeat()
            now = loop.time()
            renew = getattr(deps.limits, "renew", None)
            if renew is not None and now >= next_renew:
                await renew()
                next_renew = now + LIMIT_LEASE_S / 4
            if now >= next_sweep and deps.accepting:
                await sweep_orphans(deps)
                next_sweep = now + SWEEP_S
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log_line("error", where="shared_state", error=type(error).__name__)
        await asyncio.sleep(HEARTBEAT_S if deps.registry.local_ids() else min(HEARTBEAT_S, SWEEP_S))


async def sweep_orphans(deps: BotDeps) -> int:
    """Adopt every orphaned answer this instance can claim and finish each in a task of its own (a re-run takes
    as long as an answer); how many it adopted."""
    adopted = await deps.registry.orphans()
    for record in adopted:
        deps.metrics.answers.labels(entry=record.entry, outcome="orphaned").inc()
        deps.spawn(finish_orphan(deps, record), name="orphan")
    return len(adopted)


def may_rerun(record: AnswerRecord) -> bool:
    """First adoption only (never a loop), and not long after it was left (a question from hours ago, answered
    out of the blue, would confuse more than the note)."""
    return record.adoptions == 1 and record.orphaned_ms <= RERUN_WITHIN_S * 1000


async def finish_orphan(deps: BotDeps, record: AnswerRecord) -> bool:
    """Bring an adopted orphan to a final state: its question re-run into the same message, else the note.
    True when the message ends with an answer or the note."""
    try:
        return await _rerun_or_note(deps, record)
    except Exception as error:  # never left adopted and unfinished: the note, and the record goes
        log_line("error", where="orphan", answer_id=record.answer_id, error=type(error).__name__)
        try:
            return await write_orphan_note(deps, record)
        finally:
            await deps.registry.remove(record.answer_id)


async def _rerun_or_note(deps: BotDeps, record: AnswerRecord) -> bool:
    from bot.answers import answer
    from bot.requests import rerun_request

    fields = {"answer_id": record.answer_id, "team": record.team, "channel": record.channel}
    if record.message_ts is None:
        try:
            record.message_ts = await unrecorded_first_message(deps, record)
        except DeliveryError as error:  # Slack can't tell whether it exists: re-running could post it twice
            log_line("orphan", **fields, placed=None, error=error.code)
            await deps.registry.remove(record.answer_id)
            return False
    await drop_continuations(deps, record)
    request = rerun_request(deps, record) if may_rerun(record) else None
    if request is not None:
        drop_turn = getattr(deps.sessions, "drop_turn", None)
        if drop_turn is not None and record.source_ts:  # what the dead run stored: the re-run stores it again
            await drop_turn(record.conversation_id, record.source_ts)
        log_line("orphan", **fields, rerun=True, adoptions=record.adoptions, placed=record.message_ts is not None)
        outcome = await answer(deps, request)  # adds, renews and removes the record itself
        if outcome is not None and outcome.delivered:
            log_line("orphan", **fields, finished=True, state=outcome.state)
            return True
        shown = outcome.message_ts if outcome is not None else []
        record.message_ts = record.message_ts or (shown[0] if shown else None)
    try:
        return await write_orphan_note(deps, record)
    finally:
        await deps.registry.remove(record.answer_id)


def _door(deps: BotDeps, record: AnswerRecord) -> SlackDoor:
    """The orphan's way into Slack, to find its messages by their marker (message metadata)."""
    writer = AnswerWriter(
        deps.client,
        deps.budget,
        team_id=record.team,
        channel=record.channel,
        thread_ts=record.thread_ts,
        answer_id=record.answer_id,
    )
    return writer.door


async def unrecorded_first_message(deps: BotDeps, record: AnswerRecord) -> str | None:
    """An orphan with no message recorded: its first post may have landed just before its instance died. Look
    for it by the answer's marker; raises :class:`DeliveryError` when Slack can't tell."""
    return await _door(deps, record).find_posted(0, record.thread_ts, record.asked_at or time.time() - 3600)


async def drop_continuations(deps: BotDeps, record: AnswerRecord) -> int:
    """A long answer continues in more messages (replies under its first, each with the answer's marker and its
    part number). The re-run or the note takes the first message, so a dead instance's continuations, left live,
    are deleted; how many. Best effort: when Slack can't tell, they stay."""
    if not record.message_ts:
        return 0
    from bot.notices import call_with_rate_retry

    root = record.thread_ts or record.message_ts
    try:
        found = await _door(deps, record).our_messages(root, record.asked_at or time.time() - 3600)
    except DeliveryError:
        return 0
    dropped = 0
    for message in found:
        part = ((message.get("metadata") or {}).get("event_payload") or {}).get("part")
        ts = str(message.get("ts"))
        if ts == record.message_ts or not isinstance(part, int) or not 0 < part < MAX_CONTINUATION_PART:
            continue
        try:
            await call_with_rate_retry(partial(deps.client.chat_delete, channel=record.channel, ts=ts))
            dropped += 1
        except SlackApiError as error:
            log_line("orphan", answer_id=record.answer_id, channel=record.channel, error=error.response.get("error"))
    return dropped


async def write_orphan_note(deps: BotDeps, record: AnswerRecord) -> bool:
    """Replace an orphaned answer's message with the note to ask again: a final edit (``markdown_text`` only,
    as the writer's own finals), so no Stop button or progress mark is left on it."""
    from bot.notices import call_with_rate_retry

    if not record.message_ts:
        log_line("orphan", answer_id=record.answer_id, team=record.team, channel=record.channel, placed=False)
        return False
    ts = record.message_ts
    text = neutralise(ORPHANED)
    try:
        await call_with_rate_retry(lambda: deps.client.chat_update(channel=record.channel, ts=ts, markdown_text=text))
    except SlackApiError as error:
        log_line("orphan", answer_id=record.answer_id, channel=record.channel, error=error.response.get("error"))
        return False
    log_line("orphan", answer_id=record.answer_id, team=record.team, channel=record.channel, finished=True, note=True)
    return True


async def drain(deps: BotDeps, grace_s: float) -> None:
    """Let running answers finish for up to ``grace_s`` seconds (new events are refused already)."""
    if not deps.tasks:
        return
    log_line("shutdown", running=len(deps.running), grace_s=grace_s)
    deadline = asyncio.get_running_loop().time() + grace_s
    while deps.tasks:
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            break
        # asyncio.wait, not gather: the deadline must not cancel the answers (they end with the restart note).
        await asyncio.wait(list(deps.tasks), timeout=left)
    handed_over = deps.registry.hand_over_all()  # each ends saying it continues, its lease released
    if handed_over and deps.tasks:
        log_line("shutdown", handed_over=handed_over)
        await asyncio.wait(list(deps.tasks), timeout=HANDOVER_WAIT_S)
