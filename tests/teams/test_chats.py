"""Group chats get one ordinary message about the user's newest 1:1 file; 429s are waited out as Teams says;
streaming is paced under Teams' per-conversation limits; bad files get a readable answer."""

from __future__ import annotations

from dataclasses import replace

from bot.files import WorkerPool
from bot.teams.handlers import NO_FILE_FOR_GROUP
from bot.teams.settings import TeamsSettings
from tests.fakes.openai_server import FakeOpenAI, text, tool_call
from tests.fakes.teams_server import FakeTeams
from tests.teams.helpers import RunningBot, start_bot

GROUP = "19:group-chat-1@thread.v2"


def _finals(teams: FakeTeams, conversation: str) -> list:  # type: ignore[type-arg]
    return [c for c in teams.calls_to(conversation) if c.kind == "final"]


async def _send_file(teams: FakeTeams, bot: RunningBot, content: bytes, *, user: str = "user-1") -> None:
    url = teams.host_file("budget_vs_actual.csv", content, "text/csv")
    conversation = f"a:personal-{user}"
    await teams.deliver(
        bot.url, teams.message("", conversation=conversation, user=user, files=[("budget_vs_actual.csv", url)])
    )
    await teams.wait_for(lambda t: len(_finals(t, conversation)) == 1)
    await bot.deps.idle(timeout=20)


async def test_group_mention_posts_one_message_about_the_users_newest_file(
    teams: FakeTeams, model: FakeOpenAI, bot: RunningBot, example_csv: bytes
) -> None:
    await _send_file(teams, bot, example_csv)
    model.script(
        tool_call("variance_summary", {}),
        text("Marketing is over by 193,449.71 on Events. Ask <at>CFO</at> at https://evil.example.com", chunk=5),
    )
    mention = teams.message("why is marketing over budget?", conversation=GROUP, kind="groupChat", mention_bot=True)
    assert await teams.deliver(bot.url, mention) == 200
    await teams.wait_for(lambda t: len(t.calls_to(GROUP)) == 1)
    await bot.deps.idle(timeout=20)

    (posted,) = teams.calls_to(GROUP)
    assert posted.body["type"] == "message"
    assert posted.stream_info == {}
    assert "Marketing is over by 193,449.71 on Events." in posted.text
    assert "<at>" not in posted.text and "https://evil" not in posted.text
    question = model.requests[0].json["input"]
    assert "why is marketing over budget?" in str(question) and "<at>" not in str(question)


async def test_group_mention_without_a_file_says_where_to_send_one(
    teams: FakeTeams, model: FakeOpenAI, bot: RunningBot
) -> None:
    mention = teams.message("why?", conversation=GROUP, kind="groupChat", user="user-9", mention_bot=True)
    assert await teams.deliver(bot.url, mention) == 200
    await teams.wait_for(lambda t: len(t.calls_to(GROUP)) == 1)
    await bot.deps.idle(timeout=10)
    assert teams.calls_to(GROUP)[0].text.replace("\u200b", "") == NO_FILE_FOR_GROUP
    assert len(teams.calls_to(GROUP)) == 1
    assert model.requests == []


async def test_429_is_waited_out_for_its_retry_after_and_the_answer_arrives_once(
    teams: FakeTeams, model: FakeOpenAI, bot: RunningBot, example_csv: bytes
) -> None:
    model.script(text("Revenue is ahead of budget by 436,166.89.", chunk=6, delay=0.01))
    teams.force_429("a:personal-1", times=2, retry_after=0.8)
    url = teams.host_file("budget_vs_actual.csv", example_csv, "text/csv")
    await teams.deliver(bot.url, teams.message("how is revenue?", files=[("budget_vs_actual.csv", url)]))
    await teams.wait_for(lambda t: len(_finals(t, "a:personal-1")) == 1)
    await bot.deps.idle(timeout=20)

    every = teams.calls_to("a:personal-1", accepted_only=False)
    refused = [c for c in every if c.status == 429]
    assert len(refused) == 2
    assert teams.ignored_retry_after == 0
    for call in refused:
        after = [c for c in every if c.at > call.at]
        assert after and after[0].at - call.at >= 0.8
    finals = _finals(teams, "a:personal-1")
    assert len(finals) == 1
    assert finals[0].text == "Revenue is ahead of budget by 436,166.89."


