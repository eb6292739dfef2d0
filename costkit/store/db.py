"""The durable task history: one DuckDB file with a versioned schema (`costkit.store.schema`).

`Store` opens, locks and closes the file and groups writes into transactions; its methods on tasks come
from `costkit.store.tasks` (upsert rules in `costkit.store.taskrows`), those on collection runs,
checkpoints, imports and coverage from `costkit.store.windows`.

Every public write runs in one transaction (`Store.transaction()` nests, so a caller can write a page of
tasks and its checkpoint atomically). DuckDB's write-ahead log makes a committed transaction survive a
SIGKILL; an uncommitted one is gone when the file is reopened. A Store serialises calls from several
threads with a lock.

**Readers beside writers.** DuckDB lets one process write a file, and no other process may open it, even
read-only, meanwhile. So writers hold the file only while they commit (`costkit.store.session`: collect
and listen open, commit and close per batch; import opens once its files are parsed), and readers open it
read-only (`read_only=True`) for as long as they read. Whoever finds the file held waits, retrying, up to
the lock wait: `COSTKIT_LOCK_WAIT` seconds (default `DEFAULT_LOCK_WAIT`), or `lock_timeout`; then fails
with exit 1.
"""
from __future__ import annotations

import os
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


DEFAULT_LOCK_WAIT = 60.0   # seconds; a collector's commit takes well under a second, a reader seconds
MAX_LOCK_WAIT = 86400.0


def lock_wait() -> float:
    """The lock wait in seconds: `COSTKIT_LOCK_WAIT` (a number, 0..86400), else DEFAULT_LOCK_WAIT."""
    raw = os.environ.get("COSTKIT_LOCK_WAIT")
    if raw is None or not raw.strip():
        return DEFAULT_LOCK_WAIT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 <= value <= MAX_LOCK_WAIT:   # NaN fails too
        raise BadInput(f"expected seconds from 0 to {MAX_LOCK_WAIT:g}, got {raw!r}", field="COSTKIT_LOCK_WAIT")
    return value


def _connect(path: str, read_only: bool, deadline: float):
    """A DuckDB connection, retried while another process holds the file; raises BadInput/RuntimeFailure."""
    while True:
        try:
            if read_only:
                try:
                    return duckdb.connect(path, read_only=True)
                except duckdb.ConnectionException:
                    # This process already has the file open for writing: share that instance.
                    return duckdb.connect(path)
            return duckdb.connect(path)
        except duckdb.ConnectionException:
            # This process has the file open read-only and wants to write (or the reverse): wait for it.
            if time.monotonic() < deadline:
                time.sleep(0.05)
                continue
            raise RuntimeFailure(f"{path}: the store is open in this process in another mode") from None
        except duckdb.IOException as e:
            text = str(e)
            if "lock" in text.lower():
                if time.monotonic() < deadline:
                    time.sleep(0.05)
                    continue
                raise RuntimeFailure(f"{path}: the store is in use by another costkit process for longer than "
                                     "the lock wait (COSTKIT_LOCK_WAIT); try again when it has finished") from None
            if "not a valid DuckDB database" in text:
                raise BadInput("not a costkit store (not a DuckDB database file)", path=path) from None
            raise RuntimeFailure(f"{path}: cannot open the store: {text}") from None



def _is_current(con) -> bool:
    """True when the file has every migration (or is newer: `_opened` then refuses it)."""
    try:
        version = con.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0]
    except duckdb.CatalogException:
        return False
    return version >= len(schema.MIGRATIONS)


class Store(TaskMethods, WindowMethods):
    """An open history store. Use `Store.open(path)`, preferably as a context manager."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: str):
        self._con = con
        self.path = path
        self._lock = threading.RLock()
        self._depth = 0

    # --- lifecycle ----------------------------------------------------------------------------

    @classmethod
    def open(cls, path, *, create: bool = True, lock_timeout: float | None = None,
             read_only: bool = False) -> "Store":
        """Open (and with `create`, make) the store at `path`, applying pending migrations; return it.

        `read_only`: for commands that only read (no migration is written unless the file needs one; then it
        is migrated first, in a short write session). `lock_timeout`: seconds to wait while another process
        holds the file (default: `lock_wait()`). Raises BadInput when the file is not a DuckDB database, or
        is missing and `create` is false; RuntimeFailure when it stays held longer than the wait.
        """
        path = str(path)
        if not create and not Path(path).exists():
            raise BadInput("no task store here; run `costkit collect` or `costkit import` first", path=path)
        if path == ":memory:":
            read_only = False
        else:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + (lock_wait() if lock_timeout is None else lock_timeout)
        con = _connect(path, read_only, deadline)
        if read_only and not _is_current(con):
            con.close()
            cls._opened(_connect(path, False, deadline), path).close()   # migrate, then read
            con = _connect(path, True, deadline)
        return cls._opened(con, path, migrate=not read_only)

    @classmethod
    def _opened(cls, con, path: str, migrate: bool = True) -> "Store":
        # TIMESTAMPTZ values come back in UTC whatever the host's zone.
        con.execute("SET TimeZone = 'UTC'")
        store = cls(con, path)
        try:
            if migrate:
                store._migrate()
            elif store.schema_version > len(schema.MIGRATIONS):
                raise RuntimeFailure(f"{path}: the store has schema version {store.schema_version}, newer than "
                                     f"this costkit understands ({len(schema.MIGRATIONS)}); upgrade costkit")
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
