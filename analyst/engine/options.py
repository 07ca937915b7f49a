"""Options that shape an analysis: materiality thresholds and account-type overrides."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum


class AccountType(StrEnum):
    REVENUE = "revenue"  # up is favourable
    CONTRA_REVENUE = "contra_revenue"  # returns, discounts, allowances: behaves like a cost
    EXPENSE = "expense"  # up is unfavourable
    UNKNOWN = "unknown"  # favourability not stated


class MaterialityMode(StrEnum):
    AND = "and"  # |variance| >= amount AND |variance %| >= percent (close tools' default)
    OR = "or"
    AMOUNT = "amount"  # absolute only
    PERCENT = "percent"  # percent only


DEFAULT_AMOUNT = 10_000.0  # in currency units (dollars, euros), before the file's units and size are known


@dataclass(frozen=True, slots=True)
class Materiality:
    """Thresholds a line's variance must pass to be *material*.

    ``auto_amount``: the amount is the default and scales with the file (see
    :mod:`analyst.engine.materiality`): 10,000 currency units, written in the file's units (10 in a file
    "in $000s"), at most 1 % and at least 0.1 % of the total |reference| (rounded down to 1, 2 or 5 × a power of
    ten). An amount
    the user gave is used as it is (``auto_amount=False``, the default for an explicit ``Materiality(...)``).
    """

    amount: float = DEFAULT_AMOUNT
    percent: float = 10.0  # in percent
    mode: MaterialityMode = MaterialityMode.AND
    auto_amount: bool = False

    def to_dict(self) -> dict[str, object]:
        return {"amount": self.amount, "percent": self.percent, "mode": self.mode.value}


@dataclass(frozen=True, slots=True)
class AnalysisOptions:
    materiality: Materiality = field(default_factory=lambda: Materiality(auto_amount=True))
    # Per-label overrides of the account type, keyed by the account (or metric) label as in the data.
    account_types: Mapping[str, AccountType] = field(default_factory=dict)

    def with_account_types(self, overrides: Mapping[str, AccountType]) -> AnalysisOptions:
        return replace(self, account_types={**self.account_types, **overrides})