async def test_429_without_retry_after_backs_off(
    teams: FakeTeams, model: FakeOpenAI, bot: RunningBot, example_csv: bytes
) -> None:
    model.script(text("Short answer.", chunk=6))
    teams.force_429("a:personal-1", times=1, retry_after=None)
    url = teams.host_file("budget_vs_actual.csv", example_csv, "text/csv")
    await teams.deliver(bot.url, teams.message("how is revenue?", files=[("budget_vs_actual.csv", url)]))
    await teams.wait_for(lambda t: len(_finals(t, "a:personal-1")) == 1)
    assert teams.ignored_retry_after == 0
    assert _finals(teams, "a:personal-1")[0].text == "Short answer."


async def test_a_fast_stream_is_paced_under_the_per_conversation_limits(
    teams: FakeTeams, model: FakeOpenAI, settings: TeamsSettings, workers: WorkerPool, example_csv: bytes
) -> None:
    # No chunk interval of our own: only the pacer stands between 50 deltas a second and Teams' 7 calls a second.
    running, runner = await start_bot(replace(settings, chunk_interval_s=0.0), workers)
    try:
        answer = " ".join(f"Line {n} explains part of the variance." for n in range(40))
        model.script(text(answer, chunk=8, delay=0.02))
        url = teams.host_file("budget_vs_actual.csv", example_csv, "text/csv")
        await teams.deliver(running.url, teams.message("explain", files=[("budget_vs_actual.csv", url)]))
        await teams.wait_for(lambda t: len(_finals(t, "a:personal-1")) == 1, timeout=60)
        await running.deps.idle(timeout=30)
    finally:
        await runner.cleanup()
    calls = teams.calls_to("a:personal-1")
    assert len(calls) > 8  # more than one window's worth: the limits were exercised
    assert teams.throttled == 0
    assert _finals(teams, "a:personal-1")[0].text == answer


async def test_bad_files_get_a_readable_answer_and_the_bot_stays_up(
    teams: FakeTeams, model: FakeOpenAI, bot: RunningBot, example_csv: bytes
) -> None:
    cases = {
        "a:bad-1": ("report.pdf", teams.host_file("report.pdf", b"%PDF-1.7 ...", "application/pdf")),
        "a:bad-2": ("junk.csv", teams.host_file("junk.csv", bytes(range(256)) * 64, "text/csv")),
        "a:bad-3": ("page.csv", teams.host_file("page.csv", b"<!DOCTYPE html><html>sign in</html>", "text/html")),
        "a:bad-4": ("gone.csv", "https://127.0.0.1:%d/download/missing?name=gone.csv" % teams.file_port),
        "a:bad-5": ("book.xlsx", teams.host_file("book.xlsx", b"not a zip at all", "application/octet-stream")),
        "a:bad-6": ("plain.csv", "http://127.0.0.1:%d/download/x" % teams.port),
    }
    for conversation, (name, url) in cases.items():
        user = f"user-{conversation}"  # one user each: the per-user limit on running answers is not under test
        await teams.deliver(bot.url, teams.message("why?", conversation=conversation, user=user, files=[(name, url)]))
    await teams.wait_for(lambda t: all(t.calls_to(c) and t.calls_to(c)[-1].kind in {"final", "message"} for c in cases))
    await bot.deps.idle(timeout=20)
    replies = {c: teams.calls_to(c)[-1].text.replace("\u200b", "") for c in cases}
    assert "only read CSV and Excel" in replies["a:bad-1"]
    assert "not text" in replies["a:bad-2"]
    assert "web page instead of page.csv" in replies["a:bad-3"]
    assert "couldn't download gone.csv" in replies["a:bad-4"] and "HTTP 404" in replies["a:bad-4"]
    assert "not a valid Excel .xlsx file" in replies["a:bad-5"]
    assert "not HTTPS" in replies["a:bad-6"]
    assert all("Traceback" not in r for r in replies.values())
    assert model.requests == []
    # still answering
    model.script(text("Fine now.", chunk=4))
    url = teams.host_file("budget_vs_actual.csv", example_csv, "text/csv")
    await teams.deliver(
        bot.url,
        teams.message("and now?", conversation="a:bad-2", user="user-a:bad-2", files=[("budget_vs_actual.csv", url)]),
    )
    await teams.wait_for(lambda t: len(_finals(t, "a:bad-2")) == 2)
    assert _finals(teams, "a:bad-2")[-1].text == "Fine now."
