"""Layer 3, store: the embedded DuckDB history (tasks, collection windows, object facts, bill lines)."""
from costkit.store.db import Store
from costkit.store.tasks import UpsertCounts

__all__ = ["Store", "UpsertCounts"]
