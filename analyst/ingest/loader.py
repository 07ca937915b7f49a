"""``load_dataset`` and ``apply_overrides``: bytes or a path in, a :class:`~analyst.dataset.Dataset` out.

CSV: the encoding, delimiter and table bounds come from a small sample (:mod:`analyst.ingest.sniff`); then
one C-engine ``pandas.read_csv`` reads the body, letting plain numeric columns parse natively, and only
columns that came back as text go through the finance-number parser. XLSX: :mod:`analyst.ingest.excel`.
"""

from __future__ import annotations

import io
import logging
import os
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from typing import Any

import numpy as np
import pandas as pd

from analyst.dataset import (
    Dataset,
    IngestError,
    IngestLimits,
    RoleOverrides,
    SourceInfo,
)
from analyst.ingest import excel, roles, sniff, workbook
from analyst.ingest.build import AMOUNT_KINDS, TEXT_KINDS, build_dataset
from analyst.ingest.numbers import (
    DecimalMark,
    sample_evidence,
)

log = logging.getLogger(__name__)



def load_dataset(
    source: bytes | str | os.PathLike[str],
    *,
    filename: str | None = None,
    overrides: RoleOverrides | None = None,
    limits: IngestLimits | None = None,
    sheet: str | None = None,
) -> Dataset:
    """Read a budget-vs-actual export (CSV or XLSX) into a tidy :class:`Dataset`.

    A workbook's sheets are each scored and the budget-vs-actual one is read (``sheet`` chooses one by name;
    see :mod:`analyst.ingest.workbook`). Raises :class:`IngestError` (and nothing else) with a message for a
    finance person when the file cannot be understood.
    """
    limits = limits or IngestLimits()
    try:
        upload = _read_source(source, filename, limits)
        head, _ = upload.head_tail()
        if head.startswith(b"PK\x03\x04"):
            wanted = overrides or RoleOverrides()

            def build(table: excel.SheetTable, info: SourceInfo) -> Dataset:
                raw = _drop_blank(table.frame)
                return build_dataset(raw, replace(info, data_rows=len(raw)), wanted, decimal=None)

            return workbook.read_workbook(upload.all_bytes(), upload.name, limits, build, sheet)
        raw, info, decimal = _read_table(upload, limits)
        return build_dataset(raw, info, overrides or RoleOverrides(), decimal=decimal)
    except IngestError:
        raise
    except MemoryError as exc:
        raise IngestError("The file is too large to read here. Filter the export to fewer rows.") from exc
    except Exception as exc:  # a reader's own exception must never reach the user as a traceback
        log.warning("ingest failed: %s", type(exc).__name__)
        raise IngestError(
            "The file could not be read as a table. Check that it is a CSV or XLSX export with one header "
            "row "
            "and amount columns, or save it again from Excel as 'CSV UTF-8'."
        ) from exc


def apply_overrides(ds: Dataset, overrides: RoleOverrides) -> Dataset:
    """The same file read again from ``ds.raw`` with the user's column roles; earlier overrides still hold."""
    if ds.raw is None:
        raise IngestError("This dataset no longer has its source table; upload the file again to change columns.")
    previous = {
        "actual": ds.roles.actual,
        "reference": ds.roles.reference,
        "period": ds.roles.period,
        "account": ds.roles.account,
        "dimensions": tuple(d for d in ds.roles.dimensions if d in ds.raw.columns),
        "account_type": ds.roles.account_type,
    }
    merged: dict[str, Any] = {
        f.name: getattr(overrides, f.name)
        if getattr(overrides, f.name) is not None
        else (previous[f.name] if f.name in ds.roles.overridden else None)
        for f in fields(RoleOverrides)
    }
    try:
        return build_dataset(ds.raw, ds.source, RoleOverrides(**merged), decimal=None)
    except IngestError:
        raise
    except Exception as exc:
        log.warning("apply_overrides failed: %s", type(exc).__name__)
        raise IngestError("Those column choices could not be applied to this file.") from exc


# --- reading ---


@dataclass(frozen=True, slots=True)
class _Input:
    """The upload: bytes in memory, or a path that is read only where needed (head and tail for sniffing; the
    body straight into ``read_csv``)."""

    name: str
    size: int
    data: bytes | None = None
    path: str | None = None

    def head_tail(self) -> tuple[bytes, bytes | None]:
        if self.data is not None:
            head = self.data[: sniff.HEAD_BYTES]
            tail = self.data[-sniff.TAIL_BYTES :] if self.size > sniff.HEAD_BYTES else None
            return head, tail
        assert self.path is not None
        with open(self.path, "rb") as handle:
            head = handle.read(sniff.HEAD_BYTES)
            if self.size <= sniff.HEAD_BYTES:
                return head, None
            handle.seek(max(sniff.HEAD_BYTES, self.size - sniff.TAIL_BYTES))
            return head, handle.read()

    def all_bytes(self) -> bytes:
        if self.data is not None:
            return self.data
        assert self.path is not None
        with open(self.path, "rb") as handle:
            return handle.read(self.size + 1)


