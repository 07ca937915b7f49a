"""Account types: revenue, contra-revenue, expense, or unknown, per tidy row.

The type decides favourability (revenue up is good, cost up is bad). It is taken, in this order, from
1. ``AnalysisOptions.account_types``: per-label overrides set by the user;
2. the file's own type column (``Income``, ``Cost of Goods Sold``, ``Доход``, ``Aufwand`` ...), normalised, or
   the P&L section a line sits under (``Income``, ``Expenditures``, ``Расходы``);
3. the whole file, when its amount columns say it holds costs only (``Actual Expenditure``, ``Budgeted Spend``);
4. the account (or metric) label itself (``Software subscriptions``, ``Выручка``, ``Umsatzerlöse`` ...).
Never from an organisational dimension (department, region, cost centre, channel, agency): a "Sales"
department spends money like any other.

Every step works on the *unique* labels only (a few hundred even in a million-row ledger) and maps the result
back to the rows through integer codes, so classification costs one factorisation per column.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from analyst.dataset import ACCOUNT_TYPE, Dataset
from analyst.engine.options import AccountType, AnalysisOptions

# Tiers, tried in order on each label; the first that matches decides. Contra-revenue comes first ("Sales
# discounts"), then words that only ever name a cost ("Cost of sales", "Sales commissions", "Income
# tax"), then revenue words, then words that usually name a cost but also name revenue streams
# ("Software", "Consulting",
# "Аренда": "Software revenue" and "Доход от аренды" are revenue, so the revenue tier must win over them).
_CONTRA_WORDS = (
    r"contra|return|refund|discount|allowance|rebate|chargeback|credit\s*note"
    r"|возврат|скидк|уценк"
    r"|rabatt|skont[oi]|erlösschmälerung|erloesschmaelerung|gutschrift|retoure|nachlass"
)
_STRONG_EXPENSE_WORDS = (
    r"expense|expenditure|\bcosts?\b|cost\s+of|cogs|overhead|opex|capex|\bspend"
    r"|outgoing|dépense|depense|charges\b|salar|wage|payroll|personnel|staff|fringe|compensation|benefit|bonus|commission|headcount|contractor|recruit"
    r"|insurance|depreciat|amorti[sz]|income\s+tax|\btax|travel|meals|office|supplies|utilit|bad\s+debt"
    r"|write[\s-]?off|purchases|bank\s+charges|repairs|legal|audit|postage|sales\s*(?:&|and)\s*marketing"
    r"|расход|затрат|себестоим|издерж|зарплат|заработн|оплата\s+труда|\bфот\b|преми|налог|взнос|амортиз"
    r"|страхов|командиров|канцеляр|штраф"
    r"|aufwand|aufwendung|kosten|ausgabe|gehalt|gehälter|löhne|lohn|personal|sozialabgab|abschreibung"
    r"|versicherung|reise|bewirtung|steuer|instandhaltung|reparatur|porto|wareneinsatz"
)
_REVENUE_WORDS = (
    r"revenue|income|sales|turnover|proceeds|receipts|produits|recettes|bookings|\barr\b|\bmrr\b|earned|\bgains?\b"
    r"|доход|выручк|продаж|реализац|поступлени"
    r"|erlös|erloes|umsatz|einnahm|ertrag|erträge|verkauf"
)
_WEAK_EXPENSE_WORDS = (
    r"marketing|advertis|campaign|event|conference|sponsor|trade\s*show|software|licen[cs]|hosting|cloud"
    r"|infrastructure|telecom|phone|internet|equipment|shipping|freight|logistic|\bfees?\b|consult|training"
    r"|\brent|lease|materials|inventory|subcontract|outsourc|maintenance"
    r"|реклам|маркетинг|обучени|подбор|коммунал|связь|материал|закупк|доставк|логистик|ремонт|обслуживан"
    r"|услуг|лиценз|хостинг|консалт|юрид|аренд"
    r"|miete|pacht|werbung|provision|gebühr|beratung|material|einkauf|fracht|energie|fortbildung"
)

_TIERS: tuple[tuple[AccountType, re.Pattern[str]], ...] = (
    (AccountType.CONTRA_REVENUE, re.compile(_CONTRA_WORDS, re.IGNORECASE)),
    (AccountType.EXPENSE, re.compile(_STRONG_EXPENSE_WORDS, re.IGNORECASE)),
    (AccountType.REVENUE, re.compile(_REVENUE_WORDS, re.IGNORECASE)),
    (AccountType.EXPENSE, re.compile(_WEAK_EXPENSE_WORDS, re.IGNORECASE)),
)

# Header words that mark a dimension as holding account or metric labels (when ingestion named no account).
_ACCOUNT_HEADER_RE = re.compile(
    r"account|gl\b|ledger|line\s*item|metric|category|статья|счет|счёт|показател|категори|konto|sachkonto|posten"
    r"|kennzahl",
    re.IGNORECASE,
)

# Integer codes, in the order of TYPE_ORDER; the engine groups on these.
TYPE_ORDER: tuple[AccountType, ...] = (
    AccountType.REVENUE,
    AccountType.CONTRA_REVENUE,
    AccountType.EXPENSE,
    AccountType.UNKNOWN,
)
TYPE_CODE = {t: i for i, t in enumerate(TYPE_ORDER)}
UNKNOWN_CODE = TYPE_CODE[AccountType.UNKNOWN]
# Favourability sign per code: +1 when up is good, -1 when up is bad, 0 when not known.
SIGN_BY_CODE = np.array([1, -1, -1, 0], dtype=np.int8)


def classify_label(label: str) -> AccountType:
    """The account type a single label or type word suggests (``UNKNOWN`` when none)."""
    text = str(label)
    for account_type, pattern in _TIERS:
        if pattern.search(text):
            return account_type
    return AccountType.UNKNOWN


def _classify_uniques(uniques: pd.Index | np.ndarray) -> np.ndarray:
    """Type codes for an array of unique labels, by one vectorised regex pass per tier."""
    labels = pd.Series(np.asarray(uniques, dtype=object)).astype("str").fillna("")
    codes = np.full(len(labels), UNKNOWN_CODE, dtype=np.int8)
    undecided = np.ones(len(labels), dtype=bool)
    for account_type, pattern in _TIERS:
        hit = labels.str.contains(pattern, regex=True).to_numpy(dtype=bool, na_value=False) & undecided
        codes[hit] = TYPE_CODE[account_type]
        undecided &= ~hit
    return codes


def label_column(ds: Dataset) -> str | None:
    """The column naming the account or metric: the detected account, else an account-like dimension; never
    an organisational dimension (department, region, cost centre, channel, agency)."""
    from analyst.ingest.roles import is_org_dimension

    account = ds.roles.account
    if account is not None and account in ds.frame.columns and not is_org_dimension(account):
        return account
    for dim in ds.dimensions:
        if dim in ds.frame.columns and _ACCOUNT_HEADER_RE.search(dim) and not is_org_dimension(dim):
            return dim
    return None


# Amount headers that say the whole file is spending: "Actual Expenditure", "Budgeted Spend", "Kosten Ist".
_COST_FILE_RE = re.compile(
    r"expenditure|expense|\bspend|\bcosts?\b|outlay|outgoing|appropriation|disbursement"
    r"|расход|затрат|aufwand|kosten|ausgabe",
    re.IGNORECASE,
)


def cost_only_file(ds: Dataset) -> bool:
    """The amount columns' own headers say every line is a cost (and no type column says otherwise)."""
    if ACCOUNT_TYPE in ds.frame.columns:
        return False
    if _COST_FILE_RE.search(ds.roles.actual) and _COST_FILE_RE.search(ds.roles.reference):
        return True
    # "expense_category", "Object of Expenditure": the line column itself says its lines are costs.
    label = label_column(ds)
    return label is not None and bool(_COST_FILE_RE.search(label))


