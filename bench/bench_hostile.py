"""Hostile and big files through the real bot: peak memory of the bot's whole process tree, and the time until
the person who sent the file has a final reply, against a plain read of the same file in the same run.

    .venv/bin/python bench/bench_hostile.py         # the 1.6 KB dimension bomb, a 20 MB CSV ledger, a 5 MB XLSX one
    .venv/bin/python bench/bench_hostile.py --csv-mb 20 --xlsx-mb 20

The bot runs as ``variance-bot serve --http`` in its own process (with its fork server and reader workers, all
settings at their defaults), talking to a minimal Slack stand-in served by this script: ``chat.postMessage``
and ``chat.update`` recorded, the file served from ``url_private_download``. A DM ``file_share`` event, signed
like Slack signs it, starts each read; the reply time runs until the final edit (``markdown_text``, no live
blocks) arrives. Memory is sampled every 20 ms over the bot process and all its descendants: the sum of RSS
(which counts pages the workers share with the fork server once per process) and the sum of PSS (shared pages
split between the processes sharing them: what the tree really costs).

Baselines, each in a fresh process with a 1 GB address-space limit and a timeout:
- XLSX: openpyxl ``load_workbook(read_only=True)``, every row of ``iter_rows(values_only=True)`` kept as a
  list: what the reader did before rows were streamed (no table detection, no dataset);
- CSV: a plain ``pandas.read_csv`` of the file.

The ledgers are generated once and cached in ``bench/.data/`` (the CSV by ``bench_ingest``; the XLSX written
the way Excel writes one: shared strings, a date style).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import io
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = ROOT / "bench" / ".data"
SECRET = "bench-signing-secret"
TOKEN = "xoxb-bench"
MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
PKG = "http://schemas.openxmlformats.org/package/2006/relationships"
XML = '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'


# ---------------------------------------------------------------- files


def _package(sheet: str, shared: list[str] | None, styles: str | None = None) -> bytes:
    types = [
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>',
        '<Default Extension="xml" ContentType="application/xml"/>',
        '<Override PartName="/xl/workbook.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>',
        '<Override PartName="/xl/worksheets/sheet1.xml" '
        'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/>',
    ]
    rels = [f'<Relationship Id="rId1" Type="{REL}/worksheet" Target="worksheets/sheet1.xml"/>']
    if shared is not None:
        types.append(
            '<Override PartName="/xl/sharedStrings.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sharedStrings+xml"/>'
        )
        rels.append(f'<Relationship Id="rId2" Type="{REL}/sharedStrings" Target="sharedStrings.xml"/>')
    if styles is not None:
        types.append(
            '<Override PartName="/xl/styles.xml" '
            'ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.styles+xml"/>'
        )
        rels.append(f'<Relationship Id="rId3" Type="{REL}/styles" Target="styles.xml"/>')
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        ct = "http://schemas.openxmlformats.org/package/2006/content-types"
        archive.writestr("[Content_Types].xml", f'{XML}<Types xmlns="{ct}">{"".join(types)}</Types>')
        archive.writestr(
            "_rels/.rels",
            f'{XML}<Relationships xmlns="{PKG}"><Relationship Id="rId1" Type="{REL}/officeDocument" '
            'Target="xl/workbook.xml"/></Relationships>',
        )
        archive.writestr(
            "xl/workbook.xml",
            f'{XML}<workbook xmlns="{MAIN}" xmlns:r="{REL}"><sheets>'
            '<sheet name="Ledger" sheetId="1" r:id="rId1"/></sheets></workbook>',
        )
        book_rels = f'{XML}<Relationships xmlns="{PKG}">{"".join(rels)}</Relationships>'
        archive.writestr("xl/_rels/workbook.xml.rels", book_rels)
        archive.writestr("xl/worksheets/sheet1.xml", sheet)
        if shared is not None:
            items = "".join(f"<si><t>{escape(s)}</t></si>" for s in shared)
            archive.writestr(
                "xl/sharedStrings.xml",
                f'{XML}<sst xmlns="{MAIN}" count="{len(shared)}" uniqueCount="{len(shared)}">{items}</sst>',
            )
        if styles is not None:
            archive.writestr("xl/styles.xml", styles)
    return out.getvalue()


def dimension_bomb() -> bytes:
    """1.6 KB: declares ``A1:XFD1048576``; a header row and one cell in the sheet's last cell."""
    names = zip("ABC", ["Account", "Budget", "Actual"], strict=True)
    header = "".join(f'<c r="{c}1" t="inlineStr"><is><t>{t}</t></is></c>' for c, t in names)
    rows = f'<row r="1">{header}</row><row r="1048576"><c r="XFD1048576"><v>1</v></c></row>'
    sheet = f'{XML}<worksheet xmlns="{MAIN}"><dimension ref="A1:XFD1048576"/><sheetData>{rows}</sheetData></worksheet>'
    return _package(sheet, None)


