"""``variance-bot ask FILE "QUESTION"``: stream the analyst's answer to the terminal, with tool indicators.

The answer goes to stdout as it arrives; tool indicators, usage and errors go to stderr, so
``variance-bot ask f.csv "..." > answer.md`` keeps only the answer. Without ``OPENAI_API_KEY`` it says what to
set and points to ``variance-bot report``, which needs no key (exit code 2).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import TextIO

from analyst.agent.run import start_run
from analyst.agent.settings import AgentSettings, SettingsError
from analyst.context import AnalysisContext
from analyst.dataset import IngestError, RoleOverrides
from analyst.events import Done, Failed, FailureKind, TextDelta, ToolFinished, ToolStarted

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="variance-bot ask",
        description="Ask the Variance Analyst about a budget-vs-actual file (needs OPENAI_API_KEY).",
    )
    parser.add_argument("file", help="CSV or XLSX export")
    parser.add_argument("question", help='e.g. "Why is marketing over budget in Q3?"')
    parser.add_argument("--actual", help="column to use as actual (overrides detection)")
    parser.add_argument("--reference", help="column to use as budget/plan/forecast (overrides detection)")
    parser.add_argument("--period", help="column to use as the period")
    parser.add_argument("--account", help="column naming the account")
    parser.add_argument(
        "--conversation",
        default="",
        help="continue a named conversation (kept under VARIANCE_DATA_DIR); default: a one-off question",
    )
    return parser


def cli_main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    try:
        settings = AgentSettings.from_env()
    except SettingsError as error:
        print(f"variance-bot ask: {error}", file=sys.stderr)
        return EXIT_USAGE
    missing = settings.missing_key_message()
    if missing is not None:
        print(f"variance-bot ask: {missing}", file=sys.stderr)
        print("  export OPENAI_API_KEY=sk-...", file=sys.stderr)
        print(f"  variance-bot report {args.file}", file=sys.stderr)
        return EXIT_USAGE
    overrides = RoleOverrides(
        actual=args.actual, reference=args.reference, period=args.period, account=args.account
    )
    try:
        from analyst.ingest import load_dataset

        dataset = load_dataset(args.file, overrides=None if overrides.is_empty() else overrides)
    except IngestError as error:
        print(f"variance-bot ask: {error}", file=sys.stderr)
        return EXIT_FAILED
    except OSError as error:
        print(f"variance-bot ask: cannot read {args.file}: {error.strerror or error}", file=sys.stderr)
        return EXIT_FAILED
    context = AnalysisContext(dataset=dataset)
    try:
        return asyncio.run(ask(args.question, context, settings, conversation_id=args.conversation))
    except KeyboardInterrupt:
        print("\n(stopped)", file=sys.stderr)
        return EXIT_INTERRUPTED


async def ask(
    question: str,
    context: AnalysisContext,
    settings: AgentSettings,
    *,
    conversation_id: str = "",
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Stream one answer: text to ``out`` as it arrives, tool indicators and errors to ``err``."""
    out = out or sys.stdout
    err = err or sys.stderr
    since_tools = ""  # text streamed since the last tool call: what the final answer should equal
    at_line_start = True
    async for event in start_run(question, context, conversation_id=conversation_id, settings=settings):
        if isinstance(event, TextDelta):
            out.write(event.text)
            out.flush()
            since_tools += event.text
            at_line_start = event.text.endswith("\n")
        elif isinstance(event, ToolStarted):
            if not at_line_start:
                out.write("\n")
                out.flush()
                at_line_start = True
            since_tools = ""
            err.write(f"  ⋯ {event.label}\n")
            err.flush()
        elif isinstance(event, ToolFinished):
            if not event.ok:
                err.write(f"  ⚠ {event.name} reported a problem; the analyst will adjust\n")
                err.flush()
        elif isinstance(event, Done):
            if event.final_text.strip() != since_tools.strip():
                # The completed answer differs from what streamed: show the authoritative version.
                out.write("\n\n---\n" + event.final_text)
            out.write("\n")
            out.flush()
            usage = event.usage
            err.write(
                f"  ({usage.requests} model call(s), {usage.input_tokens:,} input / "
                f"{usage.output_tokens:,} output tokens)\n"
            )
            return EXIT_OK
        elif isinstance(event, Failed):
            if not at_line_start:
                out.write("\n")
            out.flush()
            err.write(f"✗ {event.user_message}\n")
            if event.kind is FailureKind.MISSING_KEY:
                return EXIT_USAGE
            return EXIT_INTERRUPTED if event.kind is FailureKind.CANCELLED else EXIT_FAILED
    return EXIT_FAILED
