"""Price / volume / mix against a textbook example computed by hand."""

from __future__ import annotations

import pytest

from analyst.engine import AnalysisError, price_volume_mix
from tests.engine.helpers import make_dataset

COLUMNS = ["Product", "actual", "reference", "actual_qty", "reference_qty"]


def test_two_products_by_hand() -> None:
    # A: 100 @ 10 budget, 120 @ 11 actual. B: 100 @ 20 budget, 60 @ 19 actual.
    # Budget mix 50/50, AQ total 180.
    ds = make_dataset([["A", 1320, 1000, 120, 100], ["B", 1140, 2000, 60, 100]], COLUMNS, account="Product")
    r = price_volume_mix(ds)
    d = r.to_dict()
    assert d["variance"] == -540.0
    assert d["price_effect"] == 60.0  # (11−10)·120 + (19−20)·60
    assert d["volume_effect"] == -600.0  # (120−100)·10 + (60−100)·20
    assert d["mix_effect"] == -300.0  # (120−90)·10 + (60−90)·20
    assert d["quantity_effect"] == -300.0  # (90−100)·10 + (90−100)·20
    items = {i["Product"]: i for i in d["items"]}
    assert (items["A"]["price_effect"], items["A"]["mix_effect"], items["A"]["quantity_effect"]) == (
        120,
        300,
        -100,
    )
    assert (items["B"]["price_effect"], items["B"]["mix_effect"], items["B"]["quantity_effect"]) == (
        -60,
        -600,
        -200,
    )
    assert items["A"]["actual_price"] == 11.0 and items["B"]["reference_price"] == 20.0


def test_new_and_discontinued_items_go_to_volume() -> None:
    rows = [["A", 1000, 1000, 100, 100], ["New", 500, 0, 10, 0], ["Old", 0, 300, 0, 30]]
    r = price_volume_mix(make_dataset(rows, COLUMNS, account="Product"))
    items = {i["Product"]: i for i in r.to_dict()["items"]}
    assert items["New"]["status"] == "new" and items["New"]["price_effect"] == 0.0
    assert items["New"]["volume_effect"] == 500.0
    assert items["Old"]["status"] == "discontinued" and items["Old"]["price_effect"] == 0.0
    assert items["Old"]["volume_effect"] == -300.0
    assert r.price + r.mix + r.quantity == r.variance == 20_000  # minor units: +200.00


def test_requires_quantities() -> None:
    ds = make_dataset([["A", 1, 2]], ["Product", "actual", "reference"])
    with pytest.raises(AnalysisError, match="quantities"):
        price_volume_mix(ds)
