"""The report as text for a terminal: what was read, the headline, drivers, material lines, periods, notes.

The headline follows :mod:`analyst.engine.headline`: a file mixing revenue and costs leads with the effect on
profit, then revenue and costs separately; the straight sum of all lines is shown only as a reconciliation line,
never as "the variance". The per-period table follows the same rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from analyst.engine import prepared as core
from analyst.engine.headline import Headline
from analyst.engine.materiality import amount_text
from analyst.engine.options import AccountType, MaterialityMode

if TYPE_CHECKING:
    from analyst.report.model import Report

TEXT_ROWS = 15
EXCLUDED_SHOWN = 10
TYPE_NAMES = {
    AccountType.REVENUE: "Revenue",
    AccountType.CONTRA_REVENUE: "Contra-revenue",
    AccountType.EXPENSE: "Costs",
    AccountType.UNKNOWN: "Unknown type",
}


class Formats:
    """Number formats at the dataset's scale, shared by the text and Markdown renderers."""

    def __init__(self, report: Report) -> None:
        self.report = report
        self.scale = report.lines.prep.scale

    def money(self, value: float, *, signed: bool = False) -> str:
        return f"{value:+,.{self.scale}f}" if signed else f"{value:,.{self.scale}f}"

    @staticmethod
    def pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value:+.1f}%"

    @staticmethod
    def label(row: dict[str, Any], keys: Sequence[str]) -> str:
        parts = [str(row[k]) for k in keys if row.get(k) is not None]
        return " / ".join(parts) if parts else "Total"

    @staticmethod
    def verdict(favourable: bool | None) -> str:
        return {True: "favourable", False: "unfavourable", None: "n/a"}[favourable]

    def materiality(self) -> str:
        m = self.report.materiality
        amount = f"|variance| ≥ {amount_text(m.amount)}"
        percent = f"|variance %| ≥ {m.percent:g}%"
        text = {
            MaterialityMode.AND: f"{amount} and {percent}",
            MaterialityMode.OR: f"{amount} or {percent}",
            MaterialityMode.AMOUNT: amount,
            MaterialityMode.PERCENT: percent,
        }[m.mode]
        rule = self.report.materiality_rule
        return text + (f"; amount: {rule}" if rule and m.mode is not MaterialityMode.PERCENT else "")

    def headline_pieces(self, h: Headline) -> tuple[str, str, str]:
        """("Effect on profit", "−148", "unfavourable, −0.6% of budgeted profit") or ("Variance", "+120", ...)."""
        ref = self.report.reference_word
        if h.mixed:
            adjective = {"budget": "budgeted", "plan": "planned", "prior": "prior-period"}.get(ref, ref)
            share = "" if h.value_pct is None else f", {h.value_pct:+.1f}% of {adjective} profit"
            return "Effect on profit", self.money(h.value, signed=True), f"{self.verdict(h.favourable)}{share}"
        return "Variance", self.money(h.value, signed=True), f"{self.pct(h.value_pct)}, {self.verdict(h.favourable)}"

    def headline_line(self, h: Headline) -> str:
        title, value, detail = self.headline_pieces(h)
        return f"{title}: {value} ({detail})"


def render_text(report: Report, max_rows: int = TEXT_ROWS) -> str:
    f = Formats(report)
    s, ds = report.whole_file or report.summary, report.dataset
    ref = report.reference_word
    src = ds.source
    read = f"Read {src.filename}"
    if src.sheet:
        read += f", sheet '{src.sheet}'"
    read += f": {s.rows:,} rows ({src.file_format.upper()}"
    if src.encoding:
        read += f", {src.encoding}"
    if src.delimiter:
        read += f", delimiter {src.delimiter!r}"
    read += f", header on row {src.header_row}, {ds.roles.shape} layout)."
    out = [f"Budget vs actual: actual − {ref}", "", read, *_columns_text(report)]
    if s.periods:
        span = s.periods[0] if len(s.periods) == 1 else f"{s.periods[0]} … {s.periods[-1]}"
        out.append(f"Periods: {span} ({len(s.periods)}; actuals in {len(s.periods_with_actuals)})")
    out += ["", f.headline_line(report.headline)]
    if report.scope_sentence:
        out.append(report.scope_sentence)
    out += _headline_parts(report, f)
    out += _drivers_text(report, f)
    material = _material_rows(report, max_rows)
    n_material = int(report.lines.table["__material"].sum())
    unit = "groups" if report.by else "lines"
    out += ["", f"Material {unit} ({f.materiality()}): {n_material:,} of {len(report.lines):,}"]
    if material:
        out += _table(report, f, material, report.lines.by)
    if report.by:
        out += ["", f"By {', '.join(report.by)}"]
        out += _table(report, f, report.lines.to_dict(max_rows=max_rows)["rows"], report.lines.by)
    out += _periods_text(report, f)
    out += _excluded_text(report)
    if report.warnings:
        out += ["", "Notes"] + [f"  - {w}" for w in report.warnings]
    return "\n".join(out) + "\n"


