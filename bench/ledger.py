"""A generated budget-vs-actual export of any size (Month × Department × Account, as a GL export lists it), read
through the real ingestion, so the benchmarks measure the datasets the bot really holds.

The benchmarks do not import the test suite: this is their own source of large files.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analyst.dataset import Dataset, IngestLimits
from analyst.ingest import load_dataset

DEPARTMENTS = ["Sales", "Marketing", "Engineering", "Finance", "Operations", "Support", "HR", "Legal"]
ACCOUNTS = ["Product revenue", "Services revenue", "Sales returns", "Salaries", "Travel", "Software", "Rent", "Events"]
MONTHS = [f"2025-{m:02d}" for m in range(1, 13)]


def ledger_csv(rows: int, *, seed: int = 3, cost_centres: int = 60) -> bytes:
    """``rows`` lines of ``Month,Department,Account,Budget,Actual`` (amounts with cents), in random order."""
    rng = np.random.default_rng(seed)
    accounts = np.array(ACCOUNTS + [f"Cost centre {i:03d} expense" for i in range(cost_centres)])
    frame = pd.DataFrame(
        {
            "Month": np.array(MONTHS)[rng.integers(0, len(MONTHS), rows)],
            "Department": np.array(DEPARTMENTS)[rng.integers(0, len(DEPARTMENTS), rows)],
            "Account": accounts[rng.integers(0, len(accounts), rows)],
            "Budget": np.round(rng.uniform(100, 10_000, rows), 2),
            "Actual": np.round(rng.uniform(100, 10_000, rows), 2),
        }
    )
    return frame.to_csv(index=False, float_format="%.2f").encode()


def ledger(rows: int, *, seed: int = 3, cost_centres: int = 60) -> Dataset:
    """The generated export read as the bot reads an upload (no size limit: the benchmark chooses the size)."""
    content = ledger_csv(rows, seed=seed, cost_centres=cost_centres)
    limits = IngestLimits(max_bytes=max(len(content), IngestLimits().max_bytes), max_rows=max(rows, 1) + 1)
    return load_dataset(content, filename="ledger.csv", limits=limits)
