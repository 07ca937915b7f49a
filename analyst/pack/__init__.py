"""The month-end pack: an XLSX with the headline, totals by type, the bridge chart and every material line with
its commentary.

    from analyst.pack import build_pack

    pack = await build_pack(dataset, options, settings=agent_settings_or_None, progress=on_progress)
    Path("pack.xlsx").write_bytes(pack.xlsx)

Numbers come from the engine (:mod:`analyst.pack.data`); the commentary is drafted by the model only when
``settings`` carries an API key, and every number it cites is checked (:mod:`analyst.pack.commentary`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from analyst.dataset import Dataset
from analyst.engine import AnalysisError, AnalysisOptions
from analyst.pack.data import PackData, PackLine, pack_data
from analyst.pack.workbook import build_workbook, safe_text

__all__ = ["Pack", "PackData", "PackLine", "build_pack", "pack_data", "safe_text"]

logger = logging.getLogger("analyst.pack")
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class Pack:
    xlsx: bytes
    filename: str
    lines: int  # material lines on the Variance sheet
    commented: int  # lines with commentary
    blank_notes: int  # lines whose commentary was left blank (with a note)
    status: str  # one sentence on the commentary (drafted, no key, ...)


async def build_pack(
    ds: Dataset,
    opts: AnalysisOptions | None = None,
    *,
    settings: Any = None,
    progress: Progress | None = None,
) -> Pack:
    """Build the pack; the engine and drawing run in worker threads, the model calls on this loop."""
    data = await asyncio.to_thread(pack_data, ds, opts)
    bridge = await _bridge_png(ds, opts)
    commentary: dict[int, str] = {}
    notes: dict[int, str] = {}
    if settings is None or not getattr(settings, "api_key", None):
        status = "Commentary: not drafted (no OpenAI API key configured)."
    elif not data.lines:
        status = "Commentary: no material lines to comment on."
    else:
        from analyst.pack.commentary import draft_commentary

        result = await draft_commentary(
            data.lines, settings, reference_word=data.reference_word, progress=progress
        )
        commentary, notes = result.text, result.notes
        status = (
            f"Commentary: drafted by the model for {len(commentary):,} of {len(data.lines):,} lines; every number "
            "in it was checked against the engine's figures."
        )
        if notes:
            status += f" {len(notes):,} left blank (see the note in the cell)."
    xlsx = await asyncio.to_thread(
        build_workbook,
        data,
        bridge_png=bridge,
        commentary=commentary,
        commentary_notes=notes,
        commentary_status=status,
    )
    return Pack(
        xlsx=xlsx,
        filename=_filename(ds.source.filename),
        lines=len(data.lines),
        commented=len(commentary),
        blank_notes=len(notes),
        status=status,
    )


async def _bridge_png(ds: Dataset, opts: AnalysisOptions | None) -> bytes | None:
    from analyst.charts import render_chart_async

    try:
        return (await render_chart_async(ds, "bridge", opts)).png
    except AnalysisError as error:  # e.g. nothing to bridge: the pack goes out without the picture
        logger.info("no bridge chart for the pack: %s", type(error).__name__)
        return None


def _filename(source: str) -> str:
    import re

    stem = re.sub(r"\.[A-Za-z0-9]{1,5}$", "", source)
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-")[:40] or "variance"
    return f"{stem}-pack.xlsx"
