"""The month's priced context that every advice rule reads: the period, the settings and price book, the
engine's usage model, the priced month as `cost --month` reports it, and the facts of the period's tasks,
sources and targets (with the engine's own target lifetimes: write hour, deletion hour, billable bytes).

Rules read facts here and never price a month themselves: the cost of a change comes from replaying the
tasks through the engine (costkit.advise.whatif)."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from fractions import Fraction

from costkit.core.money import round_money
from costkit.engine.context import pricing_context
from costkit.engine.history import price_history
from costkit.engine.history_sql import PERIOD_TASKS, setup_tables, target_ctes
from costkit.engine.period import Period, period_cuts
from costkit.prices.pricer import Pricer

EXAMPLES = 5   # example rows a finding shows


@dataclass
class AdviseContext:
    """What a rule may read. `today` is the `price_history` report of the period (money as strings)."""

    store: object
    period: Period
    settings: object
    prices_file: object
    book: object
    model: object              # costkit.engine.coefficients.Model
    today: dict
    _cache: dict = field(default_factory=dict)

    # --- facts --------------------------------------------------------------------------------

    def rows(self, sql: str, params: dict | None = None) -> list[dict]:
        """Rows of `sql` on the store as dicts; `$p0`, `$p1` (period instants) and `$h0`, `$h1` (its hour
        indexes) are bound when the SQL uses them."""
        p = {"p0": self.period.start, "p1": self.period.end, "h0": self.period.h0, "h1": self.period.h1,
             **(params or {})}
        with self.store._lock:
            cur = self.store._con.execute(sql, {k: v for k, v in p.items() if f"${k}" in sql})
            names = [d[0] for d in cur.description]
            return [dict(zip(names, r)) for r in cur.fetchall()]

    def targets(self) -> list[dict]:
        """Every succeeded task's target stored in the period or deleted in it, with the engine's view of it:
        tid (the task row), task_id, project, region, uri, end_time, `c` (write hour), `d` (deletion hour, None
        = kept), cls, red, size (bytes), bb (billable bytes), min_hours, unknown (no object facts), in_period
        (written in the period), gone, last_modified. Hours are hour indexes (hours since the epoch)."""
        if "targets" not in self._cache:
            with self.store._lock:
                con = self.store._con
                params = setup_tables(con, self.model, self.period, period_cuts(self.period, [], False))
                sql = f"""WITH {target_ctes('item', self.model, ids=True)}
                    SELECT x.tid, x.task_id, x.project, tk.region, tk.target_uri AS uri, x.end_time, x.c, x.d,
                           x.cls, x.red, x.size, x.bb, x.min_hours, x.unknown, x.in_period,
                           coalesce(o.gone, false) AS gone, o.last_modified
                    FROM x JOIN tasks tk ON tk.rowid = x.tid LEFT JOIN objects o ON o.uri = tk.target_uri
                    WHERE x.stored AND x.c < $h1 AND coalesce(x.d, $h1) >= $h0
                    ORDER BY x.end_time, x.task_id"""
                cur = con.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql})
                names = [d[0] for d in cur.description]
                self._cache["targets"] = [dict(zip(names, r)) for r in cur.fetchall()]
        return self._cache["targets"]

    def sources(self) -> list[dict]:
        """One row per source of each task priced in the period: tid, task_id, project, region, status, code,
        start_time, end_time, uri, bucket, size, cls (None without facts), last_modified, gone, restored (an
        Archive restore in force at the task's end), dr (direct read: bucket fact, else the settings),
        redundancy (bucket fact, else None)."""
        if "sources" not in self._cache:
            rows = self.rows(f"""
                WITH t AS (SELECT rowid AS tid, task_id, project, region, status, code, start_time, end_time,
                                  unnest(sources).uri AS uri FROM tasks WHERE {PERIOD_TASKS})
                SELECT t.*, split_part(t.uri, '/', 3) AS bucket, o.size, o.storage_class AS cls,
                       o.last_modified, coalesce(o.gone, false) AS gone,
                       coalesce(o.restore_state = 'restored' AND (o.restore_expiry IS NULL
                                OR o.restore_expiry > t.end_time), false) AS restored,
                       b.archive_direct_read AS dr_fact, b.redundancy
                FROM t LEFT JOIN objects o ON o.uri = t.uri LEFT JOIN buckets b ON b.bucket = split_part(t.uri, '/', 3)
                ORDER BY t.end_time, t.task_id, t.uri""")
            for r in rows:
                r["dr"] = self.direct_read(r["bucket"], r.pop("dr_fact"))
            self._cache["sources"] = rows
        return self._cache["sources"]

    def tasks(self) -> list[dict]:
        """The tasks priced in the period: tid, region, project, task_id, status, code, start_time, end_time,
        target_uri, sources (list of URIs)."""
        if "tasks" not in self._cache:
            rows = self.rows(f"""SELECT rowid AS tid, region, project, task_id, status, code, start_time, end_time,
                                        target_uri, [s.uri FOR s IN sources] AS sources
                                 FROM tasks WHERE {PERIOD_TASKS} ORDER BY end_time, task_id""")
            self._cache["tasks"] = rows
        return self._cache["tasks"]

    def buckets(self) -> dict:
        """Bucket facts by name (location, storage_class, redundancy, transfer_acceleration, ...)."""
        return {r["bucket"]: r for r in self.rows("SELECT * FROM buckets")}

    def direct_read(self, bucket: str, fact) -> bool:
        """Whether Archive direct read is on for `bucket`: the bucket fact, else settings, else the default."""
        if fact is not None:
            return bool(fact)
        conf = self.settings.buckets.get(bucket, {})
        if conf.get("archive_direct_read") is not None:
            return bool(conf["archive_direct_read"])
        return bool(self.settings.splice.archive_direct_read)

    # --- the usage model ----------------------------------------------------------------------

    def floor_bytes(self, cls: str) -> int:
        """The minimum billable size of `cls` in bytes (0 for Standard)."""
        return next(t[2] for t in self.model.tgt if t[0] == cls)

    def min_hours(self, cls: str) -> int:
        """The minimum storage duration of `cls` in hours (0 for Standard)."""
        return next(t[3] for t in self.model.tgt if t[0] == cls)

    def setting(self, key: str):
        """An `advise:` setting (Fraction), or None when the settings do not give it."""
        return self.settings.advise.get(key)

    # --- prices for one-time costs and facts outside the engine -------------------------------

    @property
    def priced_at(self):
        """The instant at which one-time costs are priced: the last second of the period."""
        return self.period.end - timedelta(seconds=1)

    def price(self, item: str, selectors: dict, quantity: Fraction, pricer: Pricer) -> Fraction:
        """The exact amount of `quantity` base units (requests, GB, GB-hours) of `item` at `priced_at`, with
        `pricer` (which records the entry used and any missing price)."""
        return pricer.amount(item, selectors, self.priced_at, Fraction(quantity))

    def currency(self) -> str:
        return self.book.currency


def build_context(store, period: Period, *, settings=None, prices_file=None) -> AdviseContext:
    """The priced context of `period`: runs the engine once for the month as `cost --month` prices it."""
    settings, book, model, _ = pricing_context(store, period, settings, prices_file)
    today = price_history(store, period, settings=settings, prices_file=prices_file)
    return AdviseContext(store=store, period=period, settings=settings, prices_file=prices_file, book=book,
                         model=model, today=today)


def money(value) -> str:
    """An exact amount as the report writes it (rounded half-up to 2 decimals)."""
    return str(round_money(value))


__all__ = ["AdviseContext", "build_context", "money", "EXAMPLES"]
