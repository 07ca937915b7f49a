"""Fuzzing the readers: seeded random mutations of valid CSV and XLSX exports, each read (and reported on) in
the real worker pool, under its time and memory limits. Every case ends in a dataset with a report, or a
readable message; none may crash the reader, hit a limit, or fall through to the catch-all.

``VARIANCE_FUZZ_CASES`` (default 120 per format) and ``VARIANCE_FUZZ_SEED`` run a longer or another campaign.
"""

from __future__ import annotations

import io
import os
import random
import zipfile
from collections.abc import AsyncIterator
from datetime import datetime

import openpyxl
import pytest

from bot.workers import WorkerFailed, WorkerPool
from tests.bot.helpers import SMALL_CSV, example_bytes

CASES = int(os.environ.get("VARIANCE_FUZZ_CASES", "120"))
SEED = int(os.environ.get("VARIANCE_FUZZ_SEED", "20251124"))

# Tokens that real exports and broken ones put in cells.
TOKENS = [
    b",", b";", b"\t", b'"', b'""', b"\n", b"\r\n", b"\x00", b"\xff\xfe", b"\xef\xbb\xbf", b"(", b")", b"-", b"%",
    b"$", b"\xe2\x82\xac", b"1e999", b"-1e999", b"nan", b"inf", b"NaN", b"9" * 40, b"0.000000001", b"1,234.56",
    b"1.234,56", b"(1,234.00)", b"270K", b"Total", b"Subtotal", b"=SUM(A1:A9)", b"2025-13-45", b"Q5 2025", b"#REF!",
    b"<!channel>", b"   ", b"\xd0\x98\xd1\x82\xd0\xbe\xd0\xb3\xd0\xbe",
]
XML_TOKENS = [
    "<", ">", "&", "&amp;", '"', "</c>", "<c>", "<row>", "</row>", '<row r="0">', '<row r="-5">', '<row r="1e9">',
    '<c r="A0">', '<c r="XFE1">', '<c r="ZZZZ9">', '<c t="s"><v>99999</v></c>', '<c t="d"><v>garbage</v></c>',
    '<c t="b"><v>7</v></c>', '<c t="e"><v>#DIV/0!</v></c>', "<v>1e400</v>", "<v>nan</v>", "<v>-</v>",
    '<c t="inlineStr"><is><r><t>run</t></r></is></c>', '<dimension ref="A1:XFD1048576"/>', '<c s="999999"><v>1</v></c>',
    "<![CDATA[x]]>", "<!-- c -->", "<?pi x?>", "\x00", "\ufffe",
]


# The loader's catch-all for an exception no reader expected: readable, but a sign of a gap to close.
CATCH_ALL = "The file could not be read as a table. Check that it is a CSV or XLSX export"


def read_case(content: bytes, filename: str) -> tuple[str, str, str | None]:
    """Worker job: ``("dataset", report head, None)``, ``("error", message, cause)`` where ``cause`` names the
    unexpected exception behind the loader's catch-all message, or ``("crash", type, None)``."""
    from analyst.dataset import IngestError
    from analyst.ingest import load_dataset
    from bot.files import build_report_markdown

    try:
        dataset = load_dataset(content, filename=filename)
    except IngestError as error:
        cause = error.__cause__
        unexpected = str(error).startswith(CATCH_ALL) and cause is not None
        return "error", str(error), type(cause).__name__ if unexpected else None
    except BaseException as error:
        return "crash", type(error).__name__, None
    try:
        return "dataset", build_report_markdown(dataset)[:200], None
    except BaseException as error:
        return "crash", f"report: {type(error).__name__}: {error}"[:300], None


