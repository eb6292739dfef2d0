"""A naive, task-by-task reference for `costkit.history_cost` (tests and bench/cost.py).

It walks the tasks in Python, one row at a time: for every source it builds a `SpliceProfile` and asks the
usage model (`splice_usage`) what that source causes, then prices each quantity with the `Pricer` at the
task's hour; target storage is priced per task over its stored hours (split where a price changes). It
shares the usage model and the price book with the engine (there is one engine) but none of its SQL, so it
checks the vectorised arithmetic, the joins and the attribution rules. Slow by design.

`lookup="per_row"` fetches each task's object facts with point queries (the naive way a per-row loop
reads a database); `lookup="preload"` loads all facts into dicts first (fast enough for tests).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from fractions import Fraction

from costkit.engine.profile import splice_profile
from costkit.core.money import round_money
from costkit.engine.context import settings_book
from costkit.prices.book import ITEM_KEYS, STORAGE_CLASSES
from costkit.prices.pricer import Pricer
from costkit.model.usage import GB, billable_bytes, splice_usage

UTC = timezone.utc
_COLS = "uri, size, storage_class, restore_state, restore_expiry, gone, gone_since"


def _hour(ts: datetime) -> int:
    return int(ts.timestamp()) // 3600


def _at(h: int) -> datetime:
    return datetime.fromtimestamp(h * 3600, UTC)


def _bucket_of(uri) -> str:
    return uri[6:].split("/", 1)[0] if uri and uri.startswith("oss://") else ""


@dataclass
class _Run:
    """One reference run: the settings, the scenario's base profile, the Pricer and the exact sums per item."""

    settings: object
    book: object
    base: object
    buckets: dict     # bucket -> (archive_direct_read, storage_class, redundancy) from the store
    fact: object      # uri -> the object's row (`_COLS`) or None
    pricer: Pricer = field(init=False)
    amounts: dict = field(default_factory=lambda: {k: Fraction(0) for k in ITEM_KEYS})
    days: dict = field(default_factory=dict)     # (Asia/Shanghai day index, item) -> exact Fraction

    def __post_init__(self):
        self.pricer = Pricer(self.book)

    def add(self, item, sel, h, q):
        if q:
            a = self.pricer.amount(item, sel, _at(h), q)
            self.amounts[item] += a
            key = ((h + 8) // 24, item)
            self.days[key] = self.days.get(key, Fraction(0)) + a


def _open(store, settings, prices_file, lookup: str) -> _Run:
    settings, book = settings_book(settings, prices_file)
    con = store._con
    buckets = {r[0]: r[1:] for r in con.execute(
        "SELECT bucket, archive_direct_read, storage_class, redundancy FROM buckets").fetchall()}
    if lookup == "preload":
        facts = {r[0]: r for r in con.execute(f"SELECT {_COLS} FROM objects").fetchall()}

        def fact(uri):
            return facts.get(uri)
    else:
        def fact(uri):
            return con.execute(f"SELECT {_COLS} FROM objects WHERE uri = ?", [uri]).fetchone()
    return _Run(settings, book, splice_profile(settings.splice), buckets, fact)


def _next_writes(tasks) -> dict:
    """rowid -> hour of the next overwrite of the same target URI by a later succeeded task."""
    next_write: dict = {}
    last_by_uri: dict = {}
    for row in tasks:
        if row[2] == "Succeeded" and row[5]:
            prev = last_by_uri.get(row[5])
            if prev is not None:
                next_write[prev] = _hour(row[3])
            last_by_uri[row[5]] = row[0]
    return next_write


def _task_charges(run: _Run, sources, ok: bool, end: datetime) -> bool:
    """Adds what one period task causes per source, its acceleration and its splice; returns whether the
    splice is billable."""
    scn, base, h = run.settings.splice, run.base, _hour(end)
    for uri in sources:
        f = run.fact(uri)
        if f is None or f[1] is None:
            size, cls, restored = base.source_bytes, scn.source_storage_class, False
        else:
            size, cls = Fraction(f[1]), f[2] if f[2] in STORAGE_CLASSES else "Standard"
            restored = f[3] == "restored" and (f[4] is None or f[4] > end)
        b = run.buckets.get(_bucket_of(uri))
        dr = b[0] if b and b[0] is not None else run.settings.buckets.get(_bucket_of(uri), {}).get(
            "archive_direct_read", scn.archive_direct_read)
        if ok and cls == "Archive" and not dr:
            restored = True
        u = splice_usage(replace(base, sources=Fraction(1), source_bytes=Fraction(size), source_class=cls,
                                 archive_direct_read=dr, source_restored=restored))
        for item, (sel, q) in u.per_task.items():
            if item != "oss.TransferAcceleration":
                run.add(item, sel, h, q)
    u = splice_usage(base)
    if "oss.TransferAcceleration" in u.per_task:
        run.add("oss.TransferAcceleration", {}, h, u.per_task["oss.TransferAcceleration"][1])
    billable = (ok or not u.splice_item_on_success) and end >= scn.imm_billing_start
    if billable:
        run.add("imm.ImageSplicing", {}, h, Fraction(1))
    return billable


def _target_kind(run: _Run, f, target) -> tuple[str, str, Fraction]:
    """(storage class, redundancy, size in bytes) of a succeeded task's target: its facts, else the bucket's,
    else the settings'."""
    scn = run.settings.splice
    b = run.buckets.get(_bucket_of(target))
    conf = run.settings.buckets.get(_bucket_of(target), {})
    known = f is not None and f[1] is not None
    if known and f[2] in STORAGE_CLASSES:
        tcls = f[2]
    elif b and b[1] in STORAGE_CLASSES:
        tcls = b[1]
    else:
        tcls = conf.get("storage_class", scn.target_storage_class)
    red = b[2] if b and b[2] in ("LRS", "ZRS") else conf.get("redundancy", scn.target_redundancy)
    return tcls, red, (Fraction(f[1]) if known else run.base.target_bytes)


def _target_charges(run: _Run, row, next_write: dict, period, in_period: bool) -> None:
    """Adds a succeeded task's PUT (period tasks), its target's storage hours in the period (split where the
    price changes) and its early deletion."""
    rowid, _, _, end, _, target = row
    h, h0, h1, base = _hour(end), _hour(period.start), _hour(period.end), run.base
    f = run.fact(target) if target else None
    tcls, red, size = _target_kind(run, f, target)
    ut = splice_usage(replace(base, target_class=tcls, target_redundancy=red, target_bytes=size,
                              retention_hours=0))
    if in_period:
        sel, q = ut.per_succeeded["oss.PutRequest"]
        run.add("oss.PutRequest", sel, h, q)
    if not target:
        return
    ends = []
    if rowid in next_write:
        ends.append(next_write[rowid])
    if f is not None and f[5] and f[6] is not None:
        ends.append(-(-int(f[6].timestamp()) // 3600))
    elif f is None and base.retention_hours is not None:
        ends.append(h + base.retention_hours)
    d = max(h, min(ends)) if ends else None
    bb = billable_bytes(size, tcls, base.min_billable_kb)
    sel = {"storage_class": tcls, "redundancy": red}
    a, z = max(h, h0), min(d if d is not None else h1, h1)
    if a < z:
        cuts = sorted({_hour(t) for t in run.book.boundaries("oss.Storage") if a < _hour(t) < z})
        pts = [a, *cuts, z]
        day_cuts = [x for x in range(a - (a + 8) % 24 + 24, z) if x > a]   # Asia/Shanghai midnights
        pts = sorted({*pts, *day_cuts})
        for x, y in zip(pts, pts[1:]):
            run.add("oss.Storage", sel, x, bb / GB * (y - x))
    if d is not None and h0 <= d < h1 and d - h < ut.early_deletion_hours:
        run.add("oss.EarlyDeletion", sel, d, bb / GB * (ut.early_deletion_hours - (d - h)))


def reference_cost(store, period, *, settings=None, prices_file=None, lookup: str = "preload") -> dict:
    """{"items": {item: exact Fraction}, "rounded": {item: Decimal: the sum of its day lines, each rounded
    half-up to cents}, "tasks", "succeeded", "splices"}."""
    run = _open(store, settings, prices_file, lookup)
    tasks = store._con.execute(
        "SELECT rowid, task_id, status, end_time, [s.uri FOR s IN coalesce(sources, [])], target_uri FROM tasks "
        "WHERE status IN ('Succeeded', 'Failed') AND end_time < $p1 ORDER BY end_time, rowid",
        {"p1": period.end}).fetchall()
    next_write = _next_writes(tasks)
    n_tasks = n_ok = splices = 0
    for row in tasks:
        end = row[3].astimezone(UTC)
        ok = row[2] == "Succeeded"
        in_period = period.start <= end < period.end
        if in_period:
            n_tasks += 1
            n_ok += ok
            splices += _task_charges(run, row[4], ok, end)
        if ok:
            _target_charges(run, (*row[:3], end, *row[4:]), next_write, period, in_period)
    run.pricer.raise_if_missing()
    amounts = run.amounts
    rounded = {k: round_money(0) for k in amounts}
    for (_, item), v in run.days.items():
        rounded[item] += round_money(v)
    return {"items": amounts, "rounded": rounded, "tasks": n_tasks,
            "succeeded": n_ok, "splices": splices}


__all__ = ["reference_cost"]
