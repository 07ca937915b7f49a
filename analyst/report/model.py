"""The report's content, computed once from the engine, and its JSON form (the ``report --json`` contract).

Every number comes from :mod:`analyst.engine`; nothing here computes a variance of its own. Start-up matters
(the whole ``report --json`` on a million rows must finish in about two seconds), so this package imports only
pandas-side code: never the agent SDK, OpenAI or Slack.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from analyst.dataset import PERIOD, Dataset
from analyst.engine import prepared as core
from analyst.engine.headline import Headline, headline, headlines_by
from analyst.engine.options import AccountType, AnalysisOptions, Materiality
from analyst.engine.periods import PeriodView, period_view
from analyst.engine.to_date import ToDate, to_date
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


@dataclass(frozen=True, slots=True)
class PeriodHeadline:
    """One period under the file's headline rule: revenue, cost and profit effect (mixed files), or the
    variance (one-kind files); ``ytd_value`` accumulates ``value`` within the period's year."""

    period: str
    headline: Headline
    ytd_value: float | None

    def to_dict(self) -> dict[str, Any]:
        h = self.headline
        revenue = h.part(AccountType.REVENUE)
        costs = [p for p in h.parts if p.account_type in (AccountType.EXPENSE, AccountType.CONTRA_REVENUE)]
        return {
            "period": self.period,
            "measure": h.measure,
            "value": h.value,
            "favourable": h.favourable,
            "revenue_variance": revenue.variance if revenue else 0.0,
            "cost_variance": round(sum(p.variance for p in costs), 6) + 0.0,
            "ytd_value": self.ytd_value,
        }


@dataclass(frozen=True, slots=True, eq=False)
class Report:
    """Everything the report shows, computed once; rendering (:mod:`.text`, :mod:`.markdown`) is cheap."""

    dataset: Dataset = field(repr=False)
    by: tuple[str, ...]
    options: AnalysisOptions
    summary: VarianceSummary
    lines: Breakdown
    drivers: Drivers
    periods: PeriodView | None
    headline: Headline
    period_headlines: tuple[PeriodHeadline, ...] = ()
    # Every period's straight sums (JSON ``totals``); ``summary`` is ``whole_file`` limited to ``to_date``.
    whole_file: VarianceSummary | None = None
    to_date: ToDate | None = None

    @property
    def scope_sentence(self) -> str | None:
        """The one line near the headline when the comparison is to date."""
        if self.to_date is None:
            return None
        sentence = self.to_date.sentence()
        return sentence[:1].upper() + sentence[1:] + "."

    @property
    def reference_word(self) -> str:
        return self.dataset.roles.reference_kind

    @property
    def materiality(self) -> Materiality:
        """The thresholds in force (a default amount already scaled to this file)."""
        return self.lines.prep.effective(self.options.materiality)

    @property
    def materiality_rule(self) -> str:
        return self.summary.materiality_rule

    @property
    def warnings(self) -> list[str]:
        # Compared to date, the summary's notes are about the periods compared (the scope line names the rest).
        notes = [*self.dataset.warnings, *self.summary.notes]
        if self.headline.mixed and self.headline.unknown_excluded:
            notes.append(
                "Lines of unknown account type are left out of the effect on profit (their variance: "
                f"{self.headline.unknown_excluded:+,.{self.lines.prep.scale}f}); set their type to include them."
            )
        if self.periods is not None:
            notes.extend(self.periods.notes if self.shows_projection or self.periods.annual else ())
        return notes

    @property
    def shows_projection(self) -> bool:
        """A run-rate of revenue and costs added together means nothing: only for a single account type, and only
        for months or quarters (years have no run-rate)."""
        view = self.periods
        return view is not None and not view.annual and bool(view.periods_so_far) and len(self.summary.by_type) == 1

    def to_json_dict(self, max_rows: int | None = None) -> dict[str, Any]:
        """The whole report as JSON-able data; ``max_rows`` caps every list (rest summed into "N more").

        ``totals`` keeps its historical meaning (the straight sum of every included line); ``headline`` is the
        number to lead with (see :mod:`analyst.engine.headline`)."""
        s = self.summary
        whole = self.whole_file or s
        ds = self.dataset
        excluded = ds.excluded_rows if max_rows is None else ds.excluded_rows[:max_rows]
        out: dict[str, Any] = {
            "source": ds.source.to_dict(),
            "columns": ds.roles.to_dict(),
            "units": {"unit": ds.unit, "evidence": ds.unit_evidence},
            "materiality": self.materiality.to_dict() | {"rule": self.materiality_rule or "given"},
            "headline": self.headline.to_dict() | {"scope": self._scope()},
            "totals": {
                "actual": whole.actual,
                "reference": whole.reference,
                "variance": whole.variance,
                "variance_pct": whole.variance_pct,
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
                "no_actual_lines": s.no_actual_lines,
                "no_reference_lines": s.no_reference_lines,
                "missing_actual": s.missing_actual,
                "missing_reference": s.missing_reference,
                "excluded_rows": len(ds.excluded_rows),
            },
            "by": list(self.by),
            "lines": self.lines.to_dict(max_rows=max_rows)["rows"],
            "top_drivers": self.drivers.to_dict(max_rows=max_rows),
            "excluded_rows": [row.to_dict() for row in excluded],
            "warnings": self.warnings,
        }
        if self.periods is not None:
            periods = self.periods.to_dict(max_rows=max_rows)
            shown = self.period_headlines
            if max_rows is not None and len(shown) > max_rows:
                shown = shown[len(shown) - max_rows :]
            periods["headline_measure"] = self.headline.measure
            periods["headlines"] = [p.to_dict() for p in shown]
            out["periods"] = periods
        return out

    def _scope(self) -> dict[str, object]:
        if self.to_date is None:
            return {"to_date": False, "compared": list((self.whole_file or self.summary).periods), "budget_only": []}
        return self.to_date.to_dict()

    def to_text(self, max_rows: int | None = None) -> str:
        from analyst.report.text import TEXT_ROWS, render_text

        return render_text(self, TEXT_ROWS if max_rows is None else max_rows)

    def to_markdown(self, max_rows: int | None = None) -> str:
        from analyst.report.markdown import MARKDOWN_ROWS, render_markdown

        return render_markdown(self, MARKDOWN_ROWS if max_rows is None else max_rows)


