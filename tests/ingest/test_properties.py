"""Properties over generated files: whatever the style, the sums come back; whatever the bytes, only
IngestError escapes."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analyst.dataset import ACTUAL, REFERENCE, Dataset, IngestError
from analyst.ingest import load_dataset
from tests.ingest.test_numbers import STYLES

WORDS = ["Rent", "Travel", "Salaries", "Software", "Consulting", "Advertising", "Utilities", "Training"]
PREAMBLES = [[], ["Acme Corp"], ["Acme Corp", "Budget vs. Actuals", "January - December 2025", ""]]
FOOTERS = [[], [""], ["", "Accrual Basis Monday, January 6, 2026 10:15 AM GMT-05:00"]]


@st.composite
def wide_files(draw: st.DrawFn) -> tuple[bytes, Decimal, Decimal, int]:
    style = draw(st.sampled_from(sorted(STYLES)))
    formatter, decimal = STYLES[style]
    delimiter = draw(st.sampled_from([";", "\t"] if decimal == "," else [",", ";", "\t", "|"]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "cp1252"]))
    n = draw(st.integers(min_value=1, max_value=25))
    cents = st.integers(min_value=-(10**9), max_value=10**9)
    budget = [Decimal(draw(cents)) / 100 for _ in range(n)]
    actual = [Decimal(draw(cents)) / 100 for _ in range(n)]
    out = io.StringIO()
    for line in draw(st.sampled_from(PREAMBLES)):
        out.write(line + "\n")
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(["Account", "Department", "Budget", "Actual"])
    for i in range(n):
        writer.writerow([f"{WORDS[i % len(WORDS)]} {i}", "Ops", formatter(budget[i]), formatter(actual[i])])
    writer.writerow(["Total", "", formatter(sum(budget, Decimal(0))), formatter(sum(actual, Decimal(0)))])
    for line in draw(st.sampled_from(FOOTERS)):
        out.write(line + "\n")
    try:
        data = out.getvalue().encode(encoding)
    except UnicodeEncodeError:  # "−" or a narrow no-break space has no cp1252 byte
        data = out.getvalue().encode("utf-8")
    return data, sum(actual, Decimal(0)), sum(budget, Decimal(0)), n


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(wide_files())
def test_generated_exports_read_back_their_sums(case: tuple[bytes, Decimal, Decimal, int]) -> None:
    data, actual_sum, budget_sum, n = case
    ds = load_dataset(data, filename="generated.csv")
    assert len(ds.frame) == n
    assert round(Decimal(str(ds.frame[ACTUAL].sum())), 2) == actual_sum
    assert round(Decimal(str(ds.frame[REFERENCE].sum())), 2) == budget_sum
    assert [e.label for e in ds.excluded_rows] == ["Total"]


def _outcome(data: bytes) -> Dataset | None:
    try:
        return load_dataset(data, filename="fuzz.csv")
    except IngestError as error:
        assert str(error) and "Traceback" not in str(error)
        return None


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_raise_only_ingest_error(data: bytes) -> None:
    _outcome(data)


cell = st.one_of(
    st.sampled_from(["", "-", "Total", "Budget", "Actual", "Plan", "Факт", "(1,0)", "1.234,5", "12%", '"', "x;y"]),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8),
    st.decimals(allow_nan=False, allow_infinity=False, places=2).map(str),
)


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.lists(cell, min_size=1, max_size=6), min_size=1, max_size=12),
    delimiter=st.sampled_from([",", ";", "\t", "|"]),
)
def test_arbitrary_tables_raise_only_ingest_error(rows: list[list[str]], delimiter: str) -> None:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\n").writerows(rows)
    ds = _outcome(out.getvalue().encode("utf-8"))
    if ds is not None:
        assert {ACTUAL, REFERENCE} <= set(ds.frame.columns)
        assert ds.frame[ACTUAL].dtype == "float64"


@pytest.mark.parametrize("header", ["Budget,Actual", "Actual;Budget", "Plan\tFact"])
def test_amount_columns_only(header: str) -> None:
    delimiter = "," if "," in header else (";" if ";" in header else "\t")
    ds = load_dataset(f"{header}\n1{delimiter}2\n3{delimiter}4\n".encode())
    assert float(ds.frame[ACTUAL].sum() + ds.frame[REFERENCE].sum()) == 10.0
