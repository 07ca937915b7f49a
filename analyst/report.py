"""The deterministic budget-vs-actual report: ``variance-bot report FILE`` and the bot's no-question answer.

One :class:`Report` renders three ways: ``to_json_dict()`` (machines, tests), ``to_text()`` (a terminal, for a
finance person) and ``to_markdown()`` (standard Markdown, short enough for one Slack message). Every number
comes from :mod:`analyst.engine`; nothing here computes a variance of its own.

Start-up matters (the whole ``report --json`` on a million rows must finish in about two seconds), so this
module imports only pandas-side code: never the agent SDK, OpenAI or Slack.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from analyst.dataset import PERIOD, Dataset, IngestError, IngestLimits, RoleOverrides
from analyst.engine import _core as core
from analyst.engine.errors import AnalysisError
from analyst.engine.options import AnalysisOptions, Materiality, MaterialityMode
from analyst.engine.periods import PeriodView, period_view
from analyst.engine.variance import (
    Breakdown,
    Drivers,
    VarianceSummary,
    breakdown_prepared,
    line_keys,
    summarize,
    top_drivers,
)

TOP_N = 5
TEXT_ROWS = 15
MARKDOWN_ROWS = 8
EXCLUDED_SHOWN = 10


@dataclass(frozen=True, slots=True, eq=False)
class Report:
    """Everything the report shows, computed once; rendering is cheap."""

    dataset: Dataset = field(repr=False)
    by: tuple[str, ...]
    options: AnalysisOptions
    summary: VarianceSummary
    lines: Breakdown
    drivers: Drivers
    periods: PeriodView | None

    @property
    def reference_word(self) -> str:
        return self.dataset.roles.reference_kind

    @property
    def warnings(self) -> list[str]:
        notes = [*self.dataset.warnings, *self.summary.notes]
        if self._shows_projection:
            notes.extend(self.periods.notes if self.periods is not None else ())
        return notes

    @property
    def _shows_projection(self) -> bool:
        # A run-rate of revenue and costs added together means nothing: only for a single account type.
        view = self.periods
        return view is not None and bool(view.periods_so_far) and len(self.summary.by_type) == 1

    # --- JSON --------------------

    def to_json_dict(self, max_rows: int | None = None) -> dict[str, Any]:
        """The whole report as JSON-able data; ``max_rows`` caps every list (rest summed into "N more")."""
        s = self.summary
        ds = self.dataset
        excluded = ds.excluded_rows if max_rows is None else ds.excluded_rows[:max_rows]
        out: dict[str, Any] = {
            "source": ds.source.to_dict(),
            "columns": ds.roles.to_dict(),
            "materiality": self.options.materiality.to_dict(),
            "totals": {
                "actual": s.actual,
                "reference": s.reference,
                "variance": s.variance,
                "variance_pct": s.variance_pct,
            },
            "net_impact": s.net_impact,
            "favourable": s.favourable,
            "by_account_type": list(s.by_type),
            "counts": {
                "rows": s.rows,
                "lines": s.lines,
                "groups": len(self.lines),
                "material": int(self.lines.table["__material"].sum()),
                "favourable_lines": s.favourable_lines,
                "unfavourable_lines": s.unfavourable_lines,
                "unclassified_lines": s.unclassified_lines,
                "missing_actual": s.missing_actual,
                "missing_reference": s.missing_reference,
                "excluded_rows": len(ds.excluded_rows),
            },
            "by": list(self.by),
            "lines": self.lines.to_dict(max_rows=max_rows)["rows"],
            "top_drivers": self.drivers.to_dict(),
            "excluded_rows": [row.to_dict() for row in excluded],
            "warnings": self.warnings,
        }
        if self.periods is not None:
            out["periods"] = self.periods.to_dict(max_rows=max_rows)
        return out

    # --- text --------------------

    def _money(self, value: float, *, signed: bool = False) -> str:
        scale = self.lines.prep.scale
        return f"{value:+,.{scale}f}" if signed else f"{value:,.{scale}f}"

    @staticmethod
    def _pct(value: float | None) -> str:
        return "n/a" if value is None else f"{value:+.1f}%"

    def _label(self, row: dict[str, Any], keys: Sequence[str]) -> str:
        parts = [str(row[k]) for k in keys if row.get(k) is not None]
        return " / ".join(parts) if parts else "Total"

    @staticmethod
    def _verdict(favourable: bool | None) -> str:
        return {True: "favourable", False: "unfavourable", None: "n/a"}[favourable]

    def _materiality_text(self) -> str:
        m = self.options.materiality
        amount = f"|variance| ≥ {m.amount:,.0f}"
        percent = f"|variance %| ≥ {m.percent:g}%"
        return {
            MaterialityMode.AND: f"{amount} and {percent}",
            MaterialityMode.OR: f"{amount} or {percent}",
            MaterialityMode.AMOUNT: amount,
            MaterialityMode.PERCENT: percent,
        }[m.mode]

    def _columns_text(self) -> list[str]:
        roles = self.dataset.roles
        parts = [f'actual = "{roles.actual}"', f'{self.reference_word} = "{roles.reference}"']
        if roles.period:
            parts.append(f'period = "{roles.period}"')
        if roles.account_type:
            parts.append(f'account type = "{roles.account_type}"')
        if roles.actual_qty and roles.reference_qty:
            parts.append(f'quantities = "{roles.actual_qty}" / "{roles.reference_qty}"')
        lines = ["Columns: " + "; ".join(parts)]
        dims = ", ".join(roles.dimensions) if roles.dimensions else "none"
        lines.append(
            f"Dimensions: {dims}"
            + (f" (overridden: {', '.join(roles.overridden)})" if roles.overridden else "")
        )
        return lines

    def _table(self, rows: list[dict[str, Any]], keys: Sequence[str]) -> list[str]:
        ref = self.reference_word.capitalize()
        header = ["Line" if len(keys) != 1 else keys[0], "Actual", ref, "Variance", "Var %", ""]
        body = [
            [
                self._label(r, keys) if not r.get("more") else f"({r['more']} more lines)",
                self._money(r["actual"]),
                self._money(r["reference"]),
                self._money(r["variance"], signed=True),
                self._pct(r["variance_pct"]),
                ("material, " if r["material"] else "") + self._verdict(r["favourable"]),
            ]
            for r in rows
        ]
        return _aligned([header, *body], numeric=4)

    def to_text(self, max_rows: int = TEXT_ROWS) -> str:
        """A readable summary for a terminal: columns, totals, drivers, material lines, exclusions, notes."""
        s, ds = self.summary, self.dataset
        ref = self.reference_word
        src = ds.source
        read = f"Read {src.filename}: {s.rows:,} rows ({src.file_format.upper()}"
        if src.encoding:
            read += f", {src.encoding}"
        if src.delimiter:
            read += f", delimiter {src.delimiter!r}"
        read += f", header on row {src.header_row}, {ds.roles.shape} layout)."
        out = [f"Budget vs actual: actual − {ref}", "", read, *self._columns_text()]
        if s.periods:
            span = s.periods[0] if len(s.periods) == 1 else f"{s.periods[0]} … {s.periods[-1]}"
            out.append(f"Periods: {span} ({len(s.periods)}; actuals in {len(s.periods_with_actuals)})")
        out += ["", "Totals"]
        width = max(len(self._money(v)) for v in (s.actual, s.reference, s.variance)) + 1
        out.append(f"  Actual     {self._money(s.actual).rjust(width)}")
        out.append(f"  {ref.capitalize():<10} {self._money(s.reference).rjust(width)}")
        out.append(
            f"  Variance   {self._money(s.variance, signed=True).rjust(width)}  ({self._pct(s.variance_pct)})"
        )
        if len(s.by_type) > 1 or (s.by_type and s.by_type[0]["account_type"] != "unknown"):
            out.append("  By account type:")
            for t in s.by_type:
                out.append(
                    f"    {t['account_type'].replace('_', '-'):<15}"
                    f"{self._money(t['actual']).rjust(width)} vs {self._money(t['reference']).rjust(width)}"
                    f"  {self._money(t['variance'], signed=True)} ({self._pct(t['variance_pct'])})"
                    f"  {self._verdict(t['favourable'])}"
                )
            out.append(
                f"  Net effect on profit: {self._money(s.net_impact, signed=True)} "
                f"({self._verdict(s.favourable)})"
            )
        drivers = self.drivers.to_dict()
        keys = self.drivers.by
        for title, rows in (
            ("Top unfavourable", drivers["unfavourable"]),
            ("Top favourable", drivers["favourable"]),
        ):
            if rows:
                out += ["", f"{title} (by effect on profit)"]
                for i, r in enumerate(rows, 1):
                    out.append(
                        f"  {i}. {self._label(r, keys)}: {self._money(r['variance'], signed=True)} "
                        f"({self._pct(r['variance_pct'])}){'  material' if r['material'] else ''}"
                    )
        if drivers["unclassified"]:
            out += ["", "Largest variances of unknown account type (favourability not stated)"]
            for i, r in enumerate(drivers["unclassified"], 1):
                out.append(
                    f"  {i}. {self._label(r, keys)}: {self._money(r['variance'], signed=True)} "
                    f"({self._pct(r['variance_pct'])})"
                )
        material = self._material_rows(max_rows)
        n_material = int(self.lines.table["__material"].sum())
        unit = "groups" if self.by else "lines"
        out += ["", f"Material {unit} ({self._materiality_text()}): {n_material:,} of {len(self.lines):,}"]
        if material:
            out += self._table(material, self.lines.by)
        if self.by:
            out += ["", f"By {', '.join(self.by)}"]
            out += self._table(self.lines.to_dict(max_rows=max_rows)["rows"], self.lines.by)
        out += self._periods_text()
        out += self._excluded_text()
        if self.warnings:
            out += ["", "Notes"] + [f"  - {w}" for w in self.warnings]
        return "\n".join(out) + "\n"

    def _material_rows(self, max_rows: int) -> list[dict[str, Any]]:
        table = self.lines.table
        material = table[table["__material"].to_numpy(dtype=bool)]
        return core.records(
            material, self.lines.by, self.lines.prep, self.options.materiality, max_rows=max_rows
        )

    def _periods_text(self, shown: int = 12) -> list[str]:
        view = self.periods
        if view is None:
            return []
        data = view.to_dict(max_rows=shown)
        ref = self.reference_word
        out = ["", f"By period (actual vs {ref}; YTD within each year)"]
        # Revenue and costs added together make a meaningless variance; their effect on profit is not.
        mixed = len(self.summary.by_type) > 1
        header = ["Period", "Actual", ref.capitalize(), "Variance", "Var %", "YTD variance"]
        header += ["Profit effect"] if mixed else []
        # A period with budget only (no actuals booked yet) shows no actual and no variance, not "0" and "-100%".
        body = [
            [
                str(r["period"]),
                self._money(r["actual"]) if r.get("has_actual", True) else "—",
                self._money(r["reference"]),
                self._money(r["variance"], signed=True) if r.get("has_actual", True) else "—",
                self._pct(r["variance_pct"]) if r.get("has_actual", True) else "—",
                self._money(r["ytd_variance"], signed=True)
                if "ytd_variance" in r and r.get("has_actual", True)
                else "",
            ]
            + (
                [self._money(r["impact"], signed=True) if "impact" in r and r.get("has_actual", True) else ""]
                if mixed
                else []
            )
            for r in data["periods"]
        ]
        out.extend(_aligned([header, *body], numeric=len(header) - 1))
        so_far = len(view.periods_so_far)
        if self._shows_projection:
            out.append(
                f"  Run-rate: {self._money(view.run_rate or 0.0)} a year "
                f"(average of {_count(so_far, 'period')} with actuals × {view.periods_in_year})."
            )
            out.append(
                f"  Full-year projection: {self._money(view.full_year_projection)} "
                f"(actual so far + {ref} for the "
                f"remaining periods) vs full-year {ref} {self._money(view.full_year_reference)}: "
                f"{self._money(view.projection_variance, signed=True)}."
            )
        return out

    def _excluded_text(self) -> list[str]:
        excluded = self.dataset.excluded_rows
        if not excluded:
            return ["", "Excluded rows: none"]
        out = ["", f"Excluded rows (not summed, so nothing is double-counted): {len(excluded):,}"]
        for row in excluded[:EXCLUDED_SHOWN]:
            out.append(f'  row {row.source_row}: "{row.label}" ({row.reason})')
        if len(excluded) > EXCLUDED_SHOWN:
            out.append(f"  … and {len(excluded) - EXCLUDED_SHOWN:,} more")
        return out

    # --- Markdown --------------------

    def to_markdown(self, max_rows: int = MARKDOWN_ROWS) -> str:
        """The same report, short, in standard Markdown (bullets and one small table) for a Slack message."""
        s, ds = self.summary, self.dataset
        ref = self.reference_word
        roles = ds.roles
        out = [
            f"**Budget vs actual** for {_code(ds.source.filename)}: {s.rows:,} rows; actual = {_code(roles.actual)}, "
            f"{ref} = {_code(roles.reference)}" + (f", period = {_code(roles.period)}" if roles.period else "") + ".",
            "",
            f"**Total:** actual {self._money(s.actual)} vs {ref} {self._money(s.reference)}: variance "
            f"**{self._money(s.variance, signed=True)}** ({self._pct(s.variance_pct)})"
            + (
                f"; effect on profit {self._money(s.net_impact, signed=True)} "
                f"({self._verdict(s.favourable)})."
                if any(t["account_type"] != "unknown" for t in s.by_type)
                else "."
            ),
        ]
        drivers = self.drivers.to_dict(max_rows=3)
        keys = self.drivers.by
        for title, rows in (
            ("Top unfavourable", drivers["unfavourable"]),
            ("Top favourable", drivers["favourable"]),
        ):
            if rows:
                out += ["", f"**{title}:**"]
                out += [
                    f"- {self._label(r, keys)}: {self._money(r['variance'], signed=True)} "
                    f"({self._pct(r['variance_pct'])}){' · material' if r['material'] else ''}"
                    for r in rows
                ]
        material = self._material_rows(max_rows)
        n_material = int(self.lines.table["__material"].sum())
        unit = "groups" if self.by else "lines"
        out += [
            "",
            f"**Material {unit}** ({self._materiality_text()}): {n_material:,} of {len(self.lines):,}",
        ]
        rows = material if not self.by else self.lines.to_dict(max_rows=max_rows)["rows"]
        if rows:
            key_title = " / ".join(self.lines.by) or "Line"
            out += [
                "",
                f"| {key_title} | Actual | {ref.capitalize()} | Variance | Var % |",
                "|---|---:|---:|---:|---:|",
            ]
            for r in rows:
                label = self._label(r, self.lines.by) if not r.get("more") else f"{r['more']} more"
                label = label.replace("|", "\\|")
                out.append(
                    f"| {label} | {self._money(r['actual'])} | {self._money(r['reference'])} | "
                    f"{self._money(r['variance'], signed=True)} | {self._pct(r['variance_pct'])} |"
                )
        footer = []
        if ds.excluded_rows:
            footer.append(_count(len(ds.excluded_rows), "total/subtotal row") + " excluded from sums")
        if s.unclassified_lines:
            footer.append(_count(s.unclassified_lines, "line") + " of unknown account type")
        if s.missing_actual or s.missing_reference:
            footer.append(_count(s.missing_actual + s.missing_reference, "empty value") + " counted as 0")
        if footer:
            out += ["", "_" + "; ".join(footer) + "._"]
        return "\n".join(out) + "\n"


def _code(name: str, limit: int = 80) -> str:
    """A file or column name as one inline code span that it cannot end early (backticks become ˋ), one line."""
    flat = " ".join(str(name).split()).replace("`", "\u02cb")
    return f"`{flat if len(flat) <= limit else flat[: limit - 1] + '…'}`" if flat else "` `"


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def build_report(ds: Dataset, *, by: Sequence[str] = (), opts: AnalysisOptions | None = None) -> Report:
    """Compute the report: totals, lines (or ``by`` groups), top drivers and the period view if any."""
    opts = opts if opts is not None else AnalysisOptions()
    prep = core.prepare(ds, opts)
    keys = core.resolve_keys(prep, list(by)) if by else line_keys(prep)
    summary = summarize(ds, opts)
    lines = breakdown_prepared(prep, keys, filters=None, opts=opts)
    drivers = top_drivers(ds, by=keys or None, n=TOP_N, opts=opts)
    periods = period_view(ds, opts=opts) if PERIOD in prep.frame.columns and len(prep.frame) else None
    return Report(
        dataset=ds,
        by=tuple(core.resolve_keys(prep, list(by))) if by else (),
        options=opts,
        summary=summary,
        lines=lines,
        drivers=drivers,
        periods=periods,
    )


def _aligned(rows: list[list[str]], *, numeric: int) -> list[str]:
    """Text table lines: the label left-aligned, the next ``numeric`` cells right-aligned, any rest as it is."""
    widths = [max(len(row[i]) for row in rows) for i in range(1 + numeric)]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(row[1 : 1 + numeric], widths[1:], strict=True)]
        lines.append("  " + "  ".join(cells + row[1 + numeric :]))
    return lines


# --- command line --------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="variance-bot report",
        description="Budget-vs-actual report of a CSV or XLSX export (no Slack or OpenAI account needed).",
    )
    parser.add_argument("file", help="a CSV or XLSX file")
    parser.add_argument(
        "--by", action="append", default=[], metavar="COLUMN", help="group by COLUMN (repeatable)"
    )
    parser.add_argument("--actual", metavar="COLUMN", help="use COLUMN as the actual amounts")
    parser.add_argument(
        "--reference", metavar="COLUMN", help="use COLUMN as the budget/plan/forecast/prior amounts"
    )
    parser.add_argument("--period", metavar="COLUMN", help="use COLUMN as the period")
    parser.add_argument("--account", metavar="COLUMN", help="use COLUMN as the account (line item)")
    parser.add_argument(
        "--max-file-mb",
        type=float,
        metavar="MB",
        default=_env_file_limit_mb(),
        help="refuse input files larger than this (default $VARIANCE_MAX_FILE_MB or 50)",
    )
    defaults = Materiality()
    parser.add_argument("--materiality-amount", type=float, default=defaults.amount, metavar="X")
    parser.add_argument("--materiality-percent", type=float, default=defaults.percent, metavar="Y")
    parser.add_argument(
        "--materiality-mode", choices=[m.value for m in MaterialityMode], default=defaults.mode.value
    )
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print JSON")
    output.add_argument("--markdown", action="store_true", help="print Markdown (as the Slack bot does)")
    parser.add_argument("--max-bytes", type=int, metavar="N", help="cap the JSON output at N bytes")
    return parser


def _env_file_limit_mb() -> float:
    try:
        return float(os.environ.get("VARIANCE_MAX_FILE_MB") or 50)
    except ValueError:
        return 50.0


def _fit_json(report: Report, max_bytes: int | None) -> str | None:
    """The JSON text, with lists capped as much as needed to fit ``max_bytes`` (None when nothing fits)."""
    caps: list[int | None] = [None] if max_bytes is None else [None, 1000, 200, 50, 20, 10, 5, 3, 1, 0]
    for cap in caps:
        text = json.dumps(report.to_json_dict(max_rows=cap), ensure_ascii=False, indent=None)
        if max_bytes is None or len(text.encode("utf-8")) + 1 <= max_bytes:
            return text
    return None


def _fail(message: str, code: int = 2) -> int:
    print(f"variance-bot report: {message}", file=sys.stderr)
    return code


def cli_main(argv: Sequence[str]) -> int:
    """``variance-bot report FILE ...``: 0 on success, 2 on a file or request problem (message on stderr)."""
    args = _parser().parse_args(list(argv))
    if args.materiality_amount < 0 or args.materiality_percent < 0:
        return _fail("materiality thresholds must be zero or positive.")
    opts = AnalysisOptions(
        materiality=Materiality(
            amount=args.materiality_amount,
            percent=args.materiality_percent,
            mode=MaterialityMode(args.materiality_mode),
        )
    )
    if args.max_file_mb <= 0:
        return _fail("--max-file-mb must be positive.")
    overrides = RoleOverrides(
        actual=args.actual, reference=args.reference, period=args.period, account=args.account
    )
    try:
        from analyst.ingest import load_dataset

        ds = load_dataset(
            os.fspath(args.file),
            filename=os.path.basename(args.file),
            overrides=None if overrides.is_empty() else overrides,
            limits=IngestLimits(max_bytes=int(args.max_file_mb * 1024 * 1024)),
        )
        report = build_report(ds, by=args.by, opts=opts)
        if args.json:
            text = _fit_json(report, args.max_bytes)
            if text is None:
                return _fail(
                    f"the report does not fit in {args.max_bytes} bytes; allow more with --max-bytes."
                )
        elif args.markdown:
            text = report.to_markdown().rstrip("\n")
        else:
            text = report.to_text().rstrip("\n")
    except IngestError as exc:
        return _fail(f"cannot read {args.file}: {exc}")
    except AnalysisError as exc:
        return _fail(str(exc))
    except FileNotFoundError:
        return _fail(f"no such file: {args.file}")
    except (IsADirectoryError, PermissionError) as exc:
        return _fail(f"cannot open {args.file}: {exc.strerror or exc}")
    except MemoryError:
        return _fail("the file is too large to analyse in the memory available.")
    except Exception as exc:  # never a traceback for a user; VARIANCE_DEBUG=1 shows it
        if os.environ.get("VARIANCE_DEBUG"):
            raise
        return _fail(
            f"unexpected error ({type(exc).__name__}: {exc}). Run with VARIANCE_DEBUG=1 for details.", 1
        )
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:  # `variance-bot report ... | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return 0
