"""Overrides belong to the conversation that made them, every answer or report they shape says so, and reset
clears them.

A mention in a new thread and ``/variance`` start from the channel's latest dataset; an account-type override
the agent makes in one conversation must never change the numbers of another (in either direction), and the
deterministic report of a conversation is built under that conversation's options, with a line naming them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from analyst.engine.options import AccountType, AnalysisOptions
from analyst.ingest import load_dataset
from analyst.report import build_report
from bot.conversations import channel_key, dm_conversation_id, thread_conversation_id
from bot.textfilter import ZWSP
from tests.bot.helpers import (
    CHANNEL,
    DM,
    SMALL_CSV,
    TEAM,
    dm_event,
    expected_report,
    final_answers,
    final_markdown,
    mention_event,
)
from tests.fakes.openai_server import FakeOpenAI, text, tool_call

if TYPE_CHECKING:
    from tests.bot.bot_under_test import BotUnderTest

ADVERTISING_AS_REVENUE = tool_call(
    "set_account_type", {"assignments": [{"label": "Advertising", "type": "revenue"}]}
)
THREAD_NOTE = (
    "_With your overrides: Advertising counted as revenue._ Mention me with “reset” in this thread to clear them."
)
COMMAND_NOTE = "_With your overrides: Advertising counted as revenue._ `/variance reset` clears them."


async def load_in_thread(bot: BotUnderTest) -> str:
    """Mention with SMALL_CSV attached (the deterministic report); returns the thread's ts."""
    file_obj = bot.slack.add_file(SMALL_CSV, name="q3.csv")
    mention = bot.slack.add_message(CHANNEL, text="<@UBOT>", files=[file_obj])
    assert await bot.send_event(mention_event(CHANNEL, mention.ts, "<@UBOT>", files=[file_obj])) == 200
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, CHANNEL)) == 1, timeout=20)
    return mention.ts


async def mention(bot: BotUnderTest, words: str, *, thread_ts: str | None = None, user: str = "U0USER") -> str:
    message = bot.slack.add_message(CHANNEL, text=f"<@UBOT> {words}", thread_ts=thread_ts, user=user)
    event = mention_event(CHANNEL, message.ts, f"<@UBOT> {words}", thread_ts=thread_ts, user=user)
    assert await bot.send_event(event) == 200
    return message.ts


async def next_final(bot: BotUnderTest, count: int) -> str:
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, CHANNEL)) == count, timeout=20)
    await bot.deps.idle(timeout=10)
    return final_markdown(final_answers(bot.slack, CHANNEL)[-1]) or ""


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
    thread_b = await mention(bot, "treat advertising as revenue", user="U0OTHER")
    answer_b = await next_final(bot, 2)
    assert answer_b == f"Advertising now counts as revenue here.\n\n{THREAD_NOTE}"

    stored_a = bot.deps.store.get(thread_conversation_id(TEAM, CHANNEL, thread_a))
    stored_b = bot.deps.store.get(thread_conversation_id(TEAM, CHANNEL, thread_b))
    assert stored_a is not None and stored_b is not None  # thread B keeps the dataset it answered about
    assert stored_b.context is not stored_a.context
    assert stored_b.context.dataset is stored_a.context.dataset  # shared, not copied
    assert dict(stored_b.context.options.account_types) == {"Advertising": AccountType.REVENUE}
    assert dict(stored_a.context.options.account_types) == {}

    # Thread A's report is still the plain one, and says nothing about overrides.
    await mention(bot, "", thread_ts=thread_a)
    assert await next_final(bot, 3) == expected_report(SMALL_CSV, "q3.csv")
    assert len(bot.slack.file_downloads) == 1


async def test_an_override_in_the_loading_thread_reaches_no_other_conversation(
    bot: BotUnderTest, openai: FakeOpenAI
) -> None:
    """The thread that loaded the file is the channel's latest: /variance and new threads start from the file,
    not from that thread's overrides (they used to inherit them, silently)."""
    thread_a = await load_in_thread(bot)
    openai.script(ADVERTISING_AS_REVENUE, text("Done."))
    await mention(bot, "count advertising as revenue", thread_ts=thread_a)
    assert await next_final(bot, 2) == f"Done.\n\n{THREAD_NOTE}"

    status, _ = await bot.send_command("report", user="U0OTHER")
    assert status == 200
    assert await next_final(bot, 3) == expected_report(SMALL_CSV, "q3.csv")

    openai.script(tool_call("variance_summary", {}), text("Plain numbers."))
    thread_c = await mention(bot, "how are we doing?", user="U0THIRD")
    assert await next_final(bot, 4) == "Plain numbers."
    stored_c = bot.deps.store.get(thread_conversation_id(TEAM, CHANNEL, thread_c))
    assert stored_c is not None and dict(stored_c.context.options.account_types) == {}

    # Thread A itself: its report is built with its override, and says so.
    await mention(bot, "", thread_ts=thread_a)
    assert await next_final(bot, 5) == f"{report_with_advertising_as_revenue()}\n\n{THREAD_NOTE}"

    # "reset" in thread A clears them (no model call), and its report is the plain one again.
    requests = len(openai.requests)
    await mention(bot, "reset", thread_ts=thread_a)
    await bot.slack.wait_for(lambda: any("Cleared your overrides" in (m.text or "") for m in bot.slack.thread(
        CHANNEL, thread_a)))
    (notice,) = [m for m in bot.slack.thread(CHANNEL, thread_a) if "Cleared" in (m.text or "")]
    assert notice.text == (
        "Cleared your overrides (Advertising counted as revenue). The numbers are as detected from the file again."
    )
    await mention(bot, "", thread_ts=thread_a)
    assert await next_final(bot, 6) == expected_report(SMALL_CSV, "q3.csv")
    assert len(openai.requests) == requests