def classify_codes(ds: Dataset, opts: AnalysisOptions) -> np.ndarray:
    """Type codes (indexes into :data:`TYPE_ORDER`) per tidy row, as an int8 array."""
    frame = ds.frame
    codes = np.full(len(frame), UNKNOWN_CODE, dtype=np.int8)
    if ACCOUNT_TYPE in frame.columns:
        row_codes, uniques = pd.factorize(frame[ACCOUNT_TYPE], use_na_sentinel=True)
        by_unique = _classify_uniques(uniques)
        present = row_codes >= 0
        codes[present] = by_unique[row_codes[present]]
    if cost_only_file(ds):
        codes[:] = TYPE_CODE[AccountType.EXPENSE]
        return _with_overrides(codes, *_label_codes(ds), opts)
    label_col = label_column(ds)
    if label_col is None:
        return _with_overrides(codes, None, None, opts)
    row_codes, uniques = pd.factorize(frame[label_col], use_na_sentinel=True)
    if len(uniques) == 0:
        return codes
    by_unique = _classify_uniques(uniques)
    present = row_codes >= 0
    fill = present & (codes == UNKNOWN_CODE)
    codes[fill] = by_unique[row_codes[fill]]
    return _with_overrides(codes, row_codes, uniques, opts)


def _label_codes(ds: Dataset) -> tuple[np.ndarray | None, pd.Index | None]:
    label_col = label_column(ds)
    if label_col is None:
        return None, None
    row_codes, uniques = pd.factorize(ds.frame[label_col], use_na_sentinel=True)
    return row_codes, uniques


def _with_overrides(
    codes: np.ndarray, row_codes: np.ndarray | None, uniques: pd.Index | np.ndarray | None, opts: AnalysisOptions
) -> np.ndarray:
    if row_codes is None or uniques is None:
        return codes
    present = row_codes >= 0
    if opts.account_types:
        # Overrides are keyed by the label as it appears in the data; match case-insensitively as a courtesy.
        wanted = {str(k).strip().casefold(): TYPE_CODE[AccountType(v)] for k, v in opts.account_types.items()}
        override = np.array(
            [wanted.get(str(u).strip().casefold(), -1) for u in uniques],  # unique labels only, not rows
            dtype=np.int8,
        )
        hit = present & (override[np.where(present, row_codes, 0)] >= 0)
        codes[hit] = override[row_codes[hit]]
    return codes


def classify_accounts(ds: Dataset, opts: AnalysisOptions | None = None) -> pd.Series:
    """The :class:`AccountType` of every tidy row, as a categorical Series aligned with ``ds.frame``."""
    codes = classify_codes(ds, opts or AnalysisOptions())
    categorical = pd.Categorical.from_codes(codes, categories=pd.Index([t.value for t in TYPE_ORDER]))
    return pd.Series(categorical, index=ds.frame.index, name="account_type")