def ledger_xlsx(target_mb: float) -> Path:
    """A ledger export of about ``target_mb`` MB, written the way Excel writes one (shared strings, date style)."""
    path = DATA_DIR / f"ledger_{target_mb:g}mb.xlsx"
    if path.exists():
        return path
    import numpy as np

    DATA_DIR.mkdir(parents=True, exist_ok=True)
    rows = int(target_mb * 1_048_576 / 40)  # about 40 compressed bytes per row
    rng = np.random.default_rng(20251124)
    departments = ["Sales", "Marketing", "Engineering", "Finance", "Operations", "HR"]
    accounts = ["6100 Advertising", "6200 Salaries", "6300 Rent", "6400 Travel", "6500 Software", "4000 Revenue"]
    memos = [f"INV-{i:06d}" for i in range(60_000)]
    shared = ["Date", "Department", "Account", "Memo", "Budget", "Actual", *departments, *accounts, *memos]
    dep0, acc0, memo0 = 6, 6 + len(departments), 6 + len(departments) + len(accounts)
    serial = 45658 + rng.integers(0, 365, rows)  # 2025 as Excel day numbers
    dep = rng.integers(0, len(departments), rows) + dep0
    acc = rng.integers(0, len(accounts), rows) + acc0
    memo = rng.integers(0, len(memos), rows) + memo0
    budget = rng.integers(100_00, 90_000_00, rows) / 100
    actual = np.round(budget * rng.uniform(0.8, 1.2, rows), 2)
    header = "".join(f'<c r="{c}1" t="s"><v>{i}</v></c>' for i, c in enumerate("ABCDEF"))
    parts = [f'{XML}<worksheet xmlns="{MAIN}"><dimension ref="A1:F{rows + 1}"/><sheetData><row r="1">{header}</row>']
    for i in range(rows):
        r = i + 2
        parts.append(
            f'<row r="{r}"><c r="A{r}" s="1"><v>{serial[i]}</v></c><c r="B{r}" t="s"><v>{dep[i]}</v></c>'
            f'<c r="C{r}" t="s"><v>{acc[i]}</v></c><c r="D{r}" t="s"><v>{memo[i]}</v></c>'
            f'<c r="E{r}"><v>{budget[i]}</v></c><c r="F{r}"><v>{actual[i]}</v></c></row>'
        )
    parts.append("</sheetData></worksheet>")
    styles = (
        f'{XML}<styleSheet xmlns="{MAIN}"><fonts count="1"><font><sz val="11"/><name val="Calibri"/></font></fonts>'
        '<fills count="1"><fill><patternFill patternType="none"/></fill></fills>'
        '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
        '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
        '<cellXfs count="2"><xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
        '<xf numFmtId="14" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/></cellXfs>'
        "</styleSheet>"
    )
    path.write_bytes(_package("".join(parts), shared, styles))
    return path


# ---------------------------------------------------------------- memory of a process tree


def _tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, []))
    return found


def _tree_memory_kb(root: int) -> tuple[int, int]:
    """(sum of RSS, sum of PSS) over ``root`` and its descendants, in KB."""
    rss = pss = 0
    for pid in _tree(root):
        try:
            with open(f"/proc/{pid}/smaps_rollup") as rollup:
                for line in rollup:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except OSError:
            continue
    return rss, pss


class PeakSampler:
    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak_rss_kb = self.peak_pss_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        rss, pss = _tree_memory_kb(self.pid)
        self.peak_rss_kb = max(self.peak_rss_kb, rss)
        self.peak_pss_kb = max(self.peak_pss_kb, pss)

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self._sample()

    def __enter__(self) -> PeakSampler:
        self.peak_rss_kb = self.peak_pss_kb = 0
        self._sample()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._stop.clear()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


# ---------------------------------------------------------------- a minimal Slack for the bot


