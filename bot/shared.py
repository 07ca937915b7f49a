"""Running as several instances (``REDIS_URL``): the Redis-backed state wired behind the in-process interfaces,
the loops that keep it alive, the orphan sweep, and the graceful drain at shutdown.

- :func:`connect_shared_state` swaps ``BotDeps``' dedupe, limits, dataset sources, running-answer registry and
  the Slack budget's windows for their ``bot.state`` twins (the listeners and the writer never know which).
- :func:`shared_state_loop` renews this instance's leases (running answers every few seconds, limit slots every
  ``lease / 4``) and sweeps for orphans: answers whose instance died (lease ended) are claimed by one survivor
  and their message is replaced with a clear note to ask again, within ``lease + sweep`` (about 30 s).
- :func:`drain` (SIGTERM): new events are refused already (``BotDeps.accepting``); running answers get
  ``grace`` seconds to finish; the rest end with the restart note, and an answer whose note could not be
  delivered is handed over (its lease released) so a survivor finishes it at its next sweep.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

import redis.asyncio as aioredis
from slack_sdk.errors import SlackApiError

from bot.logs import log_line
from bot.state.claims import RedisClaims
from bot.state.datasets import RedisSources
from bot.state.limits import RedisLimits
from bot.state.memory import RedisSessions
from bot.state.overrides import RedisOverrides
from bot.state.redis_client import connect, redacted
from bot.state.registry import AnswerRecord, RedisRegistry
from bot.state.window import SharedWindows
from bot.textfilter import neutralise

if TYPE_CHECKING:
    from bot.answers import BotDeps

log = logging.getLogger("variance.bot")

HEARTBEAT_S = 5.0
ANSWER_LEASE_S = 20.0
SWEEP_S = 10.0
LIMIT_LEASE_S = 120.0
ORPHANED = (
    "The bot instance writing this answer stopped before it finished, so this answer is incomplete. "
    "Please ask again."
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
    windows = SharedWindows(
        client, instance=settings.instance_id, demand=lambda team, method: budget.scheduler(team, method).reserved
    )
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
    """Bring every orphaned answer this instance claims to a final state; how many it finished."""
    finished = 0
    for record in await deps.registry.orphans():
        if await finish_orphan(deps, record):
            finished += 1
    return finished


async def finish_orphan(deps: BotDeps, record: AnswerRecord) -> bool:
    """Replace an orphaned answer's message with the note to ask again: a final edit (``markdown_text`` only,
    as the writer's own finals), so no Stop button or progress mark is left on it."""
    from bot.answers import call_with_rate_retry

    deps.metrics.answers.labels(entry=record.entry, outcome="orphaned").inc()
    if not record.message_ts:
        log_line("orphan", answer_id=record.answer_id, team=record.team, channel=record.channel, placed=False)
        return False
    ts = record.message_ts
    text = neutralise(ORPHANED)
    try:
        await call_with_rate_retry(
            lambda: deps.client.chat_update(channel=record.channel, ts=ts, markdown_text=text)
        )
    except SlackApiError as error:
        log_line("orphan", answer_id=record.answer_id, channel=record.channel, error=error.response.get("error"))
        return False
    log_line("orphan", answer_id=record.answer_id, team=record.team, channel=record.channel, finished=True)
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
