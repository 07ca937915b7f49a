"""Choosing the shape of the file and which column plays which role (overrides first, then header words, then
values): the :class:`Plan` the tidy frame is built from. Shapes are described in :mod:`analyst.ingest.layout`."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import cast

import pandas as pd

from analyst.dataset import (
    ROLE_COLUMNS,
    ColumnRoles,
    IngestError,
    ReferenceKind,
    RoleOverrides,
    Shape,
)
from analyst.ingest import periods, roles
from analyst.ingest.columns import Columns
from analyst.ingest.period_column import detect_period_column, year_for_months

METRIC = "Metric"
# ``ColumnRoles.account_type`` when the types come from a QuickBooks-style report's section headings
# ("Income", "Expenses" above the account lines) rather than from a column.
SECTION_HEADINGS = "section headings"


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


def amount_columns(plan: Plan) -> list[str]:
    if plan.shape == "wide":
        return [plan.actual, plan.reference]
    if plan.shape == "long":
        return [plan.amount] if plan.amount else []
    if plan.period_columns:
        return list(plan.period_columns.values())
    return [c for pair in plan.pairs.values() for c in pair if c]


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
        if columns.holds_iso_dates(name) or columns.raw[name].iloc[:2_000].nunique() > 30:
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
        plan.period_year = year_for_months(columns, month_column, used)
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


def _holds_account_types(columns: Columns, name: str) -> bool:
    """A "Type" column whose values are account types (Income, Expense, Доход...), not Direct/Retail/Online."""
    from analyst.engine.accounts import classify_label
    from analyst.engine.options import AccountType

    values = [str(v) for v in columns.uniques(name)[:200]]
    known = sum(classify_label(v) != AccountType.UNKNOWN for v in values)
    return bool(values) and known * 2 >= len(values)