async def test_variance_overrides_shape_its_report_until_reset(bot: BotUnderTest, openai: FakeOpenAI) -> None:
    thread_a = await load_in_thread(bot)
    openai.script(ADVERTISING_AS_REVENUE, text("Done: advertising counts as revenue."))
    status, _ = await bot.send_command("treat advertising as revenue")
    assert status == 200
    assert await next_final(bot, 2) == f"Done: advertising counts as revenue.\n\n{COMMAND_NOTE}"

    status, _ = await bot.send_command("report")
    assert status == 200
    assert await next_final(bot, 3) == f"{report_with_advertising_as_revenue()}\n\n{COMMAND_NOTE}"

    stored_a = bot.deps.store.get(thread_conversation_id(TEAM, CHANNEL, thread_a))
    stored_channel = bot.deps.store.get(channel_key(TEAM, CHANNEL))
    assert stored_a is not None and stored_channel is not None
    assert dict(stored_a.context.options.account_types) == {}
    assert (stored_a.cached_report() or "").strip() == expected_report(SMALL_CSV, "q3.csv")
    assert (stored_channel.cached_report() or "").strip() == report_with_advertising_as_revenue()

    url = bot.slack.new_response_url()
    status, _ = await bot.send_command("reset", response_url=url)
    assert status == 200
    await bot.slack.wait_for(lambda: len(bot.slack.responses[url]) == 1)
    (reply,) = bot.slack.responses[url]
    assert reply["response_type"] == "ephemeral"
    assert reply["text"].startswith("Cleared your overrides (Advertising counted as revenue).")

    status, _ = await bot.send_command("report")
    assert await next_final(bot, 4) == expected_report(SMALL_CSV, "q3.csv")


async def test_reset_notices_show_file_labels_as_text(bot: BotUnderTest, openai: FakeOpenAI) -> None:
    """The reset confirmation names the overrides, whose labels come from the file: they reach Slack inert."""
    hostile = b"Account,Budget,Actual\n<!channel> [win](https://evil.example.com),100,120\nRent,50,50\n"
    file_obj = bot.slack.add_file(hostile, name="q3.csv")
    loaded = bot.slack.add_message(CHANNEL, text="<@UBOT>", files=[file_obj])
    assert await bot.send_event(mention_event(CHANNEL, loaded.ts, "<@UBOT>", files=[file_obj])) == 200
    await next_final(bot, 1)
    label = "<!channel> [win](https://evil.example.com)"
    openai.script(tool_call("set_account_type", {"assignments": [{"label": label, "type": "revenue"}]}), text("Ok."))
    await mention(bot, "that line is revenue", thread_ts=loaded.ts)
    await next_final(bot, 2)
    await mention(bot, "reset", thread_ts=loaded.ts)
    await bot.slack.wait_for(lambda: any("Cleared" in (m.text or "") for m in bot.slack.bot_messages(CHANNEL)))
    (notice,) = [m for m in bot.slack.bot_messages(CHANNEL) if "Cleared" in (m.text or "")]
    shown = notice.text or ""
    assert "<!channel>" not in shown and "](" not in shown and "https://" not in shown
    assert shown.replace(ZWSP, "").startswith(f"Cleared your overrides ({label} counted as revenue).")


async def test_reset_in_a_dm_clears_the_dm_overrides(bot: BotUnderTest, openai: FakeOpenAI) -> None:
    file_obj = bot.slack.add_file(SMALL_CSV, name="q3.csv")
    upload = bot.slack.add_message(DM, text="treat advertising as revenue", files=[file_obj])
    openai.script(ADVERTISING_AS_REVENUE, text("Done."))
    assert await bot.send_event(dm_event(upload.ts, "treat advertising as revenue", files=[file_obj])) == 200
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, DM)) == 1, timeout=20)
    assert final_markdown(final_answers(bot.slack, DM)[0]) == (
        "Done.\n\n_With your overrides: Advertising counted as revenue._ `/variance reset` (or “reset”) clears them."
    )
    await bot.deps.idle(timeout=10)
    reset = bot.slack.add_message(DM, text="Reset.")
    assert await bot.send_event(dm_event(reset.ts, "Reset.")) == 200
    await bot.slack.wait_for(lambda: any("Cleared" in (m.text or "") for m in bot.slack.bot_messages(DM)))
    stored = bot.deps.store.get(dm_conversation_id(TEAM, DM))
    assert stored is not None and not stored.context.has_overrides
    assert len(openai.requests) == 2  # the reset cost no model call
