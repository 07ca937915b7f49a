"""Which column is what, from header words in English, Russian and German (and, for scenarios, cell values).

A header is split into a *scenario word* (Actual / Budget / План / Ist ...) and the *rest*: "Jan Actual"
is the actual of January, "Actual_Revenue" the actual of the metric Revenue, "Actual" a plain actual column.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from analyst.dataset import ReferenceKind
from analyst.ingest.periods import period_label

Kind = Literal[
    "actual",
    "reference",
    "variance",
    "quantity",
    "period",
    "account",
    "type",
    "scenario",
    "amount",
    "dimension",
]


def _words(*alternatives: str) -> str:
    return r"(?<![^\W_])(?:" + "|".join(alternatives) + r")(?![^\W_])"


def _compile(*alternatives: str) -> re.Pattern[str]:
    return re.compile(_words(*alternatives), re.IGNORECASE)


ACTUAL_RE = _compile(
    "actuals?",
    "act",
    "fact",
    "факт",
    "фактически",
    "фактические",
    "ist",
    "ist wert",
    "istwert",
    "real",
    "realised",
    "realized",
    "achieved",
)
REFERENCE_RES: tuple[tuple[ReferenceKind, re.Pattern[str]], ...] = (
    ("budget", _compile("budget", "budgeted", "bud", "bdgt", "бюджет", "бюджетн\\w*")),
    ("plan", _compile("plan", "planned", "plan wert", "planwert", "plan\\w*", "план", "план\\w*", "soll")),
    (
        "forecast",
        _compile("forecast", "fcst", "fct", "fc", "outlook", "прогноз\\w*", "prognose", "hochrechnung"),
    ),
    ("target", _compile("target", "goal", "цель", "ziel")),
    (
        "prior",
        _compile("prior year", "prior", "last year", "ly", "py", "previous year", "прошлый год", "vorjahr", "vj"),
    ),
)
REFERENCE_PRIORITY: tuple[ReferenceKind, ...] = ("budget", "plan", "forecast", "target", "prior")

VARIANCE_RE = _compile(
    "variance",
    "var",
    "over budget",
    "under budget",
    "over under",
    "difference",
    "diff",
    "delta",
    "deviation",
    "отклонение",
    "отклонения",
    "откл",
    "разница",
    "abweichung",
    "differenz",
    "abw",
    "of budget",
    "pct",
    "percent",
    "процент",
    "исполнение",
    "выполнение",
    "ratio",
    "fav",
    "unfav",
)
QUANTITY_RE = _compile(
    "qty",
    "quantity",
    "quantities",
    "units?",
    "volume",
    "vol",
    "кол во",
    "количество",
    "объем",
    "объём",
    "menge",
    "stück",
    "stk",
    "anzahl",
    "pcs",
    "шт",
)
PERIOD_RE = _compile(
    "month",
    "period",
    "месяц",
    "период",
    "monat",
    "periode",
    "date",
    "дата",
    "datum",
    "posting date",
    "fiscal period",
    "year month",
    "дата проводки",
)
ACCOUNT_RES = (
    _compile(
        "account",
        "accounts",
        "acct",
        "gl",
        "gl account",
        "account name",
        "line item",
        "статья",
        "статьи",
        "статья затрат",
        "статья расходов",
        "счет",
        "счёт",
        "konto",
        "sachkonto",
        "kontobezeichnung",
        "posten",
    ),
    _compile(
        "cost center",
        "cost centre",
        "kostenstelle",
        "category",
        "категория",
        "item",
        "description",
        "name",
        "наименование",
        "bezeichnung",
        "metric",
        "показатель",
        "kennzahl",
    ),
)
# A year column ("Year", "fiscal_year", "FY", "Год", "Geschäftsjahr"): an annual period, or the year of a month-name
# column beside it. "Year to date" is not a year.
YEAR_RE = re.compile(
    _words("year", "fiscal year", "fiscal yr", "fy", "budget year", "financial year", "год", "финансовый год",
           "отчетный год", "jahr", "geschäftsjahr", "geschaeftsjahr", "wirtschaftsjahr")
    + r"(?!\s+to\s+date)",
    re.IGNORECASE,
)
# Measures that are never money even beside Budget/Actual words: prices, rates, averages, headcounts, hours.
NON_MONEY_RE = _compile(
    "price",
    "prices",
    "unit price",
    "unit cost",
    "per unit",
    "rate",
    "rates",
    "avg",
    "average",
    "asp",
    "headcount",
    "head count",
    "fte",
    "ftes",
    "hours",
    "hrs",
    "margin pct",
    "yield",
    "цена",
    "цены",
    "ставка",
    "тариф",
    "численность",
    "средн\\w*",
    "preis",
    "preise",
    "satz",
    "stundensatz",
    "kopfzahl",
    "stunden",
)
# Organisational dimensions: they say who spent, never what kind of line it is (revenue or cost).
ORG_DIMENSION_RE = _compile(
    "department",
    "dept",
    "division",
    "region",
    "cost center",
    "cost centre",
    "costcenter",
    "profit center",
    "channel",
    "agency",
    "fund",
    "entity",
    "company",
    "location",
    "branch",
    "segment",
    "business unit",
    "bu",
    "office",
    "site",
    "country",
    "team",
    "project",
    "подразделение",
    "отдел",
    "департамент",
    "филиал",
    "регион",
    "цфо",
    "abteilung",
    "kostenstelle",
    "bereich",
    "niederlassung",
    "sparte",
)
TYPE_RE = _compile("type", "account type", "тип", "тип статьи", "вид статьи", "kontotyp", "kontoart", "class")
SCENARIO_RE = _compile("scenario", "version", "сценарий", "версия", "szenario", "data type", "value type")
AMOUNT_RE = _compile(
    "amount",
    "amt",
    "value",
    "sum",
    "сумма",
    "значение",
    "betrag",
    "wert",
    "summe",
    "total",
    "usd",
    "eur",
    "rub",
)
# Parts of a header that say nothing about which line or period it is ("Actual 2025", "Budget YTD ($)").
_NEUTRAL_RE = re.compile(
    r"(?<![^\W_])(?:fy\s?\d{2,4}|(?:19|20)\d\d|ytd|total|totals|amount|amt|usd|eur|rub|gbp|chf|итого|всего|"
    r"summe|gesamt|сумма|betrag|value|values)(?![^\W_])|[$€£₽()\[\]]",
    re.IGNORECASE,
)
TOTAL_HEADER_RE = _compile(
    "total",
    "totals",
    "grand total",
    "итого",
    "всего",
    "summe",
    "gesamt",
    "fy total",
    "year total",
    "ytd",
    "sum",
)

_SEPARATORS_RE = re.compile(r"[_\-./\\:#]+")


def normalise(header: str) -> str:
    return " ".join(_SEPARATORS_RE.sub(" ", header).split()).lower()


@dataclass(frozen=True, slots=True)
class HeaderInfo:
    """What a column header says."""

    name: str
    kind: Kind
    reference_kind: ReferenceKind | None = None
    quantity: bool = False
    rest: str = ""  # the header without its scenario word (original spelling), neutral words removed
    period: str | None = None  # canonical period label of ``rest``, when it names one
    is_total: bool = False  # "Total Actual", "FY Total": a total column
    year: bool = False  # a year column (period kind): "Year", "fiscal_year", "FY"
    non_money: bool = False  # a price, rate, average, headcount or hours: never summed as money


def scenario_of(text: str) -> tuple[Literal["actual", "reference"] | None, ReferenceKind | None, str]:
    """The scenario word in a header or cell, its reference kind, and the text without it."""
    norm = normalise(text)
    if ACTUAL_RE.search(norm):
        return "actual", None, _without(text, ACTUAL_RE)
    for kind, pattern in REFERENCE_RES:
        if pattern.search(norm):
            return "reference", kind, _without(text, pattern)
    return None, None, text


def _without(text: str, pattern: re.Pattern[str]) -> str:
    spaced = _SEPARATORS_RE.sub(" ", text)
    return " ".join(pattern.sub(" ", spaced, count=1).split())


def classify_header(name: str) -> HeaderInfo:
    norm = normalise(name)
    if "%" in name or VARIANCE_RE.search(norm):
        return HeaderInfo(name, "variance")
    scenario, reference_kind, rest = scenario_of(name)
    quantity = bool(QUANTITY_RE.search(norm))
    if scenario is not None:
        non_money = bool(NON_MONEY_RE.search(normalise(rest)))
        if quantity:
            rest = _without(rest, QUANTITY_RE)
        is_total = bool(TOTAL_HEADER_RE.search(normalise(rest)))
        # The period is read before neutral words go: "Jan 2025 Actual" is 2025-01, not any January.
        period = period_label(rest) if rest else None
        rest = " ".join(_NEUTRAL_RE.sub(" ", rest).split())
        if period is None and rest:
            period = period_label(rest)
        return HeaderInfo(
            name,
            scenario,
            reference_kind=reference_kind,
            quantity=quantity,
            rest=rest,
            period=period,
            is_total=is_total,
            non_money=non_money and not quantity,
        )
    if quantity:
        return HeaderInfo(name, "quantity", quantity=True)
    if SCENARIO_RE.search(norm):
        return HeaderInfo(name, "scenario")
    if TYPE_RE.search(norm):
        return HeaderInfo(name, "type")
    if YEAR_RE.search(norm) and not ORG_DIMENSION_RE.search(norm):
        return HeaderInfo(name, "period", year=True)
    if PERIOD_RE.search(norm):
        return HeaderInfo(name, "period")
    if any(pattern.search(norm) for pattern in ACCOUNT_RES):
        return HeaderInfo(name, "account")
    label = period_label(name)
    if label is not None:
        return HeaderInfo(name, "amount", period=label)
    if TOTAL_HEADER_RE.search(norm):
        return HeaderInfo(name, "amount", is_total=True)
    if AMOUNT_RE.search(norm):
        return HeaderInfo(name, "amount")
    return HeaderInfo(name, "dimension")


def account_rank(name: str) -> int:
    """0 for a real account header (Account, Статья, Konto), 1 for a looser one (Cost center, Item), 2
    else."""
    norm = normalise(name)
    if ORG_DIMENSION_RE.search(norm):
        return len(ACCOUNT_RES) + 1  # "department_name" names who spent, not the line
    for rank, pattern in enumerate(ACCOUNT_RES):
        if pattern.search(norm):
            return rank
    return len(ACCOUNT_RES)


def is_org_dimension(name: str) -> bool:
    """A department, region, cost centre, channel or agency column: never the source of an account type."""
    return bool(ORG_DIMENSION_RE.search(normalise(name)))


def scenario_value(value: str) -> tuple[Literal["actual", "reference"] | None, ReferenceKind | None]:
    """Whether a cell value of a Scenario/Type column means actual or a reference ("Budget", "План",
    "Ist")."""
    norm = normalise(value)
    if not norm or len(norm) > 30:
        return None, None
    scenario, kind, rest = scenario_of(value)
    if scenario is None or _NEUTRAL_RE.sub("", rest).strip():
        return None, None
    return scenario, kind
