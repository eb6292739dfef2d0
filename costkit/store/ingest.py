"""Store parsed task dumps and notifications (`costkit import`; parsing is `costkit.sources.imm.importers`).

All files are stored in one transaction, each with a row in the `imports` table (the span of its task start
times counts as coverage). Every file is parsed and checked before anything is stored.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from costkit.sources.imm.importers import FileImport, parse_files
from costkit.store.db import Store


@dataclass
class ImportSummary:
    """What an import stored: counts over all files, and the bad records skipped (with skip_bad)."""

    files: list = field(default_factory=list)
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped_other_types: int = 0
    bad: list = field(default_factory=list)
    warnings: list = field(default_factory=list)

    def line(self) -> str:
        """The one-line summary that `costkit import` prints."""
        n = len(self.files)
        text = (f"imported {n} file{'s' if n != 1 else ''}: {self.new} new, {self.updated} updated, "
                f"{self.unchanged} unchanged; {self.skipped_other_types} "
                f"task{'s' if self.skipped_other_types != 1 else ''} of other types skipped")
        if self.bad:
            text += f"; {len(self.bad)} bad record{'s' if len(self.bad) != 1 else ''} skipped"
        return text


def import_files(store: Store, paths, kind: str | None = None, skip_bad: bool = False, *,
                 region: str | None = None, seen_at: datetime | None = None) -> ImportSummary:
    """Import files into the store; return an ImportSummary.

    All files are parsed first: a bad one stops the import before anything is stored. Then each file is
    stored in its own transaction with its `imports` row.
    """
    return store_parsed(store, parse_files(paths, kind=kind, region=region, skip_bad=skip_bad), seen_at=seen_at)


def store_parsed(store: Store, parsed: list[FileImport], *, seen_at: datetime | None = None) -> ImportSummary:
    """Store files parsed by `parse_files` in one transaction (all files or none, each with its `imports`
    row); return an ImportSummary."""
    with store.transaction():
        return _store_parsed(store, parsed, seen_at=seen_at)


def _store_parsed(store: Store, parsed: list[FileImport], *, seen_at: datetime | None = None) -> ImportSummary:
    seen_at = seen_at or datetime.now(timezone.utc)
    summary = ImportSummary()
    for f in parsed:
        windows: dict[tuple, list] = {}
        for r in f.records:
            if r["start_time"] is None:
                continue
            w = windows.setdefault((r["region"], r["project"]), [r["start_time"], r["start_time"]])
            w[0], w[1] = min(w[0], r["start_time"]), max(w[1], r["start_time"])
        with store.transaction():
            f.counts = store.upsert_tasks(f.records, seen_at=seen_at)
            store.record_import(f.file, f.kind, {
                "new": f.counts.new, "updated": f.counts.updated, "unchanged": f.counts.unchanged,
                "skipped_other_types": f.skipped_other_types, "bad": len(f.bad)},
                {k: tuple(v) for k, v in windows.items()})
        summary.files.append(f)
        summary.new += f.counts.new
        summary.updated += f.counts.updated
        summary.unchanged += f.counts.unchanged
        summary.skipped_other_types += f.skipped_other_types
        summary.bad.extend(f.bad)
    return summary
