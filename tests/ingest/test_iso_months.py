"""A period column of ISO dates read from its digits gives exactly the months the general path gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyst.engine import period_view
from analyst.ingest import iso_months as iso_months_module
from analyst.ingest import load_dataset, periods
from analyst.ingest.iso_months import iso_months


def general_months(values: list[str]) -> list[str | None]:
    """Each cell's month as the general path reads it: distinct values, their labels, one code per row."""
    codes, uniques = pd.factorize(pd.Series(values, dtype=object))
    labels = periods.labels_for_uniques(list(uniques))
    return [labels[c] if c >= 0 else None for c in codes]


def fast_months(values: list[str]) -> list[str] | None:
    months = iso_months(pd.Series(values, dtype="str"))
    return None if months is None else [months.labels[c] for c in months.codes]


def test_iso_dates_give_their_months_in_calendar_order() -> None:
    months = iso_months(pd.Series(["2025-03-31", "2024-12-01", "2025-03-01", "2025-02-30"], dtype="str"))
    assert months is not None
    # February 30th is no date, but its month is February, as the general path reads it too.
    assert months.labels == ["2024-12", "2025-02", "2025-03"]
    assert months.codes.tolist() == [2, 0, 2, 1]


def test_anything_but_plain_iso_dates_is_left_to_the_general_path() -> None:
    for values in (
        ["2025-01-31", None],  # an empty cell
        ["2025-01-31", "2025-13-01"],  # no month 13
        ["1899-12-31"],  # outside 1900–2099
        ["2025-1-31 "],  # ten characters, not ISO
        ["2025/01/31"],
        ["31.01.2025"],
        ["2025-01-31T00:00"],
        ["２０２５-01-31"],  # full-width digits
        ["Total"],
    ):
        assert iso_months(pd.Series(values, dtype="str")) is None, values
    assert iso_months(pd.Series([20250131, 20250201])) is None  # not text at all


def test_sliced_and_chunked_columns_are_read_from_their_own_rows() -> None:
    chunks = pa.chunked_array(
        [pa.array(["2025-01-05", "2025-02-05"], pa.large_string()), pa.array(["2025-03-05"], pa.large_string())]
    )
    column = pd.Series(pd.arrays.ArrowStringArray(chunks), dtype="str")
    assert fast_months(list(column)) == ["2025-01", "2025-02", "2025-03"]
    months = iso_months(column.iloc[1:])  # a slice starts inside the first chunk's buffers
    assert months is not None and [months.labels[c] for c in months.codes] == ["2025-02", "2025-03"]


def test_months_sharing_a_slot_are_never_merged(monkeypatch: pytest.MonkeyPatch) -> None:
    # Four slots for 24 distinct months: every multiplier puts two of them in one slot.
    monkeypatch.setattr(iso_months_module, "_SHIFT", np.uint64(62))
    values = [f"{2024 + i // 12}-{i % 12 + 1:02d}-15" for i in range(24)]
    assert fast_months(values) is None  # the general path answers, never a wrong month
    # With a few months, some multiplier keeps them apart or none does: either way no month is wrong.
    few = ["2025-01-15", "2025-02-15", "2025-01-31", "2024-12-01"] * 3
    fast = fast_months(few)
    assert fast is None or fast == general_months(few)


iso_like = st.builds(
    lambda y, m, d: f"{y:04d}-{m:02d}-{d:02d}",
    st.integers(1890, 2110),
    st.integers(0, 13),
    st.integers(0, 39),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(iso_like, min_size=1, max_size=30))
def test_the_digits_agree_with_the_general_path(values: list[str]) -> None:
    fast = fast_months(values)
    if fast is not None:
        assert fast == general_months(values)
    else:  # left to the general path only when some cell is out of range
        assert any(not (1900 <= int(v[:4]) <= 2099 and 1 <= int(v[5:7]) <= 12) for v in values)


def test_a_ledger_of_iso_dates_sums_by_month() -> None:
    data = (
        b"date,department,account,budget,actual\n"
        b"2025-01-03,Sales,6400 Travel,100.00,120.50\n2025-01-28,Sales,6400 Travel,50.00,40.00\n"
        b"2025-02-14,HR,6200 Salaries,1000.00,990.00\n2024-12-31,HR,6200 Salaries,1000.00,1000.00\n"
    )
    ds = load_dataset(data, filename="ledger.csv")
    rows = period_view(ds).to_dict()["periods"]
    # December 1,000 / 1,000; January 120.50 + 40 = 160.50 vs 150; February 990 vs 1,000.
    assert [(r["period"], r["actual"], r["reference"]) for r in rows] == [
        ("2024-12", 1_000.0, 1_000.0),
        ("2025-01", 160.5, 150.0),
        ("2025-02", 990.0, 1_000.0),
    ]


@settings(max_examples=200, deadline=None)
@given(st.lists(iso_like, min_size=1, max_size=30))
def test_a_sample_of_iso_dates_is_judged_periodic_as_its_labels_say(values: list[str]) -> None:
    labels = periods.labels_for_uniques(list(dict.fromkeys(values)))
    assert periods.looks_like_periods(values) == (sum(label is not None for label in labels) >= 0.9 * len(labels))
