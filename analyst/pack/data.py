"""What the month-end pack holds, from the engine: the headline, totals by type, every material line.

Nothing here computes a variance: the lines are the report's material lines (``analyst.report.build_report``),
the by-period figures of each line come from one engine breakdown by line × period.

A month-end pack compares the periods that have actuals: when later periods hold a budget only (a full-year
budget against actuals to March), they are left out, as the pack's bridge chart leaves them out, and a note says
which (:func:`to_date`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from analyst.dataset import PERIOD, Dataset
from analyst.engine import AnalysisOptions, breakdown
from analyst.engine import prepared as core
from analyst.report import Report, build_report

# By-period figures kept per line for the commentary (the latest periods; a few are enough to say "since June").
PERIODS_PER_LINE = 6


@dataclass(frozen=True, slots=True)
class PackLine:
    """One material line: its key values (one per key column), amounts as the engine rounded them."""

    number: int  # 1-based position on the Variance sheet
    keys: tuple[str, ...]
    account_type: str
    actual: float
    reference: float
    variance: float
    variance_pct: float | None
    favourable: bool | None
    by_period: tuple[dict[str, Any], ...] = ()  # {"period", "actual", "reference", "variance"}

    @property
    def label(self) -> str:
        return " / ".join(k for k in self.keys if k) or "Total"

    def facts(self) -> dict[str, Any]:
        """The numbers the commentary may use for this line (and nothing else)."""
        out: dict[str, Any] = {
            "id": self.number,
            "line": self.label,
            "account_type": self.account_type,
            "actual": self.actual,
            "reference": self.reference,
            "variance": self.variance,
            "variance_pct": self.variance_pct,
            "favourable": self.favourable,
        }
        if self.by_period:
            out["by_period"] = list(self.by_period)
        return out


@dataclass(frozen=True, slots=True)
class PackData:
    report: Report
    key_columns: tuple[str, ...]
    lines: tuple[PackLine, ...]
    headline: str
    notes: tuple[str, ...] = field(default=())

    @property
    def reference_word(self) -> str:
        return self.report.reference_word

    @property
    def scale(self) -> int:
        return self.report.lines.prep.scale


def to_date(ds: Dataset, opts: AnalysisOptions) -> tuple[Dataset, str | None]:
    """``ds`` without the periods that have a budget only (and a note naming them), or ``ds`` as it is."""
    from analyst.engine.to_date import to_date as limit_to_date

    scoped = limit_to_date(ds, opts)
    if scoped is None:
        return ds, None
    left_out = scoped.budget_only
    shown = ", ".join(left_out[:6]) + (f" and {len(left_out) - 6} more" if len(left_out) > 6 else "")
    note = (
        f"{len(left_out)} {'period has' if len(left_out) == 1 else 'periods have'} no actuals yet ({shown}): "
        f"the pack compares the {len(scoped.compared)} with actuals, budget against actuals to date."
    )
    return scoped.dataset, note


def pack_data(ds: Dataset, opts: AnalysisOptions | None = None) -> PackData:
    opts = opts if opts is not None else AnalysisOptions()
    ds, to_date_note = to_date(ds, opts)
    report = build_report(ds, opts=opts)
    lines_table = report.lines.table
    keys = list(report.lines.by)
    material = lines_table[lines_table["__material"].to_numpy(dtype=bool)]
    records = core.records(material, keys, report.lines.prep, report.materiality)
    trends = _trends(ds, opts, keys, records) if ds.has_period and keys and keys != [PERIOD] else {}
    lines = []
    for number, r in enumerate(records, 1):
        key_values = tuple("" if r[k] is None else str(r[k]) for k in keys)
        lines.append(
            PackLine(
                number=number,
                keys=key_values,
                account_type=str(r["account_type"]),
                actual=r["actual"],
                reference=r["reference"],
                variance=r["variance"],
                variance_pct=r["variance_pct"],
                favourable=r["favourable"],
                by_period=tuple(trends.get(key_values, ())),
            )
        )
    return PackData(
        report=report,
        key_columns=tuple(keys) or ("Line",),
        lines=tuple(lines),
        headline=headline(report),
        notes=_notes(report, to_date_note),
    )


def _notes(report: Report, to_date_note: str | None) -> tuple[str, ...]:
    if to_date_note is None:
        return tuple(report.warnings)
    # The later periods were left out on purpose: the period view's remarks on periods missing from the data (its
    # projection, which the pack does not show) would say the opposite.
    period_notes = set(report.periods.notes) if report.periods is not None else set()
    return (to_date_note, *(w for w in report.warnings if w not in period_notes))


def _trends(
    ds: Dataset, opts: AnalysisOptions, keys: Sequence[str], records: Sequence[dict[str, Any]]
) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    if not records:
        return {}
    wanted = {tuple("" if r[k] is None else str(r[k]) for k in keys) for r in records}
    rows = breakdown(ds, [*keys, PERIOD], opts=opts).to_dict()["rows"]
    out: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for r in rows:
        key = tuple("" if r[k] is None else str(r[k]) for k in keys)
        if key in wanted:
            out.setdefault(key, []).append(
                {
                    "period": str(r[PERIOD]),
                    "actual": r["actual"],
                    "reference": r["reference"],
                    "variance": r["variance"],
                }
            )
    order = {str(p): i for i, p in enumerate(ds.frame[PERIOD].cat.categories)}
    for key, periods in out.items():
        periods.sort(key=lambda p: order.get(p["period"], 0))
        out[key] = periods[-PERIODS_PER_LINE:]
    return out


def headline(report: Report) -> str:
    """The report's headline rule in one sentence: actual vs reference, then the engine's headline (the effect on
    profit, revenue and costs apart, when the file mixes them; else the variance)."""
    from analyst.engine.headline import headline_sentence

    s = report.summary
    scale = report.lines.prep.scale
    totals = f"Actual {s.actual:,.{scale}f} vs {report.reference_word} {s.reference:,.{scale}f}"
    return f"{totals}. {headline_sentence(report.headline, scale)}."
