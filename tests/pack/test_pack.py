"""The month-end pack opened with openpyxl: its numbers are the engine's, file text never becomes a formula,
and the model's commentary is checked against the engine's figures (against the fake OpenAI server)."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest
from openpyxl import load_workbook

from analyst.agent import AgentSettings
from analyst.engine import AnalysisOptions, Materiality
from analyst.pack import build_pack, pack_data, safe_text
from analyst.pack.commentary import UNVERIFIED_NOTE, cited_numbers, unverified
from analyst.report import build_report
from tests.charts.ledger import EVENTS, load_csv, load_ledger
from tests.fakes.openai_server import FakeOpenAI, text

OPTS = AnalysisOptions(materiality=Materiality(amount=25, percent=5))


@pytest.fixture
def ledger(tmp_path: Path):
    return load_ledger(tmp_path)


def _sheet_rows(xlsx: bytes, name: str) -> list[tuple]:
    book = load_workbook(io.BytesIO(xlsx))
    return [tuple(row) for row in book[name].iter_rows(values_only=True)]


async def test_variance_sheet_holds_every_material_line_with_the_engine_numbers(ledger) -> None:
    pack = await build_pack(ledger, OPTS)
    rows = _sheet_rows(pack.xlsx, "Variance")
    assert rows[0] == (
        "Department", "Account", "Account type", "Actual", "Budget", "Variance", "Variance %", "Favourable",
        "Commentary",
    )
    # Hand-computed: Cloud hosting (+20) is under 25 and Rent has no variance, so 5 of 7 lines are material.
    assert [r[:8] for r in rows[1:]] == [
        ("Sales", "Subscription revenue", "revenue", 2400, 2000, 400, 20, "favourable"),
        ("Marketing", EVENTS, "expense", 350, 200, 150, 75, "unfavourable"),
        ("Engineering", "Salaries", "expense", 700, 800, -100, -12.5, "favourable"),
        ("Sales", "Services revenue", "revenue", 400, 500, -100, -20, "unfavourable"),
        ("Sales", "Commissions", "expense", 130, 100, 30, 30, "unfavourable"),
    ]
    # ... and they are the report's material lines, in the report's order.
    report = build_report(ledger, opts=OPTS).to_json_dict()
    material = [r for r in report["lines"] if r["material"]]
    assert [(r["actual"], r["reference"], r["variance"]) for r in material] == [
        (r[3], r[4], r[5]) for r in rows[1:]
    ]
    assert pack.lines == 5 and pack.commented == 0
    assert pack.filename == "ledger-pack.xlsx"


async def test_summary_sheet_has_headline_types_profit_effect_and_the_bridge(ledger) -> None:
    pack = await build_pack(ledger, OPTS)
    rows = _sheet_rows(pack.xlsx, "Summary")
    cells = [c for row in rows for c in row if c is not None]
    assert (
        "Actual 4,150.00 vs budget 3,750.00. Effect on profit +200.00 (favourable): revenue +300.00, expense +100.00."
        in cells
    )
    by_type = {r[0]: r[1:6] for r in rows if r[0] in {"revenue", "expense"}}
    assert by_type == {
        "revenue": (2800, 2500, 300, 12, "favourable"),
        "expense": (1350, 1250, 100, 8, "unfavourable"),
    }
    profit = next(r for r in rows if r[0] == "Effect on profit")
    assert (profit[3], profit[5]) == (200, "favourable")
    assert "Commentary: not drafted (no OpenAI API key configured)." in cells
    book = load_workbook(io.BytesIO(pack.xlsx))
    images = book["Summary"]._images
    assert len(images) == 1


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("=HYPERLINK(\"http://x\",\"y\")", "'=HYPERLINK(\"http://x\",\"y\")"),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("\t=1+1", "'\t=1+1"),
        ("\r=1+1", "'\r=1+1"),
        ("＝1+1", "'＝1+1"),
        ("＋1", "'＋1"),
        ("  =1+1", "'  =1+1"),
        ("Rent", "Rent"),
        ("Cost = price × units", "Cost = price × units"),
    ],
)
def test_formula_starts_are_neutralised(raw: str, safe: str) -> None:
    assert safe_text(raw) == safe


async def test_file_text_in_the_pack_never_becomes_a_formula(tmp_path: Path) -> None:
    csv = (
        "Department,Account,Account Type,Budget,Actual\n"
        '"=HYPERLINK(""http://evil"",""x"")",Travel expense,Expense,100,300\n'
        "@SUM(A1),-Returns,Contra Revenue,100,50\n"
        "+Sales,Revenue,Revenue,1000,1200\n"
    )
    ds = load_csv(tmp_path, csv, "evil.csv")
    pack = await build_pack(ds, OPTS)
    book = load_workbook(io.BytesIO(pack.xlsx))
    sheet = book["Variance"]
    labels = [sheet.cell(row=r, column=1) for r in range(2, sheet.max_row + 1)]
    assert {c.value for c in labels} == {'\'=HYPERLINK("http://evil","x")', "'@SUM(A1)", "'+Sales"}
    assert all(c.data_type == "s" for c in labels)
    with zipfile.ZipFile(io.BytesIO(pack.xlsx)) as archive:
        for name in archive.namelist():
            if name.startswith("xl/worksheets/"):
                assert "<f>" not in archive.read(name).decode("utf-8")


def test_cited_numbers_are_read_as_written() -> None:
    found = cited_numbers("Over budget by $311K (13.8%), or 311,257.99; since 2025-06.", ["2025-06"])
    assert [(c.value, c.percent) for c in found] == [(311_000.0, False), (13.8, True), (311_257.99, False)]


def test_unverified_numbers_are_the_ones_the_engine_did_not_produce(ledger) -> None:
    line = pack_data(ledger, OPTS).lines[1]  # Marketing / Events: 200 -> 350, +150, +75%
    assert unverified("Events ran 150 over budget (+75%), at 350 against 200.", line) == []
    assert unverified("Events ran 0.15K over budget.", line) == []
    assert unverified("Events ran 160 over budget, 80% above plan.", line) == ["160", "80%"]
    assert unverified(f"{EVENTS} is 150 over.", line) == []  # the digits in the label are not citations


@pytest.fixture
async def fake():
    async with FakeOpenAI() as server:
        yield server


def _settings(fake: FakeOpenAI, tmp_path: Path) -> AgentSettings:
    return AgentSettings(
        api_key="sk-test", base_url=fake.base_url, model="gpt-test", timeout=5.0, max_retries=0,
        data_dir=tmp_path / "data",
    )


def _answer(pairs: list[tuple[int, str]]) -> str:
    return json.dumps({"lines": [{"id": i, "commentary": c} for i, c in pairs]})


GOOD = {
    1: "Subscription revenue beat budget by 400 (20%), a favourable result.",
    2: "Events spend ran 150 over budget (+75%), unfavourable.",
    3: "Salaries came in 100 under budget (12.5%), favourable.",
    4: "Services revenue fell 100 short of budget (20%).",
    5: "Commissions were 30 over budget (30%).",
}


async def test_commentary_is_drafted_in_one_batch_and_checked(ledger, fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.script(text(_answer(list(GOOD.items()))))
    seen: list[tuple[int, int]] = []
    pack = await build_pack(ledger, OPTS, settings=_settings(fake, tmp_path), progress=lambda d, t: seen.append((d, t)))
    rows = _sheet_rows(pack.xlsx, "Variance")
    assert [r[8] for r in rows[1:]] == [GOOD[i] for i in range(1, 6)]
    assert len(fake.requests) == 1  # one call for the whole batch
    prompt = json.dumps(fake.requests[0].json)
    assert "Subscription revenue" in prompt and "by_period" in prompt
    assert seen == [(5, 5)]
    assert pack.commented == 5


async def test_a_draft_citing_other_numbers_is_redrafted_once_then_left_blank(
    ledger, fake: FakeOpenAI, tmp_path: Path
) -> None:
    first = {**GOOD, 2: "Events overspent by 999 (+75%).", 3: "Salaries were 7% under."}
    fake.script(
        text(_answer(list(first.items()))),
        text(_answer([(2, "Events overspent by 998."), (3, GOOD[3])])),  # line 3 fixed, line 2 still wrong
    )
    pack = await build_pack(ledger, OPTS, settings=_settings(fake, tmp_path))
    rows = _sheet_rows(pack.xlsx, "Variance")
    commentary = [r[8] for r in rows[1:]]
    assert commentary[1] == f"[{UNVERIFIED_NOTE}]"
    assert commentary[2] == GOOD[3]
    assert commentary[0] == GOOD[1]
    assert len(fake.requests) == 2
    redraft = json.dumps(fake.requests[1].json)
    assert "not in the facts" in redraft and "Subscription revenue" not in redraft
    assert (pack.commented, pack.blank_notes) == (4, 1)


async def test_a_failing_model_leaves_the_numbers_and_notes_the_blank(ledger, fake: FakeOpenAI, tmp_path: Path) -> None:
    from tests.fakes.openai_server import error

    fake.script(error(500, message="boom"))
    pack = await build_pack(ledger, OPTS, settings=_settings(fake, tmp_path))
    rows = _sheet_rows(pack.xlsx, "Variance")
    assert [r[5] for r in rows[1:]] == [400, 150, -100, -100, 30]
    assert all(str(r[8]).startswith("[commentary not drafted") for r in rows[1:])


def test_pack_cli_without_a_key_writes_numbers_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main
    from tests.charts.ledger import LEDGER_CSV

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    source = tmp_path / "ledger.csv"
    source.write_text(LEDGER_CSV, encoding="utf-8")
    out = tmp_path / "pack.xlsx"
    code = main(["pack", str(source), "-o", str(out), "--materiality-amount", "25", "--materiality-percent", "5"])
    assert code == 0
    rows = _sheet_rows(out.read_bytes(), "Variance")
    assert len(rows) == 6
    assert "5 material lines" in capsys.readouterr().err
    assert main(["pack", str(tmp_path / "missing.csv"), "-o", str(out)]) == 2
    assert "could not be opened" in capsys.readouterr().err


async def test_pack_cli_progress_bar_with_commentary(
    tmp_path: Path, fake: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    from analyst.pack.cli import cli_main
    from tests.charts.ledger import LEDGER_CSV

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
    monkeypatch.setenv("VARIANCE_DATA_DIR", str(tmp_path / "data"))
    fake.script(text(_answer(list(GOOD.items()))))
    source = tmp_path / "ledger.csv"
    source.write_text(LEDGER_CSV, encoding="utf-8")
    out = tmp_path / "pack.xlsx"
    args = [str(source), "-o", str(out), "--materiality-amount", "25", "--materiality-percent", "5"]
    assert await asyncio.to_thread(cli_main, args) == 0
    err = capsys.readouterr().err
    assert "Drafting commentary [" in err and "5 of 5 lines" in err
    assert [r[8] for r in _sheet_rows(out.read_bytes(), "Variance")[1:]] == [GOOD[i] for i in range(1, 6)]
