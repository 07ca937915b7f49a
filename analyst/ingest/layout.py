"""From the table as read to the tidy frame: choose the shape, drop totals and headings, stack and pivot.

Shapes:
- ``wide``: one actual and one reference column (``Account, Budget, Actual``);
- ``long``: a Scenario/Type column whose values are Budget/Actual and one amount column;
- ``wide_by_period``: ``Jan Budget, Jan Actual, ...`` pairs, or ``Jan .. Dec`` columns with a Scenario column;
- ``metric_pairs``: ``Actual_Revenue, Budget_Revenue, Actual_COGS, ...``: the metric becomes the account.
Every step is columnar (stack with numpy, pivot with one groupby); nothing loops over rows.

Account types: a type column when the file has one (or the user names one). Otherwise, in a QuickBooks-style
report, the P&L section headings ("Income", "Cost of Goods Sold", "Expenses", "Other Income", "Доходы",
"Расходы", "Erträge", "Aufwendungen") are carried down to the account lines under them as the raw
``account_type`` text, and ``ColumnRoles.account_type`` is then :data:`SECTION_HEADINGS` (``"section
headings"``), which names no column. The headings stay excluded from the sums and listed as headings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

import numpy as np
import pandas as pd

from analyst.dataset import (
    ACCOUNT_TYPE,
    ACTUAL,
    ACTUAL_QTY,
    PERIOD,
    REFERENCE,
    REFERENCE_QTY,
    ROLE_COLUMNS,
    ColumnRoles,
    ExcludedRow,
    IngestError,
    ReferenceKind,
    RoleOverrides,
    Shape,
)
from analyst.ingest import periods, roles, totals
from analyst.ingest.encode import Encoded, encode_columns
from analyst.ingest.numbers import ParsedNumbers

MAX_LISTED_EXCLUSIONS = 500
BLANK_LABEL = "(blank)"
METRIC = "Metric"
# ``ColumnRoles.account_type`` when the types come from a QuickBooks-style report's section headings
# ("Income", "Expenses" above the account lines) rather than from a column.
SECTION_HEADINGS = "section headings"


@dataclass(slots=True)
class Columns:
    """The table as read, with each column's header meaning and, for numeric ones, its parsed values."""

    raw: pd.DataFrame
    headers: dict[str, roles.HeaderInfo]
    numbers: dict[str, ParsedNumbers]  # numeric columns only
    text: list[str]  # text columns, in file order
    _encoded: dict[str, Encoded] = field(default_factory=dict)
    _periodic: dict[str, bool] = field(default_factory=dict)
    _period_labels: dict[str, list[str | None]] = field(default_factory=dict)

    def encode(self, names: Sequence[str], *, with_codes: Sequence[str] = ()) -> None:
        """Hash several text columns at once (in parallel on a large file); later calls to :meth:`uniques`
        and :meth:`factorized` for them are free."""
        wanted = {
            name: self.raw[name]
            for name in dict.fromkeys([*names, *with_codes])
            if name in self.raw.columns
            and (name not in self._encoded or (name in with_codes and self._encoded[name].codes is None))
        }
        self._encoded.update(encode_columns(wanted, with_codes=set(with_codes)))

    def adopt(self, encoded: Mapping[str, Encoded]) -> None:
        """Take columns hashed elsewhere (see :func:`analyst.ingest.encode.start_encoding`)."""
        self._encoded.update(encoded)

    def uniques(self, name: str) -> list[object]:
        """Distinct non-empty values of a text column, in order of first appearance."""
        if name not in self._encoded:
            self.encode([name])
        return list(self._encoded[name].uniques)

    def factorized(self, name: str) -> tuple[np.ndarray, pd.Index]:
        """Codes (-1 for empty) and distinct values of a text column, computed once: label checks,
        cleaning and period parsing all work on the distinct values only."""
        encoded = self._encoded.get(name)
        if encoded is None or encoded.codes is None:
            self.encode([], with_codes=[name])
            encoded = self._encoded[name]
        assert encoded.codes is not None
        return encoded.codes, encoded.uniques

    def period_labels(self, name: str) -> list[str | None]:
        """The period label of each distinct value of a column (see :meth:`factorized`), computed once."""
        if name not in self._period_labels:
            uniques = list(self.factorized(name)[1])
            info = self.headers.get(name)
            if info is not None and info.year:
                self._period_labels[name] = periods.year_labels(uniques)
            else:
                self._period_labels[name] = periods.labels_for_uniques(uniques)
        return self._period_labels[name]

    def looks_periodic(self, name: str) -> bool:
        """The column's first values read as months or dates (judged once per column)."""
        if name not in self._periodic:
            self._periodic[name] = _looks_periodic(self.raw[name])
        return self._periodic[name]

    @property
    def names(self) -> list[str]:
        return [str(c) for c in self.raw.columns]

    def numeric(self, kind: str | None = None) -> list[str]:
        return [c for c in self.numbers if kind is None or self.headers[c].kind == kind]


@dataclass(slots=True)
class Plan:
    shape: Shape
    dimensions: list[str]
    account: str | None
    period: str | None
    account_type: str | None
    reference_kind: ReferenceKind
    actual: str
    reference: str
    actual_qty: str | None = None
    reference_qty: str | None = None
    scenario: str | None = None  # long: the scenario column; actual/reference are its values
    amount: str | None = None  # long: the amount column
    quantity: str | None = None  # long: a quantity column pivoted like the amount
    # wide_by_period / metric_pairs: label → (actual column, reference column)
    pairs: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    # wide_by_period with a scenario column: label → amount column
    period_columns: dict[str, str] = field(default_factory=dict)
    variance: list[str] = field(default_factory=list)
    # A year column combined with a month-name period column ("Year" 2024 + "Month" Jan → "2024-01").
    period_year: str | None = None
    overridden: tuple[str, ...] = ()
    warnings: list[str] = field(default_factory=list)

    def roles(self) -> ColumnRoles:
        return ColumnRoles(
            shape=self.shape,
            dimensions=tuple(self.dimensions),
            account=self.account,
            period=f"{self.period_year} + {self.period}" if self.period_year else self.period,
            actual=self.actual,
            reference=self.reference,
            reference_kind=self.reference_kind,
            account_type=self.account_type,
            actual_qty=self.actual_qty,
            reference_qty=self.reference_qty,
            overridden=self.overridden,
        )


