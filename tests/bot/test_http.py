"""The HTTP endpoints: signature checks (forged and stale requests get 401), url_verification, /healthz, and
events Slack redelivers (same event_id, X-Slack-Retry-Num) answered once."""

from __future__ import annotations

import json
import time

from tests.bot.bot_under_test import SIGNING_SECRET, BotUnderTest, event_envelope
from tests.bot.helpers import DM, dm_event

CHALLENGE = {
    "token": "legacy",
    "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
    "type": "url_verification",
}


async def test_url_verification_answers_the_challenge(bot: BotUnderTest) -> None:
    status, body = await bot.post_signed(json.dumps(CHALLENGE))
    assert status == 200
    assert json.loads(body) == {"challenge": CHALLENGE["challenge"]}


async def test_forged_signature_is_rejected(bot: BotUnderTest) -> None:
    status, _ = await bot.post_signed(json.dumps(CHALLENGE), secret="not-the-signing-secret")
    assert status == 401
    body = json.dumps(event_envelope(dm_event("1700000000.000100", "hello")))
    status, _ = await bot.post_signed(body, secret=SIGNING_SECRET[::-1])
    assert status == 401
    assert bot.slack.calls_of("chat.postMessage") == []


async def test_stale_request_is_rejected(bot: BotUnderTest) -> None:
    six_minutes_ago = int(time.time()) - 6 * 60
    status, _ = await bot.post_signed(json.dumps(CHALLENGE), timestamp=six_minutes_ago)
    assert status == 401
    four_minutes_ago = int(time.time()) - 4 * 60
    status, _ = await bot.post_signed(json.dumps(CHALLENGE), timestamp=four_minutes_ago)
    assert status == 200


async def test_unsigned_request_is_rejected(bot: BotUnderTest) -> None:
    async with bot.http.post(f"{bot.url}/slack/events", json=CHALLENGE) as resp:
        assert resp.status == 401


async def test_healthz(bot: BotUnderTest) -> None:
    health = await bot.healthz()
    assert health["ok"] is True and health["running_answers"] == 0


async def test_redelivered_event_is_answered_once(bot: BotUnderTest) -> None:
    # A question with no dataset yet gets one short notice: count them.
    user_msg = bot.slack.add_message(DM, text="why is marketing over budget?")
    event = dm_event(user_msg.ts, user_msg.text or "")
    assert await bot.send_event(event, event_id="Ev0DUP1") == 200
    assert await bot.send_event(event, event_id="Ev0DUP1", retry=1) == 200
    assert await bot.send_event(event, event_id="Ev0DUP1", retry=2) == 200
    await bot.slack.wait_for(lambda: len(bot.slack.calls_of("chat.postMessage")) >= 1)
    await bot.deps.idle(timeout=5)
    posts = bot.slack.calls_of("chat.postMessage")
    assert len(posts) == 1
    assert "CSV or XLSX" in posts[0].params["text"]


async def test_same_message_under_two_event_ids_is_answered_once(bot: BotUnderTest) -> None:
    user_msg = bot.slack.add_message(DM, text="hello?")
    event = dm_event(user_msg.ts, "hello?")
    assert await bot.send_event(event, event_id="Ev0A") == 200
    assert await bot.send_event(event, event_id="Ev0B") == 200
    await bot.slack.wait_for(lambda: len(bot.slack.calls_of("chat.postMessage")) >= 1)
    await bot.deps.idle(timeout=5)
    assert len(bot.slack.calls_of("chat.postMessage")) == 1


async def test_ignored_messages_get_200_and_no_answer(bot: BotUnderTest) -> None:
    ts = bot.slack.add_message(DM, text="x").ts
    ignored = [
        dm_event(ts, "edited", subtype="message_changed"),
        dm_event(ts, "", subtype="message_deleted"),
        dm_event(ts, "a bot speaks", bot_id="B0OTHER"),
        dm_event(ts, "our own words", user="UBOT", bot_id="BBOT"),
        dm_event(ts, "joined", subtype="channel_join"),
        {**dm_event(ts, "in a channel"), "channel_type": "channel", "channel": "C0GENERAL"},
    ]
    for event in ignored:
        assert await bot.send_event(event) == 200
    await bot.deps.idle(timeout=5)
    assert bot.slack.calls_of("chat.postMessage") == []