class SlackStandIn:
    """Just enough of Slack's Web API for a file DM: auth, file info and download, posting and editing."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.messages: dict[str, dict[str, Any]] = {}
        self.final = asyncio.Event()
        self._ts = 1_700_000_000.0
        self.url = ""

    def _next_ts(self) -> str:
        self._ts += 0.0001
        return f"{self._ts:.6f}"

    async def api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.content_type == "application/json":
            params = await request.json()
        else:
            params = dict(await request.post())
        if method == "auth.test":
            return web.json_response({"ok": True, "user_id": "UBOT", "bot_id": "BBOT", "team_id": "T1"})
        if method in ("chat.postMessage", "chat.update"):
            ts = params.get("ts") or self._next_ts()
            self.messages[ts] = params
            final = params.get("markdown_text") is not None and not params.get("blocks")
            if final:
                self.final.set()
            return web.json_response({"ok": True, "channel": params.get("channel"), "ts": ts})
        if method in ("conversations.replies", "conversations.history"):
            return web.json_response({"ok": True, "messages": [], "has_more": False})
        if method == "conversations.info":
            return web.json_response({"ok": True, "channel": {"id": params.get("channel"), "is_im": True}})
        return web.json_response({"ok": True})

    async def download(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return web.Response(status=403)
        data = self.files[request.match_info["file"]]
        return web.Response(body=data, content_type="application/octet-stream")

    def file_object(self, file_id: str, name: str, data: bytes) -> dict[str, Any]:
        self.files[file_id] = data
        return {
            "id": file_id,
            "name": name,
            "title": name,
            "filetype": name.rsplit(".", 1)[-1],
            "mimetype": "text/csv" if name.endswith(".csv") else "application/octet-stream",
            "size": len(data),
            "url_private_download": f"{self.url}/files/{file_id}/{name}",
        }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _send_file(http: Any, bot_url: str, slack: SlackStandIn, file_id: str, name: str, data: bytes) -> None:
    ts = f"{time.time():.6f}"
    event = {
        "type": "message",
        "subtype": "file_share",
        "user": "U0USER",
        "text": "",
        "ts": ts,
        "channel": "D0BENCH",
        "channel_type": "im",
        "event_ts": ts,
        "team": "T1",
        "files": [slack.file_object(file_id, name, data)],
        "upload": False,
    }
    body = json.dumps(
        {
            "token": "x",
            "team_id": "T1",
            "api_app_id": "A1",
            "event": event,
            "type": "event_callback",
            "event_id": f"Ev{file_id}",
            "event_time": int(time.time()),
            "authorizations": [{"team_id": "T1", "user_id": "UBOT", "is_bot": True}],
        }
    )
    stamp = str(int(time.time()))
    signature = "v0=" + hmac.new(SECRET.encode(), f"v0:{stamp}:{body}".encode(), hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature}
    async with http.post(f"{bot_url}/slack/events", data=body.encode(), headers=headers) as response:
        assert response.status == 200, response.status


async def bot_runs(cases: list[tuple[str, bytes]], timeout_s: float) -> list[dict[str, Any]]:
    import aiohttp

    slack = SlackStandIn()
    app = web.Application(client_max_size=1 << 30)
    app.router.add_route("*", "/api/{method}", slack.api)
    app.router.add_get("/files/{file}/{name}", slack.download)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    slack_port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", slack_port).start()
    slack.url = f"http://127.0.0.1:{slack_port}"
    bot_port = _free_port()
    data_dir = tempfile.mkdtemp(prefix="variance-bench-")
    env = dict(
        os.environ,
        SLACK_BOT_TOKEN=TOKEN,
        SLACK_SIGNING_SECRET=SECRET,
        SLACK_API_URL=f"{slack.url}/api/",
        VARIANCE_DATA_DIR=data_dir,
        HOME=data_dir,
        OPENAI_API_KEY="sk-bench-unused",
        VARIANCE_EDIT_INTERVAL_S="0.05",
    )
    command = [sys.executable, "-m", "bot", "serve", "--http", "--port", str(bot_port), "--host", "127.0.0.1"]
    bot = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    results: list[dict[str, Any]] = []
    try:
        async with aiohttp.ClientSession() as http:
            bot_url = f"http://127.0.0.1:{bot_port}"
            deadline = time.monotonic() + 60
            while True:  # the bot is up once /healthz answers (its readers are warmed at start)
                try:
                    async with http.get(f"{bot_url}/healthz") as response:
                        if response.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                if time.monotonic() > deadline or bot.poll() is not None:
                    raise RuntimeError("the bot did not start")
                await asyncio.sleep(0.1)
            idle_rss_kb, idle_pss_kb = _tree_memory_kb(bot.pid)
            for n, (name, data) in enumerate(cases):
                slack.final.clear()
                with PeakSampler(bot.pid) as sampler:
                    started = time.monotonic()
                    await _send_file(http, bot_url, slack, f"F{n:04d}", name, data)
                    await asyncio.wait_for(slack.final.wait(), timeout_s)
                    elapsed = time.monotonic() - started
                reply = next(m for m in reversed(slack.messages.values()) if m.get("markdown_text"))
                results.append(
                    {
                        "name": name,
                        "bytes": len(data),
                        "reply_s": elapsed,
                        "peak_rss_mb": sampler.peak_rss_kb / 1024,
                        "peak_pss_mb": sampler.peak_pss_kb / 1024,
                        "idle_rss_mb": idle_rss_kb / 1024,
                        "idle_pss_mb": idle_pss_kb / 1024,
                        "processes": len(_tree(bot.pid)),
                        "reply": " ".join(str(reply["markdown_text"]).split())[:110],
                    }
                )
    finally:
        bot.terminate()
        try:
            bot.wait(15)
        except subprocess.TimeoutExpired:
            bot.kill()
        await runner.cleanup()
    return results


_BASELINE = """
import resource, sys, time, warnings
limit = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
started = time.monotonic()
outcome = "read"
detail = ""
try:
    if sys.argv[1].endswith(".csv"):
        import pandas as pd
        frame = pd.read_csv(sys.argv[1])
        detail = f"{len(frame):,} rows"
    else:
        import openpyxl
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            book = openpyxl.load_workbook(sys.argv[1], read_only=True, data_only=True)
        rows = [list(row) for row in book.worksheets[0].iter_rows(values_only=True)]
        detail = f"{len(rows):,} rows"