def _read_source(source: bytes | str | os.PathLike[str], filename: str | None, limits: IngestLimits) -> _Input:
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        _check_size(len(data), limits)
        upload = _Input(filename or "upload", len(data), data=data)
    else:
        path = os.fspath(source)
        name = filename or os.path.basename(path)
        try:
            size = os.path.getsize(path)
        except OSError as exc:
            raise IngestError(f"The file '{name}' could not be opened.") from exc
        _check_size(size, limits)  # before anything is parsed
        upload = _Input(name, size, path=path)
    head, tail = upload.head_tail()
    if not head.strip() and (tail is None or not upload.all_bytes().strip()):
        raise IngestError(f"The file '{upload.name}' is empty.")
    return upload


def _check_size(size: int, limits: IngestLimits) -> None:
    if size > limits.max_bytes:
        raise IngestError(
            f"The file is {size / 1_048_576:.1f} MB; the limit is {limits.max_bytes / 1_048_576:g} MB. "
            "Filter the export (fewer periods or departments) or summarise it first."
        )


def _read_table(upload: _Input, limits: IngestLimits) -> tuple[pd.DataFrame, SourceInfo, DecimalMark | None]:
    head, tail = upload.head_tail()
    if head.startswith(b"PK\x03\x04"):
        sheet = excel.read_xlsx(upload.all_bytes(), limits)
        raw = _drop_blank(sheet.frame)
        info = SourceInfo(upload.name, "xlsx", None, None, sheet.header_row, len(raw), sheet=sheet.sheet)
        return raw, info, None
    _reject_non_tables(head)
    encoding = sniff.detect_sample_encoding(head, tail)
    if upload.data is not None and encoding == "utf-8" and not sniff.is_utf8(upload.data):
        encoding = sniff.detect_encoding(upload.data)  # in memory already: judge every byte
    if encoding == "utf-16":
        # Excel's "Unicode Text": re-encode once so that sniffing and the parser see UTF-8 bytes.
        text = upload.all_bytes().decode("utf-16", errors="replace").encode("utf-8")
        utf8 = _Input(upload.name, len(text), data=text)
        raw, info, decimal = _read_csv(utf8, *utf8.head_tail(), "utf-8", limits)
        return raw, replace(info, encoding="utf-16"), decimal
    if b"\x00" in head[:4096]:
        raise IngestError("This file is not text (it looks binary). Upload a CSV or XLSX export.")
    try:
        return _read_csv(upload, head, tail, encoding, limits)
    except UnicodeDecodeError:
        # A path was read optimistically as UTF-8 from its first and last bytes; the middle disagreed.
        data = upload.all_bytes()
        encoding = sniff.detect_encoding(data)
        try:
            return _read_csv(_Input(upload.name, len(data), data=data), head, tail, encoding, limits)
        except UnicodeDecodeError as exc:
            raise IngestError(
                "Some bytes of the file are not text in any encoding I read (UTF-8, UTF-16, cp1251, cp1252). "
                "Save it again from Excel as 'CSV UTF-8'."
            ) from exc


def _reject_non_tables(head: bytes) -> None:
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise IngestError("This is an old Excel .xls workbook. Open it in Excel and save it as .xlsx or CSV.")
    if head.startswith(b"%PDF"):
        raise IngestError("This is a PDF, not a table. Export the report from your system as CSV or XLSX.")
    lowered = head[:2048].lstrip().lower()
    if lowered.startswith((b"<!doctype html", b"<html", b"<?xml", b"<head", b"<body")):
        raise IngestError(
            "This is a web page, not a data file (often a login page instead of the download). "
            "Download the file again, or export it as CSV or XLSX."
        )


