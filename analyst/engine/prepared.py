"""Shared machinery of the engine: the prepared frame in integer minor units, filters, grouping and records.

Why integers: a breakdown must add up to the grand total *exactly*, whatever the grouping or the row order.
Float sums depend on the order of addition; integer sums of cents (``np.rint(x * 10**scale)``) do not. Amounts
become floats again (rounded to the dataset's scale) only when a result is serialised.
"""

from __future__ import annotations

import re
import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analyst.dataset import ACCOUNT_TYPE, ACTUAL, PERIOD, REFERENCE, Dataset
from analyst.engine.accounts import SIGN_BY_CODE, TYPE_ORDER, UNKNOWN_CODE, classify_codes
from analyst.engine.errors import AnalysisError
from analyst.engine.materiality import default_amount, material_mask
from analyst.engine.options import DEFAULT_AMOUNT, AnalysisOptions, Materiality
from analyst.engine.quarters import period_group_hits, quarter_column, quarter_hits

# Private columns of the prepared frame (names no export would use).
A = "__a"  # actual, int64 minor units, NaN -> 0
R = "__r"  # reference, int64 minor units, NaN -> 0
IMPACT = "__impact"  # sign(type) * (actual - reference): positive is favourable, 0 for unknown types
UNKNOWN_VAR = (
    "__unknown_var"  # 1 where the type is unknown and the line has a variance (favourability unknowable)
)
TYPE = "__type"  # account-type code, see accounts.TYPE_ORDER
NO_A = "__no_a"  # 1 where the actual cell was empty (not 0): a line with no actual at all is "no actual"
NO_R = "__no_r"  # 1 where the reference cell was empty

# The normalised account type can be used as a dimension and a filter under this name.
TYPE_KEY = ACCOUNT_TYPE
# Derived from a monthly period, so "Q3" can be grouped and filtered on like any column.
QUARTER_KEY = "quarter"
DERIVED_KEYS = frozenset({PERIOD, TYPE_KEY, QUARTER_KEY})
MAX_CHOICES_SHOWN = 12
MEMO_MAX_GROUPS = 50_000


@dataclass(frozen=True, slots=True)
class Prepared:
    """A dataset made ready for exact aggregation (built once per dataset and options, then cached)."""

    ds: Dataset
    frame: pd.DataFrame  # dimension columns (categorical), period, and the private columns above
    scale: int
    keys: tuple[str, ...]  # what can be grouped and filtered on: dimensions, period, account_type
    aliases: dict[str, str]  # source headers of role columns ("Month", "Account Type") -> their key
    missing_actual: int
    missing_reference: int
    # The materiality amount a default (auto) Materiality takes for this file, and the rule that gave it.
    default_amount: float = DEFAULT_AMOUNT
    amount_rule: str = ""
    # Account types whose amounts this file writes as negative numbers (see _types_stored_negative).
    stored_negative: tuple[Any, ...] = ()
    # Unfiltered aggregates already computed, by keys (the report asks for the same lines several times).
    memo: dict[tuple[str, ...], pd.DataFrame] = field(default_factory=dict, repr=False)

    @property
    def unit(self) -> int:
        return int(10**self.scale)

    def effective(self, m: Materiality) -> Materiality:
        """``m`` with its amount settled: the file's default amount when ``m`` leaves it to the file."""
        if not m.auto_amount:
            return m
        return Materiality(amount=self.default_amount, percent=m.percent, mode=m.mode, auto_amount=False)


_cache_lock = threading.Lock()
_cache: list[tuple[weakref.ref[pd.DataFrame], Any, AnalysisOptions, Prepared]] = []
_CACHE_SIZE = 4


def _to_minor(values: pd.Series, unit: int) -> tuple[np.ndarray, np.ndarray]:
    floats = values.to_numpy(dtype=np.float64, na_value=np.nan)
    missing = ~np.isfinite(floats)
    minor = np.rint(np.where(missing, 0.0, floats) * unit).astype(np.int64)
    return minor, missing


def prepare(ds: Dataset, opts: AnalysisOptions) -> Prepared:
    """The prepared frame for ``ds`` under ``opts``, from a small cache keyed by frame identity and options.

    Datasets are treated as immutable: replace ``ds.frame`` rather than editing it in place.
    """
    identity = (ds.roles, ds.scale, len(ds.frame))
    with _cache_lock:
        for frame_ref, ident, cached_opts, prepared in _cache:
            if frame_ref() is ds.frame and ident == identity and cached_opts == opts:
                return prepared
    prepared = _build(ds, opts)
    with _cache_lock:
        _cache[:] = [entry for entry in _cache if entry[0]() is not None][-(_CACHE_SIZE - 1) :]
        _cache.append((weakref.ref(ds.frame), identity, opts, prepared))
    return prepared


