"""``variance-bot report FILE``: the command line of the deterministic report (0 on success, 2 on a problem)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from analyst.dataset import Dataset, IngestError, IngestLimits, RoleOverrides
from analyst.engine.errors import AnalysisError
from analyst.engine.options import AnalysisOptions, Materiality, MaterialityMode
from analyst.report.model import Report, build_report


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="variance-bot report",
        description="Budget-vs-actual report of a CSV or XLSX export (no Slack or OpenAI account needed).",
    )
    parser.add_argument("file", help="a CSV or XLSX file")
    parser.add_argument("--by", action="append", default=[], metavar="COLUMN", help="group by COLUMN (repeatable)")
    parser.add_argument("--actual", metavar="COLUMN", help="use COLUMN as the actual amounts")
    parser.add_argument("--reference", metavar="COLUMN", help="use COLUMN as the budget/plan/forecast/prior amounts")
    parser.add_argument("--period", metavar="COLUMN", help="use COLUMN as the period")
    parser.add_argument("--account", metavar="COLUMN", help="use COLUMN as the account (line item)")
    parser.add_argument("--sheet", metavar="NAME", help="read this sheet of a workbook (default: the best one)")
    parser.add_argument(
        "--max-file-mb",
        type=float,
        metavar="MB",
        default=_env_file_limit_mb(),
        help="refuse input files larger than this (default $VARIANCE_MAX_FILE_MB or 50)",
    )
    defaults = Materiality()
    parser.add_argument(
        "--materiality-amount",
        type=float,
        default=None,
        metavar="X",
        help="amount threshold (default: 10,000 in currency units, scaled to the file's units and capped at 1%% "
        "of the total reference)",
    )
    parser.add_argument("--materiality-percent", type=float, default=defaults.percent, metavar="Y")
    parser.add_argument("--materiality-mode", choices=[m.value for m in MaterialityMode], default=defaults.mode.value)
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print JSON")
    output.add_argument("--markdown", action="store_true", help="print Markdown (as the Slack bot does)")
    parser.add_argument("--max-bytes", type=int, metavar="N", help="cap the JSON output at N bytes")
    parser.add_argument(
        "--chart",
        choices=["bridge", "bars", "monthly"],
        help="draw a PNG chart instead of the report (with -o); --by picks the dimension of bars and monthly",
    )
    parser.add_argument("-o", "--output", metavar="PNG", help="where to write the chart")
    return parser


def _env_file_limit_mb() -> float:
    try:
        return float(os.environ.get("VARIANCE_MAX_FILE_MB") or 50)
    except ValueError:
        return 50.0


def _fit_json(report: Report, max_bytes: int | None) -> str | None:
    """The JSON text, with lists capped as much as needed to fit ``max_bytes`` (None when nothing fits)."""
    caps: list[int | None] = [None] if max_bytes is None else [None, 1000, 200, 50, 20, 10, 5, 3, 1, 0]
    for cap in caps:
        text = json.dumps(report.to_json_dict(max_rows=cap), ensure_ascii=False, indent=None)
        if max_bytes is None or len(text.encode("utf-8")) + 1 <= max_bytes:
            return text
    return None


def _fail(message: str, code: int = 2) -> int:
    print(f"variance-bot report: {message}", file=sys.stderr)
    return code


def _write_chart(ds: Dataset, args: argparse.Namespace, opts: AnalysisOptions) -> int:
    from analyst.charts import render_chart  # matplotlib loads only when a chart is asked for

    chart = render_chart(ds, args.chart, opts, by=args.by[0] if args.by else None)
    try:
        with open(args.output, "wb") as out:
            out.write(chart.png)
    except OSError as exc:
        return _fail(f"cannot write {args.output}: {exc.strerror or exc}")
    print(f"{chart.title}: {args.output} ({len(chart.png) / 1024:,.0f} KB)", file=sys.stderr)
    return 0


def cli_main(argv: Sequence[str]) -> int:
    """``variance-bot report FILE ...``: 0 on success, 2 on a file or request problem (message on stderr)."""
    args = _parser().parse_args(list(argv))
    if (args.materiality_amount is not None and args.materiality_amount < 0) or args.materiality_percent < 0:
        return _fail("materiality thresholds must be zero or positive.")
    opts = AnalysisOptions(
        materiality=Materiality(
            amount=Materiality().amount if args.materiality_amount is None else args.materiality_amount,
            percent=args.materiality_percent,
            mode=MaterialityMode(args.materiality_mode),
            auto_amount=args.materiality_amount is None,
        )
    )
    if args.max_file_mb <= 0:
        return _fail("--max-file-mb must be positive.")
    if args.chart and not args.output:
        return _fail("--chart needs -o FILE.png: where to write the chart.")
    overrides = RoleOverrides(actual=args.actual, reference=args.reference, period=args.period, account=args.account)
    try:
        from analyst.ingest import load_dataset

        ds = load_dataset(
            os.fspath(args.file),
            filename=os.path.basename(args.file),
            overrides=None if overrides.is_empty() else overrides,
            limits=IngestLimits(max_bytes=int(args.max_file_mb * 1024 * 1024)),
            sheet=args.sheet,
        )
        if args.chart:
            return _write_chart(ds, args, opts)
        report = build_report(ds, by=args.by, opts=opts)
        if args.json:
            text = _fit_json(report, args.max_bytes)
            if text is None:
                return _fail(f"the report does not fit in {args.max_bytes} bytes; allow more with --max-bytes.")
        elif args.markdown:
            text = report.to_markdown().rstrip("\n")
        else:
            text = report.to_text().rstrip("\n")
    except IngestError as exc:
        return _fail(f"cannot read {args.file}: {exc}")
    except AnalysisError as exc:
        return _fail(str(exc))
    except FileNotFoundError:
        return _fail(f"no such file: {args.file}")
    except (IsADirectoryError, PermissionError) as exc:
        return _fail(f"cannot open {args.file}: {exc.strerror or exc}")
    except MemoryError:
        return _fail("the file is too large to analyse in the memory available.")
    except Exception as exc:  # never a traceback for a user; VARIANCE_DEBUG=1 shows it
        if os.environ.get("VARIANCE_DEBUG"):
            raise
        return _fail(f"unexpected error ({type(exc).__name__}: {exc}). Run with VARIANCE_DEBUG=1 for details.", 1)
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:  # `variance-bot report ... | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return 0
