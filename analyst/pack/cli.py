"""``variance-bot pack FILE -o pack.xlsx``: the month-end pack from the terminal.

Numbers and the bridge chart need nothing; commentary is drafted when ``OPENAI_API_KEY`` is set (settings as for
``variance-bot ask``), with a progress bar on stderr while the lines are drafted.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from analyst.dataset import IngestError
from analyst.engine import AnalysisError, AnalysisOptions, Materiality, MaterialityMode


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="variance-bot pack",
        description="Month-end variance pack (XLSX): summary, bridge chart, material lines with commentary.",
    )
    parser.add_argument("file", help="a CSV or XLSX file")
    parser.add_argument("-o", "--output", required=True, metavar="XLSX", help="where to write the pack")
    defaults = Materiality()
    parser.add_argument(
        "--materiality-amount", type=float, default=None, metavar="X", help="default: scaled to the file's amounts"
    )
    parser.add_argument("--materiality-percent", type=float, default=defaults.percent, metavar="Y")
    parser.add_argument(
        "--materiality-mode", choices=[m.value for m in MaterialityMode], default=defaults.mode.value
    )
    parser.add_argument("--no-commentary", action="store_true", help="numbers and chart only, no model calls")
    return parser


class ProgressBar:
    """``[#####.....] 12 of 31 lines`` on one terminal line (plain lines when stderr is not a terminal)."""

    def __init__(self, stream: TextIO | None = None, width: int = 30) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.width = width
        self.tty = self.stream.isatty()

    def __call__(self, done: int, total: int) -> None:
        filled = 0 if total == 0 else round(self.width * done / total)
        text = f"Drafting commentary [{'#' * filled}{'.' * (self.width - filled)}] {done} of {total} lines"
        self.stream.write(("\r" + text) if self.tty else text + "\n")
        if self.tty and done >= total:
            self.stream.write("\n")
        self.stream.flush()


def _fail(message: str, code: int = 2) -> int:
    print(f"variance-bot pack: {message}", file=sys.stderr)
    return code


def cli_main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(list(argv))
    if (args.materiality_amount is not None and args.materiality_amount < 0) or args.materiality_percent < 0:
        return _fail("materiality thresholds must be zero or positive.")
    defaults = Materiality()
    opts = AnalysisOptions(
        materiality=Materiality(
            amount=defaults.amount if args.materiality_amount is None else args.materiality_amount,
            percent=args.materiality_percent,
            mode=MaterialityMode(args.materiality_mode),
            auto_amount=args.materiality_amount is None,
        )
    )
    settings = None
    if not args.no_commentary and os.environ.get("OPENAI_API_KEY"):
        from analyst.agent.settings import AgentSettings, SettingsError

        try:
            settings = AgentSettings.from_env()
        except SettingsError as exc:
            return _fail(str(exc))
    try:
        from analyst.ingest import load_dataset
        from analyst.pack import build_pack

        ds = load_dataset(os.fspath(args.file), filename=os.path.basename(args.file))
        pack = asyncio.run(build_pack(ds, opts, settings=settings, progress=ProgressBar()))
        with open(args.output, "wb") as out:
            out.write(pack.xlsx)
    except IngestError as exc:
        return _fail(f"cannot read {args.file}: {exc}")
    except AnalysisError as exc:
        return _fail(str(exc))
    except FileNotFoundError:
        return _fail(f"no such file: {args.file}")
    except OSError as exc:
        return _fail(f"cannot write {args.output}: {exc.strerror or exc}")
    print(f"Wrote {args.output}: {pack.lines:,} material lines. {pack.status}", file=sys.stderr)
    return 0
