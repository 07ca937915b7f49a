"""The month of every row of a column of plain ISO dates ("2025-01-31"), read from the bytes themselves.

A ledger's date column is the one text column whose every value would otherwise be hashed *and* coded: a
million dates cost more to hash than everything else ingestion does to them. When every cell is exactly
``YYYY-MM-DD`` (ten bytes: four digits, "-", two, "-", two; a year 1900–2099, a month 01–12), a row's first
eight bytes ("2025-01-") are one 64-bit number, and a column holds only a few dozen distinct ones. Each row's
number finds its slot in a small table (a multiplication and a shift, no string hashing); every distinct number
is checked once, in Python, and a row is compared with its slot's number, so two numbers sharing a slot are
caught (another multiplier is tried). The labels are the ones the general path gives
(:func:`analyst.ingest.periods.labels_for_uniques`: ``"2025-01"``; the day is only checked to be two digits, as
a day such as "30" in February gets the same month there). Anything else (an empty cell, another format,
another width) returns ``None`` and the general path runs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from analyst.ingest.encode import arrow_strings

_WIDTH = 10
_PREFIX = 8  # "YYYY-MM-": the bytes that name the month
_FIRST_YEAR, _LAST_YEAR = 1900, 2099
_PREFIX_RE = re.compile(rb"(?:19|20)\d\d-(?:0[1-9]|1[0-2])-")
_SLOT_BITS = 16
_SHIFT = np.uint64(64 - _SLOT_BITS)
# Multiplicative hashing: a few dozen prefixes rarely share one of 65,536 slots under the first multiplier, and
# almost never under all three (the general path then answers).
_MULTIPLIERS = tuple(np.uint64(m) for m in (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9))


@dataclass(frozen=True, slots=True)
class IsoMonths:
    """Each row's month as a code into ``labels`` ("YYYY-MM", in calendar order)."""

    codes: np.ndarray  # int8, int16 or int32, one per row, never -1 (no empty cells)
    labels: list[str]


class _SharedSlot(Exception):
    """Two distinct prefixes fell into one slot under this multiplier."""


def iso_months(column: pd.Series) -> IsoMonths | None:
    """The months of a column whose every cell is an ISO date, else ``None``."""
    chunked = arrow_strings(column)
    if chunked is None or chunked.null_count or len(chunked) == 0:
        return None
    prefixes: list[np.ndarray] = []
    for chunk in chunked.chunks:
        if len(chunk):
            found = _prefixes(chunk)
            if found is None:
                return None
            prefixes.append(found)
    for multiplier in _MULTIPLIERS:
        try:
            slot_key = _slot_months(prefixes, multiplier)
        except _SharedSlot:
            continue
        if slot_key is None:
            return None
        present = sorted(set(slot_key.values()))
        code_type = np.min_scalar_type(-max(len(present), 1))
        rank = {key: code for code, key in enumerate(present)}
        slot_code = np.zeros(1 << _SLOT_BITS, dtype=code_type)
        for slot, key in slot_key.items():
            slot_code[slot] = rank[key]
        # A second pass over the rows writes each one's code straight away (no per-row month numbers kept).
        codes = np.empty(len(chunked), dtype=code_type)
        start = 0
        for chunk_prefixes in prefixes:
            rows = len(chunk_prefixes)
            np.take(slot_code, _slots(chunk_prefixes, multiplier), out=codes[start : start + rows])
            start += rows
        labels = [f"{_FIRST_YEAR + k // 12}-{k % 12 + 1:02d}" for k in present]
        return IsoMonths(codes, labels)
    return None


def _slots(prefixes: np.ndarray, multiplier: np.uint64) -> np.ndarray:
    slots = prefixes * multiplier
    slots >>= _SHIFT
    return slots.view(np.int64)  # below 2**_SLOT_BITS: the same numbers, as indices


def _slot_months(prefixes: list[np.ndarray], multiplier: np.uint64) -> dict[int, int] | None:
    """Each used slot's month (months since January 1900); ``None`` when a cell is not an ISO date in range.
    Raises :class:`_SharedSlot` when two prefixes share a slot."""
    seen = np.zeros(1 << _SLOT_BITS, dtype=np.uint64)  # each slot's prefix; 0 for none (no prefix is 0)
    slot_key: dict[int, int] = {}
    for chunk_prefixes in prefixes:
        index = _slots(chunk_prefixes, multiplier)
        if np.array_equal(np.take(seen, index), chunk_prefixes):
            continue  # every prefix of this chunk was seen in an earlier one
        table = seen.copy()
        table[index] = chunk_prefixes  # each slot keeps one of its rows' prefixes...
        if not np.array_equal(np.take(table, index), chunk_prefixes):  # ...which is every row's, or two share it
            raise _SharedSlot
        new = np.flatnonzero(table != seen)
        if seen[new].any():
            raise _SharedSlot
        for slot in new.tolist():
            text = int(table[slot]).to_bytes(_PREFIX, "little")
            if not _PREFIX_RE.fullmatch(text):
                return None
            slot_key[slot] = (int(text[:4]) - _FIRST_YEAR) * 12 + int(text[5:7]) - 1
        seen = table
    return slot_key


def _prefixes(chunk: pa.Array) -> np.ndarray | None:
    """Each row's first eight bytes as a little-endian 64-bit number (a strided view over the chunk's own
    buffer), or ``None`` unless every row is ten bytes ending in two digits."""
    rows = len(chunk)
    offset_type = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
    offsets = np.frombuffer(chunk.buffers()[1], dtype=offset_type, count=chunk.offset + rows + 1)[chunk.offset :]
    first, last = int(offsets[0]), int(offsets[-1])
    if last - first != _WIDTH * rows or bool((np.diff(offsets) != _WIDTH).any()):
        return None
    data = chunk.buffers()[2]
    day = np.ndarray(shape=(rows,), dtype="<u2", buffer=data, offset=first + _PREFIX, strides=(_WIDTH,))
    if not _two_digits(day.copy()):
        return None
    return np.ndarray(shape=(rows,), dtype="<u8", buffer=data, offset=first, strides=(_WIDTH,))


def _two_digits(pair: np.ndarray) -> bool:
    """Whether every 16-bit little-endian pair is two ASCII digits (the first digit in the low byte)."""
    pair ^= np.uint16(0x3030)  # "0".."9" become 0..9; any other byte becomes something above 9
    above_nine = ((pair & np.uint16(0x0F0F)) + np.uint16(0x0606)) & np.uint16(0x1010)  # a low nibble of 10..15
    return not (bool((pair & np.uint16(0xF0F0)).any()) or bool(above_nine.any()))
