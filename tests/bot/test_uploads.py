"""Uploads end to end against the fake Slack (files.getUploadURLExternal → bytes → files.completeUploadExternal):
the bridge chart after a dropped file's report, the agent's make_chart, and the month-end pack."""

from __future__ import annotations

import io
import json

from openpyxl import load_workbook

from tests.bot.bot_under_test import BotUnderTest
from tests.bot.helpers import (
    CHANNEL,
    DM,
    SMALL_CSV,
    answers_in,
    dm_event,
    example_bytes,
    expected_report,
    final_answers,
    final_markdown,
    last_user_text,
    mention_event,
)
from tests.fakes.openai_server import FakeOpenAI, text, tool_call


async def _drop_file(bot: BotUnderTest, content: bytes, name: str) -> str:
    file_obj = bot.slack.add_file(content, name=name)
    upload = bot.slack.add_message(DM, files=[file_obj])
    assert await bot.send_event(dm_event(upload.ts, "", files=[file_obj])) == 200
    return upload.ts


async def test_a_file_dropped_alone_gets_its_report_and_then_the_bridge_chart(
    bot: BotUnderTest, openai: FakeOpenAI
) -> None:
    await _drop_file(bot, example_bytes(), "budget_vs_actual.csv")
    await bot.slack.wait_for(lambda: len(bot.slack.uploads) == 1, timeout=20)  # within 20 s of the upload
    (chart,) = bot.slack.uploads
    assert chart.content is not None and chart.content.startswith(b"\x89PNG")
    assert (chart.channel, chart.thread_ts) == (DM, None)  # beside the report, at the top level of the DM
    assert chart.filename == "budget_vs_actual-bridge.png"
    assert chart.title == "Profit: budget to actual, 2025-01 – 2025-09"
    (report,) = final_answers(bot.slack, DM)
    assert final_markdown(report) == expected_report(example_bytes(), "budget_vs_actual.csv")
    # The report was shown first; the upload took the two Tier 4 calls after it.
    methods = [c.method for c in bot.slack.calls if c.method.startswith(("chat.", "files."))]
    assert methods.index("files.getUploadURLExternal") > methods.index("chat.update")
    assert methods[-1] == "files.completeUploadExternal"
    assert openai.requests == []


async def test_a_rate_limited_upload_waits_and_goes_through(bot: BotUnderTest) -> None:
    bot.slack.inject("files.getUploadURLExternal", error="ratelimited", retry_after=1)
    await _drop_file(bot, SMALL_CSV, "q3.csv")
    await bot.slack.wait_for(lambda: len(bot.slack.uploads) == 1, timeout=20)
    tries = bot.slack.calls_of("files.getUploadURLExternal")
    assert [c.error for c in tries] == ["ratelimited", None]
    assert tries[1].time - tries[0].time >= 0.9  # Retry-After was honoured
    assert len(final_answers(bot.slack, DM)) == 1


async def test_make_chart_is_uploaded_into_the_answer_thread(bot: BotUnderTest, openai: FakeOpenAI) -> None:
    file_obj = bot.slack.add_file(example_bytes(), name="budget_vs_actual.csv")
    mention = bot.slack.add_message(CHANNEL, text="<@UBOT> chart marketing by department", files=[file_obj])
    openai.script(
        tool_call("make_chart", {"kind": "bars", "dimension": "Department"}),
        text("The bars chart below shows each department against budget.", chunk=5),
    )
    event = mention_event(CHANNEL, mention.ts, "<@UBOT> chart by department", files=[file_obj])
    assert await bot.send_event(event) == 200
    await bot.slack.wait_for(lambda: len(bot.slack.uploads) == 1, timeout=20)
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, CHANNEL)) == 1, timeout=20)
    (chart,) = bot.slack.uploads
    (answer,) = answers_in(bot.slack, CHANNEL)
    assert chart.channel == CHANNEL and chart.thread_ts == mention.ts == answer.thread_ts
    assert chart.title == "Budget vs actual by Department, 2025-01 – 2025-09"
    assert final_markdown(answer) == "The bars chart below shows each department against budget."
    # What the model got back describes the chart; it carries no picture and no instruction to draw numbers.
    output = next(
        item["output"]
        for item in openai.requests[1].json["input"]
        if isinstance(item, dict) and item.get("type") == "function_call_output"
    )
    assert json.loads(output)["chart"] == chart.title