def build_report(ds: Dataset, *, by: Sequence[str] = (), opts: AnalysisOptions | None = None) -> Report:
    """Compute the report: totals, headline, lines (or ``by`` groups), top drivers and the period view if any."""
    opts = opts if opts is not None else AnalysisOptions()
    prep = core.prepare(ds, opts)
    keys = core.resolve_keys(prep, list(by)) if by else line_keys(prep)
    # One pass over the rows by line × period × type; every aggregate below is regrouped from it (when it is
    # small enough to keep).
    finest = list(dict.fromkeys([*line_keys(prep), *([PERIOD] if PERIOD in prep.keys else []), core.TYPE_KEY]))
    core.aggregate(prep, finest)
    whole_file = summarize(ds, opts)
    # Later periods with a budget only: the headline, drivers and lines compare the periods with actuals.
    scoped = to_date(ds, opts)
    if scoped is None:
        summary, lines = whole_file, breakdown_prepared(prep, keys, filters=None, opts=opts)
        compared = ds
    else:
        compared = scoped.dataset
        summary = summarize(compared, opts)
        lines = breakdown_prepared(core.prepare(compared, opts), keys, filters=None, opts=opts)
    drivers = top_drivers(compared, by=keys or None, n=TOP_N, opts=opts)
    has_periods = PERIOD in prep.frame.columns and len(prep.frame) > 0
    periods = period_view(ds, opts=opts) if has_periods else None
    return Report(
        dataset=ds,
        by=tuple(core.resolve_keys(prep, list(by))) if by else (),
        options=opts,
        summary=summary,
        lines=lines,
        drivers=drivers,
        periods=periods,
        headline=headline(compared, opts),
        period_headlines=_period_headlines(ds, opts, prep.scale) if has_periods else (),
        whole_file=whole_file,
        to_date=scoped,
    )


def _period_headlines(ds: Dataset, opts: AnalysisOptions, scale: int) -> tuple[PeriodHeadline, ...]:
    from analyst.engine.periods import year_of

    out: list[PeriodHeadline] = []
    running: dict[str, float] = {}
    for label, h in headlines_by(ds, PERIOD, opts):
        year = year_of(str(label))
        running[year] = round(running.get(year, 0.0) + h.value, scale)
        out.append(PeriodHeadline(str(label), h, running[year] + 0.0))
    return tuple(out)