def _columns_text(report: Report) -> list[str]:
    roles = report.dataset.roles
    parts = [f'actual = "{roles.actual}"', f'{report.reference_word} = "{roles.reference}"']
    if roles.period:
        parts.append(f'period = "{roles.period}"')
    if roles.account_type:
        parts.append(f'account type = "{roles.account_type}"')
    if roles.actual_qty and roles.reference_qty:
        parts.append(f'quantities = "{roles.actual_qty}" / "{roles.reference_qty}"')
    lines = ["Columns: " + "; ".join(parts)]
    dims = ", ".join(roles.dimensions) if roles.dimensions else "none"
    lines.append(f"Dimensions: {dims}" + (f" (overridden: {', '.join(roles.overridden)})" if roles.overridden else ""))
    return lines


def _headline_parts(report: Report, f: Formats) -> list[str]:
    """Revenue, costs (and contra-revenue, unknown) each with actual, reference, variance and verdict; then, for
    a mixed file, the straight sum as a reconciliation line only."""
    h, s = report.headline, report.summary
    ref = report.reference_word
    rows = [["", "Actual", ref.capitalize(), "Variance", "Var %", ""]]
    for part in h.parts:
        rows.append(
            [
                TYPE_NAMES[part.account_type],
                f.money(part.actual),
                f.money(part.reference),
                f.money(part.variance, signed=True),
                f.pct(part.variance_pct),
                f.verdict(part.favourable),
            ]
        )
    if len(h.parts) == 1 and h.parts[0].account_type is AccountType.UNKNOWN:
        rows[1][0] = "Total"
    out = _aligned(rows, numeric=4)
    if h.mixed:
        out.append(
            f"  All lines added together (revenue + costs; a reconciliation, not a variance): actual "
            f"{f.money(s.actual)} vs {ref} {f.money(s.reference)}"
        )
    return out


def _drivers_text(report: Report, f: Formats) -> list[str]:
    out: list[str] = []
    drivers = report.drivers.to_dict()
    keys = report.drivers.by
    for title, rows in (("Top unfavourable", drivers["unfavourable"]), ("Top favourable", drivers["favourable"])):
        if rows:
            out += ["", f"{title} (by effect on profit)"]
            for i, r in enumerate(rows, 1):
                out.append(
                    f"  {i}. {f.label(r, keys)}: {f.money(r['variance'], signed=True)} "
                    f"({f.pct(r['variance_pct'])}){'  material' if r['material'] else ''}"
                )
    if drivers["unclassified"]:
        out += ["", "Largest variances of unknown account type (favourability not stated)"]
        for i, r in enumerate(drivers["unclassified"], 1):
            out.append(f"  {i}. {f.label(r, keys)}: {f.money(r['variance'], signed=True)} ({f.pct(r['variance_pct'])})")
    if drivers["one_sided"]:
        out += ["", "One-sided lines (not ranked as drivers)"]
        for r in drivers["one_sided"]:
            side = "no actual" if r["missing"] == "actual" else f"no {report.reference_word}"
            out.append(
                f"  - {f.label(r, keys)}: {side}; actual {f.money(r['actual'])}, "
                f"{report.reference_word} {f.money(r['reference'])}"
            )
    return out


def _material_rows(report: Report, max_rows: int) -> list[dict[str, Any]]:
    table = report.lines.table
    material = table[table["__material"].to_numpy(dtype=bool)]
    return core.records(material, report.lines.by, report.lines.prep, report.options.materiality, max_rows=max_rows)