async def test_make_chart_with_a_bad_column_tells_the_model_and_uploads_nothing(
    bot: BotUnderTest, openai: FakeOpenAI
) -> None:
    file_obj = bot.slack.add_file(SMALL_CSV, name="q3.csv")
    mention = bot.slack.add_message(CHANNEL, text="<@UBOT> chart", files=[file_obj])
    openai.script(tool_call("make_chart", {"kind": "bars", "dimension": "Region"}), text("No Region column."))
    assert await bot.send_event(mention_event(CHANNEL, mention.ts, "<@UBOT> chart", files=[file_obj])) == 200
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, CHANNEL)) == 1, timeout=20)
    await bot.deps.idle(timeout=10)
    output = next(
        item["output"]
        for item in openai.requests[1].json["input"]
        if isinstance(item, dict) and item.get("type") == "function_call_output"
    )
    assert "Unknown column 'Region'" in output
    assert bot.slack.uploads == []


async def test_variance_pack_uploads_the_xlsx_with_progress_in_the_message(
    bot: BotUnderTest, openai: FakeOpenAI
) -> None:
    file_obj = bot.slack.add_file(example_bytes(), name="budget_vs_actual.csv")
    mention = bot.slack.add_message(CHANNEL, text="<@UBOT>", files=[file_obj])
    assert await bot.send_event(mention_event(CHANNEL, mention.ts, "<@UBOT>", files=[file_obj])) == 200
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, CHANNEL)) == 1, timeout=20)
    # Nine material lines: two batches (8 + 1). The model's drafts cite the engine's numbers.
    openai.responder = lambda request: text(_drafts(request.json))
    status, _ = await bot.send_command("pack")
    assert status == 200
    await bot.slack.wait_for(lambda: any(u.filename.endswith(".xlsx") for u in bot.slack.uploads), timeout=30)
    await bot.slack.wait_for(lambda: len(final_answers(bot.slack, CHANNEL)) == 2, timeout=20)
    message = final_answers(bot.slack, CHANNEL)[-1]
    seen = [state.visible for state in message.history]
    assert any("Drafting commentary: 8 of 9 lines" in s or "Drafting commentary: 1 of 9 lines" in s for s in seen)
    assert "Month-end pack" in (final_markdown(message) or "") and "attached in this thread" in final_markdown(message)
    (pack,) = [u for u in bot.slack.uploads if u.filename.endswith(".xlsx")]
    assert (pack.channel, pack.thread_ts) == (CHANNEL, message.ts)
    book = load_workbook(io.BytesIO(pack.content or b""))
    rows = list(book["Variance"].iter_rows(values_only=True))
    assert len(rows) == 10
    assert rows[1][:2] == ("Sales", "Professional Services Revenue") and rows[1][5] == -311257.99
    assert rows[1][8] == "Professional Services Revenue is 311,257.99 below budget (13.84%)."


def _drafts(request_json: dict) -> str:
    prompt = last_user_text(request_json)
    facts = json.loads(prompt[prompt.index('{"reference"') :])
    lines = []
    for line in facts["lines"]:
        name = line["line"].split(" / ")[-1]
        direction = "below" if line["variance"] < 0 else "above"
        lines.append(
            {
                "id": line["id"],
                "commentary": f"{name} is {abs(line['variance']):,.2f} {direction} budget ({abs(line['variance_pct']):.2f}%).",
            }
        )
    return json.dumps({"lines": lines})