# --- choosing the shape ---


def _describe(columns: Columns) -> str:
    numeric = columns.numeric()
    return (
        f"Columns found: {', '.join(columns.names)}"
        + (f" (numeric: {', '.join(numeric)})" if numeric else " (none of them numeric)")
        + "."
    )


def _unknown_column(name: str, columns: Columns, extra: Sequence[str] = ()) -> IngestError:
    choices = [*columns.names, *extra]
    return IngestError(
        f"There is no column '{name}' in this file. Available columns: {', '.join(choices)}.", found=choices
    )


def _scenario_column(columns: Columns) -> tuple[str, dict[str, str]] | None:
    """A text column whose values are scenario words (Budget / Actual / План / Факт), with value → role."""
    candidates = sorted(columns.text, key=lambda c: columns.headers[c].kind != "scenario")
    for name in candidates:
        if columns.raw[name].iloc[:2_000].nunique() > 30:
            continue  # dates, accounts...: far more values than a scenario column has
        uniques = pd.Series(columns.uniques(name), dtype=object).astype("str")
        if len(uniques) > 30:
            continue
        mapping = {}
        for value in uniques:
            scenario, kind = roles.scenario_value(value)
            if scenario == "actual":
                mapping[value] = "actual"
            elif scenario == "reference" and kind is not None:
                mapping[value] = kind
        if "actual" in mapping.values() and any(v != "actual" for v in mapping.values()):
            return name, mapping
    return None


def _pick_reference(candidates: Mapping[str, ReferenceKind]) -> tuple[str, ReferenceKind]:
    ranked = sorted(candidates.items(), key=lambda item: roles.REFERENCE_PRIORITY.index(item[1]))
    return ranked[0]


def _kind_of(name: str) -> ReferenceKind:
    _, kind, _ = roles.scenario_of(name)
    return kind or "budget"


def plan_layout(columns: Columns, overrides: RoleOverrides) -> Plan:
    """Decide the shape and which column plays which role (overrides first, then header words, then
    values)."""
    names = set(columns.names)
    for role in ("period", "account", "account_type"):
        value = getattr(overrides, role)
        if value is not None and value not in names:
            raise _unknown_column(value, columns)
    for dim in overrides.dimensions or ():
        if dim not in names:
            raise _unknown_column(dim, columns)

    scenario = _scenario_column(columns)
    plan = _plan_from_overrides(columns, overrides, scenario)
    if plan is None:
        plan = _detect(columns, scenario)
    _finish_dimensions(plan, columns, overrides)
    plan.overridden = tuple(
        role
        for role in ("actual", "reference", "period", "account", "dimensions", "account_type")
        if getattr(overrides, role) is not None
    )
    return plan


def _plan_from_overrides(
    columns: Columns, overrides: RoleOverrides, scenario: tuple[str, dict[str, str]] | None
) -> Plan | None:
    if overrides.actual is None and overrides.reference is None:
        return None
    values = scenario[1] if scenario else {}
    names = set(columns.names)
    for value in (overrides.actual, overrides.reference):
        if value is not None and value not in names and value not in values:
            raise _unknown_column(value, columns, extra=list(values))
    in_scenario = [v for v in (overrides.actual, overrides.reference) if v is not None and v in values]
    if scenario and in_scenario:
        detected = _detect(columns, scenario)
        actual = overrides.actual or detected.actual
        reference = overrides.reference or detected.reference
        if detected.shape != "long" or actual not in values or reference not in values:
            raise IngestError(
                f"'{actual}' and '{reference}' must both be values of the column '{scenario[0]}' "
                f"(it holds: {', '.join(values)})."
            )
        detected.actual, detected.reference = actual, reference
        detected.reference_kind = _kind_of(reference)
        return detected
    wanted_actual, wanted_reference = overrides.actual, overrides.reference
    if wanted_actual is None or wanted_reference is None:
        fallback: Plan | None
        try:
            fallback = _detect(columns, scenario)
        except IngestError:
            fallback = None
        if fallback is None or fallback.shape != "wide":
            missing = "--actual" if wanted_actual is None else "--reference"
            raise IngestError(
                f"Please also name the other column ({missing} COLUMN). {_describe(columns)}",
                found=columns.names,
            )
        wanted_actual = wanted_actual or fallback.actual
        wanted_reference = wanted_reference or fallback.reference
    actual, reference = wanted_actual, wanted_reference
    for name in (actual, reference):
        if name not in columns.numbers:
            raise IngestError(f"The column '{name}' does not hold numbers. {_describe(columns)}", found=columns.names)
    plan = Plan("wide", [], None, None, None, _kind_of(reference), actual, reference)
    plan.variance = columns.numeric("variance")
    return plan