except MemoryError:
    outcome = "MemoryError"
print(outcome, time.monotonic() - started, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, detail)
"""


def baseline(path: Path, limit_mb: int, timeout_s: float) -> dict[str, Any]:
    try:
        done = subprocess.run(
            [sys.executable, "-c", _BASELINE, str(path), str(limit_mb << 20)],
            capture_output=True,
            text=True,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired:
        return {"outcome": f"still running at {timeout_s:g} s", "seconds": timeout_s, "peak_mb": None}
    outcome, seconds, peak_kb, *detail = done.stdout.split()
    what = f"{outcome} {' '.join(detail)}".strip()
    if outcome == "MemoryError":
        what = f"MemoryError at the {limit_mb:,} MB limit"
    return {"outcome": what, "seconds": float(seconds), "peak_mb": int(peak_kb) / 1024}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--csv-mb", type=float, default=20.0, help="size of the CSV ledger (default 20)")
    parser.add_argument("--xlsx-mb", type=float, default=5.0, help="size of the XLSX ledger (default 5)")
    parser.add_argument("--baseline-limit-mb", type=int, default=1024)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from bench.bench_ingest import ledger_path

    csv_path = ledger_path(int(args.csv_mb * 1_048_576 / 50))  # about 50 bytes per row
    xlsx_path = ledger_xlsx(args.xlsx_mb)
    with tempfile.TemporaryDirectory() as tmp:
        bomb_path = Path(tmp) / "bomb.xlsx"
        bomb_path.write_bytes(dimension_bomb())
        files = [(bomb_path, "bomb.xlsx"), (csv_path, "ledger.csv"), (xlsx_path, "ledger.xlsx")]
        for path, name in files:
            print(f"{name}: {path.stat().st_size / 1_048_576:,.3f} MB ({path.name})")
        runs = asyncio.run(bot_runs([(name, path.read_bytes()) for path, name in files], timeout_s=600))
        bases = [baseline(path, args.baseline_limit_mb, 600) for path, _ in files]
    print()
    print(
        f"{'file':<12} {'bot: reply':>10} {'peak RSS sum':>13} {'peak PSS sum':>13}   "
        "plain read, fresh process (outcome, time, peak RSS)"
    )
    for run, base in zip(runs, bases, strict=True):
        peak = f"{base['peak_mb']:,.0f} MB" if base["peak_mb"] is not None else "n/a"
        print(
            f"{run['name']:<12} {run['reply_s']:>9.2f}s {run['peak_rss_mb']:>10,.0f} MB {run['peak_pss_mb']:>10,.0f} MB"
            f"   {base['outcome']}, {base['seconds']:.2f} s, {peak}"
        )
    first = runs[0]
    print(
        f"\nbot tree at rest ({first['processes']} processes: bot, fork server, readers): "
        f"RSS sum {first['idle_rss_mb']:,.0f} MB, PSS sum {first['idle_pss_mb']:,.0f} MB"
    )
    for run in runs:
        print(f"reply to {run['name']}: {run['reply']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
