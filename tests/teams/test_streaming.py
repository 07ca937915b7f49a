"""1:1 chats: a file and a question stream the answer in Teams' streaming shape; a file alone gets the report card;
follow-ups remember the conversation; redeliveries are answered once."""

from __future__ import annotations

import base64
import json

from tests.fakes.openai_server import FakeOpenAI, text, tool_call
from tests.fakes.teams_server import MAX_ACTIVITY_BYTES, FakeTeams
from tests.teams.helpers import RunningBot

ANSWER = (
    "Marketing is over budget mainly because of **Events & Conferences** (+193,449.71, +47.8%). "
    "Travel & Entertainment adds +26,938.18. Everything else in Marketing is close to plan."
)


def _finals(teams: FakeTeams, conversation: str) -> list:  # type: ignore[type-arg]
    return [c for c in teams.calls_to(conversation) if c.kind == "final"]


async def test_file_and_question_stream_informative_chunks_then_one_final(
    teams: FakeTeams, model: FakeOpenAI, bot: RunningBot, example_csv: bytes
) -> None:
    model.script(tool_call("variance_summary", {}), text(ANSWER, chunk=4, delay=0.01))
    url = teams.host_file("budget_vs_actual.csv", example_csv, "text/csv")
    activity = teams.message("why is marketing over budget?", files=[("budget_vs_actual.csv", url)])

    assert await teams.deliver(bot.url, activity) == 200
    await teams.wait_for(lambda t: len(_finals(t, "a:personal-1")) == 1)
    await bot.deps.idle(timeout=20)

    calls = teams.calls_to("a:personal-1")
    kinds = [c.kind for c in calls]
    assert kinds[0] == "informative"
    assert kinds[-1] == "final" and kinds.count("final") == 1
    assert "streaming" in kinds
    # informative updates only before the text; then streaming chunks; then the final message
    first_text = kinds.index("streaming")
    assert set(kinds[first_text:-1]) == {"streaming"}
    stream_id = calls[0].returned_id
    sequences = [c.stream_info["streamSequence"] for c in calls[:-1]]
    assert sequences == list(range(1, len(calls)))
    assert all(c.stream_info.get("streamId") == stream_id for c in calls[1:])
    assert all(c.body["type"] == "typing" for c in calls[:-1])
    # each chunk holds the whole text so far
    texts = [c.text for c in calls[first_text:-1]]
    assert all(later.startswith(earlier) for earlier, later in zip(texts, texts[1:], strict=False))
    final = calls[-1]
    assert final.body["type"] == "message"
    assert final.body["id"] == stream_id
    assert final.text.replace("\u200b", "") == ANSWER
    assert final.body["channelData"]["streamType"] == "final"
    # the file was fetched with a plain GET: no token travels to the file host
    assert teams.file_requests == [{"authorization": None}]
    assert teams.throttled == 0


async def test_file_alone_gets_the_report_as_an_adaptive_card(
    teams: FakeTeams, model: FakeOpenAI, bot: RunningBot, example_csv: bytes
) -> None:
    url = teams.host_file("budget_vs_actual.csv", example_csv, "text/csv")
    assert await teams.deliver(bot.url, teams.message("", files=[("budget_vs_actual.csv", url)])) == 200
    await teams.wait_for(lambda t: len(_finals(t, "a:personal-1")) == 1)
    final = _finals(teams, "a:personal-1")[0]
    (card,) = final.body["attachments"]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    facts = {f["title"]: f["value"] for f in card["content"]["body"][1]["facts"]}
    assert facts["Actual"] == "49,733,395.15"
    assert facts["Budget"] == "49,109,900.00"
    assert facts["Variance"] == "+623,495.15 (+1.3%)"
    assert "budget_vs_actual" in final.text
    assert model.requests == []  # the report needs no model call

    # Then the bridge chart, as its own message: an inline PNG (a data URI) under Teams' activity size limit.
    await bot.deps.idle(timeout=20)
    chart = teams.calls_to("a:personal-1")[-1]
    assert chart.kind == "message" and chart.at > final.at
    assert chart.text.startswith("Profit: budget to actual")
    (image,) = chart.body["attachments"]
    assert image["contentType"] == "image/png"
    assert image["name"] == "budget_vs_actual-bridge.png"
    prefix = "data:image/png;base64,"
    assert image["contentUrl"].startswith(prefix)
    png = base64.b64decode(image["contentUrl"][len(prefix) :])
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(json.dumps(chart.body).encode()) < MAX_ACTIVITY_BYTES
    assert [c.status for c in teams.calls_to("a:personal-1", accepted_only=False)].count(413) == 0


async def test_follow_up_continues_the_conversation(
    teams: FakeTeams, model: FakeOpenAI, bot: RunningBot, example_csv: bytes
) -> None:
    model.script(text("Events & Conferences is the driver.", chunk=8), text("Yes: +47.8% over budget.", chunk=8))
    url = teams.host_file("budget_vs_actual.csv", example_csv, "text/csv")
    await teams.deliver(bot.url, teams.message("what drives marketing?", files=[("budget_vs_actual.csv", url)]))
    await teams.wait_for(lambda t: len(_finals(t, "a:personal-1")) == 1)
    await bot.deps.idle(timeout=20)
    await teams.deliver(bot.url, teams.message("is that material?"))
    await teams.wait_for(lambda t: len(_finals(t, "a:personal-1")) == 2)

    second = model.requests[1].json["input"]
    said = [item for item in second if isinstance(item, dict) and item.get("role") == "user"]
    contents = [str(item.get("content")) for item in said]
    assert any("what drives marketing?" in c for c in contents)
    assert any("is that material?" in c for c in contents)
    assert "Events & Conferences is the driver." in str(second)
    assert len(teams.file_requests) == 1  # the follow-up used the kept dataset


async def test_a_redelivered_activity_is_answered_once(
    teams: FakeTeams, model: FakeOpenAI, bot: RunningBot, example_csv: bytes
) -> None:
    model.script(text("One answer.", chunk=4, delay=0.02))
    url = teams.host_file("budget_vs_actual.csv", example_csv, "text/csv")
    activity = teams.message("why?", files=[("budget_vs_actual.csv", url)], activity_id="1700000000001")
    assert await teams.deliver(bot.url, activity) == 200
    assert await teams.deliver(bot.url, activity) == 200
    await teams.wait_for(lambda t: len(_finals(t, "a:personal-1")) == 1)
    await bot.deps.idle(timeout=20)
    assert len(_finals(teams, "a:personal-1")) == 1
    assert len(model.requests) == 1
    assert len(teams.file_requests) == 1
