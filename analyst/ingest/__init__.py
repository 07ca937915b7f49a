"""Reading finance exports (CSV, XLSX) into a :class:`~analyst.dataset.Dataset`.

``load_dataset(source, filename=..., overrides=..., limits=...)`` reads a file;
``apply_overrides(ds, overrides)`` re-derives the column roles from the table already read.
Both raise :class:`~analyst.dataset.IngestError` only.
"""

from analyst.ingest.loader import apply_overrides, load_dataset

__all__ = ["apply_overrides", "load_dataset"]
