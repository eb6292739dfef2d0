"""Where `costkit listen` commits: the store, opened for each batch and closed again.

The store is held only while a batch commits, so other costkit commands can open it between batches. Each
commit writes the batch's tasks and an `imports` row per (region, project) in one transaction. The row
(kind "listen", file "mns:<queue>") spans the earliest to the latest task start time that this listen has
stored for that project: the queue delivers every completion in between, so `coverage` counts the span as
covered. Rows of one listen overlap and merge into one window.
"""
from __future__ import annotations

from datetime import datetime, timezone

from costkit.store.db import Store
from costkit.store.tasks import UpsertCounts

LISTEN_KIND = "listen"
# Another process may hold the store; the batch waits up to the lock wait (COSTKIT_LOCK_WAIT, see
# costkit.store.db), its messages staying in the queue meanwhile.
LOCK_TIMEOUT = None


class StoreSink:
    """Commits batches of notification records to the store at `path` (see `Listener`)."""

    def __init__(self, path, queue: str, *, lock_timeout: float | None = LOCK_TIMEOUT):
        self.path, self.queue, self.lock_timeout = str(path), queue, lock_timeout
        self.spans: dict[tuple, list] = {}   # (region, project) -> [earliest, latest] start time
        self.commits = 0

    def commit(self, records: list[dict]) -> UpsertCounts:
        """Upsert `records` and note the covered span in one transaction; return the upsert counts."""
        touched = set()
        for r in records:
            key = (r["region"], r["project"])
            touched.add(key)
            t = r.get("start_time")
            if t is None:
                continue
            span = self.spans.setdefault(key, [t, t])
            span[0], span[1] = min(span[0], t), max(span[1], t)
        windows = {k: tuple(self.spans[k]) for k in touched if k in self.spans}
        with Store.open(self.path, lock_timeout=self.lock_timeout) as store:
            with store.transaction():
                counts = store.upsert_tasks(records, seen_at=datetime.now(timezone.utc))
                store.record_import(f"mns:{self.queue}", LISTEN_KIND, {
                    "new": counts.new, "updated": counts.updated, "unchanged": counts.unchanged,
                    "records": len(records)}, windows)
        self.commits += 1
        return counts
