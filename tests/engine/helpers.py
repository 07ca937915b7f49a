"""Build Datasets directly (no ingestion) for engine and report tests."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from analyst.dataset import ACTUAL, PERIOD, REFERENCE, ColumnRoles, Dataset, ExcludedRow, SourceInfo


def make_dataset(
    rows: Sequence[Sequence[object]] | pd.DataFrame,
    columns: Sequence[str] | None = None,
    *,
    dims: Sequence[str] | None = None,
    account: str | None = None,
    periods: Sequence[str] | None = None,
    scale: int = 2,
    excluded: Sequence[ExcludedRow] = (),
    filename: str = "test.csv",
) -> Dataset:
    """A Dataset from rows; the role columns (``actual``, ``reference``, ``period``, ...) keep their names."""
    frame = (
        rows.copy()
        if isinstance(rows, pd.DataFrame)
        else pd.DataFrame(list(rows), columns=list(columns or []))
    )
    for col in (ACTUAL, REFERENCE, "actual_qty", "reference_qty"):
        if col in frame.columns:
            frame[col] = frame[col].astype("float64")
    if PERIOD in frame.columns:
        order = list(periods) if periods is not None else sorted(frame[PERIOD].dropna().unique())
        frame[PERIOD] = pd.Categorical(frame[PERIOD], categories=order, ordered=True)
    reserved = {ACTUAL, REFERENCE, PERIOD, "actual_qty", "reference_qty", "account_type"}
    dimensions = tuple(dims) if dims is not None else tuple(c for c in frame.columns if c not in reserved)
    for dim in dimensions:
        frame[dim] = frame[dim].astype("str")
    roles = ColumnRoles(
        shape="long" if PERIOD in frame.columns else "wide",
        dimensions=dimensions,
        account=account,
        period="Month" if PERIOD in frame.columns else None,
        actual="Actual",
        reference="Budget",
        reference_kind="budget",
        account_type="Type" if "account_type" in frame.columns else None,
        actual_qty="Actual Units" if "actual_qty" in frame.columns else None,
        reference_qty="Budget Units" if "reference_qty" in frame.columns else None,
    )
    source = SourceInfo(
        filename=filename,
        file_format="csv",
        encoding="utf-8",
        delimiter=",",
        header_row=1,
        data_rows=len(frame) + len(excluded),
    )
    return Dataset(frame=frame, roles=roles, source=source, excluded_rows=list(excluded), scale=scale)
