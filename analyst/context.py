"""What one conversation is analysing: its dataset and the options the user set for it.

Front ends keep one ``AnalysisContext`` per conversation and hand it to each run; the agent's tools read it and
may change it (a role override, an account-type override), so the change holds for the rest of the conversation
and for nothing else. The context remembers the dataset and options it started from: :meth:`fresh` gives another
conversation a context of its own over the same file without this one's overrides, :meth:`reset` drops them,
and :meth:`override_notes` lists them, so every answer or report they shape can say so.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from analyst.charts.outbox import ChartOutbox
from analyst.dataset import Dataset, RoleOverrides
from analyst.engine.options import AccountType, AnalysisOptions

# Characters of one file label shown in an override note (labels come from the file: keep them short).
_NOTE_LABEL_CAP = 60
_NOTES_SHOWN = 8

_TYPE_WORDS = {
    AccountType.REVENUE: "revenue",
    AccountType.CONTRA_REVENUE: "contra revenue",
    AccountType.EXPENSE: "expense",
}


@dataclass(slots=True)
class AnalysisContext:
    dataset: Dataset
    options: AnalysisOptions = field(default_factory=AnalysisOptions)
    # What the conversation started from (the file as loaded, the default options): overrides are the difference.
    base_dataset: Dataset = field(init=False, repr=False)
    base_options: AnalysisOptions = field(init=False, repr=False)
    # Charts the agent's make_chart tool drew, until the surface uploads them (see analyst.charts.outbox).
    charts: ChartOutbox = field(default_factory=ChartOutbox, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.base_dataset = self.dataset
        self.base_options = self.options

    def override_roles(self, overrides: RoleOverrides) -> None:
        from analyst.ingest import apply_overrides

        self.dataset = apply_overrides(self.dataset, overrides)

    @property
    def has_overrides(self) -> bool:
        return self.dataset is not self.base_dataset or self.options != self.base_options

    def fresh(self) -> AnalysisContext:
        """A new context over the same (immutable) file, without this conversation's overrides."""
        return AnalysisContext(self.base_dataset, self.base_options)

    def reset(self) -> list[str]:
        """Drop this conversation's overrides; returns the notes of what was dropped."""
        dropped = self.override_notes()
        self.dataset, self.options = self.base_dataset, self.base_options
        return dropped

    def override_notes(self) -> list[str]:
        """One short line per override in effect ("Advertising counted as revenue", "actual column: Spend")."""
        roles = self.dataset.roles
        chosen = {r: getattr(roles, r, None) for r in roles.overridden} if self.dataset is not self.base_dataset else {}
        base_types = self.base_options.account_types
        changed = {k: v for k, v in self.options.account_types.items() if base_types.get(k) != v}
        return describe_overrides(chosen, changed, self.options.materiality != self.base_options.materiality)


def describe_overrides(
    roles: Mapping[str, object], account_types: Mapping[str, AccountType], materiality_changed: bool
) -> list[str]:
    """The notes of :meth:`AnalysisContext.override_notes` for overrides given as data: the column ``roles`` the
    user set, the ``account_types`` that differ from the file's, and whether materiality was changed."""
    notes: list[str] = []
    for role, value in roles.items():
        if role == "dimensions":
            dims = [str(d) for d in value or ()] if isinstance(value, list | tuple) else []
            shown = ", ".join(_short(d) for d in dims[:4])
            more = len(dims) - 4
            notes.append(f"dimensions: {shown or 'none'}" + (f" (+{more})" if more > 0 else ""))
        elif value:
            notes.append(f"{role.replace('_', ' ')} column: {_short(value)}")
    changed = list(account_types.items())
    for label, kind in changed[:_NOTES_SHOWN]:
        notes.append(f"{_short(label)} counted as {_TYPE_WORDS.get(kind, str(kind))}")
    if len(changed) > _NOTES_SHOWN:
        notes.append(f"{len(changed) - _NOTES_SHOWN} more account types set")
    if materiality_changed:
        notes.append("materiality changed")
    return notes


def _short(value: object) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= _NOTE_LABEL_CAP else text[: _NOTE_LABEL_CAP - 1] + "…"
