"""Total, subtotal and computed rows ("Total Income", "Net Income", "ИТОГО", "Summe"): found so they are never
summed twice. Labels are matched once per distinct value of each dimension column, then mapped to the rows."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pandas as pd

TOTAL_RE = re.compile(
    r"^\s*(?:grand\s+total|sub[\s-]?total|total(?:\s+for)?|totals|итого|всего|в\s+том\s+числе\s+итого|"
    r"summe|gesamt|gesamtsumme|zwischensumme|endsumme|insgesamt)(?![^\W_])"
    r"|(?<![^\W_])(?:total|totals|итого|всего|summe|gesamt|insgesamt)\s*:?\s*$",
    re.IGNORECASE,
)
COMPUTED_RE = re.compile(
    r"^\s*(?:net\s+income|net\s+operating\s+income|net\s+other\s+income|net\s+profit|net\s+loss|gross\s+profit|"
    r"gross\s+margin|operating\s+income|operating\s+profit|ebitda|ebit|чистая\s+прибыль|валовая\s+прибыль|"
    r"операционная\s+прибыль|jahresüberschuss|rohertrag|betriebsergebnis)(?![^\W_])",
    re.IGNORECASE,
)


_PYTHON_LOOP_LIMIT = 5_000


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
