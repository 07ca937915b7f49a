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
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from analyst.dataset import Dataset
from analyst.engine import AnalysisError, AnalysisOptions
from analyst.pack.data import PackData, PackLine, pack_data
from analyst.pack.workbook import build_workbook, safe_text

__all__ = ["Pack", "PackData", "PackLine", "build_pack", "pack_data", "safe_text"]

logger = logging.getLogger("analyst.pack")
Progress = Callable[[int, int], None]
Offload = Callable[..., Awaitable[Any]]


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
    offload: Offload | None = None,
) -> Pack:
    """Build the pack; the model calls run on this loop, the engine, the chart and the workbook through
    ``offload(fn, *args)`` (default: a worker thread; a server passes its process pool)."""
    offload = offload if offload is not None else _in_thread
    lines, reference_word = await offload(pack_lines, ds, opts)
    commentary: dict[int, str] = {}
    notes: dict[int, str] = {}
    if settings is None or not getattr(settings, "api_key", None):
        status = "Commentary: not drafted (no OpenAI API key configured)."
    elif not lines:
        status = "Commentary: no material lines to comment on."
    else:
        from analyst.pack.commentary import draft_commentary

        result = await draft_commentary(lines, settings, reference_word=reference_word, progress=progress)
        commentary, notes = result.text, result.notes
        status = (
            f"Commentary: drafted by the model for {len(commentary):,} of {len(lines):,} lines; every number "
            "in it was checked against the engine's figures."
        )
        if notes:
            status += f" {len(notes):,} left blank (see the note in the cell)."
    xlsx = await offload(pack_workbook, ds, opts, commentary, notes, status)
    return Pack(
        xlsx=xlsx,
        filename=_filename(ds.source.filename),
        lines=len(lines),
        commented=len(commentary),
        blank_notes=len(notes),
        status=status,
    )


async def _in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    return await asyncio.to_thread(fn, *args)


def pack_lines(ds: Dataset, opts: AnalysisOptions | None) -> tuple[tuple[PackLine, ...], str]:
    """Worker job: the material lines (small, picklable) and the reference word, for the commentary."""
    data = pack_data(ds, opts)
    return data.lines, data.reference_word


def pack_workbook(
    ds: Dataset,
    opts: AnalysisOptions | None,
    commentary: dict[int, str],
    notes: dict[int, str],
    status: str,
) -> bytes:
    """Worker job: the engine's figures, the bridge chart and the workbook, in one process (only bytes return)."""
    from analyst.charts import render_chart

    data = pack_data(ds, opts)
    try:
        bridge: bytes | None = render_chart(ds, "bridge", opts).png
    except AnalysisError as error:  # e.g. nothing to bridge: the pack goes out without the picture
        logger.info("no bridge chart for the pack: %s", type(error).__name__)
        bridge = None
    return build_workbook(data, bridge, commentary, notes, status)


def _filename(source: str) -> str:
    import re

    stem = re.sub(r"\.[A-Za-z0-9]{1,5}$", "", source)
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-")[:40] or "variance"
    return f"{stem}-pack.xlsx"
