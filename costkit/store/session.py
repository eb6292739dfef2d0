"""A store held only while it is used: each write (a transaction) or read opens the file, does its work and
closes it again, so that other costkit processes can open the file in between (`costkit.store.db`, readers
beside writers).

`SessionStore(path)` offers the methods of `Store`. A call outside a transaction is one short session; a
`transaction()` block is one session, and the calls inside it join it (so a page of tasks and its checkpoint
still commit atomically, and a SIGKILL leaves what the last commit left). Opening waits up to the lock wait
while another process holds the file.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager

from costkit.store.db import Store

# A writer with a session store gathers work for this long before it commits (a session costs ~30 ms).
COMMIT_INTERVAL = 0.5


class SessionStore:
    """`Store` methods on the file at `path`, each in a short session (see the module doc)."""

    commit_interval = COMMIT_INTERVAL

    def __init__(self, path, *, lock_timeout: float | None = None):
        self.path, self.lock_timeout = str(path), lock_timeout
        self._open: Store | None = None
        self._session_lock = threading.RLock()
        self.sessions = 0
        with self.session():   # create and migrate now: a bad file fails before any work
            pass

    @contextmanager
    def session(self):
        """The open Store: this call's own session, or the one already open (joined)."""
        with self._session_lock:
            if self._open is not None:
                yield self._open
                return
            store = Store.open(self.path, lock_timeout=self.lock_timeout)
            self._open = store
            self.sessions += 1
            try:
                yield store
            finally:
                self._open = None
                store.close()

    @contextmanager
    def transaction(self):
        """One session and one transaction; calls on this object inside it join both."""
        with self.session() as store, store.transaction():
            yield self

    def close(self) -> None:
        """Nothing stays open between sessions."""

    def __enter__(self) -> "SessionStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getattr__(self, name: str):
        if name.startswith("_") or not callable(getattr(Store, name, None)):
            raise AttributeError(name)

        def call(*args, **kwargs):
            with self.session() as store:
                return getattr(store, name)(*args, **kwargs)
        call.__name__ = name
        return call
