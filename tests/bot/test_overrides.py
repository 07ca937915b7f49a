"""Overrides made "for this conversation" stay in that conversation, and the report honours them.

A mention in a new thread and ``/variance`` start from the channel's latest dataset; an account-type override
the agent makes there must not change the numbers of the thread that loaded the file (and vice versa), and the
deterministic report of a conversation is built under that conversation's options.
"""

from __future__ import annotations

from analyst.engine.options import AccountType, AnalysisOptions
from analyst.ingest import load_dataset
from analyst.report import build_report
from bot.conversations import channel_key, thread_conversation_id
from tests.bot.conftest import CHANNEL, TEAM, BotUnderTest, mention_event
from tests.bot.helpers import SMALL_CSV, expected_report, final_answers, shown_text
from tests.fakes.openai_server import FakeOpenAI, text, tool_call

ADVERTISING_AS_REVENUE = tool_call(
    "set_account_type", {"assignments": [{"label": "Advertising", "type": "revenue"}]}
)


async def load_in_thread(bot: BotUnderTest) -> str:
    """Mention with SMALL_CSV attached (the deterministic report); returns the thread's ts."""
    file_obj = bot.slack.add_file(SMALL_CSV, name="q3.csv")
    mention = bot.slack.add_message(CHANNEL, text="<@UBOT>", files=[file_obj])
    assert await bot.send_event(mention_event(CHANNEL, mention.ts, "<@UBOT>", files=[file_obj])) == 200
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, CHANNEL)) == 1, timeout=20)
    return mention.ts


def report_with_advertising_as_revenue() -> str:
    dataset = load_dataset(SMALL_CSV, filename="q3.csv")
    options = AnalysisOptions().with_account_types({"Advertising": AccountType.REVENUE})
    return build_report(dataset, opts=options).to_markdown().strip()


def test_the_override_changes_the_report() -> None:
    # Otherwise the tests below could not tell an honoured override from an ignored one.
    assert report_with_advertising_as_revenue() != expected_report(SMALL_CSV, "q3.csv")


async def test_an_override_in_a_new_thread_stays_in_that_thread(bot: BotUnderTest, openai: FakeOpenAI) -> None:
    thread_a = await load_in_thread(bot)
    openai.script(ADVERTISING_AS_REVENUE, text("Advertising now counts as revenue here."))
    mention = bot.slack.add_message(CHANNEL, text="<@UBOT> treat advertising as revenue")
    event = mention_event(CHANNEL, mention.ts, "<@UBOT> treat advertising as revenue")
    assert await bot.send_event(event) == 200
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, CHANNEL)) == 2, timeout=20)
    await bot.deps.idle(timeout=5)

    stored_a = bot.deps.store.get(thread_conversation_id(TEAM, CHANNEL, thread_a))
    stored_b = bot.deps.store.get(thread_conversation_id(TEAM, CHANNEL, mention.ts))
    assert stored_a is not None and stored_b is not None  # thread B keeps the dataset it answered about
    assert stored_b.context is not stored_a.context
    assert stored_b.context.dataset is stored_a.context.dataset  # shared, not copied
    assert dict(stored_b.context.options.account_types) == {"Advertising": AccountType.REVENUE}
    assert dict(stored_a.context.options.account_types) == {}

    # Thread A's report is still the plain one; /variance (the channel) has its own context too.
    follow = bot.slack.add_message(CHANNEL, text="<@UBOT>", thread_ts=thread_a)
    assert await bot.send_event(mention_event(CHANNEL, follow.ts, "<@UBOT>", thread_ts=thread_a)) == 200
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, CHANNEL)) == 3, timeout=20)
    assert shown_text(final_answers(bot.slack, CHANNEL)[-1]) == expected_report(SMALL_CSV, "q3.csv")
    assert len(bot.slack.file_downloads) == 1


async def test_variance_overrides_shape_its_report_and_stay_in_the_channel(
    bot: BotUnderTest, openai: FakeOpenAI
) -> None:
    thread_a = await load_in_thread(bot)
    openai.script(ADVERTISING_AS_REVENUE, text("Done: advertising counts as revenue."))
    status, _ = await bot.send_command("treat advertising as revenue")
    assert status == 200
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, CHANNEL)) == 2, timeout=20)
    await bot.deps.idle(timeout=5)

    status, _ = await bot.send_command("report")
    assert status == 200
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, CHANNEL)) == 3, timeout=20)
    assert shown_text(final_answers(bot.slack, CHANNEL)[-1]) == report_with_advertising_as_revenue()

    stored_a = bot.deps.store.get(thread_conversation_id(TEAM, CHANNEL, thread_a))
    stored_channel = bot.deps.store.get(channel_key(TEAM, CHANNEL))
    assert stored_a is not None and stored_channel is not None
    assert dict(stored_a.context.options.account_types) == {}
    assert (stored_a.cached_report() or "").strip() == expected_report(SMALL_CSV, "q3.csv")
    assert (stored_channel.cached_report() or "").strip() == report_with_advertising_as_revenue()
