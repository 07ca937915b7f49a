"""Find the table inside a text export: encoding, delimiter, header row, where the body starts and ends.

Only a sample is read here: the first 64 KB, and the last 8 KB for footers. The body itself is parsed once,
by ``pandas.read_csv``, from the header line this module finds, minus the footer lines it counts.
"""

from __future__ import annotations

import codecs
import csv
import functools
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np

from analyst.dataset import IngestError
from analyst.ingest.numbers import NUMBER_PATTERN

HEAD_BYTES = 64 * 1024
TAIL_BYTES = 8 * 1024
DELIMITERS = (",", ";", "\t", "|")
MAX_SNIFF_LINES = 400

_NUMBER_RE = re.compile(NUMBER_PATTERN)
_MISSING_CELLS = {"", "-", "—", "–", "n/a", "#n/a"}
_QUOTED_RE = re.compile(r'"[^"]*"')


@dataclass(frozen=True, slots=True)
class TextTable:
    """Where the table is inside a text file, and how to read it."""

    encoding: str  # the file's own encoding, for the explanation
    delimiter: str
    header_line: int  # 1-based line of the header row
    names: list[str]
    first_body_line: int  # 1-based line of the first body line
    footer_lines: int  # lines at the end of the file that are not table rows
    text_columns: frozenset[str]  # columns whose sample cells are mostly text
    sample_rows: tuple[tuple[str, ...], ...] = ()  # the first body rows, as cells
    preamble: tuple[str, ...] = ()  # title lines above the header (units such as "in $000s" live there)


def is_number_cell(cell: object) -> bool:
    """A sample cell that holds a number (a real one from Excel, or text that reads as one)."""
    if isinstance(cell, bool):
        return False
    if isinstance(cell, int | float):
        return cell == cell  # not NaN
    if isinstance(cell, str):
        return _is_number_text(cell)
    return False


@functools.lru_cache(maxsize=8192)
def _is_number_text(cell: str) -> bool:
    text = cell.strip()
    return bool(text) and text.lower() not in _MISSING_CELLS and bool(_NUMBER_RE.match(text))


def is_blank_cell(cell: object) -> bool:
    if type(cell) is str:  # nearly every cell a sniff sees: the quick test first
        return not cell.strip()
    return cell is None or (isinstance(cell, str) and not cell.strip()) or (isinstance(cell, float) and cell != cell)


# --- encoding ---


def detect_encoding(data: bytes) -> str:
    """``utf-8-sig``, ``utf-8``, ``utf-16``, ``cp1251`` or ``cp1252``: whichever reads the bytes as plausible
    text."""
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if is_utf8(data):
        return "utf-8"
    return _cp1251_or_cp1252(data[: HEAD_BYTES * 4])


def is_utf8(data: bytes) -> bool:
    # Decoded in 1 MB steps so a 50 MB file never exists twice in memory as text.
    if data.isascii():
        return True
    decoder = codecs.getincrementaldecoder("utf-8")()
    step = 1 << 20
    try:
        for start in range(0, len(data), step):
            decoder.decode(data[start : start + step], final=start + step >= len(data))
    except UnicodeDecodeError:
        return False
    return True


def _cp1251_or_cp1252(sample: bytes) -> str:
    """Russian text is runs of high bytes (whole Cyrillic words, which cp1252 would show as mojibake like
    "Ðàñõîäû"); Western European text has single accented letters inside ASCII words ("Gebühren")."""
    high = np.frombuffer(sample, dtype=np.uint8) >= 0xC0
    letters = int(high.sum())
    if letters == 0:
        return "cp1252"
    neighbour = np.zeros_like(high)
    neighbour[1:] |= high[:-1]
    neighbour[:-1] |= high[1:]
    in_runs = int((high & neighbour).sum())
    return "cp1251" if in_runs * 2 >= letters else "cp1252"