def _build(ds: Dataset, opts: AnalysisOptions) -> Prepared:
    frame = ds.frame
    for required in (ACTUAL, REFERENCE):
        if required not in frame.columns:
            raise AnalysisError(f"The dataset has no {required!r} column; ingestion must provide it.")
    scale = max(0, min(int(ds.scale), 6))
    unit = int(10**scale)
    actual, no_actual = _to_minor(frame[ACTUAL], unit)
    reference, no_reference = _to_minor(frame[REFERENCE], unit)
    codes = classify_codes(ds, opts)
    variance = actual - reference
    columns: dict[str, Any] = {}
    dims = [d for d in ds.dimensions if d in frame.columns and d != PERIOD]
    for dim in dims:
        column = frame[dim]
        # Categorical keys: every later groupby and filter works on integer codes instead of strings.
        columns[dim] = column if isinstance(column.dtype, pd.CategoricalDtype) else column.astype("category")
    keys = [*dims]
    if PERIOD in frame.columns:
        period = frame[PERIOD]
        columns[PERIOD] = (
            period if isinstance(period.dtype, pd.CategoricalDtype) else period.astype("category")
        )
        keys.append(PERIOD)
        quarters = quarter_column(columns[PERIOD])
        if quarters is not None and not any(_fold(k) == QUARTER_KEY for k in keys):
            columns[QUARTER_KEY] = quarters
            keys.append(QUARTER_KEY)
    columns[TYPE_KEY] = pd.Categorical.from_codes(codes, categories=pd.Index([t.value for t in TYPE_ORDER]))
    keys.append(TYPE_KEY)
    columns[A] = actual
    columns[R] = reference
    stored_negative = _types_stored_negative(codes, actual, reference)
    sign = SIGN_BY_CODE.astype(np.int64) * np.where(stored_negative, -1, 1)
    columns[IMPACT] = sign[codes] * variance
    columns[UNKNOWN_VAR] = ((codes == UNKNOWN_CODE) & (variance != 0)).astype(np.int64)
    columns[TYPE] = codes
    columns[NO_A] = no_actual.view(np.int8)
    columns[NO_R] = no_reference.view(np.int8)
    # copy=False keeps one block per column: consolidating a million-row frame into 2-D blocks costs more
    # than every groupby after it.
    prepared_frame = pd.DataFrame(columns, index=pd.RangeIndex(len(frame)), copy=False)
    aliases = {
        header: key
        for header, key in ((ds.roles.period, PERIOD), (ds.roles.account_type, TYPE_KEY))
        if header and key in keys and header not in keys
    }
    amount, rule = default_amount(ds, int(np.abs(reference).sum()), scale)
    return Prepared(
        ds=ds,
        frame=prepared_frame,
        scale=scale,
        keys=tuple(keys),
        aliases=aliases,
        missing_actual=int(no_actual.sum()),
        missing_reference=int(no_reference.sum()),
        default_amount=amount,
        amount_rule=rule,
        stored_negative=tuple(TYPE_ORDER[i] for i in np.flatnonzero(stored_negative)),
    )


