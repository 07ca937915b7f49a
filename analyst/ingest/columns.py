"""The table as read: each column's header meaning, the parsed numbers of the numeric columns, and the text
columns' distinct values and row codes (hashed once, then shared by every step that needs them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from analyst.ingest import periods, roles
from analyst.ingest.encode import Encoded, encode_columns
from analyst.ingest.iso_months import IsoMonths, iso_months
from analyst.ingest.numbers import ParsedNumbers


@dataclass(slots=True)
class Columns:
    """The table as read, with each column's header meaning and, for numeric ones, its parsed values."""

    raw: pd.DataFrame
    headers: dict[str, roles.HeaderInfo]
    numbers: dict[str, ParsedNumbers]  # numeric columns only
    text: list[str]  # text columns, in file order
    _encoded: dict[str, Encoded] = field(default_factory=dict)
    _periodic: dict[str, bool] = field(default_factory=dict)
    _period_labels: dict[str, list[str | None]] = field(default_factory=dict)
    _iso_months: dict[str, IsoMonths | None] = field(default_factory=dict)

    def encode(self, names: Sequence[str], *, with_codes: Sequence[str] = ()) -> None:
        """Hash several text columns at once (in parallel on a large file); later calls to :meth:`uniques`
        and :meth:`factorized` for them are free."""
        wanted = {
            name: self.raw[name]
            for name in dict.fromkeys([*names, *with_codes])
            if name in self.raw.columns
            and (name not in self._encoded or (name in with_codes and self._encoded[name].codes is None))
        }
        self._encoded.update(encode_columns(wanted, with_codes=set(with_codes)))

    def adopt(self, encoded: Mapping[str, Encoded]) -> None:
        """Take columns hashed elsewhere (see :func:`analyst.ingest.encode.start_encoding`)."""
        self._encoded.update(encoded)

    def uniques(self, name: str) -> list[object]:
        """Distinct non-empty values of a text column, in order of first appearance."""
        if name not in self._encoded:
            self.encode([name])
        return list(self._encoded[name].uniques)

    def factorized(self, name: str) -> tuple[np.ndarray, pd.Index]:
        """Codes (-1 for empty) and distinct values of a text column, computed once: label checks,
        cleaning and period parsing all work on the distinct values only."""
        encoded = self._encoded.get(name)
        if encoded is None or encoded.codes is None:
            self.encode([], with_codes=[name])
            encoded = self._encoded[name]
        assert encoded.codes is not None
        return encoded.codes, encoded.uniques

    def iso_months(self, name: str) -> IsoMonths | None:
        """Each row's month, when every cell of the column is an ISO date (see :mod:`analyst.ingest.iso_months`):
        such a column is never hashed as a period, and never holds a total label."""
        if name not in self._iso_months:
            self._iso_months[name] = iso_months(self.raw[name]) if name in self.raw.columns else None
        return self._iso_months[name]

    def holds_iso_dates(self, name: str) -> bool:
        """Whether the column is known to hold ISO dates only (judged already, never judged here)."""
        return self._iso_months.get(name) is not None

    def period_codes(self, name: str) -> tuple[np.ndarray, Sequence[object] | pd.Index, list[str | None]]:
        """A period column's row codes (-1 for empty), the values they index and each value's period label."""
        months = self.iso_months(name)
        if months is not None:
            return months.codes, months.labels, list(months.labels)
        codes, uniques = self.factorized(name)
        return codes, uniques, self.period_labels(name)

    def period_label_set(self, name: str) -> set[str]:
        """The distinct period labels of a column (its months, for a column of ISO dates)."""
        months = self.iso_months(name)
        if months is not None:
            return set(months.labels)
        return {label for label in self.period_labels(name) if label is not None}

    def period_labels(self, name: str) -> list[str | None]:
        """The period label of each distinct value of a column (see :meth:`factorized`), computed once."""
        if name not in self._period_labels:
            uniques = list(self.factorized(name)[1])
            info = self.headers.get(name)
            if info is not None and info.year:
                self._period_labels[name] = periods.year_labels(uniques)
            else:
                self._period_labels[name] = periods.labels_for_uniques(uniques)
        return self._period_labels[name]

    def numeric_months(self, name: str) -> bool:
        """A column of month numbers (1–12, "01", "1.0"): from now on its period labels are month names, so
        that it combines with a year column like "Jan".."Dec" do."""
        uniques = list(self.factorized(name)[1])
        names: list[str | None] = []
        for value in uniques:
            text = "" if value is None or value != value else str(value).strip()
            number = text[:-2] if text.endswith(".0") else text
            if not (number.isdigit() and 1 <= int(number) <= 12):
                return False
            names.append(periods.MONTHS[int(number) - 1])
        if not names:
            return False
        self._period_labels[name] = names
        return True

    def looks_periodic(self, name: str) -> bool:
        """The column's first values read as months or dates (judged once per column)."""
        if name not in self._periodic:
            self._periodic[name] = _looks_periodic(self.raw[name])
        return self._periodic[name]

    @property
    def names(self) -> list[str]:
        return [str(c) for c in self.raw.columns]

    def numeric(self, kind: str | None = None) -> list[str]:
        return [c for c in self.numbers if kind is None or self.headers[c].kind == kind]


def _looks_periodic(column: pd.Series) -> bool:
    return periods.looks_like_periods(column.iloc[:2_000].dropna().unique().tolist()[:200])