def _table(report: Report, f: Formats, rows: list[dict[str, Any]], keys: Sequence[str]) -> list[str]:
    ref = report.reference_word.capitalize()
    header = ["Line" if len(keys) != 1 else keys[0], "Actual", ref, "Variance", "Var %", ""]
    body = []
    for r in rows:
        if r.get("missing"):
            verdict = "no actual" if r["missing"] == "actual" else f"no {report.reference_word}"
        else:
            verdict = ("material, " if r["material"] else "") + f.verdict(r["favourable"])
        body.append(
            [
                f.label(r, keys) if not r.get("more") else f"({r['more']} more lines)",
                f.money(r["actual"]),
                f.money(r["reference"]),
                f.money(r["variance"], signed=True),
                f.pct(r["variance_pct"]),
                verdict,
            ]
        )
    return _aligned([header, *body], numeric=4)


def _periods_text(report: Report, f: Formats, shown: int = 12) -> list[str]:
    view = report.periods
    if view is None:
        return []
    ref = report.reference_word
    mixed = report.headline.mixed
    if mixed:
        return _mixed_periods_text(report, f, shown)
    data = view.to_dict(max_rows=shown)
    ytd = not view.annual
    out = ["", f"By period (actual vs {ref}" + ("; YTD within each year)" if ytd else "; years compared whole)")]
    header = ["Period", "Actual", ref.capitalize(), "Variance", "Var %"] + (["YTD variance"] if ytd else [])
    body = []
    for r in data["periods"]:
        has_actual = r.get("has_actual", True)
        row = [
            str(r["period"]),
            f.money(r["actual"]) if has_actual else "—",
            f.money(r["reference"]),
            f.money(r["variance"], signed=True) if has_actual else "—",
            f.pct(r["variance_pct"]) if has_actual else "—",
        ]
        if ytd:
            row.append(f.money(r["ytd_variance"], signed=True) if "ytd_variance" in r and has_actual else "")
        body.append(row)
    out.extend(_aligned([header, *body], numeric=len(header) - 1))
    if report.shows_projection:
        so_far = len(view.periods_so_far)
        out.append(
            f"  Run-rate: {f.money(view.run_rate or 0.0)} a year "
            f"(average of {_count(so_far, 'period')} with actuals × {view.periods_in_year})."
        )
        out.append(
            f"  Full-year projection: {f.money(view.full_year_projection)} (actual so far + {ref} for the "
            f"remaining periods) vs full-year {ref} {f.money(view.full_year_reference)}: "
            f"{f.money(view.projection_variance, signed=True)}."
        )
    return out


def _mixed_periods_text(report: Report, f: Formats, shown: int) -> list[str]:
    """Revenue and costs per period, and their effect on profit: never the straight sum of the two."""
    view = report.periods
    assert view is not None
    rows = report.period_headlines[-shown:]
    with_actual = set(view.periods_so_far)
    ytd = not view.annual
    out = [
        "",
        "By period (effect on profit = revenue variance − cost variance" + ("; YTD within each year)" if ytd else ")"),
    ]
    header = ["Period", "Revenue var", "Cost var", "Effect on profit"] + (["YTD effect"] if ytd else [])
    body = []
    for p in rows:
        data = p.to_dict()
        booked = p.period in with_actual
        row = [
            p.period,
            f.money(data["revenue_variance"], signed=True) if booked else "—",
            f.money(data["cost_variance"], signed=True) if booked else "—",
            f.money(p.headline.value, signed=True) if booked else "—",
        ]
        if ytd:
            row.append(f.money(p.ytd_value or 0.0, signed=True) if booked else "")
        body.append(row)
    if len(report.period_headlines) > shown:
        out.append(f"  ({len(report.period_headlines) - shown} earlier periods not shown)")
    out.extend(_aligned([header, *body], numeric=len(header) - 1))
    return out


def _excluded_text(report: Report) -> list[str]:
    excluded = report.dataset.excluded_rows
    if not excluded:
        return ["", "Excluded rows: none"]
    out = ["", f"Excluded rows (not summed, so nothing is double-counted): {len(excluded):,}"]
    for row in excluded[:EXCLUDED_SHOWN]:
        out.append(f'  row {row.source_row}: "{row.label}" ({row.reason})')
    if len(excluded) > EXCLUDED_SHOWN:
        out.append(f"  … and {len(excluded) - EXCLUDED_SHOWN:,} more")
    return out


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _aligned(rows: list[list[str]], *, numeric: int) -> list[str]:
    """Text table lines: the label left-aligned, the next ``numeric`` cells right-aligned, any rest as it is."""
    widths = [max(len(row[i]) for row in rows) for i in range(1 + numeric)]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1 : 1 + numeric], widths[1:], strict=True)]
        lines.append("  " + "  ".join(cells + row[1 + numeric :]))
    return lines