def _read_csv(
    upload: _Input, head: bytes, tail: bytes | None, encoding: str, limits: IngestLimits
) -> tuple[pd.DataFrame, SourceInfo, DecimalMark | None]:
    table = sniff.sniff_text(sniff.take_sample(head, tail, encoding), encoding)
    if len(table.names) > limits.max_columns:
        raise IngestError(f"The file has {len(table.names)} columns; the limit is {limits.max_columns}.")
    decimal = _sample_decimal(table)
    # A ";"-separated export whose sample can't tell (only "1.234"-like or whole numbers) is read with the
    # decimal comma, as Excel in Germany or Russia writes it: "12.500" there is twelve thousand five hundred.
    comma_file = decimal == "," or (decimal is None and table.delimiter == ";")
    dtype: dict[str, str] = {}
    for column in table.names:
        kind = roles.classify_header(column).kind
        if kind in TEXT_KINDS and column not in table.text_columns:
            # Codes such as "0100" under an Account header must stay text. (Only here: an explicit "str"
            # dtype is about twice as slow as letting the parser infer text columns.)
            dtype[column] = "str"
        elif comma_file and kind in AMOUNT_KINDS:
            dtype[column] = "object"  # "1.234" must not be read natively as 1.234 in a decimal-comma file
    options: dict[str, Any] = {
        "sep": table.delimiter,
        "names": table.names,
        "dtype": dtype or None,
        "keep_default_na": False,
        "na_values": [""],
        "skip_blank_lines": False,
        "index_col": False,
        "engine": "c",
        "encoding": encoding,
        "encoding_errors": "strict",
    }

    def source() -> Any:
        return upload.path if upload.path is not None else io.BytesIO(upload.data or b"")

    try:
        with warnings.catch_warnings():
            # Mixed-type chunks are parsed again below as finance numbers; pandas' notice is noise here.
            warnings.simplefilter("ignore", pd.errors.DtypeWarning)
            warnings.simplefilter("ignore", pd.errors.ParserWarning)
            frame = _read_body(source, options, table.footer_lines, upload, table.first_body_line)
    except pd.errors.ParserError as exc:
        if "out of memory" in str(exc):  # pandas' C tokenizer reports a failed allocation as a parser error
            raise MemoryError from exc
        raise IngestError(_parser_message(str(exc), table.first_body_line)) from exc
    if len(frame) > limits.max_rows:
        raise IngestError(
            f"The file has {len(frame):,} rows; the limit is {limits.max_rows:,}. Filter the export to fewer rows."
        )
    if len(frame) == 0:
        raise IngestError("The file has a header row but no data rows below it.")
    frame.index = pd.RangeIndex(table.first_body_line, table.first_body_line + len(frame), name="row")
    raw = _drop_blank(frame)
    info = SourceInfo(
        upload.name, "csv", table.encoding, table.delimiter, table.header_line, len(raw), preamble=table.preamble
    )
    return raw, info, decimal


def _read_body(
    source: Callable[[], Any], options: dict[str, Any], footer_lines: int, upload: _Input, first_line: int
) -> pd.DataFrame:
    """One ``read_csv`` of the body; a stricter second try only when the first one trips on the preamble or
    the footer."""
    try:
        # ``header=`` the header line, not ``skiprows``: skipping rows costs the serial parser about 30 %.
        frame = pd.read_csv(source(), header=first_line - 2, **options)
    except pd.errors.ParserError:
        # A preamble line with more cells than the header: skip those lines outright.
        try:
            frame = pd.read_csv(source(), header=None, skiprows=first_line - 1, **options)
        except pd.errors.ParserError:
            if not footer_lines:
                raise
            # The footer itself has more cells than the header: stop before it.
            body = _line_count(upload.all_bytes()) - first_line + 1 - footer_lines
            return pd.read_csv(source(), header=None, skiprows=first_line - 1, nrows=max(0, body), **options)
    return frame.iloc[: max(0, len(frame) - footer_lines)] if footer_lines else frame


def _line_count(data: bytes) -> int:
    """Rows ``read_csv`` makes of ``data`` (blank lines included, no row after a final newline)."""
    if not data:
        return 0
    return data.count(b"\n") + (0 if data.endswith(b"\n") else 1)


def _sample_decimal(table: sniff.TextTable) -> DecimalMark | None:
    """The file's decimal mark, judged from the sample's amount cells (None when they don't say)."""
    cells = [c for row in table.sample_rows for c in row if sniff.is_number_cell(c)]
    return sample_evidence(cells).decide()


def _parser_message(message: str, first_line: int) -> str:
    match = re.search(r"Expected (\d+) fields in line (\d+), saw (\d+)", message)
    if match:
        line = first_line + int(match[2]) - 1
        return (
            f"Line {line} has {match[3]} cells but the header has {match[1]} columns. Check for an unquoted "
            "separator inside a value, or save the file again from Excel."
        )
    return "The file could not be read as a table (a quote or separator is out of place). Save it again from Excel."


def _drop_blank(frame: pd.DataFrame) -> pd.DataFrame:
    """Blank columns and blank rows go; nothing is copied when there are none."""
    has_empty = {c: _has_empty(frame[c]) for c in frame.columns}
    empty_cols = [c for c in frame.columns if has_empty[c] and not frame[c].notna().any()]
    if empty_cols:
        frame = frame.drop(columns=empty_cols)
    if frame.shape[1] == 0:
        raise IngestError("The table has no values under its header row.")
    if all(has_empty[c] for c in frame.columns):
        frame = frame[frame.notna().any(axis=1)]
    return frame


def _has_empty(column: pd.Series) -> bool:
    """``column.hasnans``; for floats, a sum answers it without a mask the size of the column."""
    if column.dtype == np.float64:
        values = column.to_numpy()
        return not np.isfinite(np.add.reduce(values)) and bool(np.isnan(values).any())
    return bool(column.hasnans)
