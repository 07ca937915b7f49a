"""Price / volume / mix analysis of a sales variance, reconciling exactly.

Convention (FACTS.md), per item i (a product, an account: the ``by`` column):
    price_i    = (AP_i − BP_i) · AQ_i
    volume_i   = (AQ_i − BQ_i) · BP_i  =  mix_i + quantity_i
    mix_i      = (AQ_i − AQ_tot · BMix_i) · BP_i
    quantity_i = (AQ_tot · BMix_i − BQ_i) · BP_i
with AP/BP = amount / quantity, BMix_i = BQ_i / BQ_tot, AQ_tot = Σ AQ_i. Then price + mix + quantity =
actual revenue − reference revenue.

How the result is made exact: amounts are summed in integer minor units and quantities in integer
millionths, so the per-item inputs do not depend on row order. Price and quantity effects are computed from
them and rounded to the minor unit; mix is the remainder, ``(AR_i − BR_i) − price_i − quantity_i``, so every
item, and therefore the total, reconciles to the cent. Rounding moves at most one minor unit per item
into mix.

An item with zero quantity on one side (new or discontinued) has no price effect: its whole change is volume.
For a new item there is no reference price, so its volume is all mix (quantity effect 0); a discontinued item
follows the formulas with AQ_i = 0. Only rows with a quantity on at least one side take part.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from analyst.dataset import ACTUAL_QTY, REFERENCE_QTY, Dataset
from analyst.engine import prepared as core
from analyst.engine.errors import AnalysisError
from analyst.engine.options import AnalysisOptions
from analyst.engine.variance import Filters, line_keys

QTY_UNIT = 1_000_000  # quantities are summed in millionths of a unit

_AQ, _BQ = "__aq", "__bq"


@dataclass(frozen=True, slots=True, eq=False)
class PVMResult:
    """Price, volume (= mix + quantity) effects of the total and per item; all parts in minor units."""

    by: tuple[str, ...]
    filters: dict[str, list[str]]
    items: pd.DataFrame
    actual: int
    reference: int
    price: int
    mix: int
    quantity: int
    rows_without_quantity: int
    prep: core.Prepared = field(repr=False)

    @property
    def variance(self) -> int:
        return self.actual - self.reference

    @property
    def volume(self) -> int:
        return self.mix + self.quantity

    def _money(self, minor: int) -> float:
        return core.money(minor, self.prep.scale)

    def _item_records(self, max_rows: int | None) -> list[dict[str, Any]]:
        table = self.items
        shown = table if max_rows is None or len(table) <= max_rows else table.iloc[: max(max_rows, 0)]
        out: list[dict[str, Any]] = []
        columns = [*self.by, core.A, core.R, _AQ, _BQ, "__price", "__mix", "__qty", "__status"]
        for row in shown[columns].itertuples(index=False, name=None):
            v = dict(zip(columns, row, strict=True))
            aq, bq = int(v[_AQ]) / QTY_UNIT, int(v[_BQ]) / QTY_UNIT
            out.append(
                {k: core.key_value(v[k]) for k in self.by}
                | {
                    "status": v["__status"],
                    **core.amounts(int(v[core.A]), int(v[core.R]), self.prep.scale),
                    "actual_qty": aq,
                    "reference_qty": bq,
                    "actual_price": None if aq == 0 else round(int(v[core.A]) / 10**self.prep.scale / aq, 4),
                    "reference_price": None
                    if bq == 0
                    else round(int(v[core.R]) / 10**self.prep.scale / bq, 4),
                    "price_effect": self._money(v["__price"]),
                    "volume_effect": self._money(int(v["__mix"]) + int(v["__qty"])),
                    "mix_effect": self._money(v["__mix"]),
                    "quantity_effect": self._money(v["__qty"]),
                }
            )
        rest = table.iloc[len(shown) :]
        if len(rest):
            sums = {c: int(rest[c].sum()) for c in (core.A, core.R, "__price", "__mix", "__qty")}
            record: dict[str, Any] = {k: None for k in self.by}
            record[self.by[0]] = f"{len(rest)} more"
            record |= {
                "status": "mixed",
                **core.amounts(sums[core.A], sums[core.R], self.prep.scale),
                "price_effect": self._money(sums["__price"]),
                "volume_effect": self._money(sums["__mix"] + sums["__qty"]),
                "mix_effect": self._money(sums["__mix"]),
                "quantity_effect": self._money(sums["__qty"]),
                "more": len(rest),
            }
            out.append(record)
        return out

    def to_dict(self, max_rows: int | None = None) -> dict[str, Any]:
        return {
            "by": list(self.by),
            "filters": self.filters,
            **core.amounts(self.actual, self.reference, self.prep.scale),
            "price_effect": self._money(self.price),
            "volume_effect": self._money(self.volume),
            "mix_effect": self._money(self.mix),
            "quantity_effect": self._money(self.quantity),
            "rows_without_quantity": self.rows_without_quantity,
            "items": self._item_records(max_rows),
        }


def _quantity_minor(ds: Dataset, column: str) -> tuple[np.ndarray, np.ndarray]:
    values = ds.frame[column].to_numpy(dtype=np.float64, na_value=np.nan)
    present = np.isfinite(values)
    return np.rint(np.where(present, values, 0.0) * QTY_UNIT).astype(np.int64), present


def price_volume_mix(
    ds: Dataset,
    *,
    by: str | None = None,
    filters: Filters | None = None,
    opts: AnalysisOptions | None = None,
) -> PVMResult:
    """Split the variance of rows with quantities into price, mix and quantity effects, per ``by`` item.

    ``by`` defaults to the account column (else the line). Raises AnalysisError without quantities.
    """
    opts = opts if opts is not None else AnalysisOptions()
    prep = core.prepare(ds, opts)
    if not ds.has_quantities:
        raise AnalysisError(
            "Price/volume/mix needs quantities (units sold) for both actual and reference; "
            "this dataset has none. "
            "Break the variance down by a column instead: " + ", ".join(prep.keys) + "."
        )
    if by is not None:
        keys = core.resolve_keys(prep, [by])
    elif ds.roles.account is not None and ds.roles.account in prep.keys:
        keys = [ds.roles.account]
    else:
        keys = line_keys(prep)
    if not keys:
        raise AnalysisError("Price/volume/mix needs items to compare (a product or account column).")
    aq, aq_present = _quantity_minor(ds, ACTUAL_QTY)
    bq, bq_present = _quantity_minor(ds, REFERENCE_QTY)
    mask = core.filter_mask(prep, filters)
    with_qty = aq_present | bq_present
    considered = with_qty if mask is None else (with_qty & mask)
    rows_without_quantity = int(((~with_qty) if mask is None else (~with_qty & mask)).sum())
    if not considered.any():
        raise AnalysisError("No rows with quantities match this request, so there is nothing to split.")
    frame = prep.frame[[*keys, core.A, core.R]].assign(**{_AQ: aq, _BQ: bq})[considered]
    items = frame.groupby(keys, observed=True, sort=False, dropna=False)[[core.A, core.R, _AQ, _BQ]].sum()
    items = items.reset_index()

    ar = items[core.A].to_numpy(np.int64)
    br = items[core.R].to_numpy(np.int64)
    aq_i = items[_AQ].to_numpy(np.int64).astype(np.float64) / QTY_UNIT
    bq_i = items[_BQ].to_numpy(np.int64).astype(np.float64) / QTY_UNIT
    both = (aq_i != 0) & (bq_i != 0)
    has_bp = bq_i != 0
    # Reference price in minor units per unit (undefined, left 0, for items without reference quantity).
    bp = np.divide(br.astype(np.float64), bq_i, out=np.zeros(len(items)), where=has_bp)
    aq_total = float(items[_AQ].sum()) / QTY_UNIT
    bq_total = float(items[_BQ].sum()) / QTY_UNIT
    b_mix = bq_i / bq_total if bq_total != 0 else np.zeros(len(items))
    # price = (AP − BP)·AQ = AR − BP·AQ, exact in real numbers; zero for one-sided items.
    price = np.where(both, np.rint(ar - bp * aq_i), 0.0).astype(np.int64)
    quantity = np.where(has_bp, np.rint((aq_total * b_mix - bq_i) * bp), 0.0).astype(np.int64)
    mix = (ar - br) - price - quantity
    status = np.where(
        both, "both", np.where(bq_i == 0, np.where(aq_i == 0, "no quantity", "new"), "discontinued")
    )
    items["__price"] = price
    items["__qty"] = quantity
    items["__mix"] = mix
    items["__status"] = status
    items["__var"] = ar - br
    items = core.order_by_size(items, keys)
    return PVMResult(
        by=tuple(keys),
        filters=core.normalise_filters(filters),
        items=items,
        actual=int(ar.sum()),
        reference=int(br.sum()),
        price=int(price.sum()),
        mix=int(mix.sum()),
        quantity=int(quantity.sum()),
        rows_without_quantity=rows_without_quantity,
        prep=prep,
    )
