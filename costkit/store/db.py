"""The durable task history: one DuckDB file with a versioned schema (`costkit.store.schema`).

`Store` opens, locks and closes the file and groups writes into transactions; its methods on tasks come
from `costkit.store.tasks` (upsert rules in `costkit.store.taskrows`), those on collection runs,
checkpoints, imports and coverage from `costkit.store.windows`.

Every public write runs in one transaction (`Store.transaction()` nests, so a caller can write a page of
tasks and its checkpoint atomically). DuckDB's write-ahead log makes a committed transaction survive a
SIGKILL; an uncommitted one is gone when the file is reopened. A Store serialises calls from several
threads with a lock; a second process that opens the same file waits up to `lock_timeout` seconds.
"""
from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from pathlib import Path

import duckdb

from costkit.core.errors import BadInput, RuntimeFailure
from costkit.store import schema
from costkit.store.tasks import TaskMethods
from costkit.store.values import quietly
from costkit.store.windows import WindowMethods


class Store(TaskMethods, WindowMethods):
    """An open history store. Use `Store.open(path)`, preferably as a context manager."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: str):
        self._con = con
        self.path = path
        self._lock = threading.RLock()
        self._depth = 0

    # --- lifecycle ----------------------------------------------------------------------------

    @classmethod
    def open(cls, path, *, create: bool = True, lock_timeout: float = 5.0) -> "Store":
        """Open (and with `create`, make) the store at `path`, applying pending migrations; return it.

        Raises BadInput when the file is not a DuckDB database, or is missing and `create` is false;
        RuntimeFailure when another process keeps it locked for longer than `lock_timeout` seconds.
        """
        path = str(path)
        if not create and not Path(path).exists():
            raise BadInput("no task store here; run `costkit collect` or `costkit import` first", path=path)
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + lock_timeout
        while True:
            try:
                con = duckdb.connect(path)
                break
            except duckdb.IOException as e:
                text = str(e)
                if "lock" in text.lower():
                    if time.monotonic() < deadline:
                        time.sleep(0.1)
                        continue
                    raise RuntimeFailure(f"{path}: the store is in use by another costkit process; "
                                         "try again when it has finished") from None
                if "not a valid DuckDB database" in text:
                    raise BadInput("not a costkit store (not a DuckDB database file)", path=path) from None
                raise RuntimeFailure(f"{path}: cannot open the store: {text}") from None
        # TIMESTAMPTZ values come back in UTC whatever the host's zone.
        con.execute("SET TimeZone = 'UTC'")
        store = cls(con, path)
        try:
            store._migrate()
        except BaseException:
            con.close()
            raise
        return store

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def schema_version(self) -> int:
        """The number of migrations applied to this file."""
        with self._lock:
            return self._con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]

    def _migrate(self) -> None:
        schema.migrate(self)

    # --- transactions -------------------------------------------------------------------------

    @contextmanager
    def transaction(self):
        """Group writes into one transaction; nested blocks join the outermost one.

        An exception rolls back everything since the outermost block began.
        """
        with self._lock:
            if self._con is None:
                raise RuntimeFailure(f"{self.path}: the store is closed")
            outer = self._depth == 0
            if outer:
                self._con.execute("BEGIN TRANSACTION")
            self._depth += 1
            try:
                yield self
            except BaseException as e:
                self._depth -= 1
                if outer:
                    quietly(self._con.execute, "ROLLBACK")
                if isinstance(e, duckdb.Error):
                    raise RuntimeFailure(f"{self.path}: store write failed, nothing from it was kept: {e}") from e
                raise
            self._depth -= 1
            if outer:
                try:
                    self._con.execute("COMMIT")
                except duckdb.Error as e:
                    raise RuntimeFailure(f"{self.path}: commit failed: {e}") from None
