"""The single writer: workers fetch slices, and only the calling thread writes the store.

Workers send pages through a bounded queue. The writer takes what is queued (up to `INGEST_BATCH` tasks)
into one transaction, and advances a project's checkpoint, in the transaction of the page that completes
a slice, to the end of the contiguous prefix of completed slices.
"""
from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from costkit.core.errors import CostkitError
from costkit.sources.imm.client import Stopped
from costkit.sources.imm.listing import PAGE_SIZE, Page, fetch_slice
from costkit.sources.imm.plan import Plan
from costkit.sources.retry import describe

INGEST_BATCH = 2000                        # tasks per store transaction at most...
INGEST_WAIT = 0.05                         # ...gathered for at most this long (a commit costs ~10 ms)


class PageQueue:
    """The bounded queue from the workers to the writer."""

    def __init__(self, concurrency: int, stop: threading.Event):
        self.pages: queue.Queue = queue.Queue(maxsize=max(8 * concurrency, 2 * INGEST_BATCH // PAGE_SIZE))
        self.stop = stop
        self.abandoned = threading.Event()  # the writer no longer reads the queue

    def put(self, item: Page) -> None:
        while not self.abandoned.is_set():
            try:
                self.pages.put(item, timeout=0.1)
                return
            except queue.Full:
                if self.stop.is_set() and item.error is None and not item.last:
                    raise Stopped()


def run_slices(store, region: str, plans: list, client, caller, stop: threading.Event, concurrency: int,
               seen_at, progress) -> BaseException | None:
    """Fetch every slice of `plans` in `concurrency` worker threads and write their pages from this
    thread; finally record each plan's run as finished. Returns the first failure, None if there was none.
    """
    pages = PageQueue(concurrency, stop)
    jobs = [(plan, i) for i in range(max(len(p.slices) for p in plans)) for plan in plans if i < len(plan.slices)]

    def worker(plan: Plan, index: int):
        try:
            fetch_slice(client, caller, region, plan, index, pages.put)
        except BaseException as e:  # always report, so the writer can count the slice
            if not isinstance(e, Stopped):
                stop.set()  # the run has failed: other slices stop before their next request
            pages.put(Page(plan, index, [], True, error=e))

    writer = _Writer(store, region, len(jobs), seen_at, stop, progress)
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="costkit-collect")
    try:
        for plan, i in jobs:
            pool.submit(worker, plan, i)
        writer.drain(pages.pages)
    except BaseException:
        stop.set()
        pages.abandoned.set()
        raise
    finally:
        stop.set()
        pages.abandoned.set()
        pool.shutdown(wait=True, cancel_futures=True)
        _finish_runs(store, plans, writer.failure)
    return writer.failure


class _Writer:
    """Drains the page queue into the store until every slice has finished (or failed)."""

    def __init__(self, store, region, total: int, seen_at, stop: threading.Event, progress):
        self.store, self.region, self.total, self.seen_at = store, region, total, seen_at
        self.stop, self.progress = stop, progress
        self.finished = 0
        self.fetched = 0
        self.failure: BaseException | None = None

    def drain(self, pages: queue.Queue) -> None:
        while self.finished < self.total:
            batch = self._take(pages)
            good = [page for page in batch if page.error is None]
            for page in batch:
                if page.error is not None:
                    self._failed(page)
            if good:
                self.fetched += ingest(self.store, self.region, good, self.seen_at)
                self.finished += sum(1 for p in good if p.last)
            if self.progress is not None:
                self.progress(self.finished, self.total, self.fetched)

    def _take(self, pages: queue.Queue) -> list:
        """What is queued (up to INGEST_BATCH tasks) for one transaction: DuckDB commits are costly, and a
        batch of pages is as atomic as one page."""
        batch = [pages.get()]
        size = len(batch[0].records)
        open_slices = self.total - self.finished - (batch[0].last or batch[0].error is not None)
        # A session store (costkit.store.session) is opened per commit: gather longer between commits.
        deadline = time.monotonic() + getattr(self.store, "commit_interval", INGEST_WAIT)
        while size < INGEST_BATCH and open_slices > 0:
            try:
                batch.append(pages.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                break
            size += len(batch[-1].records)
            open_slices -= batch[-1].last or batch[-1].error is not None
        return batch

    def _failed(self, page: Page) -> None:
        self.finished += 1
        if isinstance(page.error, Stopped):
            return
        page.plan.failed = True
        err = page.error
        page.plan.summary.errors.append(str(err) if isinstance(err, CostkitError) else describe(err))
        if self.failure is None:
            self.failure = err
        self.stop.set()


def _finish_runs(store, plans: list, failure) -> None:
    for plan in plans:
        s = plan.summary
        s.ok = not plan.failed and all(plan.done) and failure is None
        if failure is not None and not plan.failed and not all(plan.done):
            s.errors.append("stopped: another slice failed")
        # The span covered: the contiguous prefix of completed slices (all of the window when ok).
        covered = min(plan.slices[plan.prefix - 1][1], plan.window_end) if plan.prefix else None
        store.finish_run(plan.run_id, pages=s.pages, new=s.new, updated=s.updated,
                         unchanged=s.unchanged, errors=list(s.errors), ok=s.ok, covered_end=covered)


def ingest(store, region, pages: list, seen_at) -> int:
    """Upsert pages (and advance checkpoints of completed slices) in one transaction."""
    by_plan: dict[int, tuple[Plan, dict]] = {}
    for page in pages:
        plan = page.plan
        s = plan.summary
        s.skipped += page.skipped
        s.errors.extend(page.bad)
        _, recs = by_plan.setdefault(id(plan), (plan, {}))
        for rec in page.records:
            # A task listed twice in one run (slice overlap, duplicate across pages) is written once,
            # unless it changed in between; within a batch the most final status wins.
            sig = (rec.get("status"), rec.get("code"), rec.get("end_time"))
            if plan.seen.get(rec["task_id"]) == sig:
                continue
            prev = recs.get(rec["task_id"])
            if prev is not None and prev.get("status") != "Running" and rec.get("status") == "Running":
                continue
            plan.seen[rec["task_id"]] = sig
            recs[rec["task_id"]] = rec
    with store.transaction():
        for plan, recs in by_plan.values():
            if recs:
                c = store.upsert_tasks(list(recs.values()), seen_at=seen_at)
                plan.summary.new += c.new
                plan.summary.updated += c.updated
                plan.summary.unchanged += c.unchanged
        for page in pages:
            if page.last:
                complete_slice(store, region, page.plan, page.index)
    for page in pages:
        page.plan.summary.pages += 1
    return sum(p.listed for p in pages)


def complete_slice(store, region, plan: Plan, index: int) -> None:
    """Mark a slice done; move the checkpoint to the end of the contiguous prefix of done slices."""
    plan.done[index] = True
    while plan.prefix < len(plan.done) and plan.done[plan.prefix]:
        plan.prefix += 1
    if plan.advance_checkpoint and plan.prefix > 0:
        reached = min(plan.slices[plan.prefix - 1][1], plan.window_end)
        s = plan.summary
        if s.checkpoint is None or reached > s.checkpoint:
            store.set_checkpoint(region, plan.project, reached)
            s.checkpoint = reached
