"""The report in standard Markdown, short enough for one chat message: the bot's answer to a file alone.

It leads with the same headline as the text report: the effect on profit (then revenue and costs) for a file
mixing revenue and costs, the variance otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from analyst.engine.options import AccountType
from analyst.report.text import TYPE_NAMES, Formats, _count, _material_rows

if TYPE_CHECKING:
    from analyst.report.model import Report

MARKDOWN_ROWS = 8


def code(name: str, limit: int = 80) -> str:
    """A file, sheet or column name as one inline code span that it cannot end early (backticks become ˋ)."""
    flat = " ".join(str(name).split()).replace("`", "\u02cb")
    return f"`{flat if len(flat) <= limit else flat[: limit - 1] + '…'}`" if flat else "` `"


def render_markdown(report: Report, max_rows: int = MARKDOWN_ROWS) -> str:
    f = Formats(report)
    s, ds = report.summary, report.dataset
    ref = report.reference_word
    roles = ds.roles
    h = report.headline
    where = f" (sheet {code(ds.source.sheet)})" if ds.source.sheet else ""
    out = [
        f"**Budget vs actual** for {code(ds.source.filename)}{where}: {s.rows:,} rows; actual = {code(roles.actual)}, "
        f"{ref} = {code(roles.reference)}" + (f", period = {code(roles.period)}" if roles.period else "") + ".",
        "",
    ]
    title, value, detail = f.headline_pieces(h)
    out.append(f"**{title}: {value}** ({detail})")
    known = [p for p in h.parts if p.account_type is not AccountType.UNKNOWN or not h.mixed]
    if h.mixed or len(known) > 1:
        out += [
            f"- {TYPE_NAMES[p.account_type]}: actual {f.money(p.actual)} vs {ref} {f.money(p.reference)}, "
            f"{f.money(p.variance, signed=True)} ({f.pct(p.variance_pct)}, {f.verdict(p.favourable)})"
            for p in h.parts
        ]
    drivers = report.drivers.to_dict(max_rows=3)
    keys = report.drivers.by
    for title, rows in (("Top unfavourable", drivers["unfavourable"]), ("Top favourable", drivers["favourable"])):
        if rows:
            out += ["", f"**{title}:**"]
            out += [
                f"- {f.label(r, keys)}: {f.money(r['variance'], signed=True)} "
                f"({f.pct(r['variance_pct'])}){' · material' if r['material'] else ''}"
                for r in rows
            ]
    material = _material_rows(report, max_rows)
    n_material = int(report.lines.table["__material"].sum())
    unit = "groups" if report.by else "lines"
    out += ["", f"**Material {unit}** ({f.materiality()}): {n_material:,} of {len(report.lines):,}"]
    rows = material if not report.by else report.lines.to_dict(max_rows=max_rows)["rows"]
    if rows:
        key_title = " / ".join(report.lines.by) or "Line"
        out += [
            "",
            f"| {key_title} | Actual | {ref.capitalize()} | Variance | Var % |",
            "|---|---:|---:|---:|---:|",
        ]
        for r in rows:
            label = f.label(r, report.lines.by) if not r.get("more") else f"{r['more']} more"
            label = label.replace("|", "\\|")
            out.append(
                f"| {label} | {f.money(r['actual'])} | {f.money(r['reference'])} | "
                f"{f.money(r['variance'], signed=True)} | {f.pct(r['variance_pct'])} |"
            )
    footer = []
    if ds.excluded_rows:
        footer.append(_count(len(ds.excluded_rows), "total/subtotal/computed row") + " excluded from sums")
    if s.no_actual_lines or s.no_reference_lines:
        footer.append(
            _count(s.no_actual_lines + s.no_reference_lines, "one-sided line") + " (no actual or no "
            f"{ref}) listed apart"
        )
    if s.unclassified_lines:
        footer.append(_count(s.unclassified_lines, "line") + " of unknown account type")
    if s.missing_actual or s.missing_reference:
        footer.append(_count(s.missing_actual + s.missing_reference, "empty value") + " counted as 0")
    if ds.unit != 1:
        footer.append(f"amounts in {'thousands' if ds.unit == 1_000 else 'millions'}")
    if footer:
        out += ["", "_" + "; ".join(footer) + "._"]
    return "\n".join(out) + "\n"
