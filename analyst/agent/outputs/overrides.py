"""The two conversation overrides: which columns play which role, and the account type of some labels.

Each changes the conversation's :class:`~analyst.context.AnalysisContext` for the rest of the conversation and
returns a short JSON confirmation, or an error output naming what was wrong.
"""

from __future__ import annotations

from collections.abc import Sequence

from analyst.agent.outputs.budget import capped, dump, error_output, short
from analyst.context import AnalysisContext
from analyst.dataset import Dataset, RoleOverrides
from analyst.engine.options import AccountType


def set_roles(
    ctx: AnalysisContext,
    *,
    actual: str | None,
    reference: str | None,
    period: str | None,
    account: str | None,
    dimensions: Sequence[str] | None,
) -> str:
    overrides = RoleOverrides(
        actual=actual or None,
        reference=reference or None,
        period=period or None,
        account=account or None,
        dimensions=tuple(dimensions) if dimensions else None,
    )
    if overrides.is_empty():
        return error_output("Give at least one of: actual, reference, period, account, dimensions.")
    ctx.override_roles(overrides)
    return dump(capped({"ok": True, "roles": ctx.dataset.roles.to_dict(), "rows": len(ctx.dataset.frame)}))


def set_types(ctx: AnalysisContext, assignments: Sequence[tuple[str, str]]) -> str:
    if not assignments:
        return error_output("Give at least one label with its type (revenue, contra_revenue or expense).")
    known = _account_labels(ctx.dataset)
    resolved: dict[str, AccountType] = {}
    unknown: list[str] = []
    for label, kind in assignments:
        match = _match_label(label, known) if known is not None else label
        if match is None:
            unknown.append(label)
        else:
            resolved[match] = AccountType(kind)
    if unknown:
        choices = ", ".join(short(k) for k in sorted(known or [])[:12])
        return error_output(
            f"Unknown account label(s): {', '.join(map(short, unknown))}. Labels include: {choices}."
        )
    ctx.options = ctx.options.with_account_types(resolved)
    return dump({"ok": True, "account_type_overrides": {short(k): v.value for k, v in resolved.items()}})


def _account_labels(ds: Dataset) -> set[str] | None:
    try:
        from analyst.engine.accounts import label_column

        column = label_column(ds)
    except ImportError:  # pragma: no cover - the engine always ships it
        column = ds.roles.account
    if column is None or column not in ds.frame.columns:
        return None
    return {str(v) for v in ds.frame[column].dropna().unique()}


def _match_label(label: str, known: set[str]) -> str | None:
    if label in known:
        return label
    folded = label.strip().casefold()
    return next((k for k in known if k.strip().casefold() == folded), None)