def base_xlsx() -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["Budget vs Actual FY2025"])
    sheet.append(["Month", "Department", "Account", "Budget", "Actual"])
    for month in (1, 2, 3):
        for department, budget, actual in (("Sales", 1000, 1150.5), ("Marketing", 500, 650), ("IT", 200, 180.25)):
            sheet.append([datetime(2025, month, 28), department, "Opex", budget, actual])
    sheet.append(["Total", None, None, 5100, 5942.25])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def mutate_bytes(data: bytes, rng: random.Random, tokens: list[bytes]) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        if not buf:
            buf.extend(rng.choice(tokens))
            continue
        at = rng.randrange(len(buf))
        action = rng.randrange(7)
        if action == 0:
            buf[at] = rng.randrange(256)
        elif action == 1:
            buf[at:at] = rng.choice(tokens)
        elif action == 2:
            del buf[at : at + rng.randint(1, 64)]
        elif action == 3:
            end = min(len(buf), at + rng.randint(1, 400))
            buf[at:at] = buf[at:end] * rng.randint(1, 50)  # a duplicated run of lines or cells
        elif action == 4:
            del buf[at:]
        elif action == 5:
            buf[at:at] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        else:
            other = rng.randrange(len(buf))
            buf[at], buf[other] = buf[other], buf[at]
    return bytes(buf)


def mutate_xlsx(data: bytes, rng: random.Random) -> bytes:
    """Mutate the XML inside the archive (what reaches the parser), or now and then the archive itself."""
    if rng.random() < 0.15:
        return mutate_bytes(data, rng, [b"PK\x03\x04", b"\x00" * 8, b"\xff" * 8])
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        parts = {info.filename: archive.read(info.filename) for info in archive.infolist()}
    targets = [n for n in parts if n.startswith("xl/worksheets/")] * 4 + [n for n in parts if n.endswith(".xml")]
    name = rng.choice(targets)
    tokens = [t.encode() for t in XML_TOKENS]
    parts[name] = mutate_bytes(parts[name], rng, tokens)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for part, body in parts.items():
            archive.writestr(part, body)
    return out.getvalue()


@pytest.fixture
async def fuzz_pool() -> AsyncIterator[WorkerPool]:
    pool = WorkerPool(2, job_timeout_s=30, memory_limit_mb=384)
    await pool.warm_up()
    yield pool
    pool.shutdown()


async def run_campaign(pool: WorkerPool, cases: list[tuple[bytes, str]]) -> dict[str, int]:
    import asyncio

    outcomes: dict[str, int] = {}
    problems: list[str] = []

    async def one(index: int, content: bytes, filename: str) -> None:
        try:
            kind, detail, cause = await pool.run(read_case, content, filename)
        except WorkerFailed as error:
            problems.append(f"case {index} ({filename}, seed {SEED}): {type(error).__name__}: {error}")
            return
        outcomes[kind] = outcomes.get(kind, 0) + 1
        if kind == "crash" or cause is not None:
            problems.append(f"case {index} ({filename}, seed {SEED}): {kind} {detail!r} cause={cause}")
        elif kind == "error" and (not detail.strip() or "Traceback" in detail or len(detail) > 600):
            problems.append(f"case {index}: unreadable message {detail[:200]!r}")

    await asyncio.gather(*(one(i, content, name) for i, (content, name) in enumerate(cases)))
    assert not problems, "\n".join(sorted(problems)[:20])
    return outcomes


@pytest.mark.timeout(600)
async def test_mutated_csv_exports_always_read_or_explain(fuzz_pool: WorkerPool) -> None:
    rng = random.Random(SEED)
    seeds = [SMALL_CSV, example_bytes()[:6000], example_bytes().decode().replace(",", ";").encode("cp1252")[:6000]]
    tokens = TOKENS
    cases = [(mutate_bytes(rng.choice(seeds), rng, tokens), "q3.csv") for _ in range(CASES)]
    outcomes = await run_campaign(fuzz_pool, cases)
    assert outcomes.get("dataset", 0) > 0 and outcomes.get("error", 0) > 0  # the campaign reached both ends


@pytest.mark.timeout(600)
async def test_mutated_xlsx_exports_always_read_or_explain(fuzz_pool: WorkerPool) -> None:
    rng = random.Random(SEED + 1)
    seed = base_xlsx()
    cases = [(mutate_xlsx(seed, rng), "bva.xlsx") for _ in range(CASES)]
    outcomes = await run_campaign(fuzz_pool, cases)
    assert outcomes.get("dataset", 0) > 0 and outcomes.get("error", 0) > 0
