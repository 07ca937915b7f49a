"""Settings from the environment, tracing off by default, and `variance-bot ask`."""

from __future__ import annotations

import asyncio
import io
import socket
from pathlib import Path

import pytest
from agents.tracing import get_trace_provider
from agents.tracing.traces import NoOpTrace

from analyst.agent import AgentSettings, SettingsError, start_run
from analyst.agent.cli import ask, cli_main
from analyst.context import AnalysisContext
from analyst.events import Done, Failed, FailureKind
from tests.agent.helpers import collect, terminal, with_
from tests.fakes.openai_server import FakeOpenAI, error, text, tool_call


def test_settings_from_env_defaults() -> None:
    s = AgentSettings.from_env({"HOME": "/home/u"})
    assert s.api_key is None and s.base_url is None
    assert s.model == "gpt-4.1-mini" and s.api == "responses"
    assert s.max_retries == 2 and s.max_turns == 12 and s.history_items == 40 and s.tracing is False
    assert s.data_dir == Path("/home/u/.local/share/variance-analyst")
    assert AgentSettings.from_env({}).data_dir == Path(".data")
    assert s.missing_key_message() is not None and "OPENAI_API_KEY" in (s.missing_key_message() or "")


def test_settings_from_env_values() -> None:
    s = AgentSettings.from_env(
        {
            "OPENAI_API_KEY": "sk-x",
            "OPENAI_BASE_URL": "http://localhost:8000/v1",
            "VARIANCE_MODEL": "qwen2.5",
            "VARIANCE_API": "chat_completions",
            "VARIANCE_MODEL_TIMEOUT": "12.5",
            "VARIANCE_MAX_RETRIES": "0",
            "VARIANCE_DATA_DIR": "/tmp/va",
            "VARIANCE_MAX_TURNS": "3",
            "VARIANCE_HISTORY_ITEMS": "10",
            "VARIANCE_TRACING": "1",
        }
    )
    assert (s.api_key, s.base_url, s.model, s.api) == (
        "sk-x",
        "http://localhost:8000/v1",
        "qwen2.5",
        "chat_completions",
    )
    assert (s.timeout, s.max_retries, s.max_turns, s.history_items, s.tracing) == (12.5, 0, 3, 10, True)
    assert s.data_dir == Path("/tmp/va") and s.missing_key_message() is None
    assert "sk-x" not in repr(s)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("VARIANCE_API", "grpc"),
        ("VARIANCE_MAX_RETRIES", "two"),
        ("VARIANCE_MAX_TURNS", "0"),
        ("VARIANCE_MODEL_TIMEOUT", "-1"),
        ("VARIANCE_TRACING", "maybe"),
    ],
)
def test_bad_settings_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        AgentSettings.from_env({name: value})


async def test_tracing_stays_off_by_default(
    fake: FakeOpenAI, settings: AgentSettings, context: AnalysisContext
) -> None:
    get_trace_provider().set_disabled(False)
    assert settings.tracing is False
    assert isinstance(terminal(await collect(start_run("q", context, conversation_id="", settings=settings))), Done)
    assert isinstance(get_trace_provider().create_trace("probe"), NoOpTrace)


async def test_network_error_is_a_connection_failure(settings: AgentSettings, context: AnalysisContext) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    unreachable = with_(settings, base_url=f"http://127.0.0.1:{port}/v1", max_retries=0)
    failed = terminal(await collect(start_run("q", context, conversation_id="", settings=unreachable)))
    assert isinstance(failed, Failed) and failed.kind is FailureKind.CONNECTION


def test_ask_without_key_says_what_to_set(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert cli_main(["examples/budget_vs_actual.csv", "Why?"]) == 2
    err = capsys.readouterr().err
    assert "OPENAI_API_KEY" in err and "variance-bot report" in err


def test_ask_with_bad_setting_exits_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("VARIANCE_API", "soap")
    assert cli_main(["f.csv", "Why?"]) == 2
    assert "VARIANCE_API" in capsys.readouterr().err


async def test_ask_streams_answer_and_tool_indicators(
    fake: FakeOpenAI, settings: AgentSettings, context: AnalysisContext
) -> None:
    fake.script(
        tool_call("breakdown", {"by": ["Department"], "filters": None, "limit": None}),
        text("Marketing is over budget.", chunk=4, final_text="Marketing is over budget (final)."),
    )
    out, err = io.StringIO(), io.StringIO()
    code = await ask("Why?", context, settings, out=out, err=err)
    assert code == 0
    assert "Computing variance by Department…" in err.getvalue()
    assert out.getvalue().startswith("Marketing is over budget.")
    assert out.getvalue().rstrip().endswith("Marketing is over budget (final).")  # the final text wins
    assert "model call(s)" in err.getvalue()


async def test_ask_reports_failures(fake: FakeOpenAI, settings: AgentSettings, context: AnalysisContext) -> None:
    fake.script(error(401))
    out, err = io.StringIO(), io.StringIO()
    assert await ask("Why?", context, settings, out=out, err=err) == 1
    assert "OPENAI_API_KEY" in err.getvalue() and "Traceback" not in err.getvalue()


async def test_ask_command_end_to_end(
    fake: FakeOpenAI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    ingest = pytest.importorskip("analyst.ingest")
    if not hasattr(ingest, "load_dataset"):
        pytest.skip("analyst.ingest.load_dataset has not landed yet")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
    monkeypatch.setenv("VARIANCE_DATA_DIR", str(tmp_path))
    fake.script(tool_call("variance_summary", {}), text("All good."))
    code = await asyncio.to_thread(cli_main, ["examples/budget_vs_actual.csv", "How are we doing?"])
    captured = capfd.readouterr()
    assert code == 0, captured.err
    assert "All good." in captured.out and "Computing the variance summary…" in captured.err