def detect_sample_encoding(head: bytes, tail: bytes | None) -> str:
    """The encoding judged from the first and last bytes only (a path is not read whole for this)."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    sample = head + b"\n" + (tail or b"")
    if sample.isascii():
        return "utf-8"
    try:
        head[: head.rfind(b"\n") + 1 or len(head)].decode("utf-8")
        if tail is not None:
            tail[tail.find(b"\n") + 1 :].decode("utf-8")
    except UnicodeDecodeError:
        return _cp1251_or_cp1252(sample)
    return "utf-8"


# --- lines and cells ---


@dataclass(frozen=True, slots=True)
class _Line:
    number: int  # 1-based
    text: str


def _cells(lines: Sequence[_Line], delimiter: str) -> list[list[str]]:
    return [_split_line(line.text, delimiter) if line.text.strip() else [] for line in lines]


def _split_line(text: str, delimiter: str) -> list[str]:
    if '"' not in text and "\r" not in text:
        return text.split(delimiter)  # what the csv module makes of a line without quotes, several times faster
    try:
        return next(csv.reader([text], delimiter=delimiter, quotechar='"'), [])
    except csv.Error:  # a stray carriage return, a cell over the csv module's size limit: a sample only
        return text.split(delimiter)


def sniff_delimiter(texts: Sequence[str]) -> str:
    """The delimiter whose per-line count (outside quotes) is the same on the most lines."""
    lines = [_QUOTED_RE.sub("", t) for t in texts if t.strip()][:MAX_SNIFF_LINES]
    best: tuple[int, int, int] = (0, 0, 0)
    chosen = ","
    for preference, delimiter in enumerate(reversed(DELIMITERS)):
        counts = Counter(line.count(delimiter) for line in lines)
        counts.pop(0, None)
        if not counts:
            continue
        modal, support = counts.most_common(1)[0]
        score = (support, modal, preference)
        if score > best:
            best, chosen = score, delimiter
    if best[0] == 0:
        raise IngestError(
            "No table found: the file has no column separators (commas, semicolons or tabs). "
            "Upload a CSV or XLSX export with one column per field."
        )
    return chosen


# --- header ---


def find_header(rows: Sequence[Sequence[object]]) -> int | None:
    """Index of the header row: the nearest mostly-text row above the first row of numbers.

    The first row of numbers is looked for among rows as wide as most rows of the sample, so a title line
    that happens to hold a year or a date ("Report, Acme, 2025, Q1") is not taken for data. Title lines,
    dates and single-cell section headings above the header are preamble.
    """
    filled_counts = [sum(not is_blank_cell(c) for c in row) for row in rows]
    widths = Counter(len(row) for row, filled in zip(rows, filled_counts, strict=True) if filled >= 2)
    table_width = max(widths.items(), key=lambda item: (item[1], item[0]))[0] if widths else None

    def data_row(i: int, *, strict_width: bool) -> bool:
        row = rows[i]
        if filled_counts[i] < 2 or not any(is_number_cell(c) for c in row):
            return False
        return not strict_width or len(row) == table_width

    first_data = next((i for i in range(len(rows)) if data_row(i, strict_width=True)), None)
    if first_data is None:
        first_data = next((i for i in range(len(rows)) if data_row(i, strict_width=False)), None)
    if first_data is None:
        return None
    candidates = []
    for i in range(first_data - 1, -1, -1):
        filled = [c for c in rows[i] if not is_blank_cell(c)]
        numeric = sum(is_number_cell(c) for c in filled)
        if len(filled) >= 2 and numeric * 2 < len(filled):
            candidates.append(i)
    # Of the text rows just above the data, the one naming roles (Actual, Budget, Account...) is the header;
    # a units row ("USD", "USD") or a note between them is not.
    for i in candidates[:_HEADER_SEARCH_ROWS]:
        if _names_roles(rows[i]):
            return i
    return candidates[0] if candidates else None


_HEADER_SEARCH_ROWS = 5


def _names_roles(row: Sequence[object]) -> bool:
    from analyst.ingest.roles import classify_header

    # "Amount"-like words are left out: a units row ("USD") uses them too.
    return any(classify_header(_cell_text(c)).kind not in ("dimension", "amount") for c in row if not is_blank_cell(c))


def header_names(rows: Sequence[Sequence[object]], header: int, width: int) -> list[str]:
    """Column names from the header row, joined with a super-header row above it when that row labels groups
    of numeric columns ("Jan 2025" over "Actual, Budget"); blank names become ``Column N``; duplicates get
    ``(2)``."""
    cells = [_cell_text(c) for c in rows[header]] + [""] * width
    names = cells[:width]
    if header > 0:
        above = [_cell_text(c) for c in rows[header - 1]] + [""] * width
        above = above[:width]
        filled = [i for i, t in enumerate(above) if t]
        # A label header merged down over both rows ("Account" in A1:A2) leaves its cell in the header row blank.
        merged_down = {i for i in filled if not names[i]}
        over_names = [i for i in filled if names[i]]
        groups = (
            over_names
            and (filled[0] > 0 or filled[0] in merged_down)
            and len({above[i] for i in over_names}) >= 2
        )
        if groups and not any(is_number_cell(above[i]) for i in filled):
            group = ""
            for i in range(width):
                if i in merged_down:
                    names[i], group = above[i], ""
                    continue
                group = above[i] or group
                if i >= filled[0] and group and names[i]:
                    names[i] = f"{group} {names[i]}"
    seen: Counter[str] = Counter()
    result = []
    for i, name in enumerate(names):
        name = " ".join(name.split()) or f"Column {i + 1}"
        seen[name] += 1
        result.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return result


ACCOUNT_NAME = "Account"


def name_label_column(names: list[str], text_columns: set[str] | frozenset[str]) -> list[str]:
    """QuickBooks leaves the header of its account column blank: call a blank-headed first text column
    "Account" when no other header names the account."""
    from analyst.ingest.roles import account_rank

    first = names[0] if names else None
    if first != "Column 1" or first not in text_columns:
        return names
    if any(account_rank(n) == 0 for n in names) or ACCOUNT_NAME in names:
        return names
    return [ACCOUNT_NAME, *names[1:]]


def _cell_text(cell: object) -> str:
    if is_blank_cell(cell):
        return ""
    if isinstance(cell, datetime | date):
        return f"{cell.year}-{cell.month:02d}"  # a month header typed as a date in Excel
    if isinstance(cell, float) and cell.is_integer():
        return str(int(cell))
    return str(cell).strip()


# --- the whole sniff ---


@dataclass(frozen=True, slots=True)
class Sample:
    """The start and the end of a file, as text: all that sniffing reads."""

    head: str  # from the first byte, cut after the last complete line
    tail: str | None  # the last few KB from a line start; None when ``head`` is the whole file
    complete: bool  # ``head`` is the whole file


def take_sample(head: bytes, tail: bytes | None, encoding: str) -> Sample:
    """Decode the first and last bytes of a file; ``tail`` is None when ``head`` holds the whole file."""
    codec = "utf-8" if encoding == "utf-8-sig" else encoding
    if encoding == "utf-8-sig" and head.startswith(codecs.BOM_UTF8):
        head = head[len(codecs.BOM_UTF8) :]
    if tail is None:
        return Sample(head.decode(codec, errors="replace"), None, True)
    cut = head.rfind(b"\n") + 1
    if cut <= 0:
        raise IngestError("The first line of the file is longer than 64 KB: this does not look like a table.")
    start = tail.find(b"\n") + 1
    return Sample(head[:cut].decode(codec, errors="replace"), tail[start:].decode(codec, errors="replace"), False)


def _text_lines(text: str, first_number: int, limit: int | None = None) -> list[_Line]:
    """The lines of ``text`` (at most ``limit`` of them), numbered from ``first_number``."""
    pieces = text.split("\n", -1 if limit is None else limit)
    if limit is not None and len(pieces) > limit:
        pieces.pop()  # the rest of the text, unsplit
    elif pieces and pieces[-1] == "":
        pieces.pop()  # a final newline ends the last line; it does not start a row
    return [_Line(first_number + i, piece.rstrip("\r")) for i, piece in enumerate(pieces)]


def sniff_text(sample: Sample, encoding: str) -> TextTable:
    """Locate the table from the start and end of a file (``encoding`` is only recorded)."""
    # With a separate tail, lines past the sniffing window are never looked at: don't split them.
    head = _text_lines(sample.head, 1, None if sample.tail is None else MAX_SNIFF_LINES)
    delimiter = sniff_delimiter([line.text for line in head[:MAX_SNIFF_LINES]])
    rows = _cells(head[:MAX_SNIFF_LINES], delimiter)
    header = find_header(rows)
    if header is None:
        raise IngestError(
            "No header row with numbers below it was found. The file needs a row of column names "
            "(for example Account, Budget, Actual) above rows that contain amounts."
        )
    body_rows = [r for r in rows[header + 1 :] if r]
    widths = Counter(len(r) for r in body_rows)
    width = max([len(rows[header]), *widths]) if widths else len(rows[header])
    names = header_names(rows, header, width)

    text_columns = set()
    for col, name in enumerate(names):
        filled = [r[col] for r in body_rows[:200] if col < len(r) and not is_blank_cell(r[col])]
        numbers = sum(is_number_cell(c) for c in filled)
        if filled and numbers * 2 < len(filled):
            text_columns.add(name)
    renamed = name_label_column(names, text_columns)
    if renamed is not names:
        text_columns = (text_columns - {names[0]}) | {renamed[0]}
        names = renamed

    if sample.tail is None:
        tail_lines, tail_rows = head[header + 1 :], rows[header + 1 :]
        if len(rows) < len(head):
            tail_rows = rows[header + 1 :] + _cells(head[len(rows) :], delimiter)
    else:
        tail_lines = _text_lines(sample.tail, 0)
        tail_rows = _cells(tail_lines, delimiter)
    return TextTable(
        encoding=encoding,
        delimiter=delimiter,
        header_line=head[header].number,
        names=names,
        first_body_line=head[header].number + 1,
        footer_lines=_footer_lines(tail_rows, width),
        text_columns=frozenset(text_columns),
        sample_rows=tuple(tuple(r) for r in body_rows[:200]),
        preamble=tuple(line.text for line in head[: max(0, header)][:20]),
    )


def _footer_lines(rows: list[list[str]], width: int) -> int:
    """How many trailing lines are footer ("Accrual Basis ...", notes) or blank, counted from the end."""
    count = 0
    for cells in reversed(rows):
        blank = all(is_blank_cell(c) for c in cells)
        footer = not any(is_number_cell(c) for c in cells) and len(cells) != width
        if not (blank or footer):
            break
        count += 1
    return count
