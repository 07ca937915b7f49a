"""Account types: from a type column (en/ru/de), from labels, and from the user's overrides."""

from __future__ import annotations

import pytest

from analyst.engine import AccountType, AnalysisOptions, classify_accounts
from analyst.engine.accounts import classify_label
from tests.engine.helpers import make_dataset

R, C, E, U = AccountType.REVENUE, AccountType.CONTRA_REVENUE, AccountType.EXPENSE, AccountType.UNKNOWN


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("Income", R),
        ("Other Income", R),
        ("Revenue", R),
        ("Sales", R),
        ("Доход", R),
        ("Выручка", R),
        ("Erlöse", R),
        ("Umsatz", R),
        ("Returns", C),
        ("Discounts", C),
        ("Allowances", C),
        ("Contra Revenue", C),
        ("Возвраты", C),
        ("Скидки", C),
        ("Rabatte", C),
        ("Erlösschmälerungen", C),
        ("Expense", E),
        ("Other Expense", E),
        ("Cost of Goods Sold", E),
        ("COGS", E),
        ("Расход", E),
        ("Aufwand", E),
        ("Kosten", E),
        ("", U),
        ("Widgets", U),
    ],
)
def test_type_words(word: str, expected: AccountType) -> None:
    assert classify_label(word) is expected


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("Subscription Revenue", R),
        ("Software revenue", R),  # "software" alone would be a cost
        ("Consulting income", R),
        ("Interest income", R),
        ("Sales", R),
        ("Sales Discounts", C),  # contra before revenue
        ("Sales returns and allowances", C),
        ("Cost of sales", E),  # expense before revenue
        ("Sales commissions", E),
        ("Sales & Marketing", E),
        ("Income tax", E),
        ("Salaries & Wages", E),
        ("Events & Conferences", E),
        ("Cloud Hosting", E),
        ("Выручка от услуг", R),
        ("Доход от аренды", R),
        ("Аренда офиса", E),
        ("Заработная плата", E),
        ("Себестоимость продаж", E),
        ("Скидки покупателям", C),
        ("Umsatzerlöse", R),
        ("Personalkosten", E),
        ("Mietaufwand", E),
        ("Gewährte Skonti", C),
        ("Headcount", E),
        ("Gross Profit", U),
    ],
)
def test_labels(label: str, expected: AccountType) -> None:
    assert classify_label(label) is expected


def test_type_column_wins_and_labels_fill_gaps() -> None:
    ds = make_dataset(
        [
            ["Widgets", "Revenue", 10, 5],  # label says nothing, type column says revenue
            ["Consulting", "Expense", 10, 5],  # type column beats the label
            ["Travel", None, 10, 5],  # no type: label decides
            ["Gizmos", None, 10, 5],  # neither: unknown
            ["Sales", "Aufwand", 10, 5],
        ],
        ["Account", "account_type", "actual", "reference"],
        account="Account",
    )
    assert list(classify_accounts(ds)) == [R, E, E, U, E]


def test_overrides_by_label_case_insensitive() -> None:
    ds = make_dataset(
        [["Widgets", 1, 1], ["Travel", 1, 1], ["Widgets", 2, 2]],
        ["Account", "actual", "reference"],
        account="Account",
    )
    opts = AnalysisOptions().with_account_types(
        {"widgets": AccountType.REVENUE, "Travel": AccountType.REVENUE}
    )
    assert list(classify_accounts(ds, opts)) == [R, R, R]
    assert list(classify_accounts(ds)) == [U, E, U]


def test_department_names_are_not_account_labels() -> None:
    # "Sales" is a department here, not revenue: without an account column, nothing is inferred from it.
    ds = make_dataset([["Sales", 1, 2]], ["Department", "actual", "reference"])
    assert list(classify_accounts(ds)) == [U]


def test_account_like_dimension_used_when_no_account_role() -> None:
    ds = make_dataset([["Sales", "Travel", 1, 2]], ["Department", "Статья", "actual", "reference"])
    assert list(classify_accounts(ds)) == [E]
