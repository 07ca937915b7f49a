"""The headline: the one number a report leads with, and what stands behind it.

Contract (what a controller can check):
- A file whose lines are all of one kind (all revenue, all costs, or all of unknown type) leads with its
  **variance**, actual − reference, favourable as its account type says (``measure == "variance"``).
- A file that mixes revenue and cost lines leads with the **effect on profit**: revenue variances count as they
  are, cost (expense) and contra-revenue variances with their sign flipped, so a positive effect is good for
  profit (``measure == "effect_on_profit"``). Revenue, contra-revenue and costs follow separately, each with its
  own actual, reference, variance and verdict. The straight sum of all variances (revenue + costs) is kept in
  ``straight_variance`` for compatibility but is *not* "the variance" of such a file.
- Lines of unknown type never enter the effect on profit; when the file has both known and unknown lines the
  unknown part is listed separately and ``unknown_excluded`` says how much variance was left out.
- Types whose amounts the file writes as negatives (a signed P&L's costs) are judged on their size: −150 of cost
  against −100 is 50 more cost, an effect on profit of −50.

Every amount is an exact sum in the dataset's minor units, rounded to its scale only here, on the way out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from analyst.dataset import Dataset
from analyst.engine import prepared as core
from analyst.engine.accounts import TYPE_CODE, TYPE_ORDER
from analyst.engine.options import AccountType, AnalysisOptions

HeadlineMeasure = Literal["variance", "effect_on_profit"]

_COST_TYPES = (AccountType.EXPENSE, AccountType.CONTRA_REVENUE)


@dataclass(frozen=True, slots=True)
class HeadlinePart:
    """One account type's totals inside a headline: amounts as the file writes them, plus its effect on profit.

    ``effect_on_profit`` is the variance with the cost sign flipped (``None`` for unknown types);
    ``favourable`` is ``None`` when it cannot be said (unknown type, or no effect).
    """

    account_type: AccountType
    actual: float
    reference: float
    variance: float
    variance_pct: float | None
    effect_on_profit: float | None
    favourable: bool | None
    lines: int  # tidy rows of this type

    def to_dict(self) -> dict[str, Any]:
        return {
            "account_type": self.account_type.value,
            "actual": self.actual,
            "reference": self.reference,
            "variance": self.variance,
            "variance_pct": self.variance_pct,
            "effect_on_profit": self.effect_on_profit,
            "favourable": self.favourable,
            "rows": self.lines,
        }


@dataclass(frozen=True, slots=True)
class Headline:
    """What a report leads with; see the module docstring for the rule.

    - ``measure``: ``"effect_on_profit"`` when revenue and costs are mixed, else ``"variance"``;
    - ``value``: the number to lead with (the effect on profit, or the variance);
    - ``value_pct``: for ``"variance"``, variance / |reference| × 100; for ``"effect_on_profit"``, the effect
      against the reference profit (revenue − costs) when that is not 0; ``None`` otherwise;
    - ``favourable``: ``True``/``False``, or ``None`` when unknown (unknown types only, or a zero effect);
    - ``parts``: one :class:`HeadlinePart` per account type present, in the order revenue, contra-revenue,
      expense, unknown;
    - ``straight_variance``: actual − reference over every line, whatever the types (the legacy total);
    - ``unknown_excluded``: variance of unknown-type lines left out of the effect on profit (0.0 when none).
    """

    measure: HeadlineMeasure
    value: float
    value_pct: float | None
    favourable: bool | None
    parts: tuple[HeadlinePart, ...]
    straight_variance: float
    unknown_excluded: float

    @property
    def mixed(self) -> bool:
        return self.measure == "effect_on_profit"

    def part(self, account_type: AccountType) -> HeadlinePart | None:
        return next((p for p in self.parts if p.account_type == account_type), None)

    @property
    def revenue(self) -> HeadlinePart | None:
        return self.part(AccountType.REVENUE)

    @property
    def costs(self) -> HeadlinePart | None:
        return self.part(AccountType.EXPENSE)

    def to_dict(self) -> dict[str, Any]:
        return {
            "measure": self.measure,
            "value": self.value,
            "value_pct": self.value_pct,
            "favourable": self.favourable,
            "parts": [p.to_dict() for p in self.parts],
            "straight_variance": self.straight_variance,
            "unknown_excluded": self.unknown_excluded,
        }


def headline(
    ds: Dataset, opts: AnalysisOptions | None = None, *, filters: Mapping[str, Any] | None = None
) -> Headline:
    """The headline of ``ds`` (after ``filters``, ``{column: [values]}`` as elsewhere in the engine)."""
    opts = opts if opts is not None else AnalysisOptions()
    prep = core.prepare(ds, opts)
    mask = core.filter_mask(prep, filters)
    table = core.aggregate(prep, [core.TYPE_KEY], mask)
    return headline_from_table(table, prep)


def headlines_by(
    ds: Dataset,
    by: str,
    opts: AnalysisOptions | None = None,
    *,
    filters: Mapping[str, Any] | None = None,
) -> list[tuple[object, Headline]]:
    """One headline per value of column ``by`` (``"period"`` gives them chronologically), with the *file's*
    measure: a period holding only costs in a mixed file still shows its effect on profit, so a per-period table
    never switches meaning from row to row."""
    opts = opts if opts is not None else AnalysisOptions()
    prep = core.prepare(ds, opts)
    key = core.resolve_key(prep, by)
    mask = core.filter_mask(prep, filters)
    whole = headline_from_table(core.aggregate(prep, [core.TYPE_KEY], mask), prep)
    table = core.aggregate(prep, [key, core.TYPE_KEY], mask)
    column = prep.frame[key]
    order = list(column.cat.categories)
    out: list[tuple[object, Headline]] = []
    groups = {value: group for value, group in table.groupby(key, observed=True, sort=False)}
    for value in order:
        group = groups.get(value)
        if group is None:
            continue
        out.append((value, headline_from_table(group, prep, measure=whole.measure)))
    return out


def headline_from_table(
    table: pd.DataFrame, prep: core.Prepared, *, measure: HeadlineMeasure | None = None
) -> Headline:
    """A headline from an aggregate by account type (columns ``account_type`` and the minor-unit sums)."""
    scale = prep.scale
    codes = pd.Categorical(table[core.TYPE_KEY], categories=[t.value for t in TYPE_ORDER]).codes
    size = len(TYPE_ORDER)
    a = np.bincount(codes, weights=table[core.A].to_numpy(np.float64), minlength=size)
    r = np.bincount(codes, weights=table[core.R].to_numpy(np.float64), minlength=size)
    impact = np.bincount(codes, weights=table[core.IMPACT].to_numpy(np.float64), minlength=size)
    rows = np.bincount(codes, weights=table["__rows"].to_numpy(np.float64), minlength=size)
    # Minor-unit sums stay far below 2**53, so the float bincount above is exact; back to ints for money().
    a_i, r_i, impact_i, rows_i = (x.astype(np.int64) for x in (a, r, impact, rows))
    parts: list[HeadlinePart] = []
    for code, account_type in enumerate(TYPE_ORDER):
        if rows_i[code] == 0:
            continue
        known = account_type != AccountType.UNKNOWN
        variance = int(a_i[code] - r_i[code])
        effect = int(impact_i[code]) if known else None
        parts.append(
            HeadlinePart(
                account_type=account_type,
                actual=core.money(a_i[code], scale),
                reference=core.money(r_i[code], scale),
                variance=core.money(variance, scale),
                variance_pct=core.percent(variance, r_i[code]),
                effect_on_profit=None if effect is None else core.money(effect, scale),
                favourable=None if effect is None or effect == 0 else effect > 0,
                lines=int(rows_i[code]),
            )
        )
    present = {p.account_type for p in parts}
    has_revenue = AccountType.REVENUE in present
    has_cost = any(t in present for t in _COST_TYPES)
    if measure is None:
        measure = "effect_on_profit" if has_revenue and has_cost else "variance"
    unknown_code = TYPE_CODE[AccountType.UNKNOWN]
    known_codes = [TYPE_CODE[t] for t in TYPE_ORDER if t != AccountType.UNKNOWN]
    total_variance = int(a_i.sum() - r_i.sum())
    unknown_variance = int(a_i[unknown_code] - r_i[unknown_code])
    effect_total = int(impact_i[known_codes].sum())
    if measure == "effect_on_profit":
        value = effect_total
        # Reference profit: revenue minus costs and contra-revenue, each taken at its size.
        ref_profit = _reference_profit(r_i, prep)
        value_pct = core.percent(value, ref_profit) if ref_profit else None
        favourable = None if value == 0 else value > 0
        unknown_excluded = unknown_variance
    else:
        value = total_variance
        value_pct = core.percent(total_variance, int(r_i.sum()))
        if AccountType.UNKNOWN in present and unknown_variance != 0:
            favourable = None
        else:
            favourable = None if effect_total == 0 else effect_total > 0
        unknown_excluded = 0
    return Headline(
        measure=measure,
        value=core.money(value, scale),
        value_pct=value_pct,
        favourable=favourable,
        parts=tuple(parts),
        straight_variance=core.money(total_variance, scale),
        unknown_excluded=core.money(unknown_excluded, scale),
    )


def _reference_profit(reference: np.ndarray, prep: core.Prepared) -> int:
    negative = set(prep.stored_negative)
    total = 0
    for code, account_type in enumerate(TYPE_ORDER):
        if account_type == AccountType.UNKNOWN:
            continue
        size = -int(reference[code]) if account_type in negative else int(reference[code])
        total += size if account_type == AccountType.REVENUE else -size
    return total


def headline_sentence(h: Headline, scale: int = 2) -> str:
    """One plain line for a chat summary: "Effect on profit -148.00 (unfavourable): revenue +4,890.00, ..."."""
    fmt = f"{{:+,.{scale}f}}"
    verdict = {True: "favourable", False: "unfavourable", None: "favourability unknown"}[h.favourable]
    if h.measure == "variance":
        return f"Variance {fmt.format(h.value)} ({verdict})"
    sides = [
        f"{p.account_type.value.replace('_', '-')} {fmt.format(p.variance)}"
        for p in h.parts
        if p.account_type != AccountType.UNKNOWN
    ]
    return f"Effect on profit {fmt.format(h.value)} ({verdict}): " + ", ".join(sides)
