"""Layer 3, store: the embedded DuckDB history (tasks, collection windows, object facts, bill lines)."""
from costkit.store.db import Store, UpsertCounts

__all__ = ["Store", "UpsertCounts"]
