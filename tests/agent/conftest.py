"""Fixtures for the agent's tests: the fake OpenAI server, settings pointing at it, a small dataset."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analyst.agent import AgentSettings
from analyst.context import AnalysisContext
from analyst.dataset import ColumnRoles, Dataset, ExcludedRow, SourceInfo
from tests.fakes.openai_server import FakeOpenAI

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


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as server:
        yield server


@pytest.fixture
def settings(fake: FakeOpenAI, tmp_path: Path) -> AgentSettings:
    return AgentSettings(
        api_key="sk-test",
        base_url=fake.base_url,
        model="gpt-test",
        timeout=5.0,
        max_retries=2,
        data_dir=tmp_path / "data",
        max_turns=6,
        history_items=40,
    )


@pytest.fixture
def context() -> AnalysisContext:
    return AnalysisContext(dataset=make_dataset(100))


def with_(settings: AgentSettings, **changes: object) -> AgentSettings:
    return replace(settings, **changes)  # type: ignore[arg-type]


async def wait_until(predicate, timeout: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    """Poll a condition with a deadline (for state outside the fake server, e.g. the set of running tasks)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)
