"""Parallel hashing of text columns: the same uniques (in order of first appearance) and codes as
``pandas.factorize``, whatever the chunking, the thread count and the empty cells; and a large file read
through the parallel path gives the same dataset as the same rows read in one piece."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from analyst.dataset import IngestLimits
from analyst.ingest import encode, load_dataset

LABELS = np.array(["Rent", "Travel", " Software", "Total Expenses", "", None, "Салон", "Miete"], dtype=object)


def _chunked_series(values: np.ndarray, chunks: int) -> pd.Series:
    """A pyarrow-backed string column made of ``chunks`` chunks, as pandas' parallel read returns it."""
    pieces = np.array_split(values, chunks) if len(values) else [values]
    chunked = pa.chunked_array([pa.array(list(p), type=pa.large_string()) for p in pieces], type=pa.large_string())
    return pd.Series(pd.arrays.ArrowStringArray(chunked))


@pytest.mark.parametrize("rows", [0, 1, 9, 2_500])
@pytest.mark.parametrize("chunks", [1, 4])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_codes_and_uniques_match_factorize(rows: int, chunks: int, threads: int) -> None:
    rng = np.random.default_rng(rows * 10 + chunks)
    values = LABELS[rng.integers(0, len(LABELS), rows)]
    if rows > 5:
        values[-1] = "first seen in the last chunk"
    column = _chunked_series(values, chunks)
    pool = encode.Pool.inline(threads)  # the thread count decides the row ranges
    encoded = encode.start_encoding(pool, {"label": column, "other": column}, with_codes=["label"])()
    codes, uniques = pd.factorize(column, use_na_sentinel=True)
    assert list(encoded["label"].uniques) == list(uniques)
    assert encoded["label"].codes is not None
    np.testing.assert_array_equal(encoded["label"].codes, codes)
    assert list(encoded["other"].uniques) == list(uniques)
    assert encoded["other"].codes is None


def test_thread_pool_gives_the_same_result_as_one_thread() -> None:
    rng = np.random.default_rng(7)
    rows = encode.PARALLEL_MIN_ROWS + 1
    dates = np.array([f"2025-{m:02d}-01" for m in range(1, 13)], dtype=object)
    columns = {
        "date": _chunked_series(dates[rng.integers(0, 12, rows)], 5),
        "account": _chunked_series(LABELS[rng.integers(0, len(LABELS), rows)], 3),
    }
    parallel = encode.encode_columns(columns, with_codes=["date"])
    serial = encode.start_encoding(encode.Pool.inline(), columns, with_codes=["date"])()
    for name in columns:
        assert list(parallel[name].uniques) == list(serial[name].uniques)
    assert parallel["date"].codes is not None and serial["date"].codes is not None
    np.testing.assert_array_equal(parallel["date"].codes, serial["date"].codes)


def test_object_and_categorical_columns_are_hashed_by_pandas() -> None:
    objects = pd.Series(["b", None, "a", "b"], dtype=object)
    categories = pd.Series(pd.Categorical(["x", None, "y"], categories=["y", "x", "unused"]))
    encoded = encode.encode_columns({"o": objects, "c": categories}, with_codes=["o"])
    assert list(encoded["o"].uniques) == ["b", "a"]
    np.testing.assert_array_equal(encoded["o"].codes, [0, -1, 1, 0])
    assert sorted(encoded["c"].uniques) == ["x", "y"]  # an unused category is not a value of the column


def test_large_file_reads_the_same_through_the_parallel_path() -> None:
    """A ledger above the parallel threshold, with a total row and a blank department deep inside it: the
    same lines, periods, totals and exclusions as the same rows read in one piece."""
    rows = encode.PARALLEL_MIN_ROWS // 2 + 5_000  # two text columns → above the threshold in all
    rng = np.random.default_rng(3)
    months = np.array([f"2025-{m:02d}-15" for m in range(1, 13)])
    frame = pd.DataFrame(
        {
            "Date": months[rng.integers(0, 12, rows)],
            "Department": np.array(["Sales", "HR", "Ops"])[rng.integers(0, 3, rows)],
            "Budget": np.round(rng.uniform(0, 1000, rows), 2),
            "Actual": np.round(rng.uniform(0, 1000, rows), 2),
        }
    )
    frame.loc[rows // 2, "Department"] = "Total Sales"
    frame.loc[rows - 10, "Department"] = None
    data = frame.to_csv(index=False).encode()
    ds = load_dataset(data, filename="ledger.csv", limits=IngestLimits(max_bytes=1 << 30))
    assert [e.label for e in ds.excluded_rows] == ["Total Sales"]
    kept = frame.drop(index=rows // 2)
    assert len(ds.frame) == len(kept)
    assert ds.frame["actual"].sum() == pytest.approx(kept["Actual"].sum(), abs=1e-6)
    assert list(ds.frame["period"].cat.categories) == [f"2025-{m:02d}" for m in range(1, 13)]
    expected_periods = kept["Date"].str[:7].to_numpy()
    np.testing.assert_array_equal(ds.frame["period"].astype(str).to_numpy(), expected_periods)
    assert (ds.frame["Department"] == "(blank)").sum() == 1
