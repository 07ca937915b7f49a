"""From a table as read (CSV body or XLSX sheet) to a :class:`~analyst.dataset.Dataset`: which columns hold numbers
(parsed) and which hold text (hashed, in parallel), then the layout (:mod:`analyst.ingest.layout`), the warnings,
the decimals and the unit."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analyst.dataset import Dataset, IngestError, RoleOverrides, SourceInfo
from analyst.ingest import encode, layout, periods, roles, sniff, units
from analyst.ingest.numbers import DecimalEvidence, DecimalMark, ParsedNumbers, decimal_evidence, parse_numbers

TEXT_KINDS = frozenset({"account", "type", "scenario", "period"})
AMOUNT_KINDS = frozenset({"actual", "reference", "variance", "quantity", "amount"})
_SAMPLE_CELLS = 200
_UNREADABLE_SHARE = 0.2  # a "dimension" column with more unreadable cells than this is text, not numbers


def build_dataset(
    raw: pd.DataFrame, source: SourceInfo, overrides: RoleOverrides, *, decimal: DecimalMark | None
) -> Dataset:
    """Roles, shape, exclusions and the tidy frame for a table already read."""
    if raw.empty:
        raise IngestError("The file has a header row but no data rows below it.")
    columns = _columns(raw, source, decimal, overrides)
    plan = layout.plan_layout(columns, overrides)
    exclusions = layout.find_exclusions(columns, plan)
    if exclusions.section_types is not None:
        plan.account_type = layout.SECTION_HEADINGS
    frame, warnings = layout.build_frame(columns, plan, exclusions)
    if frame.empty:
        raise IngestError(
            "Every row of the file is a total, a subtotal or a heading, so there are no lines to analyse."
        )
    warnings = plan.warnings + warnings + _yearless_months_warning(frame, plan)
    if exclusions.total > len(exclusions.rows):
        warnings.append(
            f"{exclusions.total} rows were left out as totals or headings; the first {len(exclusions.rows)} are listed."
        )
    for name in _used_amounts(plan):
        parsed = columns.numbers[name]
        if parsed.unreadable:
            examples = ", ".join(repr(e) for e in parsed.unreadable_examples)
            warnings.append(f"{parsed.unreadable} cell(s) in '{name}' are not numbers and count as empty ({examples}).")
    warnings.extend(_ambiguous_marks_warning([(c, columns.numbers[c]) for c in _used_amounts(plan)]))
    scale = max((columns.numbers[c].decimals for c in _used_amounts(plan)), default=2)
    unit, evidence = units.detect_unit([*_used_amounts(plan), *columns.names], source.preamble)
    if unit != 1:
        warnings.append(
            f"Amounts are in {units.UNIT_WORDS[unit]} ({evidence}); they are shown as written, and the default "
            "materiality amount is scaled to match."
        )
    return Dataset(
        frame=frame,
        roles=plan.roles(),
        source=source,
        excluded_rows=exclusions.rows,
        warnings=warnings,
        scale=scale,
        raw=raw,
        unit=unit,
        unit_evidence=evidence,
    )


def _used_amounts(plan: layout.Plan) -> list[str]:
    return [n for n in layout.amount_columns(plan) if n]


def _as_labels(column: pd.Series) -> pd.Series:
    """Numbers read from a label column (account 4000, read as 4000.0 when a cell is empty) as text."""
    if column.dtype.kind == "f" and bool(np.all(np.mod(column.dropna().to_numpy(), 1) == 0)):
        column = column.astype("Int64")
    return column.astype("str").where(column.notna())


def _columns(
    raw: pd.DataFrame, source: SourceInfo, decimal: DecimalMark | None, overrides: RoleOverrides
) -> layout.Columns:
    """Which columns hold numbers (parsed) and which hold text (hashed), for a table as read.

    Every text column's distinct values are needed later (total labels, scenario words), and the period
    column's row codes too: they are hashed on a thread pool while this thread parses the numbers.
    """
    headers = {str(c): roles.classify_header(str(c)) for c in raw.columns}
    forced_text = {o for o in (overrides.account, overrides.period, overrides.account_type) if o}
    forced_text.update(overrides.dimensions or ())
    forced_numbers = {o for o in (overrides.actual, overrides.reference) if o}
    candidates: list[str] = []
    text: list[str] = []
    for name, info in headers.items():
        column = raw[name]
        if name in forced_numbers:
            candidates.append(name)
        elif name in forced_text or info.kind in TEXT_KINDS:
            text.append(name)
        elif column.dtype.kind in "biuf" or info.kind in AMOUNT_KINDS:
            candidates.append(name)
        elif column.dtype.kind == "O" and _all_dates(column):
            text.append(name)
        elif _mostly_numbers(column):
            candidates.append(name)
        else:
            text.append(name)
    labels = _labels_from_numbers(raw, text)
    columns = layout.Columns(raw=labels, headers=headers, numbers={}, text=text)
    period = overrides.period if overrides.period in text else layout.detect_period_column(columns)
    with encode.hashing_pool(len(raw) * len(text)) as pool:
        # The other text columns are hashed on the pool while this thread reads the period's months and parses
        # the numbers. A period column of ISO dates is read from its digits, never hashed.
        hashed = encode.start_encoding(pool, {name: labels[name] for name in text if name != period})
        coded = None
        if period and columns.iso_months(period) is None:
            coded = encode.start_encoding(pool, {period: labels[period]}, with_codes=[period])
        columns.numbers, text_too = _parse_candidates(raw, source, decimal, headers, candidates, forced_numbers)
        if period and coded is not None:
            columns.adopt(coded())
            columns.period_labels(period)
        columns.adopt(hashed())
    if text_too:  # hashed when first asked for
        columns.text = [c for c in map(str, raw.columns) if c in set(text) | set(text_too)]
        columns.raw = _labels_from_numbers(labels, text_too)
    return columns


def _labels_from_numbers(raw: pd.DataFrame, text: list[str]) -> pd.DataFrame:
    """The table with its numeric-typed text columns (account codes read as numbers) as text."""
    converted = {c: _as_labels(raw[c]) for c in text if raw[c].dtype.kind in "biuf"}
    return raw.assign(**converted) if converted else raw


def _ambiguous_marks_warning(parsed: list[tuple[str, ParsedNumbers]]) -> list[str]:
    """One line saying how values such as "12.500" were read, when nothing in their columns settled it."""
    unsettled = [(name, p) for name, p in parsed if p.ambiguous and p.ambiguous_example is not None]
    if not unsettled:
        return []
    first = unsettled[0][1]
    written, value = first.ambiguous_example or ("", 0.0)
    names = ", ".join(f"'{n}'" for n, _ in unsettled)
    return [
        f"Values such as {written} in {names} could mean thousands or decimals and nothing in those columns "
        f"settles it; they were read with '{first.decimal_mark}' as the decimal mark ({written} = {value:.10g}), "
        "as the rest of the file or its separator suggests. If that is wrong, export the amounts with their decimals."
    ]


def _parse_candidates(
    raw: pd.DataFrame,
    source: SourceInfo,
    decimal: DecimalMark | None,
    headers: dict[str, roles.HeaderInfo],
    candidates: list[str],
    forced_numbers: set[str],
) -> tuple[dict[str, ParsedNumbers], list[str]]:
    """The candidate columns parsed as numbers, and those that turned out to be text after all."""
    fallback = decimal
    if fallback is None:
        evidence = sum((decimal_evidence(raw[c]) for c in candidates), DecimalEvidence())
        fallback = evidence.decide() or ("," if source.delimiter == ";" else ".")
    numbers = {}
    text: list[str] = []
    for name in candidates:
        parsed = parse_numbers(raw[name], fallback=fallback)
        loose = headers[name].kind not in AMOUNT_KINDS and name not in forced_numbers
        if loose and parsed.unreadable > _UNREADABLE_SHARE * max(1, len(raw) - parsed.missing):
            text.append(name)
            continue
        # Whole numbers under a non-amount header (an account code like 4000) are labels, not amounts.
        if (
            raw[name].dtype.kind in "biuf"
            and headers[name].kind not in AMOUNT_KINDS
            and not forced_numbers
            and parsed.decimals == 0
            and _looks_like_codes(raw[name])
        ):
            text.append(name)
            continue
        numbers[name] = parsed
    return numbers, text


def _all_dates(column: pd.Series) -> bool:
    sample = column.dropna().iloc[:_SAMPLE_CELLS]
    return len(sample) > 0 and all(hasattr(v, "year") for v in sample)


def _mostly_numbers(column: pd.Series) -> bool:
    sample = column.dropna().iloc[:_SAMPLE_CELLS].tolist()
    filled = [c for c in sample if not sniff.is_blank_cell(c)]
    return bool(filled) and sum(sniff.is_number_cell(c) for c in filled) * 2 >= len(filled)


def _looks_like_codes(column: pd.Series) -> bool:
    """Integer values that repeat a lot relative to their count (ids, codes), rather than amounts."""
    values = column.dropna()
    if values.empty:
        return False
    sample = values.iloc[:10_000]
    return bool(sample.nunique() * 4 <= len(sample)) and bool((np.asarray(sample) >= 0).all())


def _yearless_months_warning(frame: pd.DataFrame, plan: layout.Plan) -> list[str]:
    """Month names without a year are one year only if no line repeats a month; otherwise say so."""
    from analyst.dataset import PERIOD

    if PERIOD not in frame.columns:
        return []
    categories = [str(c) for c in frame[PERIOD].cat.categories]
    if not categories or any(c not in periods.MONTHS for c in categories):
        return []
    keys = [d for d in plan.dimensions if d in frame.columns] + [PERIOD]
    repeats = frame.duplicated(subset=keys)
    if not bool(repeats.any()):
        return []
    return [
        f"The period '{plan.period}' has months without a year and {int(repeats.sum()):,} line(s) repeat a "
        "month, so they may be different years: they were added together. Add a Year column to the export (it "
        "is combined with the months), or filter the file to one year."
    ]
