"""Total, subtotal and computed rows ("Total Income", "Net Income", "ИТОГО", "Summe"): found so they are never
summed twice; and the P&L section headings of QuickBooks-style reports ("Income", "Expenses", "Доходы",
"Aufwendungen"), which give the account lines below them their type. Labels are matched once per distinct
value of each dimension column, then mapped to the rows."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

TOTAL_RE = re.compile(
    r"^\s*(?:grand\s+total|sub[\s-]?total|total(?:\s+for)?|totals|итого|всего|в\s+том\s+числе\s+итого|"
    r"summe|gesamt|gesamtsumme|zwischensumme|endsumme|insgesamt)(?![^\W_])"
    # "Total Rewards" is the HR benefits programme, an account of its own.
    r"(?!\s+rewards?(?![^\W_]))"
    r"|(?<![^\W_])(?:total|totals|итого|всего|summe|gesamt|insgesamt)\s*:?\s*$",
    re.IGNORECASE,
)
COMPUTED_RE = re.compile(
    r"^\s*(?:net\s+income|net\s+operating\s+income|net\s+other\s+income|net\s+profit|net\s+loss|gross\s+profit|"
    r"net\s+operating\s+revenue|net\s+other\s+revenue|net\s+(?:surplus|deficit|result)|net\s+ordinary\s+income|"
    r"contribution(?:\s+margin)?|surplus\s*/\s*\(?deficit\)?|"
    r"gross\s+margin|operating\s+income|operating\s+profit|ebitda|ebit|чистая\s+прибыль|валовая\s+прибыль|"
    r"операционная\s+прибыль|jahresüberschuss|rohertrag|betriebsergebnis)(?![^\W_])"
    # "Net Income Tax" / "Operating Income Taxes" are tax expense accounts, not the computed line.
    r"(?!\s+tax(?:es)?(?![^\W_]))",
    re.IGNORECASE,
)


_PYTHON_LOOP_LIMIT = 5_000

# Labels that may name a computed line but also a real account ("Net Revenue" is net sales in one file and net
# income in another): excluded only when the row's amounts are the difference of the sections above it.
NET_LINE_RE = re.compile(
    r"^\s*(?:net\s+\w+(?:\s+\w+)?|total\s+net\s+\w+|profit|loss|profit\s*/\s*loss|result|surplus|deficit"
    r"|чист\w+\s+\w+|прибыль|убыток|ergebnis|überschuss|fehlbetrag)\s*:?\s*$",
    re.IGNORECASE,
)


def label_kinds(uniques: Sequence[object]) -> tuple[list[object], list[object]]:
    """Which distinct labels of a column are totals or subtotals, and which are computed lines (Gross
    Profit...)."""
    values = [u for u in uniques if u is not None and u == u]
    if len(values) <= _PYTHON_LOOP_LIMIT:
        # A few thousand labels: plain ``re`` over the distinct labels beats building a Series.
        total = [bool(TOTAL_RE.search(str(v))) for v in values]
        computed = [bool(COMPUTED_RE.search(str(v))) for v in values]
    else:
        texts = pd.Series(values, dtype=object).astype("str")
        total = texts.str.contains(TOTAL_RE).tolist()
        computed = texts.str.contains(COMPUTED_RE).tolist()
    return (
        [v for v, hit in zip(values, total, strict=True) if hit],
        [v for v, hit, is_total in zip(values, computed, total, strict=True) if hit and not is_total],
    )


# The P&L sections a QuickBooks-style report groups its accounts under, as the whole label of a heading row.
# Only words that name one account type: QuickBooks Desktop's "Ordinary Income/Expense" encloses both, and a
# group heading such as "6000 Payroll Expenses" is an account, not a section.
_SECTION = (
    r"(?:other\s+)?(?:income|revenues?|expenses?|expenditures?|costs|outgoings|receipts|sales)"
    r"|operating\s+(?:expenses|expenditures?|costs)|cost\s+of\s+(?:goods\s+sold|sales|revenue)"
    r"|cogs|(?:прочие\s+)?(?:доходы|расходы|затраты)|выручка|себестоимость(?:\s+продаж)?"
    r"|(?:операционные|коммерческие|управленческие)\s+расходы"
    r"|(?:sonstige\s+)?(?:betriebliche\s+)?(?:erträge|ertraege|aufwendungen|aufwand|kosten|ausgaben|einnahmen)"
    r"|umsatzerlöse|umsatzerloese|(?:dépenses|charges|produits|recettes)"
)
SECTION_RE = re.compile(rf"^\s*(?:{_SECTION})\s*:?\s*$", re.IGNORECASE)
# The row that closes a section: "Total Income", "Итого Доходы", "Summe Aufwendungen".
SECTION_TOTAL_RE = re.compile(
    rf"^\s*(?:total(?:\s+for)?|итого(?:\s+по)?|всего|summe|gesamt)\s*:?\s*(?:{_SECTION})\s*:?\s*$", re.IGNORECASE
)


def section_kinds(uniques: Sequence[object]) -> tuple[np.ndarray, np.ndarray]:
    """For each distinct label: does it name a P&L section, and does it close one ("Total Expenses")?"""
    texts = ["" if u is None or u != u else str(u) for u in uniques]
    opens = np.fromiter((bool(SECTION_RE.match(t)) for t in texts), dtype=bool, count=len(texts))
    closes = np.fromiter((bool(SECTION_TOTAL_RE.match(t)) for t in texts), dtype=bool, count=len(texts))
    return opens, closes
