"""Totals, breakdowns, top drivers and one line's detail: exact budget-vs-actual variances.

Conventions (see FACTS.md): variance = actual − reference; variance % = variance / |reference| × 100,
``None`` when
the reference is 0. Favourable when revenue is above reference or a cost (expense, contra-revenue) below it;
for a
group mixing types, favourable when its *impact* (variance with the cost sign flipped, i.e. its effect on
profit)
is positive; ``None`` when a line of unknown type has a variance, or the impact is 0.

A *line* is one combination of the dataset's dimensions (department × account, say), summed over periods.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analyst.dataset import PERIOD, Dataset
from analyst.engine import prepared as core
from analyst.engine.errors import AnalysisError
from analyst.engine.options import AccountType, AnalysisOptions, Materiality

Filters = Mapping[str, Sequence[str] | str]


def line_keys(prep: core.Prepared) -> list[str]:
    """The keys of a line: the dimensions; the period when there are none; else none (a single line)."""
    dims = [k for k in prep.keys if k not in core.DERIVED_KEYS]
    if dims:
        return dims
    return [PERIOD] if PERIOD in prep.keys else []


@dataclass(frozen=True, slots=True)
class VarianceSummary:
    """The grand total and its anatomy: per account type, line counts, materiality, missing values."""

    actual: float
    reference: float
    variance: float
    variance_pct: float | None
    net_impact: float  # effect on profit: revenue variances minus cost variances; positive is favourable
    favourable: bool | None
    by_type: tuple[dict[str, Any], ...]
    rows: int
    line_keys: tuple[str, ...]
    lines: int
    material_lines: int
    favourable_lines: int
    unfavourable_lines: int
    unclassified_lines: int  # lines of unknown account type with a variance: favourability not stated
    no_actual_lines: int  # lines whose every actual cell is empty: reported apart, never ranked as drivers
    no_reference_lines: int  # lines whose every reference cell is empty
    missing_actual: int
    missing_reference: int
    periods: tuple[str, ...]
    periods_with_actuals: tuple[str, ...]
    materiality: Materiality
    notes: tuple[str, ...] = ()
    materiality_rule: str = ""  # how the amount threshold was set, when it was the file's default

    def to_dict(self, max_rows: int | None = None) -> dict[str, Any]:
        return {
            "totals": {
                "actual": self.actual,
                "reference": self.reference,
                "variance": self.variance,
                "variance_pct": self.variance_pct,
            },
            "net_impact": self.net_impact,
            "favourable": self.favourable,
            "by_account_type": list(self.by_type),
            "rows": self.rows,
            "line_keys": list(self.line_keys),
            "lines": self.lines,
            "material_lines": self.material_lines,
            "favourable_lines": self.favourable_lines,
            "unfavourable_lines": self.unfavourable_lines,
            "unclassified_lines": self.unclassified_lines,
            "no_actual_lines": self.no_actual_lines,
            "no_reference_lines": self.no_reference_lines,
            "missing_actual": self.missing_actual,
            "missing_reference": self.missing_reference,
            "periods": _capped_list(self.periods, max_rows),
            "periods_with_actuals": _capped_list(self.periods_with_actuals, max_rows),
            "materiality": self.materiality.to_dict() | {"rule": self.materiality_rule or "given"},
            "notes": list(self.notes),
        }


def _capped_list(values: Sequence[str], max_rows: int | None) -> list[str]:
    if max_rows is None or len(values) <= max_rows:
        return list(values)
    return [*values[:max_rows], f"{len(values) - max_rows} more"]


@dataclass(frozen=True, slots=True, eq=False)
class Breakdown:
    """Variance per group of ``by``; ``table`` holds exact minor-unit sums, largest |variance| first."""

    by: tuple[str, ...]
    filters: dict[str, list[str]]
    table: pd.DataFrame
    prep: core.Prepared = field(repr=False)
    materiality: Materiality
    limit: int | None = None

    @property
    def total(self) -> dict[str, Any]:
        return core.amounts(int(self.table[core.A].sum()), int(self.table[core.R].sum()), self.prep.scale)

    def __len__(self) -> int:
        return len(self.table)

    def to_frame(self) -> pd.DataFrame:
        """The groups as a plain frame of floats (for display; sums of floats need not reconcile exactly)."""
        return pd.DataFrame(core.records(self.table, self.by, self.prep, self.materiality))

    def to_dict(self, max_rows: int | None = None) -> dict[str, Any]:
        cap = _cap(max_rows, self.limit)
        return {
            "by": list(self.by),
            "filters": self.filters,
            "total": self.total,
            "groups": len(self.table),
            "rows": core.records(self.table, self.by, self.prep, self.materiality, max_rows=cap),
        }


def _cap(max_rows: int | None, limit: int | None) -> int | None:
    caps = [c for c in (max_rows, limit) if c is not None]
    return min(caps) if caps else None


@dataclass(frozen=True, slots=True, eq=False)
class Drivers:
    """The groups that contribute most to the variance, favourable and unfavourable separately, by impact.

    Each row carries ``impact`` (its effect on profit) and ``share_pct``: its share of the impact of *all*
    favourable (or unfavourable) groups, so "the top 3 explain 80 % of the overspend" can be said exactly.
    """

    by: tuple[str, ...]
    n: int
    filters: dict[str, list[str]]
    favourable: pd.DataFrame
    unfavourable: pd.DataFrame
    unclassified: pd.DataFrame  # unknown account type: ranked by |variance|, favourability not stated
    one_sided: pd.DataFrame  # no actual or no reference at all: listed apart, never ranked as drivers
    favourable_total: float  # impact of all favourable groups, not only the top n
    unfavourable_total: float
    one_sided_total: float  # impact of all one-sided groups: the three totals add up to the effect on profit
    prep: core.Prepared = field(repr=False)
    materiality: Materiality

    def _records(self, table: pd.DataFrame, total: float, max_rows: int | None) -> list[dict[str, Any]]:
        shown = table if max_rows is None else table.head(max(max_rows, 0))
        rows = core.records(shown, self.by, self.prep, self.materiality, with_impact=True)
        for row in rows:
            row["share_pct"] = None if total == 0 else row["impact"] / total * 100.0 + 0.0
        return rows

    def to_dict(self, max_rows: int | None = None) -> dict[str, Any]:
        return {
            "by": list(self.by),
            "filters": self.filters,
            "favourable": self._records(self.favourable, self.favourable_total, max_rows),
            "unfavourable": self._records(self.unfavourable, self.unfavourable_total, max_rows),
            "unclassified": self._records(self.unclassified, 0.0, max_rows),
            "one_sided": self._records(self.one_sided, 0.0, max_rows),
            "favourable_total_impact": self.favourable_total,
            "unfavourable_total_impact": self.unfavourable_total,
            "one_sided_total_impact": self.one_sided_total,
        }


@dataclass(frozen=True, slots=True, eq=False)
class LineDetail:
    """Everything about the line(s) a filter picks out: totals, the matching lines, the trend by period."""

    filters: dict[str, list[str]]
    total: dict[str, Any]
    account_type: str
    favourable: bool | None
    material: bool
    lines: pd.DataFrame
    by_period: pd.DataFrame | None
    keys: tuple[str, ...]
    prep: core.Prepared = field(repr=False)
    materiality: Materiality

    def to_dict(self, max_rows: int | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "filters": self.filters,
            "total": self.total,
            "account_type": self.account_type,
            "favourable": self.favourable,
            "material": self.material,
            "matched_lines": len(self.lines),
            "lines": core.records(self.lines, self.keys, self.prep, self.materiality, max_rows=max_rows),
        }
        if self.by_period is not None:
            out["by_period"] = core.records(
                self.by_period, [PERIOD], self.prep, self.materiality, max_rows=max_rows
            )
        return out


def _opts(opts: AnalysisOptions | None) -> AnalysisOptions:
    return opts if opts is not None else AnalysisOptions()


def _period_labels(prep: core.Prepared) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """All periods (chronological) and those with any actual (non-missing and non-zero)."""
    if PERIOD not in prep.frame.columns:
        return (), ()
    frame = prep.frame
    period = frame[PERIOD]
    categories = list(period.cat.categories)
    codes = period.cat.codes.to_numpy()
    present = core.present_codes(codes, len(categories))
    with_actual = core.present_codes(codes, len(categories), frame[core.A].to_numpy() != 0)
    return tuple(str(categories[i]) for i in present), tuple(str(categories[i]) for i in with_actual)


def _periods_without_actuals_note(prep: core.Prepared, periods: Sequence[str], with_actuals: Sequence[str]) -> str:
    """A budget running to December against actuals to date: the grand total mixes the two, so say what the
    comparison over the periods with actuals alone gives."""
    frame = prep.frame
    period = frame[PERIOD]
    categories = [str(c) for c in period.cat.categories]
    wanted = np.isin(np.arange(len(categories)), [categories.index(p) for p in with_actuals])
    codes = period.cat.codes.to_numpy()
    rows = np.where(codes >= 0, wanted[codes], False)
    actual = int(frame[core.A].to_numpy()[rows].sum())
    reference = int(frame[core.R].to_numpy()[rows].sum())
    missing = [p for p in periods if p not in set(with_actuals)]
    pct = core.percent(actual - reference, reference)
    span = with_actuals[0] if len(with_actuals) == 1 else f"{with_actuals[0]} … {with_actuals[-1]}"
    shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
    money = f"{{:,.{prep.scale}f}}"
    return (
        f"{len(missing)} of {len(periods)} periods have no actuals yet ({shown}), so the totals set actuals to date "
        f"against the reference of every period. Over the {len(with_actuals)} periods with actuals ({span}): "
        f"actual {money.format(core.money(actual, prep.scale))} vs reference "
        f"{money.format(core.money(reference, prep.scale))}, variance "
        f"{money.format(core.money(actual - reference, prep.scale))}"
        f"{'' if pct is None else f' ({pct:+.1f}%)'}."
    )


def summarize(ds: Dataset, opts: AnalysisOptions | None = None) -> VarianceSummary:
    """The grand total over every line, with counts of material, favourable and unclassified lines."""
    opts = _opts(opts)
    prep = core.prepare(ds, opts)
    m = prep.effective(opts.materiality)
    frame = prep.frame
    actual, reference = int(frame[core.A].sum()), int(frame[core.R].sum())
    impact, unknown = int(frame[core.IMPACT].sum()), int(frame[core.UNKNOWN_VAR].sum())
    keys = line_keys(prep)
    lines = core.finish(core.aggregate(prep, keys), prep, m)
    fav = lines["__fav"].to_numpy(dtype=object)
    missing = lines["__missing"].to_numpy(dtype=object)
    unclassified = int(((lines[core.UNKNOWN_VAR].to_numpy() > 0) & (missing == "")).sum())
    by_type = core.finish(core.aggregate(prep, [core.TYPE_KEY]), prep, m)
    by_type = by_type.sort_values(core.TYPE_KEY, kind="mergesort")
    type_rows = tuple(
        {name: record[name] for name in ("account_type", "actual", "reference", "variance", "variance_pct")}
        | {"favourable": record["favourable"]}
        for record in core.records(by_type, [core.TYPE_KEY], prep, m)
    )
    periods, periods_with_actuals = _period_labels(prep)
    notes: list[str] = []
    if prep.missing_actual or prep.missing_reference:
        notes.append(
            f"{prep.missing_actual:,} actual and {prep.missing_reference:,} reference values were empty and "
            "count as 0."
        )
    if periods_with_actuals and len(periods_with_actuals) < len(periods):
        notes.append(_periods_without_actuals_note(prep, periods, periods_with_actuals))
    flipped = [str(t.value).replace("_", "-") for t in prep.stored_negative if t != AccountType.UNKNOWN]
    if flipped:
        notes.append(
            f"The {' and '.join(flipped)} lines are written as negative numbers in this file; favourable or "
            "unfavourable is judged on their size (−150 against −100 counts as 50 more)."
        )
    no_actual, no_reference = int((missing == "actual").sum()), int((missing == "reference").sum())
    if no_actual or no_reference:
        parts = [
            f"{count:,} {'line has' if count == 1 else 'lines have'} no {side} at all"
            for count, side in ((no_actual, "actual"), (no_reference, prep.ds.roles.reference_kind))
            if count
        ]
        notes.append(
            "; ".join(parts) + ": they are listed apart as one-sided lines, not ranked as drivers (their whole "
            "amount would show as a variance)."
        )
    if unclassified:
        notes.append(
            f"{unclassified:,} {'line has' if unclassified == 1 else 'lines have'} no recognisable account "
            "type, so favourable/unfavourable is not stated for them; set their type to get it."
        )
    return VarianceSummary(
        actual=core.money(actual, prep.scale),
        reference=core.money(reference, prep.scale),
        variance=core.money(actual - reference, prep.scale),
        variance_pct=core.percent(actual - reference, reference),
        net_impact=core.money(impact, prep.scale),
        favourable=core.favourable_of(impact, unknown),
        by_type=type_rows,
        rows=len(frame),
        line_keys=tuple(keys),
        lines=len(lines),
        material_lines=int(lines["__material"].sum()),
        favourable_lines=int((fav == True).sum()),  # noqa: E712 (object array of True/False/None)
        unfavourable_lines=int((fav == False).sum()),  # noqa: E712
        unclassified_lines=unclassified,
        no_actual_lines=no_actual,
        no_reference_lines=no_reference,
        missing_actual=prep.missing_actual,
        missing_reference=prep.missing_reference,
        periods=periods,
        periods_with_actuals=periods_with_actuals,
        materiality=m,
        notes=tuple(notes),
        materiality_rule=prep.amount_rule if opts.materiality.auto_amount else "",
    )


def breakdown(
    ds: Dataset,
    by: Sequence[str],
    *,
    filters: Filters | None = None,
    opts: AnalysisOptions | None = None,
    limit: int | None = None,
) -> Breakdown:
    """Variance per group of one or more columns (``period`` and ``account_type`` work too), after filters.

    The groups always add up exactly to the filtered total. Largest |variance| first; by period alone,
    chronological. ``limit`` caps the rows ``to_dict`` returns (the rest become one "N more" row).
    """
    opts = _opts(opts)
    prep = core.prepare(ds, opts)
    keys = core.resolve_keys(prep, by)
    if not keys:
        raise AnalysisError(f"Say what to break down by. Choose from: {', '.join(prep.keys)}.")
    return breakdown_prepared(prep, keys, filters=filters, opts=opts, limit=limit)


def breakdown_prepared(
    prep: core.Prepared,
    keys: Sequence[str],
    *,
    filters: Filters | None,
    opts: AnalysisOptions,
    limit: int | None = None,
) -> Breakdown:
    """:func:`breakdown` on resolved keys; no keys gives one row, the filtered total."""
    keys = list(keys)
    mask = core.filter_mask(prep, filters)
    table = core.finish(core.aggregate(prep, keys, mask), prep, opts.materiality)
    table = core.order_by_keys(table, keys) if keys == [PERIOD] else core.order_by_size(table, keys)
    return Breakdown(
        by=tuple(keys),
        filters=core.normalise_filters(filters),
        table=table,
        prep=prep,
        materiality=opts.materiality,
        limit=limit,
    )


def top_drivers(
    ds: Dataset,
    *,
    by: Sequence[str] | None = None,
    n: int = 5,
    filters: Filters | None = None,
    opts: AnalysisOptions | None = None,
) -> Drivers:
    """The ``n`` largest favourable and ``n`` largest unfavourable contributions (by impact on profit).

    ``by`` defaults to the line (all dimensions). Groups of unknown account type are listed apart, by
    |variance|.
    """
    opts = _opts(opts)
    prep = core.prepare(ds, opts)
    keys = core.resolve_keys(prep, by) if by else line_keys(prep)
    mask = core.filter_mask(prep, filters)
    table = core.finish(core.aggregate(prep, keys, mask), prep, opts.materiality)
    table = core.order_by_keys(table, keys)  # a deterministic base order for the stable sorts below
    fav = table["__fav"].to_numpy(dtype=object)
    impact = table[core.IMPACT]
    n = max(int(n), 0)
    favourable = table[fav == True]  # noqa: E712
    unfavourable = table[fav == False]  # noqa: E712
    one_sided_mask = np.isin(table["__missing"].to_numpy(dtype=object), ["actual", "reference"])
    unclassified = table[(table[core.UNKNOWN_VAR] > 0).to_numpy() & ~one_sided_mask]
    one_sided = table[one_sided_mask]
    return Drivers(
        by=tuple(keys),
        n=n,
        filters=core.normalise_filters(filters),
        favourable=favourable.sort_values(core.IMPACT, ascending=False, kind="mergesort").head(n),
        unfavourable=unfavourable.sort_values(core.IMPACT, ascending=True, kind="mergesort").head(n),
        unclassified=unclassified.assign(__size=np.abs(unclassified["__var"].to_numpy(np.int64)))
        .sort_values("__size", ascending=False, kind="mergesort")
        .head(n),
        one_sided=one_sided.assign(__size=np.abs(one_sided["__var"].to_numpy(np.int64)))
        .sort_values("__size", ascending=False, kind="mergesort")
        .head(n),
        favourable_total=core.money(int(impact[fav == True].sum()), prep.scale),  # noqa: E712
        unfavourable_total=core.money(int(impact[fav == False].sum()), prep.scale),  # noqa: E712
        one_sided_total=core.money(int(impact[one_sided_mask].sum()), prep.scale),
        prep=prep,
        materiality=opts.materiality,
    )


def line_detail(ds: Dataset, filters: Mapping[str, str], opts: AnalysisOptions | None = None) -> LineDetail:
    """The line(s) matching ``filters`` (``{"Department": "Marketing", "Account": "Events"}``), by period."""
    if not filters:
        raise AnalysisError(
            "Say which line: give one or more column = value filters (e.g. Account = Travel)."
        )
    opts = _opts(opts)
    prep = core.prepare(ds, opts)
    m = opts.materiality
    mask = core.filter_mask(prep, filters)
    keys = line_keys(prep)
    lines = core.order_by_size(core.finish(core.aggregate(prep, keys, mask), prep, m), keys)
    whole = core.finish(core.aggregate(prep, [], mask), prep, m)
    actual, reference = int(whole[core.A].iloc[0]), int(whole[core.R].iloc[0])
    by_period = None
    if PERIOD in prep.frame.columns and keys != [PERIOD]:
        by_period = core.order_by_keys(core.finish(core.aggregate(prep, [PERIOD], mask), prep, m), [PERIOD])
    elif keys == [PERIOD]:
        by_period = core.order_by_keys(lines, [PERIOD])
    return LineDetail(
        filters=core.normalise_filters(filters),
        total=core.amounts(actual, reference, prep.scale),
        account_type=str(whole["__type_label"].iloc[0]),
        favourable=whole["__fav"].iloc[0],
        material=bool(whole["__material"].iloc[0]),
        lines=lines,
        by_period=by_period,
        keys=tuple(keys),
        prep=prep,
        materiality=m,
    )
