"""The month of every row of a column of plain ISO dates ("2025-01-31"), read from the digits themselves.

A ledger's date column is the one text column whose every value would otherwise be hashed *and* coded: a
million dates cost more to hash than everything else ingestion does to them. When every cell is exactly
``YYYY-MM-DD`` (ten bytes: four digits, "-", two, "-", two; a year 1900–2099, a month 01–12), the month is
arithmetic on the bytes, vectorised over the column's own buffer, and the labels are the ones the general path
gives (:func:`analyst.ingest.periods.labels_for_uniques`: ``"2025-01"``; the day is not read, as a day such as
"30" in February gets the same month there). Anything else (an empty cell, another format, another width)
returns ``None`` and the general path runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from analyst.ingest.encode import arrow_strings

_WIDTH = 10
_FIRST_YEAR, _LAST_YEAR = 1900, 2099
# Two bytes of a row read as one little-endian 16-bit number: "19" is 0x3931 ("1" = 0x31 in the low byte).
_CENTURIES = (np.uint16(0x3931), np.uint16(0x3032))  # "19", "20"
_DASH = np.uint8(ord("-"))


@dataclass(frozen=True, slots=True)
class IsoMonths:
    """Each row's month as a code into ``labels`` ("YYYY-MM", in calendar order)."""

    codes: np.ndarray  # int16 or int32, one per row, never -1 (no empty cells)
    labels: list[str]


def iso_months(column: pd.Series) -> IsoMonths | None:
    """The months of a column whose every cell is an ISO date, else ``None``."""
    chunked = arrow_strings(column)
    if chunked is None or chunked.null_count or len(chunked) == 0:
        return None
    keys = np.empty(len(chunked), dtype=np.int32)
    start = 0
    for chunk in chunked.chunks:
        rows = len(chunk)
        if rows == 0:
            continue
        months = _chunk_months(chunk)
        if months is None:
            return None
        keys[start : start + rows] = months
        start += rows
    span = (_LAST_YEAR - _FIRST_YEAR + 1) * 12
    present = np.flatnonzero(np.bincount(keys, minlength=span))
    table = np.full(span, -1, dtype=np.int32)
    table[present] = np.arange(len(present), dtype=np.int32)
    code_type = np.min_scalar_type(-max(len(present), 1))
    codes = table.astype(code_type)[keys]
    labels = [f"{_FIRST_YEAR + int(k) // 12}-{int(k) % 12 + 1:02d}" for k in present]
    return IsoMonths(codes, labels)


def _chunk_months(chunk: pa.Array) -> np.ndarray | None:
    """Months since January 1900 for one chunk, or ``None`` when a cell is not an ISO date in range."""
    rows = len(chunk)
    offset_type = np.int64 if pa.types.is_large_string(chunk.type) else np.int32
    offsets = np.frombuffer(chunk.buffers()[1], dtype=offset_type, count=chunk.offset + rows + 1)[chunk.offset :]
    first, last = int(offsets[0]), int(offsets[-1])
    if last - first != _WIDTH * rows or bool((np.diff(offsets) != _WIDTH).any()):
        return None
    data = chunk.buffers()[2]

    def at(position: int, dtype: str) -> np.ndarray:
        # The bytes at ``position`` of every row: an unaligned strided view, copied into an aligned array.
        return np.ndarray(shape=(rows,), dtype=dtype, buffer=data, offset=first + position, strides=(_WIDTH,)).copy()

    century = at(0, "<u2")
    if not bool(((century == _CENTURIES[0]) | (century == _CENTURIES[1])).all()):
        return None
    if not bool(((at(4, "u1") == _DASH) & (at(7, "u1") == _DASH)).all()):
        return None
    pairs = [_two_digits(at(position, "<u2")) for position in (2, 5, 8)]  # year in the century, month, day
    if any(pair is None for pair in pairs):
        return None
    years, months, _ = pairs
    assert years is not None and months is not None
    if int(months.min()) < 1 or int(months.max()) > 12:
        return None
    key = np.where(century == _CENTURIES[0], 0, 100 * 12).astype(np.int32)
    key += years.astype(np.int32) * 12
    key += months.astype(np.int32) - 1
    return key


def _two_digits(pair: np.ndarray) -> np.ndarray | None:
    """The number two ASCII digits make (a 16-bit little-endian view: the first digit in the low byte), or
    ``None`` when either byte is not a digit."""
    pair ^= np.uint16(0x3030)  # "0".."9" become 0..9; any other byte becomes something above 9
    above_nine = ((pair & np.uint16(0x0F0F)) + np.uint16(0x0606)) & np.uint16(0x1010)  # a low nibble of 10..15
    if bool((pair & np.uint16(0xF0F0)).any()) or bool(above_nine.any()):
        return None
    return (pair & np.uint16(0xFF)) * np.uint16(10) + (pair >> np.uint16(8))