def _detect(columns: Columns, scenario: tuple[str, dict[str, str]] | None) -> Plan:
    headers = columns.headers
    numeric = columns.numeric()
    if not numeric:
        raise IngestError(
            f"No column with numbers was found, so there is nothing to compare. {_describe(columns)} "
            "Upload the export with the amount columns (for example Budget and Actual).",
            found=columns.names,
        )
    # A column of percentages ("Actual %" written as 12.5%) is a ratio, never an amount to sum.
    scenario_cols = [
        c for c in numeric if headers[c].kind in ("actual", "reference") and not columns.numbers[c].percent
    ]
    # Prices, rates, averages and headcounts carry Budget/Actual words too, but adding them up means nothing.
    non_money = [c for c in scenario_cols if headers[c].non_money]
    scenario_cols = [c for c in scenario_cols if c not in non_money]
    amounts = [c for c in scenario_cols if not headers[c].quantity]
    quantities = [c for c in scenario_cols if headers[c].quantity]
    variance = columns.numeric("variance")

    # Jan Actual / Jan Budget pairs.
    non_money_note = (
        [
            f"Not money, so never summed: {', '.join(non_money + quantities)} (quantities, prices or rates; "
            "quantities feed the price/volume analysis where the file pairs them with amounts)."
        ]
        if non_money
        else []
    )
    by_period = [c for c in amounts if headers[c].period and not headers[c].is_total]
    if len(by_period) >= 2:
        plan = _paired(columns, by_period, "wide_by_period", lambda c: headers[c].period or "")
        plan.variance = variance
        skipped = [c for c in amounts if c not in by_period]
        if skipped:
            plan.warnings.append(f"Ignored total columns so nothing is counted twice: {', '.join(skipped)}.")
        return plan
    # Actual_Revenue / Budget_Revenue pairs.
    with_metric = [c for c in amounts if headers[c].rest and not headers[c].is_total]
    metrics = {headers[c].rest.casefold() for c in with_metric}
    paired_metrics = {
        m
        for m in metrics
        if any(headers[c].kind == "actual" and headers[c].rest.casefold() == m for c in with_metric)
        and any(headers[c].kind == "reference" and headers[c].rest.casefold() == m for c in with_metric)
    }
    plain_actual = [c for c in amounts if headers[c].kind == "actual" and c not in with_metric]
    if len(paired_metrics) == 1 and not plain_actual:
        # "Actual Cost" / "Budget Cost" alone is simply a wide file.
        amounts = [c for c in with_metric if headers[c].rest.casefold() in paired_metrics]
    elif paired_metrics and not plain_actual:
        chosen = [c for c in with_metric if headers[c].rest.casefold() in paired_metrics]
        plan = _paired(columns, chosen, "metric_pairs", lambda c: headers[c].rest)
        plan.variance = variance
        if non_money_note:
            plan.warnings.extend(non_money_note)
        elif quantities:
            plan.warnings.append(
                f"Not money, so never summed: {', '.join(quantities)} (quantities are not used with one column "
                "pair per metric)."
            )
        return plan

    actual_cols = [c for c in amounts if headers[c].kind == "actual"]
    reference_cols = {c: headers[c].reference_kind or "budget" for c in amounts if headers[c].kind == "reference"}
    if actual_cols and reference_cols:
        reference, kind = _pick_reference(reference_cols)
        plan = Plan("wide", [], None, None, None, kind, actual_cols[0], reference)
        if len(actual_cols) > 1:
            plan.warnings.append(
                f"Several actual columns ({', '.join(actual_cols)}); used '{actual_cols[0]}'. "
                "Pass --actual COLUMN to choose another."
            )
        others = [c for c in reference_cols if c != reference]
        if others:
            plan.warnings.append(
                f"Compared against '{reference}'; also found {', '.join(others)} "
                "(pass --reference COLUMN to compare against one of those)."
            )
        plan.warnings.extend(non_money_note)
        qty_actual = [c for c in quantities if headers[c].kind == "actual"]
        qty_reference = [c for c in quantities if headers[c].kind == "reference"]
        if qty_actual and qty_reference:
            plan.actual_qty, plan.reference_qty = qty_actual[0], qty_reference[0]
        plan.variance = variance
        return plan

    if scenario is not None:
        return _long(columns, scenario)

    raise IngestError(
        "Could not tell which columns hold the actual and the budget (or plan/forecast) amounts. "
        f"{_describe(columns)} Rename the columns (for example 'Actual' and 'Budget') or pass "
        "--actual COLUMN --reference COLUMN.",
        found=columns.names,
    )


def _paired(columns: Columns, chosen: list[str], shape: Shape, label_of: Callable[[str], str]) -> Plan:
    """Pair actual and reference columns by their label (a period or a metric); one reference kind only."""
    headers = columns.headers
    kinds = {c: headers[c].reference_kind or "budget" for c in chosen if headers[c].kind == "reference"}
    if not kinds or not any(headers[c].kind == "actual" for c in chosen):
        raise IngestError(
            f"Found only one side of the comparison in {', '.join(chosen)}: each needs an actual and a "
            "budget (or plan) column.",
            found=columns.names,
        )
    kind = _pick_reference(kinds)[1]
    pairs: dict[str, tuple[str | None, str | None]] = {}
    for name in chosen:
        if headers[name].kind == "reference" and kinds[name] != kind:
            continue
        actual, reference = pairs.get(label_of(name), (None, None))
        if headers[name].kind == "actual":
            actual = actual or name
        else:
            reference = reference or name
        pairs[label_of(name)] = (actual, reference)
    if shape == "wide_by_period":
        pairs = {label: pairs[label] for label in periods.order_labels(list(pairs))}
    actual_cols = [a for a, _ in pairs.values() if a]
    reference_cols = [r for _, r in pairs.values() if r]
    plan = Plan(
        shape,
        [],
        None,
        "column headers" if shape == "wide_by_period" else None,
        None,
        kind,
        _span(actual_cols),
        _span(reference_cols),
    )
    plan.pairs = pairs
    others = sorted({k for k in kinds.values() if k != kind})
    if others:
        plan.warnings.append(
            f"Compared against the {kind} columns; {', '.join(others)} columns were also found "
            "(pass --actual COLUMN --reference COLUMN to compare two other columns)."
        )
    return plan


