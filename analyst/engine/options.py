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


@dataclass(frozen=True, slots=True)
class Materiality:
    amount: float = 10_000.0
    percent: float = 10.0  # in percent
    mode: MaterialityMode = MaterialityMode.AND

    def to_dict(self) -> dict[str, object]:
        return {"amount": self.amount, "percent": self.percent, "mode": self.mode.value}


@dataclass(frozen=True, slots=True)
class AnalysisOptions:
    materiality: Materiality = field(default_factory=Materiality)
    # Per-label overrides of the account type, keyed by the account (or metric) label as in the data.
    account_types: Mapping[str, AccountType] = field(default_factory=dict)

    def with_account_types(self, overrides: Mapping[str, AccountType]) -> AnalysisOptions:
        return replace(self, account_types={**self.account_types, **overrides})
