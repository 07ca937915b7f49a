"""Helpers shared by the agent's tests: a generated ledger, collecting a run's events and checking the stream's
invariants, waiting on a condition."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import numpy as np
import pandas as pd

from analyst.agent import AgentSettings, AnalystRun
from analyst.dataset import ColumnRoles, Dataset, ExcludedRow, SourceInfo
from analyst.events import AnalystEvent, Done, Failed, TextDelta

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def make_dataset(rows: int, *, seed: int = 7, filename: str = "ledger.csv", quantities: bool = False) -> Dataset:
    """A tidy ledger (Department × Account × month) built directly with numpy: fast even at 1,000,000 rows."""
    rng = np.random.default_rng(seed)
    departments = np.array(["Sales", "Marketing", "Engineering", "Finance", "Operations", "Support", "HR", "Legal"])
    accounts = np.array(
        [
            "Revenue",
            "Product revenue",
            "Sales returns",
            "Salaries",
            "Travel",
            "Software",
            "Rent",
            "Events",
            "Consulting",
            "Training",
            "Hardware",
            "Advertising",
        ]
    )
    frame = pd.DataFrame(
        {
            "Department": departments[rng.integers(0, len(departments), rows)],
            "Account": accounts[rng.integers(0, len(accounts), rows)],
            "period": pd.Categorical(np.array(MONTHS)[rng.integers(0, 12, rows)], categories=MONTHS, ordered=True),
            "actual": np.round(rng.uniform(100, 10_000, rows), 2),
            "reference": np.round(rng.uniform(100, 10_000, rows), 2),
        }
    )
    if quantities:
        frame["actual_qty"] = rng.integers(1, 100, rows).astype("float64")
        frame["reference_qty"] = rng.integers(1, 100, rows).astype("float64")
    roles = ColumnRoles(
        shape="wide",
        dimensions=("Department", "Account"),
        account="Account",
        period="Month",
        actual="Actual",
        reference="Budget",
        reference_kind="budget",
        actual_qty="Units" if quantities else None,
        reference_qty="Budget units" if quantities else None,
    )
    source = SourceInfo(
        filename=filename, file_format="csv", encoding="utf-8", delimiter=",", header_row=1, data_rows=rows
    )
    excluded = [ExcludedRow(source_row=rows + 2, label="Total", reason="total row")]
    return Dataset(frame=frame, roles=roles, source=source, excluded_rows=excluded)


def with_(settings: AgentSettings, **changes: object) -> AgentSettings:
    return replace(settings, **changes)  # type: ignore[arg-type]


async def wait_until(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    """Poll a condition with a deadline (for state outside the fake server, e.g. the set of running tasks)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


async def collect(run: AnalystRun, timeout: float = 10.0) -> list[AnalystEvent]:
    events: list[AnalystEvent] = []
    async with asyncio.timeout(timeout):
        async for event in run:
            events.append(event)
    return events


def terminal(events: list[AnalystEvent]) -> Done | Failed:
    """Exactly one terminal event, and it is the last one."""
    ends = [e for e in events if isinstance(e, Done | Failed)]
    assert len(ends) == 1, events
    assert events[-1] is ends[0]
    return ends[0]


def streamed_text(events: list[AnalystEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


async def no_other_tasks() -> None:
    """Wait (with a deadline) until no task but the current one is running: nothing of a run lingers."""
    me = asyncio.current_task()

    def others() -> list[asyncio.Task[object]]:
        # The fake server's own connection handlers idle on keep-alive connections: not part of a run.
        return [
            t
            for t in asyncio.all_tasks()
            if t is not me and not t.done() and getattr(t.get_coro(), "__qualname__", "") != "RequestHandler.start"
        ]

    try:
        await wait_until(lambda: not others(), timeout=3.0)
    except TimeoutError:
        raise AssertionError(f"tasks still running: {[t.get_coro() for t in others()]}") from None
