"""Input tokens per question on a 100-row and a 1,000,000-row dataset: the cost must not grow with the file.

The same scripted conversation (describe the dataset + variance summary, then a breakdown by department,
then the top drivers, then the answer) runs through the real agent, openai client and agents runner
against the fake OpenAI server; the input tokens of each request are estimated from the request body the
server received (characters / 4; tiktoken is not installed). Target: the two totals within 10 % of each
other.

    .venv/bin/python -m bench.bench_tokens            # from the repository root

The ledgers are generated exports read by the real reader (``bench/ledger.py``); the model is the benchmarks'
own fake (``bench/fake_openai.py``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path

from analyst.agent import AgentSettings, start_run
from analyst.agent.tool_names import BREAKDOWN, DESCRIBE_DATASET, TOP_DRIVERS, VARIANCE_SUMMARY
from analyst.context import AnalysisContext
from analyst.dataset import Dataset
from analyst.events import Done, Failed, ToolStarted
from bench.fake_openai import BenchOpenAI, calls, text
from bench.ledger import ledger

ANSWER = (
    "**Spending is 0.4% over budget**, driven by Marketing events and Engineering software.\n\n"
    "- Actual column: *Actual*; reference: *Budget*; variance = actual − budget.\n"
    "- Largest unfavourable line: Marketing / Events.\n"
)


async def one_question(dataset: Dataset) -> dict[str, object]:
    async with BenchOpenAI() as fake:
        fake.script(
            calls((DESCRIBE_DATASET, {}), (VARIANCE_SUMMARY, {})),
            calls((BREAKDOWN, {"by": ["Department"], "filters": None, "limit": None})),
            calls((TOP_DRIVERS, {"by": ["Department", "Account"], "n": 5, "filters": None})),
            text(ANSWER, chunk=8),
        )
        with tempfile.TemporaryDirectory() as data_dir:
            settings = AgentSettings(api_key="sk-bench", base_url=fake.base_url, data_dir=Path(data_dir))
            started = time.perf_counter()
            tools, outcome = 0, "none"
            run = start_run(
                "Why are we over budget?",
                AnalysisContext(dataset=dataset),
                conversation_id="bench",
                settings=settings,
            )
            async for event in run:
                if isinstance(event, ToolStarted):
                    tools += 1
                elif isinstance(event, Done):
                    outcome = "done"
                elif isinstance(event, Failed):
                    outcome = f"failed: {event.user_message}"
            seconds = time.perf_counter() - started
        bodies = [len(json.dumps(r, ensure_ascii=False)) for r in fake.requests]
        outputs = [
            len(item["output"])
            for item in fake.requests[-1].get("input", [])
            if isinstance(item, dict) and item.get("type") == "function_call_output"
        ]
    return {
        "rows": len(dataset.frame),
        "outcome": outcome,
        "tool_calls": tools,
        "requests": len(bodies),
        "input_tokens_per_request": [b // 4 for b in bodies],
        "input_tokens": sum(bodies) // 4,
        "tool_output_tokens": [o // 4 for o in outputs],
        "seconds": round(seconds, 2),
    }


async def main(big_rows: int) -> None:
    small = await one_question(ledger(100))
    build = time.perf_counter()
    big_dataset = ledger(big_rows)
    print(f"(built the {big_rows:,}-row dataset in {time.perf_counter() - build:.1f}s)")
    big = await one_question(big_dataset)
    for result in (small, big):
        print(
            f"{result['rows']:>9,} rows: {result['input_tokens']:>6,} input tokens per question "
            f"({result['requests']} requests: {result['input_tokens_per_request']}; tool outputs "
            f"{result['tool_output_tokens']} tokens; {result['tool_calls']} tool calls; {result['outcome']}; "
            f"{result['seconds']}s)"
        )
    ratio = int(big["input_tokens"]) / max(1, int(small["input_tokens"]))
    verdict = "OK" if abs(ratio - 1) <= 0.10 else "OVER TARGET"
    print(f"ratio {big_rows:,} rows / 100 rows: {ratio:.3f} (target within 10%: {verdict})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the large dataset")
    asyncio.run(main(parser.parse_args().rows))
