"""Distinct values and per-row codes of text columns, hashed in parallel.

After the parse, hashing the text columns is most of ingestion's work: every text column's distinct values
are checked for total labels and scenario words, and the period column needs a code per row. pandas hands
text back as pyarrow-backed strings, and pyarrow's hash kernels release the GIL, so a small thread pool
hashes the columns at once (a column is cut into zero-copy row ranges only when there are fewer columns than
threads; the ranges' few distinct values are then merged). Columns that are not pyarrow-backed (an xlsx
sheet's object columns) are hashed by pandas, one column per task.

Uniques come out in order of first appearance, like :func:`pandas.factorize`; codes are ``int32`` with -1
for an empty cell.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection, Iterator, Mapping
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# Below this many rows in all, hashing on the calling thread beats starting a pool.
PARALLEL_MIN_ROWS = 200_000
_MAX_WORKERS = 4


@dataclass(frozen=True, slots=True)
class Encoded:
    """A text column's distinct non-empty values and, when asked for, each row's index into them."""

    uniques: pd.Index
    codes: np.ndarray | None = None  # int32, -1 for an empty cell


def workers() -> int:
    """Threads to hash with: as many as pandas' own parallel ``read_csv`` uses."""
    try:
        configured = pd.get_option("mode.max_threads")
    except (KeyError, pd.errors.OptionError):
        configured = None
    if configured:
        return max(1, int(configured))
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    return max(1, min(available, _MAX_WORKERS))


def encode_columns(columns: Mapping[str, pd.Series], *, with_codes: Collection[str] = ()) -> dict[str, Encoded]:
    """Uniques of every column in ``columns``, and row codes for those named in ``with_codes``."""
    with hashing_pool(sum(len(column) for column in columns.values())) as pool:
        return start_encoding(pool, columns, with_codes=with_codes)()


@dataclass(frozen=True, slots=True)
class Pool:
    """Where hashing tasks run: a thread pool, or the calling thread itself."""

    executor: Executor
    threads: int  # how many tasks run at once; it decides how finely columns are cut

    @classmethod
    def inline(cls, threads: int = 1) -> Pool:
        """Every task run at once on the calling thread (``threads`` still shapes the tasks, for tests)."""
        return cls(_Inline(), threads)


@contextmanager
def hashing_pool(rows: int) -> Iterator[Pool]:
    """Threads to hash ``rows`` rows of text with (none below :data:`PARALLEL_MIN_ROWS`: tasks then run at
    once, on the calling thread)."""
    threads = workers()
    if threads == 1 or rows < PARALLEL_MIN_ROWS:
        yield Pool.inline()
        return
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="ingest-hash") as executor:
        yield Pool(executor, threads)