def _types_stored_negative(codes: np.ndarray, actual: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Per account type code: are its lines written as negative numbers in this file (a trial balance's
    credit revenue, a signed P&L's costs, returns shown as "−150" under income)? Judged on the type's total
    reference (its total actual when that is 0), so one refund line does not flip a type. The effect on
    profit is then judged on the size of the amounts: −150 of returns against −100 is 50 more returns."""
    size = len(TYPE_ORDER)
    total_reference = np.bincount(codes, weights=reference.astype(np.float64), minlength=size)[:size]
    total_actual = np.bincount(codes, weights=actual.astype(np.float64), minlength=size)[:size]
    return np.where(total_reference != 0, total_reference < 0, total_actual < 0)


# --- resolving columns and filters -----------------------------------------------------------------------


def _choices(values: Sequence[object]) -> str:
    shown = [str(v) for v in values[:MAX_CHOICES_SHOWN]]
    more = len(values) - len(shown)
    return ", ".join(shown) + (f" (and {more} more)" if more > 0 else "")


def present_codes(codes: np.ndarray, size: int, where: np.ndarray | None = None) -> np.ndarray:
    """The category codes that occur (only where ``where`` holds, if given); -1 (missing) is ignored."""
    codes = np.asarray(codes)
    keep = codes >= 0 if where is None else (codes >= 0) & where
    return np.flatnonzero(np.bincount(codes[keep].astype(np.int64), minlength=size))


def _fold(name: str) -> str:
    """Case, spaces, underscores and hyphens do not matter: "account type" names "account_type"."""
    return re.sub(r"[\s_\-]+", " ", str(name)).strip().casefold()


def resolve_key(prep: Prepared, name: str) -> str:
    """The column a user or the agent meant by ``name`` (exact, else case-insensitive), or AnalysisError."""
    if name in prep.keys:
        return name
    if name in prep.aliases:
        return prep.aliases[name]
    folded = _fold(name)
    for key in prep.keys:
        if _fold(key) == folded:
            return key
    for header, key in prep.aliases.items():
        if _fold(header) == folded:
            return key
    described = {key: header for header, key in prep.aliases.items()}
    choices = [f"{key} ({described[key]})" if key in described else key for key in prep.keys]
    raise AnalysisError(f"Unknown column {name!r}. Choose from: {_choices(choices)}.")


def resolve_keys(prep: Prepared, names: Sequence[str]) -> list[str]:
    if isinstance(names, str):
        names = [names]
    resolved: list[str] = []
    for name in names:
        key = resolve_key(prep, name)
        if key not in resolved:
            resolved.append(key)
    return resolved


def filter_mask(prep: Prepared, filters: Mapping[str, Sequence[str] | str] | None) -> np.ndarray | None:
    """A boolean row mask for ``{column: [values]}`` (values matched exactly, else case-insensitively).

    Raises AnalysisError naming the valid values when a filter matches nothing.
    """
    if not filters:
        return None
    mask = np.ones(len(prep.frame), dtype=bool)
    for name, wanted in filters.items():
        key = resolve_key(prep, name)
        values = [wanted] if isinstance(wanted, str) or not isinstance(wanted, Sequence) else list(wanted)
        column = prep.frame[key]
        labels = [str(c) for c in column.cat.categories]  # unique values only, never rows
        allowed: set[int] = set()
        unmatched: list[str] = []
        for value in map(str, values):
            exact = [i for i, label in enumerate(labels) if label == value]
            hits = exact or [i for i, label in enumerate(labels) if _fold(label) == _fold(value)]
            if not hits and key in (PERIOD, QUARTER_KEY):
                hits = period_group_hits(labels, value) if key == PERIOD else quarter_hits(labels, value)
            allowed.update(hits)
            if not hits:
                unmatched.append(value)
        if unmatched or not values:
            present = present_codes(column.cat.codes.to_numpy(), len(labels))
            shown = ", ".join(repr(v) for v in unmatched) or "(nothing)"
            hint = " (or a year, quarter or half: 2025, Q3, 2025-Q3, H1)" if key == PERIOD else ""
            raise AnalysisError(
                f"No rows where {key} is {shown}. Valid values: {_choices([labels[i] for i in present])}{hint}."
            )
        mask &= np.isin(column.cat.codes.to_numpy(), np.fromiter(allowed, dtype=np.int64))
    if not mask.any():
        described = "; ".join(f"{k} = {v}" for k, v in filters.items())
        raise AnalysisError(f"No rows match all of these filters together: {described}.")
    return mask


def normalise_filters(filters: Mapping[str, Sequence[str] | str] | None) -> dict[str, list[str]]:
    if not filters:
        return {}
    return {
        str(k): [str(v)] if isinstance(v, str) or not isinstance(v, Sequence) else [str(x) for x in v]
        for k, v in filters.items()
    }


# --- aggregation -----------------------------------------------------------------------------------------

SUM_COLUMNS = [A, R, IMPACT, UNKNOWN_VAR, NO_A, NO_R]


def aggregate(prep: Prepared, keys: Sequence[str], mask: np.ndarray | None = None) -> pd.DataFrame:
    """Sum the minor-unit columns per group of ``keys`` (observed groups only); one row without keys.

    The result has the key columns, the sums, ``__rows`` and ``__tmin``/``__tmax`` (type codes, to tell a
    group of
    one account type from a mixed one). Its order is not defined: callers sort.
    """
    if mask is None:
        memo_key = tuple(keys)
        cached = prep.memo.get(memo_key)
        if cached is None:
            finer = _finer_memo(prep, keys)
            # Regrouping an aggregate already computed (a few thousand rows) instead of a million rows: sums,
            # counts, minima and maxima all compose.
            cached = _regroup(finer, keys) if finer is not None else _aggregate(prep.frame, keys)
            if len(cached) <= MEMO_MAX_GROUPS:
                prep.memo[memo_key] = cached
        return cached.copy()  # callers add columns to their copy
    return _aggregate(prep.frame[mask], keys)


def _finer_memo(prep: Prepared, keys: Sequence[str]) -> pd.DataFrame | None:
    """The smallest cached aggregate whose keys include all of ``keys``, if any."""
    wanted = set(keys)
    candidates = [table for key, table in prep.memo.items() if wanted <= set(key) and len(key) > len(wanted)]
    return min(candidates, key=len) if candidates else None


def _regroup(table: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    how = {col: "sum" for col in SUM_COLUMNS} | {"__rows": "sum", "__tmin": "min", "__tmax": "max"}
    if not keys:
        return pd.DataFrame({col: [table[col].agg(func)] for col, func in how.items()})
    grouped = table.groupby(list(keys), observed=True, sort=False, dropna=False)
    return grouped.agg(how).reset_index()


def _aggregate(frame: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    # A file without empty cells has nothing to count in the "no actual / no reference" columns: skip them.
    summed = [col for col in SUM_COLUMNS if col not in (NO_A, NO_R) or bool(frame[col].any())]
    if len(summed) < len(SUM_COLUMNS):
        table = _aggregate_columns(frame, keys, summed)
        for col in SUM_COLUMNS:
            if col not in table.columns:
                table[col] = np.zeros(len(table), dtype=np.int64)
        return table
    return _aggregate_columns(frame, keys, SUM_COLUMNS)


def _aggregate_columns(frame: pd.DataFrame, keys: Sequence[str], sum_columns: list[str]) -> pd.DataFrame:
    if not keys:
        sums = {col: [int(frame[col].sum())] for col in sum_columns}
        types = frame[TYPE]
        return pd.DataFrame(
            {
                **sums,
                "__rows": [len(frame)],
                "__tmin": [int(types.min()) if len(types) else UNKNOWN_CODE],
                "__tmax": [int(types.max()) if len(types) else UNKNOWN_CODE],
            }
        )
    grouped = frame.groupby(list(keys), observed=True, sort=False, dropna=False)
    table = grouped[sum_columns].sum()
    type_codes = grouped[TYPE]
    table["__rows"] = grouped.size()
    table["__tmin"] = type_codes.min()
    table["__tmax"] = type_codes.max()
    return table.reset_index()


def missing_side(no_actual: np.ndarray, no_reference: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Per group: "actual" when no row of it has an actual (empty cells, not 0), "reference" when none has a
    reference, else "" (both sides present somewhere). Such a group is one-sided: its "variance" is the other
    side in full, not a miss."""
    no_actual = np.asarray(no_actual, dtype=np.int64)
    no_reference = np.asarray(no_reference, dtype=np.int64)
    rows = np.asarray(rows, dtype=np.int64)
    out = np.full(len(rows), "", dtype=object)
    out[(no_reference >= rows) & (rows > 0)] = "reference"
    out[(no_actual >= rows) & (rows > 0)] = "actual"
    return out


def finish(table: pd.DataFrame, prep: Prepared, m: Materiality) -> pd.DataFrame:
    """Add derived columns to an aggregate: variance, favourability, materiality, the group's type, and which
    side is missing altogether (``__missing``: "actual", "reference" or "")."""
    m = prep.effective(m)
    variance = table[A].to_numpy(np.int64) - table[R].to_numpy(np.int64)
    impact = table[IMPACT].to_numpy(np.int64)
    unknown = table[UNKNOWN_VAR].to_numpy(np.int64) > 0
    missing = missing_side(table[NO_A].to_numpy(), table[NO_R].to_numpy(), table["__rows"].to_numpy())
    one_sided = missing != ""
    table["__var"] = variance
    table["__missing"] = missing
    favourable = np.full(len(table), None, dtype=object)
    favourable[(~unknown) & (impact > 0) & ~one_sided] = True
    favourable[(~unknown) & (impact < 0) & ~one_sided] = False
    table["__fav"] = favourable
    table["__material"] = material_mask(variance, table[R].to_numpy(np.int64), prep.unit, m) & ~one_sided
    tmin = table["__tmin"].to_numpy(np.int64)
    tmax = table["__tmax"].to_numpy(np.int64)
    labels = np.array([t.value for t in TYPE_ORDER], dtype=object)
    table["__type_label"] = np.where(tmin == tmax, labels[tmin], "mixed")
    return table


def order_by_size(table: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    """Largest |variance| first, ties broken by the keys: the order never depends on the row order."""
    table = table.assign(__size=np.abs(table["__var"].to_numpy(np.int64)))
    by = ["__size", *keys]
    ascending = [False, *([True] * len(keys))]
    table = table.sort_values(by, ascending=ascending, kind="mergesort", na_position="last")
    return table.drop(columns="__size").reset_index(drop=True)


def order_by_keys(table: pd.DataFrame, keys: Sequence[str]) -> pd.DataFrame:
    if not keys:
        return table.reset_index(drop=True)
    return table.sort_values(list(keys), kind="mergesort", na_position="last").reset_index(drop=True)


# --- serialisation ---------------------------------------------------------------------------------------


def money(minor: int | np.integer, scale: int) -> float:
    # + 0.0 turns a negative zero into 0.0, so JSON never shows "-0.0".
    return round(int(minor) / 10**scale, scale) + 0.0


def percent(variance: int | np.integer, reference: int | np.integer) -> float | None:
    """variance / |reference| × 100 at full precision (rounding is for display only); None at a 0 reference."""
    if int(reference) == 0:
        return None
    return int(variance) / abs(int(reference)) * 100.0 + 0.0


def favourable_of(impact: int, unknown: int) -> bool | None:
    if unknown > 0 or impact == 0:
        return None
    return impact > 0


def amounts(actual: int, reference: int, scale: int) -> dict[str, Any]:
    return {
        "actual": money(actual, scale),
        "reference": money(reference, scale),
        "variance": money(actual - reference, scale),
        "variance_pct": percent(actual - reference, reference),
    }


def key_value(value: object) -> object:
    if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def records(
    table: pd.DataFrame,
    keys: Sequence[str],
    prep: Prepared,
    m: Materiality,
    *,
    max_rows: int | None = None,
    with_impact: bool = False,
) -> list[dict[str, Any]]:
    """JSON-able rows; past ``max_rows`` the rest is summed into one "N more" row, so totals reconcile."""
    m = prep.effective(m)
    shown = table if max_rows is None or len(table) <= max_rows else table.iloc[: max(max_rows, 0)]
    out: list[dict[str, Any]] = []
    scale = prep.scale
    if "__missing" not in table.columns:
        table = table.assign(
            __missing=missing_side(table[NO_A].to_numpy(), table[NO_R].to_numpy(), table["__rows"].to_numpy())
        )
        shown = table.iloc[: len(shown)]
    columns = [*keys, A, R, IMPACT, UNKNOWN_VAR, "__material", "__type_label", "__missing"]
    for row in shown[columns].itertuples(index=False, name=None):
        values = dict(zip(columns, row, strict=True))
        record: dict[str, Any] = {k: key_value(values[k]) for k in keys}
        record["account_type"] = values["__type_label"]
        record.update(amounts(int(values[A]), int(values[R]), scale))
        record["favourable"] = (
            None
            if values["__missing"] in ("actual", "reference")
            else favourable_of(int(values[IMPACT]), int(values[UNKNOWN_VAR]))
        )
        record["material"] = bool(values["__material"])
        # "actual" / "reference": a one-sided line (that side is empty throughout), not a variance.
        record["missing"] = values["__missing"] if values["__missing"] in ("actual", "reference") else None
        if with_impact:
            record["impact"] = money(int(values[IMPACT]), scale)
        out.append(record)
    rest = table.iloc[len(shown) :]
    if len(rest):
        actual, reference = int(rest[A].sum()), int(rest[R].sum())
        impact, unknown = int(rest[IMPACT].sum()), int(rest[UNKNOWN_VAR].sum())
        record = {k: None for k in keys}
        if keys:
            record[keys[0]] = f"{len(rest)} more"
        tmin, tmax = int(rest["__tmin"].min()), int(rest["__tmax"].max())
        record["account_type"] = TYPE_ORDER[tmin].value if tmin == tmax else "mixed"
        record.update(amounts(actual, reference, scale))
        record["favourable"] = favourable_of(impact, unknown)
        record["material"] = bool(
            material_mask(np.array([actual - reference]), np.array([reference]), prep.unit, m)[0]
        )
        record["more"] = len(rest)
        if with_impact:
            record["impact"] = money(impact, scale)
        out.append(record)
    return out