def _span(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{names[0]} … {names[-1]} ({len(names)} columns)"


def _long(columns: Columns, scenario: tuple[str, dict[str, str]]) -> Plan:
    name, mapping = scenario
    headers = columns.headers
    numeric = [c for c in columns.numbers if headers[c].kind not in ("variance",)]
    month_cols = [c for c in numeric if headers[c].period and not headers[c].is_total]
    actual_values = [v for v, role in mapping.items() if role == "actual"]
    reference_values: dict[str, ReferenceKind] = {
        v: cast(ReferenceKind, role) for v, role in mapping.items() if role != "actual"
    }
    reference, kind = _pick_reference(reference_values)
    plan = Plan("long", [], None, None, None, kind, actual_values[0], reference, scenario=name)
    others = [v for v in reference_values if v != reference]
    if others:
        plan.warnings.append(
            f"Compared against '{reference}' rows; also found {', '.join(others)} in '{name}' "
            "(pass --reference VALUE to compare against those)."
        )
    if len(month_cols) >= 2:
        plan.shape = "wide_by_period"
        plan.period = "column headers"
        totals_skipped = [c for c in numeric if headers[c].is_total]
        if totals_skipped:
            plan.warnings.append(f"Ignored total columns so nothing is counted twice: {', '.join(totals_skipped)}.")
        plan.period_columns = {headers[c].period or c: c for c in month_cols}
        plan.period_columns = {lb: plan.period_columns[lb] for lb in periods.order_labels(list(plan.period_columns))}
        return plan
    amount_like = [c for c in numeric if headers[c].kind == "amount" and not headers[c].quantity]
    plain = [c for c in numeric if headers[c].kind not in ("quantity",)]
    if amount_like:
        plan.amount = amount_like[0]
    elif len(plain) == 1:
        plan.amount = plain[0]
    else:
        raise IngestError(
            f"The column '{name}' says which rows are actual and which are budget, but it is not clear which "
            f"column holds the amount. {_describe(columns)} Rename it to 'Amount'.",
            found=columns.names,
        )
    quantity = [c for c in numeric if headers[c].kind == "quantity"]
    if quantity:
        plan.quantity = quantity[0]
    return plan


def _finish_dimensions(plan: Plan, columns: Columns, overrides: RoleOverrides) -> None:
    headers = columns.headers
    used = {plan.scenario}
    if plan.period is None or plan.period == "column headers":
        period = overrides.period
        if period is None and plan.period is None:
            period = detect_period_column(columns)
        if period is not None:
            plan.period = period
    used.add(plan.period)
    month_column = plan.period if plan.period in columns.raw.columns else None
    if overrides.period is None and month_column and not headers[month_column].year:
        plan.period_year = _year_for_months(columns, month_column, used)
        used.add(plan.period_year)
        if plan.period_year and any(
            label and not label[:1].isdigit() for label in columns.period_labels(plan.period_year)
        ):
            plan.warnings.append(
                f"'{plan.period_year}' holds fiscal years; each month was placed in the calendar year the label "
                "names (FY2024 + Jan → 2024-01). If your fiscal year starts in another month, say so."
            )
    if overrides.account_type is not None:
        plan.account_type = overrides.account_type
    else:
        typed = [c for c in columns.text if headers[c].kind == "type" and c not in used]
        plan.account_type = next((c for c in typed if _holds_account_types(columns, c)), None)
        for name in typed:
            if name != plan.account_type:
                plan.warnings.append(
                    f"'{name}' holds {', '.join(map(str, columns.uniques(name)[:4]))}: not account types, so it "
                    "is read as a dimension."
                )
    used.add(plan.account_type)
    if overrides.dimensions is not None:
        dims = list(overrides.dimensions)
    else:
        dims = [c for c in columns.text if c not in used]
    if overrides.account is not None:
        plan.account = overrides.account
        if plan.account not in dims:
            dims.insert(0, plan.account)
    elif dims:
        plan.account = min(dims, key=lambda c: (roles.account_rank(c), dims.index(c)))
        if roles.account_rank(plan.account) == len(roles.ACCOUNT_RES) and plan.account != dims[0]:
            plan.account = dims[0]
    if plan.shape == "metric_pairs":
        dims.append(METRIC)
        plan.account = METRIC
    plan.dimensions = [d for d in dims if d not in ROLE_COLUMNS or d == METRIC]
    if len(plan.dimensions) != len(dims):
        clash = [d for d in dims if d in ROLE_COLUMNS]
        plan.warnings.append(f"Column(s) {', '.join(clash)} clash with reserved names and were left out.")


def detect_period_column(columns: Columns) -> str | None:
    """The text column holding months or dates: one whose header says so first, then any; else a year column
    ("fiscal_year": an annual period); else a column literally named "period", whatever its labels."""
    named = [c for c in columns.text if columns.headers[c].kind == "period" and not columns.headers[c].year]
    period = next((c for c in named if columns.looks_periodic(c)), None)
    if period is None:
        period = next((c for c in columns.text if not columns.headers[c].year and columns.looks_periodic(c)), None)
    if period is None:
        period = next((c for c in columns.text if columns.headers[c].year and _holds_years(columns, c)), None)
    if period is None:
        period = next((c for c in columns.text if c.strip().casefold() == PERIOD), None)
    return period


def _holds_years(columns: Columns, name: str) -> bool:
    labels = columns.period_labels(name)
    return bool(labels) and all(label is not None for label in labels)


def _year_for_months(columns: Columns, period: str, used: set[str | None]) -> str | None:
    """A year column to combine with ``period`` when ``period`` holds month names without a year."""
    labels = [label for label in columns.period_labels(period) if label is not None]
    if not labels or any(label not in periods.MONTHS for label in labels):
        return None
    return next(
        (c for c in columns.text if c not in used and columns.headers[c].year and _holds_years(columns, c)), None
    )


def _holds_account_types(columns: Columns, name: str) -> bool:
    """A "Type" column whose values are account types (Income, Expense, Доход...), not Direct/Retail/Online."""
    from analyst.engine.accounts import classify_label
    from analyst.engine.options import AccountType

    values = [str(v) for v in columns.uniques(name)[:200]]
    known = sum(classify_label(v) != AccountType.UNKNOWN for v in values)
    return bool(values) and known * 2 >= len(values)


def _looks_periodic(column: pd.Series) -> bool:
    return periods.looks_like_periods(column.iloc[:2_000].dropna().unique().tolist()[:200])


# --- rows to leave out ---


@dataclass(slots=True)
class Exclusions:
    keep: np.ndarray | None  # boolean mask over raw rows; None keeps everything
    rows: list[ExcludedRow]
    total: int
    # Per raw row, the P&L section heading above it ("Expenses"), when the file has such headings and no
    # type column: the lines' account type. (See :func:`section_types`.)
    section_types: np.ndarray | None = None


def find_exclusions(columns: Columns, plan: Plan) -> Exclusions:
    """Totals, subtotals and computed lines (by label, in any text column) and section headings (no
    amounts)."""
    n = len(columns.raw)
    total: np.ndarray | None = None
    computed: np.ndarray | None = None
    for name in columns.text:
        total_labels, computed_labels = totals.label_kinds(columns.uniques(name))
        # Only a column that has such labels pays for a per-row pass.
        if total_labels:
            hits = columns.raw[name].isin(total_labels).to_numpy(dtype=bool)
            total = hits if total is None else total | hits
        if computed_labels:
            hits = columns.raw[name].isin(computed_labels).to_numpy(dtype=bool)
            computed = hits if computed is None else computed | hits
    if total is not None and computed is not None:
        computed = computed & ~total  # (isin's arrays may be read-only views)
    amount_cols = amount_columns(plan)
    heading: np.ndarray | None = None
    if amount_cols:
        heading = np.isnan(columns.numbers[amount_cols[0]].values)
        for name in amount_cols[1:]:
            heading &= np.isnan(columns.numbers[name].values)
        for labelled in (total, computed):
            if labelled is not None:
                heading &= ~labelled
    unlabelled = _unlabelled_subtotals(columns, plan, amount_cols, total, computed, heading)
    if unlabelled is not None:
        total = unlabelled if total is None else total | unlabelled
    sections = None
    label = plan.account
    if heading is not None and plan.account_type is None and label is not None and label in columns.raw.columns:
        sections = section_types(columns, label, heading, total)
    excluded = heading if heading is not None else np.zeros(n, dtype=bool)
    for labelled in (total, computed):
        if labelled is not None:
            excluded = excluded | labelled
    arithmetic = _computed_by_arithmetic(columns, plan, amount_cols, excluded, sections)
    if arithmetic is not None:
        computed = arithmetic if computed is None else computed | arithmetic
        excluded = excluded | arithmetic
    count = int(np.count_nonzero(excluded))
    if count == 0:
        return Exclusions(None, [], 0, sections)
    positions = np.flatnonzero(excluded)[:MAX_LISTED_EXCLUSIONS]
    label_cols = [c for c in ([plan.account] if plan.account else []) + columns.text if c in columns.raw.columns]
    labels = _row_labels(columns.raw, label_cols, positions)
    line_numbers = columns.raw.index.to_numpy()[positions]
    listed = []
    for position, line, label in zip(positions, line_numbers, labels, strict=True):
        if unlabelled is not None and unlabelled[position]:
            reason = "subtotal without a label (equals the sum of the lines above it)"
        elif total is not None and total[position]:
            reason = "total or subtotal row"
        elif arithmetic is not None and arithmetic[position]:
            reason = "computed line: its amounts equal revenue minus costs of the lines above it, not an account"
        elif computed is not None and computed[position]:
            reason = "computed line (sums other lines), not an account"
        else:
            reason = "section heading or line without amounts"
        listed.append(ExcludedRow(source_row=int(line), label=label, reason=reason))
    return Exclusions(~excluded, listed, count, sections)


def _computed_by_arithmetic(
    columns: Columns, plan: Plan, amount_cols: list[str], excluded: np.ndarray, sections: np.ndarray | None
) -> np.ndarray | None:
    """ "Net …" rows (Net Revenue, Net Operating Revenue, Net Result, Чистая прибыль) whose amounts equal, in every
    amount column, revenue minus costs of the account lines above them (or their plain sum, when the file writes
    costs as negatives). The label alone cannot tell: "Net Revenue" is net sales in one export and net income in
    another, so the arithmetic decides. Line types come from the section headings, else the type column, else the
    account labels; all of it works on distinct labels and cumulative sums."""
    label = plan.account
    if (
        label is None
        or label not in columns.raw.columns
        or not amount_cols
        or plan.shape not in ("wide", "wide_by_period")
    ):
        return None
    uniques = columns.uniques(label)
    if not any(totals.NET_LINE_RE.match(str(u)) for u in uniques):
        return None
    from analyst.engine.accounts import classify_label
    from analyst.engine.options import AccountType

    codes, factorized = columns.factorized(label)
    is_net = np.append([bool(totals.NET_LINE_RE.match(str(u))) for u in factorized], False)[codes]
    candidate = is_net & ~excluded
    if not candidate.any():
        return None
    sign_of = {AccountType.REVENUE: 1.0, AccountType.EXPENSE: -1.0, AccountType.CONTRA_REVENUE: -1.0}

    def signs_for(values: np.ndarray, row_codes: np.ndarray) -> np.ndarray:
        per_value = np.array([sign_of.get(classify_label(str(v)), 0.0) for v in values] + [0.0])
        return per_value[row_codes]

    if sections is not None:
        texts, row_codes = np.unique(np.where(pd.isna(sections), "", sections.astype(str)), return_inverse=True)
        sign = signs_for(texts, row_codes)
    elif plan.account_type and plan.account_type in columns.raw.columns:
        type_codes, type_values = columns.factorized(plan.account_type)
        sign = signs_for(np.asarray(type_values, dtype=object), type_codes)
    else:
        sign = signs_for(np.asarray(factorized, dtype=object), codes)
    line = ~excluded & ~candidate & (sign != 0)
    values = np.column_stack([columns.numbers[c].values for c in amount_cols])
    filled = ~np.isnan(values)
    amounts = np.where(filled & line[:, None], values, 0.0)
    difference = np.cumsum(amounts * sign[:, None], axis=0)
    plain = np.cumsum(amounts, axis=0)
    has_both = np.cumsum(line & (sign > 0)) > 0
    has_both &= np.cumsum(line & (sign < 0)) > 0
    own = np.where(filled, values, 0.0)
    at = np.flatnonzero(candidate & has_both & filled.any(axis=1))
    if at.size == 0:
        return None
    close = np.isclose(difference[at], own[at], rtol=1e-9, atol=0.005).all(axis=1)
    close |= np.isclose(plain[at], own[at], rtol=1e-9, atol=0.005).all(axis=1)
    found = np.zeros(len(candidate), dtype=bool)
    found[at[close]] = True
    return found if found.any() else None


def _unlabelled_subtotals(
    columns: Columns,
    plan: Plan,
    amount_cols: list[str],
    *labelled: np.ndarray | None,
) -> np.ndarray | None:
    """Rows with amounts but an empty account cell whose amounts equal, in every amount column, the sum of the
    account lines since the previous subtotal (a group subtotal) or of all account lines above (a grand total).
    Exports from Excel pivots and many ERPs write subtotals this way, with the label only in an outer column.

    At least two lines must add up to it: a blank-account row equal to the single line above it may be a
    genuine line, so it is kept. Vectorised with cumulative sums; a file without blank accounts pays one
    ``isna``."""
    label = plan.account
    if label is None or label not in columns.raw.columns or not amount_cols:
        return None
    blank = columns.raw[label].isna().to_numpy(dtype=bool)
    if not blank.any():
        return None
    values = np.column_stack([columns.numbers[c].values for c in amount_cols])
    filled = ~np.isnan(values)
    breaks = np.zeros(len(blank), dtype=bool)  # rows that end a group: labelled totals and headings
    for mask in labelled:
        if mask is not None:
            breaks |= mask
    candidate = blank & filled.any(axis=1) & ~breaks
    if not candidate.any():
        return None
    line = ~blank & ~breaks
    amounts = np.where(filled & line[:, None], values, 0.0)
    cumulative = np.cumsum(amounts, axis=0)
    lines_so_far = np.cumsum(line)
    rows = np.arange(len(blank))
    last_break = np.maximum.accumulate(np.where(breaks | candidate, rows, -1))
    at = np.flatnonzero(candidate)
    start = np.where(at > 0, last_break[np.maximum(at - 1, 0)], -1)
    start_sum = np.where((start >= 0)[:, None], cumulative[np.maximum(start, 0)], 0.0)
    start_lines = np.where(start >= 0, lines_so_far[np.maximum(start, 0)], 0)
    own = np.where(filled[at], values[at], 0.0)

    def matches(sums: np.ndarray) -> np.ndarray:
        return np.isclose(sums, own, rtol=1e-9, atol=0.005).all(axis=1)

    group = matches(cumulative[at] - start_sum) & (lines_so_far[at] - start_lines >= 2)
    everything = matches(cumulative[at]) & (lines_so_far[at] >= 2)
    found = np.zeros(len(blank), dtype=bool)
    found[at[group | everything]] = True
    return found if found.any() else None


def section_types(columns: Columns, label: str, heading: np.ndarray, total: np.ndarray | None) -> np.ndarray | None:
    """Each row's enclosing P&L section in a QuickBooks-style report: the nearest section heading above it
    ("Income", "Cost of Goods Sold", "Expenses", "Доходы", "Aufwendungen"), until that section's total row
    ("Total Expenses"); ``None`` outside any section. ``None`` for the whole file when it has no such
    headings.

    A section heading is a row without amounts whose ``label`` is a section word; the carry is a forward
    fill over the rows, so nothing loops over them.
    """
    if not heading.any():
        return None
    if not totals.section_kinds(columns.uniques(label))[0].any():
        return None  # (checked on the distinct labels first: no per-row codes for a file without sections)
    codes, factorized = columns.factorized(label)
    opens, closes = totals.section_kinds(list(factorized))  # in the codes' order
    texts = np.array([str(u).strip() for u in factorized] + [""], dtype=object)
    row_opens = np.append(opens, False)[codes] & heading  # code -1 (empty label) picks the trailing False
    if not row_opens.any():
        return None
    marks = pd.Series(np.full(len(codes), None, dtype=object))
    if total is not None:
        row_closes = np.append(closes, False)[codes] & total
        marks[row_closes] = ""  # the section ends at its total row
    marks[row_opens] = texts[codes[row_opens]]
    carried = marks.ffill().to_numpy(dtype=object, copy=True)
    carried[carried == ""] = None
    return carried


def amount_columns(plan: Plan) -> list[str]:
    if plan.shape == "wide":
        return [plan.actual, plan.reference]
    if plan.shape == "long":
        return [plan.amount] if plan.amount else []
    if plan.period_columns:
        return list(plan.period_columns.values())
    return [c for pair in plan.pairs.values() for c in pair if c]


def _row_labels(raw: pd.DataFrame, label_cols: list[str], positions: np.ndarray) -> list[str]:
    labels = [""] * len(positions)
    for name in dict.fromkeys(label_cols):
        values = raw[name].to_numpy(dtype=object)[positions]
        labels = [lb or ("" if v is None or v != v else str(v).strip()) for lb, v in zip(labels, values, strict=True)]
    return labels


# --- the tidy frame ---


def _dimension(columns: Columns, name: str, keep: np.ndarray | None) -> pd.Series:
    """A text column as stripped labels (QuickBooks indents accounts) with empty cells named; the column
    itself when it is clean already."""
    column = columns.raw[name]
    labels = [str(u) for u in columns.uniques(name)]
    clean = not column.hasnans and all(label == label.strip() and label for label in labels)
    if clean and column.dtype == "str":
        picked = column if keep is None else column[keep]
        return picked.reset_index(drop=True)
    codes, uniques = columns.factorized(name)
    texts = pd.Series(np.asarray(uniques, dtype=object)).astype("str").str.strip()
    texts = texts.mask(texts == "", BLANK_LABEL)
    table = np.append(texts.to_numpy(dtype=object), BLANK_LABEL)
    row_codes = codes if keep is None else codes[keep]
    return pd.Series(table[row_codes], dtype="str")  # code -1 (empty cell) picks the trailing BLANK_LABEL


def build_frame(columns: Columns, plan: Plan, exclusions: Exclusions) -> tuple[pd.DataFrame, list[str]]:
    """The tidy frame for ``plan`` over the kept rows, and warnings about what was read."""
    raw = columns.raw
    keep = exclusions.keep
    warnings: list[str] = []

    def take(values: pd.Series | np.ndarray) -> np.ndarray | pd.Series:
        if keep is None:
            return values
        return values[keep]

    source_dims = [d for d in plan.dimensions if d != METRIC]
    dims = {d: _dimension(columns, d, keep) for d in source_dims}
    if plan.account_type and plan.account_type in raw.columns:
        # Carried like a dimension so that every shape keeps it beside its line.
        dims[ACCOUNT_TYPE] = _dimension(columns, plan.account_type, keep)
    elif plan.account_type == SECTION_HEADINGS and exclusions.section_types is not None:
        types = exclusions.section_types if keep is None else exclusions.section_types[keep]
        dims[ACCOUNT_TYPE] = pd.Series(types, dtype="str").fillna(BLANK_LABEL)
    period: pd.Series | None = None
    if plan.period and plan.period in raw.columns:
        codes, uniques = columns.factorized(plan.period)
        labels = columns.period_labels(plan.period)
        if not any(label is not None for label in labels):
            # A column the file itself calls "period" ("P01", "Week 3"): its own labels, in the file's order.
            labels = [None if u is None or u != u else str(u).strip() or None for u in uniques]
        period_values: Sequence[object] | pd.Index = uniques
        if plan.period_year:
            codes, period_values, labels = _year_months(columns, plan.period_year, codes, labels)
        categorical, unreadable = periods.to_period(codes if keep is None else codes[keep], period_values, labels)
        period = pd.Series(categorical)
        if unreadable:
            warnings.append(f"{unreadable} row(s) have a '{plan.period}' value that is not a month or a date.")

    def numbers(name: str | None) -> np.ndarray:
        if name is None:
            return np.full(int(keep.sum()) if keep is not None else len(raw), np.nan)
        return np.asarray(take(columns.numbers[name].values))

    out: dict[str, object] = {}
    if plan.shape == "wide":
        out = {**dims}
        if period is not None:
            out[PERIOD] = period
        out[ACTUAL] = numbers(plan.actual)
        out[REFERENCE] = numbers(plan.reference)
        if plan.actual_qty and plan.reference_qty:
            out[ACTUAL_QTY] = numbers(plan.actual_qty)
            out[REFERENCE_QTY] = numbers(plan.reference_qty)
    elif plan.pairs:
        labels = list(plan.pairs)
        rows = len(next(iter(dims.values()))) if dims else len(numbers(None))
        out = {d: _repeat(s, len(labels)) for d, s in dims.items()}
        stacked_label = pd.Categorical.from_codes(
            np.repeat(np.arange(len(labels)), rows),
            categories=pd.Index(labels, dtype="str"),
            ordered=plan.shape == "wide_by_period",
        )
        if plan.shape == "wide_by_period":
            out[PERIOD] = stacked_label
        else:
            out[METRIC] = pd.Series(stacked_label).cat.set_categories(labels, ordered=False)
            if period is not None:
                out[PERIOD] = _repeat(period, len(labels))
        out[ACTUAL] = np.concatenate([numbers(a) for a, _ in plan.pairs.values()])
        out[REFERENCE] = np.concatenate([numbers(r) for _, r in plan.pairs.values()])
    else:
        out = _pivot_long(columns, plan, dims, period, numbers, keep, warnings)
    frame = pd.DataFrame(out, copy=False)
    if plan.shape == "wide" and plan.variance:
        warnings.extend(_check_variance(columns, plan, keep))
    return frame, warnings


def _year_months(
    columns: Columns, year: str, month_codes: np.ndarray, month_labels: list[str | None]
) -> tuple[np.ndarray, list[object], list[str | None]]:
    """A month-name column and a year column as one column of real periods ("2024" + "Jan" → "2024-01"):
    the pairs are coded once (years × months), never labelled row by row."""
    year_codes, _ = columns.factorized(year)
    year_labels = columns.period_labels(year)
    months = len(month_labels)
    combined = np.where((year_codes >= 0) & (month_codes >= 0), year_codes.astype(np.int64) * months + month_codes, -1)
    labels: list[str | None] = []
    for y in year_labels:
        digits = periods.year_digits(y)
        for m in month_labels:
            labels.append(None if digits is None or m is None else f"{digits}-{periods.MONTHS.index(m) + 1:02d}")
    return combined, list(range(len(labels))), labels


def _repeat(values: pd.Series, times: int) -> pd.Series:
    """The column written ``times`` times one after another."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        codes = np.tile(values.cat.codes.to_numpy(), times)
        return pd.Series(pd.Categorical.from_codes(codes, dtype=values.dtype))
    return values.take(np.tile(np.arange(len(values)), times)).reset_index(drop=True)


def _pivot_long(
    columns: Columns,
    plan: Plan,
    dims: dict[str, pd.Series],
    period: pd.Series | None,
    numbers: Callable[[str | None], np.ndarray],
    keep: np.ndarray | None,
    warnings: list[str],
) -> dict[str, object]:
    """Long rows (one per scenario) → one row per line with actual and reference side by side. Several rows
    of one line and scenario (postings, a split line) are added together, as a pivot table would, and the
    warnings say so."""
    assert plan.scenario is not None
    codes, uniques = columns.factorized(plan.scenario)
    values_text = pd.Series(np.asarray(uniques, dtype=object)).astype("str").str.strip().to_numpy(dtype=object)
    actual_codes = np.append(values_text == plan.actual, False)
    reference_codes = np.append(values_text == plan.reference, False)
    row_codes = codes if keep is None else codes[keep]
    is_actual = actual_codes[row_codes]
    is_reference = reference_codes[row_codes]
    scenario = row_codes
    keys: dict[str, pd.Series] = dict(dims)
    if plan.period_columns:
        labels = list(plan.period_columns)
        rows = len(scenario)
        keys = {d: _repeat(s, len(labels)) for d, s in dims.items()}
        keys[PERIOD] = pd.Series(
            pd.Categorical.from_codes(
                np.repeat(np.arange(len(labels)), rows),
                categories=pd.Index(labels, dtype="str"),
                ordered=True,
            )
        )
        amount = np.concatenate([numbers(c) for c in plan.period_columns.values()])
        quantity = None
        is_actual = np.tile(is_actual, len(labels))
        is_reference = np.tile(is_reference, len(labels))
    else:
        if period is not None:
            keys[PERIOD] = period
        amount = numbers(plan.amount)
        quantity = numbers(plan.quantity) if plan.quantity else None
    values: dict[str, np.ndarray] = {
        ACTUAL: np.where(is_actual, amount, np.nan),
        REFERENCE: np.where(is_reference, amount, np.nan),
    }
    if quantity is not None:
        values[ACTUAL_QTY] = np.where(is_actual, quantity, np.nan)
        values[REFERENCE_QTY] = np.where(is_reference, quantity, np.nan)
    frame = pd.DataFrame({**keys, **values})
    frame = frame[is_actual | is_reference]
    if not keys:
        return {name: [frame[name].sum(min_count=1)] for name in values}
    grouped = frame.groupby(list(keys), sort=False, observed=True, dropna=False)[list(values)].sum(min_count=1)
    result = grouped.reset_index()
    for name, label in ((ACTUAL, plan.actual), (REFERENCE, plan.reference)):
        # Rows with an amount against the lines that got one: more rows than lines means some were added up.
        rows_with_amount = int(frame[name].notna().sum())
        lines_with_amount = int(result[name].notna().sum())
        if rows_with_amount > lines_with_amount:
            warnings.append(
                f"{rows_with_amount - lines_with_amount:,} '{label}' row(s) repeat a line already seen "
                f"(same {', '.join(keys)}); "
                "their amounts were added together, as a pivot table would."
            )
    if PERIOD in result.columns and not isinstance(result[PERIOD].dtype, pd.CategoricalDtype):
        result[PERIOD] = pd.Categorical(result[PERIOD], categories=keys[PERIOD].cat.categories, ordered=True)
    return {name: result[name] for name in result.columns}


_PERCENT_HEADER_RE = re.compile(r"%|pct|percent|процент|prozent|ratio", re.IGNORECASE)


def _is_percent_of(stated: np.ndarray, actual: np.ndarray, reference: np.ndarray, decimals: int) -> bool:
    """Whether ``stated`` is a percent of the amounts, as files write them: (A − B) / B or A / B, × 100 or as a
    ratio, either sign, against B or |B|, rounded to the column's own decimals. Rows with B = 0 say nothing."""
    usable = reference != 0
    if not usable.any():
        return False
    a, b, s = actual[usable], reference[usable], stated[usable]
    # Half a unit in the last written decimal, plus room for the "%" parser's own scaling.
    tolerance = 0.5 * 10.0 ** (-max(0, min(decimals, 6))) + 1e-9
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = ((a - b) / b, (a - b) / np.abs(b), (b - a) / np.abs(b), a / b)
        for ratio in ratios:
            for factor in (100.0, 1.0):
                candidate = ratio * factor
                if np.all(np.abs(candidate - s) <= tolerance * max(1.0, factor / 100.0)):
                    return True
    return False


def _check_variance(columns: Columns, plan: Plan, keep: np.ndarray | None) -> list[str]:
    """Compare the file's own variance columns with actual − reference; say so when they disagree."""
    actual = columns.numbers[plan.actual].values
    reference = columns.numbers[plan.reference].values
    mask = keep if keep is not None else np.ones(len(actual), dtype=bool)
    warnings = []
    for name in plan.variance:
        parsed = columns.numbers[name]
        stated = parsed.values
        both = mask & ~np.isnan(stated) & ~np.isnan(actual) & ~np.isnan(reference)
        if not both.any():
            continue
        if _is_percent_of(stated[both], actual[both], reference[both], parsed.decimals):
            continue  # the file's own percent (variance % or % of budget): checked as a percent, and it agrees
        if parsed.percent or _PERCENT_HEADER_RE.search(name):
            warnings.append(
                f"The file's '{name}' column (a percent) disagrees with ({plan.actual} − {plan.reference}) / "
                f"{plan.reference}; the percents here are recomputed from the amounts."
            )
            continue
        ours = actual[both] - reference[both]
        tolerance = 0.011 + 1e-9 * np.abs(ours)
        if np.all(np.abs(ours - stated[both]) <= tolerance):
            continue
        if np.all(np.abs(-ours - stated[both]) <= tolerance):
            warnings.append(
                f"The file's '{name}' column is {plan.reference} − {plan.actual} (the opposite sign); "
                f"variances here are {plan.actual} − {plan.reference}."
            )
            continue
        wrong = int((np.abs(ours - stated[both]) > tolerance).sum())
        warnings.append(
            f"The file's '{name}' column disagrees with {plan.actual} − {plan.reference} on {wrong} row(s); "
            "the variances here are recomputed from the amounts."
        )
    return warnings