def start_encoding(
    pool: Pool, columns: Mapping[str, pd.Series], *, with_codes: Collection[str] = ()
) -> PendingEncoding:
    """Start hashing ``columns`` on ``pool``. The caller's thread is free meanwhile (the bulk of the work
    runs in pyarrow, without the GIL); calling the result waits for it."""
    # Whole columns are the cheapest tasks (one hash table each, nothing to merge); a column is cut into row
    # ranges only when there are fewer columns than threads.
    ranges = max(1, -(-pool.threads // max(1, len(columns))))
    submit = pool.executor.submit
    jobs: dict[str, list[Future[Any]]] = {}
    # Columns that need codes cost more: queued first, so the last task to finish is a short one.
    for name in sorted(columns, key=lambda n: n not in with_codes):
        column = columns[name]
        chunked = arrow_strings(column)
        wants_codes = name in with_codes
        if chunked is None:
            jobs[name] = [submit(_encode_with_pandas, column, wants_codes)]
            continue
        task = _dictionary_encode if wants_codes else _distinct
        jobs[name] = [submit(task, part) for part in _row_ranges(chunked, ranges)]
    return PendingEncoding(columns, set(with_codes), jobs)


class PendingEncoding:
    """Columns being hashed: :meth:`column` waits for one of them, calling the object waits for all."""

    def __init__(
        self, columns: Mapping[str, pd.Series], with_codes: set[str], jobs: dict[str, list[Future[Any]]]
    ) -> None:
        self._columns = columns
        self._with_codes = with_codes
        self._jobs = jobs
        self._done: dict[str, Encoded] = {}

    def column(self, name: str) -> Encoded:
        if name not in self._done:
            parts = [job.result() for job in self._jobs[name]]
            if isinstance(parts[0], Encoded):
                self._done[name] = parts[0]
            elif name in self._with_codes:
                self._done[name] = _codes(parts, len(self._columns[name]))
            else:
                self._done[name] = Encoded(_index(_merged_uniques(parts)))
        return self._done[name]

    def __call__(self) -> dict[str, Encoded]:
        return {name: self.column(name) for name in self._columns}


class _Inline(Executor):
    """An executor that runs each task at once on the calling thread."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_result(fn(*args, **kwargs))
        return future


def arrow_strings(column: pd.Series) -> pa.ChunkedArray | None:
    """The pyarrow chunks behind a pyarrow-backed string column (no copy), else None."""
    if isinstance(column.dtype, pd.StringDtype) and column.dtype.storage == "pyarrow":
        chunked = column.array.__arrow_array__()
        if isinstance(chunked, pa.ChunkedArray) and (
            pa.types.is_string(chunked.type) or pa.types.is_large_string(chunked.type)
        ):
            return chunked
    return None


def _row_ranges(chunked: pa.ChunkedArray, count: int) -> list[pa.ChunkedArray]:
    """The column as ``count`` zero-copy row ranges of about equal length, in row order."""
    step = max(1, -(-len(chunked) // count))
    return [chunked.slice(start, step) for start in range(0, max(len(chunked), 1), step)]


def _distinct(part: pa.ChunkedArray) -> pa.Array:
    return part.unique()


def _dictionary_encode(part: pa.ChunkedArray) -> pa.ChunkedArray:
    # One hash table over the range's chunks: they share one dictionary.
    return part.dictionary_encode()


def _merged_uniques(parts: list[pa.Array]) -> pa.Array:
    """The distinct non-null values of several pieces' distinct values, in order of first appearance."""
    merged = pa.chunked_array(parts).unique() if len(parts) != 1 else parts[0]
    return merged.drop_null() if merged.null_count else merged


def _index(uniques: pa.Array) -> pd.Index:
    return pd.Index(pd.array(uniques, dtype="str"))


def _is_prefix(head: pa.Array, of: pa.Array) -> bool:
    return len(head) <= len(of) and of.slice(0, len(head)).equals(head)


def _codes(parts: list[pa.ChunkedArray], rows: int) -> Encoded:
    """Row codes of a column from its dictionary-encoded row ranges.

    Within a range every chunk's dictionary is a prefix of the last one's (pyarrow grows one hash table), so
    with a single range its indices are the codes as they are; chunks whose dictionary is not a prefix of
    the merged uniques are translated."""
    encoded = [chunk for part in parts for chunk in part.chunks]
    dictionaries = []
    for part in parts:
        if part.num_chunks:
            last = part.chunks[-1].dictionary
            dictionaries.append(last)
            dictionaries.extend(c.dictionary for c in part.chunks if not _is_prefix(c.dictionary, last))
    if not dictionaries:
        return Encoded(pd.Index([], dtype="str"), np.full(rows, -1, dtype=np.int32))
    uniques = _merged_uniques(dictionaries)
    codes = np.empty(rows, dtype=np.int32)
    start = 0
    for chunk in encoded:
        indices = chunk.indices
        if indices.null_count:
            indices = pc.fill_null(indices, -1)
        values = indices.to_numpy(zero_copy_only=False)
        target = codes[start : start + len(chunk)]
        if _is_prefix(chunk.dictionary, uniques):
            np.copyto(target, values, casting="same_kind")
        else:
            translate = pc.index_in(chunk.dictionary, value_set=uniques).to_numpy(zero_copy_only=False)
            table = np.append(translate.astype(np.int32, copy=False), np.int32(-1))
            np.take(table, values, out=target)  # -1 (empty) picks the trailing -1
        start += len(chunk)
    return Encoded(_index(uniques), codes)


def _encode_with_pandas(column: pd.Series, wants_codes: bool) -> Encoded:
    if isinstance(column.dtype, pd.CategoricalDtype):
        category_codes = column.cat.codes.to_numpy().astype(np.int32)
        categories = pd.Index(column.cat.categories)
        if wants_codes:
            return Encoded(categories, category_codes)
        used = np.unique(category_codes[category_codes >= 0])  # categories no row uses are not values
        return Encoded(categories[used])
    if wants_codes:
        codes, uniques = pd.factorize(column, use_na_sentinel=True)
        return Encoded(pd.Index(uniques), np.asarray(codes, dtype=np.int32))
    # The cells themselves (an xlsx date stays a datetime), not values converted by an Index's inference.
    return Encoded(pd.Index(np.asarray(column.dropna().unique(), dtype=object), dtype=object))
