"""The agent's tools over the real engine: compact outputs, errors as messages, work off the event loop."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from agents import FunctionTool
from agents.tool_context import ToolContext

from analyst.agent import AgentSettings, start_run
from analyst.agent.outputs import MAX_OUTPUT_CHARS
from analyst.agent.tool_names import (
    BREAKDOWN,
    DESCRIBE_DATASET,
    LINE_DETAIL,
    PERIOD_TREND,
    PRICE_VOLUME_MIX,
    SET_ACCOUNT_TYPE,
    SET_COLUMN_ROLES,
    TOOL_NAMES,
    TOP_DRIVERS,
    VARIANCE_SUMMARY,
    tool_label,
)
from analyst.agent.tools import ANALYST_TOOLS
from analyst.context import AnalysisContext
from analyst.events import Done, ToolFinished, ToolStarted
from tests.agent.helpers import collect, make_dataset, terminal
from tests.fakes.openai_server import FakeOpenAI, text, tool_calls

TOKEN_BUDGET = 2_500  # per tool output, estimated as characters / 4

TOOLS: dict[str, FunctionTool] = {t.name: t for t in ANALYST_TOOLS}

# One call of every read-only tool, with arguments a model would send.
CALLS: list[tuple[str, dict[str, Any]]] = [
    (DESCRIBE_DATASET, {}),
    (VARIANCE_SUMMARY, {}),
    (BREAKDOWN, {"by": ["Department", "Account"], "filters": None, "limit": None}),
    (
        BREAKDOWN,
        {"by": ["Account"], "filters": [{"column": "Department", "values": ["Sales"]}], "limit": 5},
    ),
    (TOP_DRIVERS, {"by": None, "n": 10, "filters": None}),
    (LINE_DETAIL, {"filters": [{"column": "Account", "value": "Travel"}]}),
    (PERIOD_TREND, {"filters": None}),
    (PRICE_VOLUME_MIX, {"by": None, "filters": None}),
]


@pytest.fixture(scope="module")
def million_rows() -> AnalysisContext:
    return AnalysisContext(dataset=make_dataset(1_000_000, quantities=True))


async def invoke(tool_name: str, context: AnalysisContext, arguments: dict[str, Any]) -> str:
    tool = TOOLS[tool_name]
    raw = json.dumps(arguments)
    ctx = ToolContext(context, tool_name=tool_name, tool_call_id="call_1", tool_arguments=raw)
    output = await tool.on_invoke_tool(ctx, raw)
    assert isinstance(output, str)
    return output


async def test_every_tool_output_stays_under_the_token_budget_on_a_million_rows(
    million_rows: AnalysisContext,
) -> None:
    small = AnalysisContext(dataset=make_dataset(100, quantities=True))
    for name, arguments in CALLS:
        big_out = await invoke(name, million_rows, arguments)
        small_out = await invoke(name, small, arguments)
        assert '"error"' not in big_out[:10], (name, big_out)
        assert len(big_out) / 4 <= TOKEN_BUDGET, (name, len(big_out))
        assert len(big_out) <= MAX_OUTPUT_CHARS
        # The size does not grow with the file: only the digits of the amounts differ.
        assert len(big_out) <= 1.5 * len(small_out) + 200, (name, len(big_out), len(small_out))


async def test_capped_tables_still_reconcile(million_rows: AnalysisContext) -> None:
    out = json.loads(await invoke(BREAKDOWN, million_rows, {"by": ["Department", "Account"]}))
    assert out["groups"] == 96 and len(out["rows"]) == 21
    assert out["rows"][-1]["Department"] == "76 more"
    total = round(sum(r["variance"] for r in out["rows"]), 2)
    assert total == pytest.approx(out["total"]["variance"], abs=0.05)


async def test_unknown_column_is_a_message_the_model_can_use(context: AnalysisContext) -> None:
    out = json.loads(await invoke(BREAKDOWN, context, {"by": ["Dept"]}))
    assert "Dept" in out["error"] and "Department" in out["error"]
    out = json.loads(await invoke(LINE_DETAIL, context, {"filters": [{"column": "Account", "value": "Nope"}]}))
    assert "Nope" in out["error"] and "Travel" in out["error"]


async def test_tools_compute_off_the_event_loop(million_rows: AnalysisContext) -> None:
    ticks = 0
    stop = asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    await asyncio.sleep(0)
    before = ticks
    await invoke(PERIOD_TREND, million_rows, {"filters": [{"column": "Department", "values": ["HR", "Legal"]}]})
    during = ticks - before
    stop.set()
    await task
    assert during > 0  # the loop kept running while pandas worked in a thread


async def test_set_account_type_changes_favourability_for_the_conversation(context: AnalysisContext) -> None:
    before = json.loads(await invoke(LINE_DETAIL, context, {"filters": [{"column": "Account", "value": "Travel"}]}))
    assert before["account_type"] == "expense"
    out = json.loads(
        await invoke(SET_ACCOUNT_TYPE, context, {"assignments": [{"label": "travel", "type": "revenue"}]})
    )
    assert out["ok"] is True and context.options.account_types
    after = json.loads(await invoke(LINE_DETAIL, context, {"filters": [{"column": "Account", "value": "Travel"}]}))
    assert after["account_type"] == "revenue"
    if before["favourable"] is not None:
        assert after["favourable"] is (not before["favourable"])
    bad = json.loads(await invoke(SET_ACCOUNT_TYPE, context, {"assignments": [{"label": "Nope", "type": "expense"}]}))
    assert "Nope" in bad["error"]


async def test_set_column_roles_reports_bad_columns_as_a_message(context: AnalysisContext) -> None:
    out = json.loads(await invoke(SET_COLUMN_ROLES, context, {}))
    assert "at least one" in out["error"]


def test_labels_say_what_is_being_computed() -> None:
    assert tool_label(BREAKDOWN, '{"by": ["Department"]}') == "Computing variance by Department…"
    assert (
        tool_label(BREAKDOWN, '{"by": ["Account"], "filters": [{"column": "Department", "values": ["Sales"]}]}')
        == "Computing variance by Account for Sales…"
    )
    assert tool_label(TOP_DRIVERS, "not json") == "Finding the top drivers…"
    assert tool_label("unknown_tool", "{}") == "Running unknown_tool…"
    for tool in ANALYST_TOOLS:
        assert tool_label(tool.name, "{}") != f"Running {tool.name}…"


def test_the_tool_list_offers_each_named_tool_once() -> None:
    assert tuple(tool.name for tool in ANALYST_TOOLS) == TOOL_NAMES
    assert len(set(TOOL_NAMES)) == len(TOOL_NAMES) == 10


async def test_agent_uses_the_engine_tools_end_to_end(
    fake: FakeOpenAI, settings: AgentSettings, context: AnalysisContext
) -> None:
    fake.script(
        tool_calls((VARIANCE_SUMMARY, {}), (BREAKDOWN, {"by": ["Dept"], "filters": None, "limit": None})),
        text("Spending is close to budget."),
    )
    events = await collect(start_run("How are we doing?", context, conversation_id="t", settings=settings))
    assert isinstance(terminal(events), Done)
    started = [e for e in events if isinstance(e, ToolStarted)]
    assert [e.label for e in started] == ["Computing the variance summary…", "Computing variance by Dept…"]
    finished = {e.name: e.ok for e in events if isinstance(e, ToolFinished)}
    assert finished == {VARIANCE_SUMMARY: True, BREAKDOWN: False}
    outputs = [i["output"] for i in fake.requests[1].json["input"] if i.get("type") == "function_call_output"]
    assert json.loads(outputs[0])["totals"]["actual"] > 0
    assert "Unknown column 'Dept'" in json.loads(outputs[1])["error"]


async def test_tool_errors_are_logged_without_file_contents(
    context: AnalysisContext, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO", logger="analyst.agent.tools")
    await invoke(LINE_DETAIL, context, {"filters": [{"column": "Account", "value": "Secret project X"}]})
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert LINE_DETAIL in logged and "AnalysisError" in logged
    assert "Secret project X" not in logged and "Travel" not in logged


async def test_set_column_roles_on_an_ingested_file() -> None:
    from analyst.ingest import load_dataset

    context = AnalysisContext(dataset=load_dataset("examples/budget_vs_actual.csv"))
    before = json.loads(await invoke(VARIANCE_SUMMARY, context, {}))
    out = json.loads(await invoke(SET_COLUMN_ROLES, context, {"actual": "Budget", "reference": "Actual"}))
    assert out["ok"] is True and out["roles"]["actual"] == "Budget" and out["roles"]["reference"] == "Actual"
    after = json.loads(await invoke(VARIANCE_SUMMARY, context, {}))
    assert after["totals"]["variance"] == pytest.approx(-before["totals"]["variance"])
    bad = json.loads(await invoke(SET_COLUMN_ROLES, context, {"actual": "Nope"}))
    assert "error" in bad and "Nope" in bad["error"]


async def test_an_unexpected_failure_is_a_short_message(context: AnalysisContext) -> None:
    broken = AnalysisContext(dataset=make_dataset(50))
    broken.dataset.frame["actual"] = "n/a"  # not numbers: something ingestion would never hand over
    out = json.loads(await invoke(VARIANCE_SUMMARY, broken, {}))
    assert out["error"].startswith("The calculation failed") and len(out["error"]) < 200


def test_labels_list_filter_values_briefly() -> None:
    arguments = json.dumps(
        {"by": ["Department", "Account"], "filters": [{"column": "Month", "values": ["Jul", "Aug", "Sep", "Oct"]}]}
    )
    assert tool_label(BREAKDOWN, arguments) == "Computing variance by Department and Account for Jul, Aug, Sep (+1)…"


def test_instructions_do_not_grow_with_the_file(million_rows: AnalysisContext, context: AnalysisContext) -> None:
    from analyst.agent.instructions import dataset_header

    big, small = dataset_header(million_rows), dataset_header(context)
    assert "1,000,000 lines" in big and "100 lines" in small
    assert abs(len(big) - len(small)) < 80


async def test_top_drivers_counts_the_unclassified_groups_it_does_not_list() -> None:
    from analyst.ingest import load_dataset

    # Labels with no recognisable account type: favourability unknown, so they are listed apart.
    lines = "".join(f"Widget {i},{1000 + i},{1100 + 7 * i}\n" for i in range(14))
    dataset = load_dataset(("Item,Budget,Actual\n" + lines).encode(), filename="widgets.csv")
    context = AnalysisContext(dataset=dataset)
    out = json.loads(await invoke(TOP_DRIVERS, context, {"by": None, "n": 5, "filters": None}))
    assert len(out["unclassified"]) == 5
    assert out["unclassified_more"] == 9
    everything = json.loads(await invoke(TOP_DRIVERS, context, {"by": None, "n": 10, "filters": None}))
    assert len(everything["unclassified"]) == 10 and everything["unclassified_more"] == 4


async def test_summary_and_trend_lead_with_the_effect_on_profit() -> None:
    from analyst.ingest import load_dataset

    text = (
        "Month,Account,Actual,Budget\n"
        "2025-01,Product revenue,104742,100000\n2025-01,Salaries,54890,50000\n"
        "2025-02,Product revenue,100000,100000\n2025-02,Salaries,49000,50000\n"
    )
    context = AnalysisContext(dataset=load_dataset(text.encode(), filename="mixed.csv"))
    out = json.loads(await invoke(VARIANCE_SUMMARY, context, {}))
    assert next(iter(out)) == "headline"  # the first thing the model reads
    # January: revenue +4,742, costs +4,890 → −148; February: costs −1,000 → +1,000; together +852.
    assert out["headline"]["measure"] == "effect_on_profit" and out["headline"]["value"] == 852.0
    assert out["totals"]["variance"] == 8_632.0 and "not the variance" in out["headline_rule"]
    trend = json.loads(await invoke(PERIOD_TREND, context, {"filters": None}))
    assert [(p["period"], p["effect_on_profit"]) for p in trend["effect_on_profit_by_period"]] == [
        ("2025-01", -148.0),
        ("2025-02", 1_000.0),
    ]


async def test_summary_and_drivers_compare_the_periods_with_actuals() -> None:
    from analyst.ingest import load_dataset

    # A full-year budget of 1,000 a month for Rent; actuals of 1,100 for January to March only.
    text = "Month,Account,Budget,Actual\n" + "".join(
        f"2025-{m:02d},Rent,1000,{'1100' if m <= 3 else ''}\n" for m in range(1, 13)
    )
    context = AnalysisContext(dataset=load_dataset(text.encode(), filename="fy2025.csv"))
    out = json.loads(await invoke(VARIANCE_SUMMARY, context, {}))
    # To date: 3,300 vs 3,000 = +300 (+10 %), over budget; not 3,300 vs 12,000.
    lead = out["headline"]
    assert (lead["value"], lead["value_pct"], lead["favourable"]) == (300.0, 10.0, False)
    assert lead["scope"]["compared"] == ["2025-01", "2025-02", "2025-03"] and len(lead["scope"]["budget_only"]) == 9
    assert out["totals"]["reference"] == 3000.0
    drivers = json.loads(await invoke(TOP_DRIVERS, context, {"by": None, "n": 5, "filters": None}))
    assert [r["variance"] for r in drivers["unfavourable"]] == [300.0] and drivers["favourable"] == []


def _rent_and_ads_to_march() -> AnalysisContext:
    from analyst.ingest import load_dataset

    # A full-year budget (Rent 1,000 and Advertising 500 a month); actuals for January to March only.
    text = "Month,Account,Budget,Actual\n" + "".join(
        f"2025-{m:02d},Rent,1000,{'1100' if m <= 3 else ''}\n2025-{m:02d},Advertising,500,{'400' if m <= 3 else ''}\n"
        for m in range(1, 13)
    )
    return AnalysisContext(dataset=load_dataset(text.encode(), filename="fy2025.csv"))


async def test_breakdown_compares_the_periods_with_actuals_and_says_so() -> None:
    context = _rent_and_ads_to_march()
    out = json.loads(await invoke(BREAKDOWN, context, {"by": ["Account"]}))
    # To date: Rent 3 × 1,100 = 3,300 vs 3 × 1,000 = 3,000 (+300);
    # Advertising 3 × 400 = 1,200 vs 3 × 500 = 1,500 (−300).
    rows = {r["Account"]: (r["actual"], r["reference"], r["variance"]) for r in out["rows"]}
    assert rows == {"Rent": (3_300.0, 3_000.0, 300.0), "Advertising": (1_200.0, 1_500.0, -300.0)}
    assert (out["total"]["actual"], out["total"]["reference"]) == (4_500.0, 4_500.0)
    scope = out["scope"]
    assert scope["to_date"] is True and scope["compared"] == ["2025-01", "2025-02", "2025-03"]
    assert scope["budget_only"] == [f"2025-{m:02d}" for m in range(4, 13)]
    assert '{"column": "period", "values": ["2025"]}' in scope["full_year"]
    # Asking for the full year as the output says: every month's budget, the budget-only months included.
    year = [{"column": "period", "values": ["2025"]}]
    full = json.loads(await invoke(BREAKDOWN, context, {"by": ["Account"], "filters": year}))
    rows = {r["Account"]: (r["actual"], r["reference"], r["variance"]) for r in full["rows"]}
    assert rows == {"Rent": (3_300.0, 12_000.0, -8_700.0), "Advertising": (1_200.0, 6_000.0, -4_800.0)}
    assert full["scope"] == {"to_date": False, "periods": "as filtered"}


async def test_drivers_detail_and_trend_state_their_periods() -> None:
    context = _rent_and_ads_to_march()
    drivers = json.loads(await invoke(TOP_DRIVERS, context, {"by": ["Account"], "n": 5}))
    assert [(r["Account"], r["variance"]) for r in drivers["unfavourable"]] == [("Rent", 300.0)]
    assert [(r["Account"], r["variance"]) for r in drivers["favourable"]] == [("Advertising", -300.0)]
    assert drivers["scope"]["to_date"] is True and drivers["scope"]["compared"][-1] == "2025-03"
    detail = json.loads(await invoke(LINE_DETAIL, context, {"filters": [{"column": "Account", "value": "Rent"}]}))
    assert (detail["total"]["actual"], detail["total"]["reference"]) == (3_300.0, 3_000.0)
    assert detail["scope"]["to_date"] is True
    march = json.loads(
        await invoke(LINE_DETAIL, context, {"filters": [{"column": "Month", "value": "2025-04"}]})
    )
    # A period named by the caller is kept: April has a budget only (1,000 + 500) and no actual.
    assert (march["total"]["actual"], march["total"]["reference"]) == (0.0, 1_500.0) and "scope" not in march
    trend = json.loads(await invoke(PERIOD_TREND, context, {"filters": None}))
    assert trend["scope"]["to_date"] is False and len(trend["periods"]) == 12


async def test_a_file_whose_periods_all_have_actuals_lists_them() -> None:
    from analyst.ingest import load_dataset

    text = "Month,Account,Budget,Actual\n2025-01,Rent,1000,1100\n2025-02,Rent,1000,900\n"
    context = AnalysisContext(dataset=load_dataset(text.encode(), filename="two.csv"))
    out = json.loads(await invoke(BREAKDOWN, context, {"by": ["Account"]}))
    assert out["scope"] == {"to_date": False, "periods": ["2025-01", "2025-02"]}
    assert [(r["actual"], r["reference"]) for r in out["rows"]] == [(2_000.0, 2_000.0)]
