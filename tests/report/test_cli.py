"""`variance-bot report` end to end in a subprocess, checked against totals computed here with pandas."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "budget_vs_actual.csv"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("VARIANCE_DEBUG", None)
    return subprocess.run(
        [sys.executable, "-m", "bot", "report", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
    )


def dollars(column: pd.Series) -> pd.Series:
    """ "$1,234.56" / "-$1,234.56" → exact Decimals, independently of the project's parser."""
    return column.str.replace("$", "", regex=False).str.replace(",", "", regex=False).map(Decimal)


@pytest.fixture(scope="module")
def expected() -> pd.DataFrame:
    raw = pd.read_csv(EXAMPLE, dtype=str)
    return raw.assign(actual=dollars(raw["Actual"]), budget=dollars(raw["Budget"]))


def test_json_totals_match_plain_pandas(expected: pd.DataFrame) -> None:
    result = run(str(EXAMPLE), "--json")
    assert result.returncode == 0, result.stderr
    d = json.loads(result.stdout)
    actual, budget = sum(expected["actual"]), sum(expected["budget"])
    assert Decimal(str(d["totals"]["actual"])) == actual
    assert Decimal(str(d["totals"]["reference"])) == budget
    assert Decimal(str(d["totals"]["variance"])) == actual - budget
    assert d["totals"]["variance_pct"] == pytest.approx(
        float((actual - budget) / abs(budget) * 100), abs=0.005
    )
    assert d["columns"]["actual"] == "Actual" and d["columns"]["reference"] == "Budget"
    assert set(d["columns"]["dimensions"]) >= {"Department", "Account"}
    assert d["excluded_rows"] == []
    assert len(d["lines"]) == expected.groupby(["Department", "Account"]).ngroups
    events = next(
        r for r in d["lines"] if r["Department"] == "Marketing" and r["Account"] == "Events & Conferences"
    )
    mask = (expected["Department"] == "Marketing") & (expected["Account"] == "Events & Conferences")
    assert Decimal(str(events["variance"])) == sum(expected.loc[mask, "actual"]) - sum(
        expected.loc[mask, "budget"]
    )
    assert events["favourable"] is False and events["material"] is True


def test_by_department_matches_plain_pandas(expected: pd.DataFrame) -> None:
    result = run(str(EXAMPLE), "--json", "--by", "Department")
    assert result.returncode == 0, result.stderr
    lines = {r["Department"]: r for r in json.loads(result.stdout)["lines"]}
    for dept, group in expected.groupby("Department"):
        assert Decimal(str(lines[dept]["actual"])) == sum(group["actual"]), dept
        assert Decimal(str(lines[dept]["reference"])) == sum(group["budget"]), dept


def test_text_and_markdown(expected: pd.DataFrame) -> None:
    text = run(str(EXAMPLE))
    assert text.returncode == 0, text.stderr
    total = sum(expected["actual"])
    assert f"{total:,.2f}" in text.stdout
    assert "Marketing / Events & Conferences" in text.stdout
    md = run(str(EXAMPLE), "--markdown")
    assert md.returncode == 0 and md.stdout.startswith("**Budget vs actual**")


def test_max_bytes_caps_the_output() -> None:
    result = run(str(EXAMPLE), "--json", "--max-bytes", "6000")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.encode()) <= 6000
    d = json.loads(result.stdout)
    assert d["lines"][-1].get("more")
    assert run(str(EXAMPLE), "--json", "--max-bytes", "100").returncode == 2


def test_materiality_flags() -> None:
    result = run(str(EXAMPLE), "--json", "--materiality-amount", "0", "--materiality-mode", "amount")
    d = json.loads(result.stdout)
    assert d["materiality"] == {"amount": 0.0, "percent": 10.0, "mode": "amount", "rule": "given"}
    assert all(r["material"] == (r["variance"] != 0) for r in d["lines"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["no/such/file.csv"], "no/such/file.csv"),
        ([str(EXAMPLE), "--by", "Region"], "Choose from"),
        ([str(EXAMPLE), "--actual", "Nope"], "Nope"),
    ],
)
def test_errors_are_messages_not_tracebacks(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_unreadable_file(tmp_path: Path) -> None:
    junk = tmp_path / "junk.csv"
    junk.write_bytes(b"\x00\x01\x02 not a table \xff" * 10)
    result = run(str(junk))
    assert result.returncode == 2 and "Traceback" not in result.stderr and result.stderr.strip()


def test_report_imports_no_agent_or_slack() -> None:
    code = (
        "import sys, analyst.report, analyst.ingest; "
        "heavy = {'agents', 'openai', 'slack_sdk', 'slack_bolt'}; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


QUICKBOOKS = """Acme Corp
Budget vs. Actuals: FY2025 - Jan - Sep 2025
,Actual,Budget,over Budget,% of Budget
Income,,,,
Consulting Revenue,"120,000.00","100,000.00","20,000.00",120.00 %
Product Sales,"55,500.50","60,000.00","-4,499.50",92.50 %
Total Income,"175,500.50","160,000.00","15,500.50",109.69 %
Expenses,,,,
Rent,"24,000.00","24,000.00",0.00,100.00 %
Travel,"13,250.25","8,000.00","5,250.25",165.63 %
Total Expenses,"37,250.25","32,000.00","5,250.25",116.41 %
Net Income,"138,250.25","128,000.00","10,250.25",108.01 %

"Accrual Basis Monday, October 6, 2025 10:15 AM GMT-07:00"
"""


def test_quickbooks_export_totals_exclude_subtotals(tmp_path: Path) -> None:
    path = tmp_path / "qb.csv"
    path.write_text(QUICKBOOKS, encoding="utf-8")
    result = run(str(path), "--json")
    assert result.returncode == 0, result.stderr
    d = json.loads(result.stdout)
    # Only the four accounts: 120,000 + 55,500.50 + 24,000 + 13,250.25 and 100,000 + 60,000 + 24,000 + 8,000.
    assert d["totals"] == {
        "actual": 212_750.75,
        "reference": 192_000.0,
        "variance": 20_750.75,
        "variance_pct": pytest.approx(20_750.75 / 192_000 * 100, abs=1e-9),
    }
    assert {r["label"] for r in d["excluded_rows"]} >= {"Total Income", "Total Expenses", "Net Income"}
    lines = {r["Account"]: r for r in d["lines"]}
    assert lines["Travel"]["favourable"] is False and lines["Consulting Revenue"]["favourable"] is True
    assert lines["Product Sales"]["favourable"] is False  # revenue below budget
    assert d["net_impact"] == 10_250.25  # the file's own Net Income variance
    text = run(str(path)).stdout
    assert '"Total Income"' in text and "Excluded rows" in text


def test_input_size_limit_is_configurable_and_explained(tmp_path: Path) -> None:
    big = tmp_path / "big.csv"
    big.write_text("Account,Budget,Actual\n" + "Rent,100,120\n" * 100_000)
    refused = run(str(big), "--max-file-mb", "0.5")
    assert refused.returncode == 2
    assert "Traceback" not in refused.stderr
    assert "MB" in refused.stderr
    accepted = run(str(big), "--json", "--max-file-mb", "5")
    assert accepted.returncode == 0, accepted.stderr
    assert json.loads(accepted.stdout)["totals"]["variance"] == 2_000_000
