"""Finance number parsing: examples as exports write them, and a round-trip property over every style."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analyst.ingest.numbers import parse_numbers


def parse(values: list[str], fallback: str = ".") -> list[float]:
    result = parse_numbers(pd.Series(values, dtype="str"), fallback=fallback)  # type: ignore[arg-type]
    return [None if np.isnan(v) else float(v) for v in result.values]  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$1,234.56", 1234.56),
        ("-$1,234.56", -1234.56),
        ("$-1,234.56", -1234.56),
        ("(1,234.00)", -1234.0),
        ("($1,234.00)", -1234.0),
        ("1234-", -1234.0),
        ("−1,234.50", -1234.5),
        ("1'234.50", 1234.5),
        ("USD 5,000.00", 5000.0),
        ("270K", 270000.0),
        ("1.2M", 1200000.0),
        ("3.4k", 3400.0),
        ("2B", 2e9),
        ("12.5%", 12.5),
        ("1e3", None),
        ("-", None),
        ("—", None),
        ("", None),
        ("n/a", None),
    ],
)
def test_us_style_cells(text: str, expected: float | None) -> None:
    assert parse([text, "1.50"]) == [expected, 1.5]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("€1.234,56", 1234.56),
        ("1.234,56 €", 1234.56),
        ("1 234,56", 1234.56),
        ("1\u00a0234,56", 1234.56),
        ("1\u202f234,56", 1234.56),
        ("-1 234,56 ₽", -1234.56),
        ("1 234,56 руб.", 1234.56),
        ("1,5 Mio", 1500000.0),
        ("(2.000,00)", -2000.0),
        ("12,5%", 12.5),
    ],
)
def test_european_style_cells(text: str, expected: float) -> None:
    assert parse([text, "0,50"], fallback=".") == [expected, 0.5]


def test_decimal_mark_is_decided_per_column() -> None:
    assert parse(["1,234", "2,500"]) == [1234.0, 2500.0]  # thousands groups, US file
    assert parse(["1,234", "2,5"]) == [1.234, 2.5]  # ",5" proves decimal commas for the whole column
    assert parse(["1.234", "2.000"], fallback=",") == [1234.0, 2000.0]  # ambiguous: the file's convention
    assert parse(["1.234", "2.000"], fallback=".") == [1.234, 2.0]


def test_scale_percent_and_unreadable_cells() -> None:
    parsed = parse_numbers(pd.Series(["1.5", "2.125", "x", "-"], dtype="str"))
    assert parsed.decimals == 3
    assert (parsed.missing, parsed.unreadable, parsed.unreadable_examples) == (1, 1, ("x",))
    assert parse_numbers(pd.Series(["10%", "12.5 %", "-"], dtype="str")).percent
    assert parse_numbers(pd.Series(["1.2M", "3K"], dtype="str")).decimals == 0
    assert parse_numbers(pd.Series([1.25, 3.0, np.nan])).decimals == 2


# --- round trip ---

Formatter = Callable[[Decimal], str]


def _group(whole: str, sep: str) -> str:
    digits = whole[::-1]
    return sep.join(digits[i : i + 3] for i in range(0, len(digits), 3))[::-1]


def _plain(value: Decimal, thousands: str, decimal: str) -> str:
    whole, frac = f"{abs(value):.2f}".split(".")
    return f"{_group(whole, thousands)}{decimal}{frac}"


STYLES: dict[str, tuple[Formatter, str]] = {
    "us": (lambda v: ("-" if v < 0 else "") + _plain(v, ",", "."), "."),
    "us_dollar": (lambda v: ("-" if v < 0 else "") + "$" + _plain(v, ",", "."), "."),
    "accounting": (lambda v: f"({_plain(v, ',', '.')})" if v < 0 else _plain(v, ",", "."), "."),
    "trailing_minus": (lambda v: _plain(v, "", ".") + ("-" if v < 0 else ""), "."),
    "unicode_minus": (lambda v: ("−" if v < 0 else "") + _plain(v, ",", "."), "."),
    "swiss": (lambda v: ("-" if v < 0 else "") + _plain(v, "'", "."), "."),
    "eu": (lambda v: ("-" if v < 0 else "") + "€" + _plain(v, ".", ","), ","),
    "eu_suffix": (lambda v: ("-" if v < 0 else "") + _plain(v, ".", ",") + " €", ","),
    "space": (lambda v: ("-" if v < 0 else "") + _plain(v, " ", ","), ","),
    "nbsp": (lambda v: ("-" if v < 0 else "") + _plain(v, "\u00a0", ","), ","),
    "narrow_nbsp": (lambda v: ("-" if v < 0 else "") + _plain(v, "\u202f", ","), ","),
}

cents = st.integers(min_value=-(10**12), max_value=10**12)


@settings(max_examples=200, deadline=None)
@given(style=st.sampled_from(sorted(STYLES)), values=st.lists(cents, min_size=1, max_size=8))
def test_format_then_parse_gives_the_number(style: str, values: list[int]) -> None:
    formatter, decimal = STYLES[style]
    amounts = [Decimal(c) / 100 for c in values]
    texts = [formatter(a) for a in amounts]
    parsed = parse_numbers(pd.Series(texts, dtype="str"), fallback=decimal)  # type: ignore[arg-type]
    assert parsed.unreadable == 0, texts
    assert [round(float(v), 2) for v in parsed.values] == [float(a) for a in amounts], texts


@settings(max_examples=100, deadline=None)
@given(
    tenths=st.lists(st.integers(min_value=-99_999, max_value=99_999), min_size=1, max_size=8),
    suffix=st.sampled_from([("K", 1_000), ("k", 1_000), ("M", 1_000_000), ("B", 1_000_000_000)]),
)
def test_magnitude_suffixes_round_trip(tenths: list[int], suffix: tuple[str, int]) -> None:
    letter, multiplier = suffix
    texts = [f"{Decimal(t) / 10}{letter}" for t in tenths]
    parsed = parse_numbers(pd.Series(texts, dtype="str"))
    assert [float(v) for v in parsed.values] == [float(Decimal(t) / 10 * multiplier) for t in tenths], texts
