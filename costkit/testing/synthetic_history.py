"""Synthetic task histories with known parameters, written straight into a store (SQL, so 10 M tasks take
seconds): a daily volume with growth, weekly seasonality and noise, an hourly profile, and kinds of task
(source classes and sizes, target class, size and lifetime, failure rate) with their object facts and bucket
facts. Tests and `bench/calibrate.py` check that calibration recovers the parameters."""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from costkit.core.timeutil import SHANGHAI

WEEKLY_FLAT = (1, 1, 1, 1, 1, 1, 1)


@dataclass
class KindSpec:
    """One kind of task: its share, sources [(storage class, count)] each `source_bytes` big, target class,
    size and lifetime in hours (None = kept). Archive sources sit in a bucket with direct read on."""

    share: float
    sources: list
    source_bytes: int
    target_class: str = "Standard"
    target_bytes: int = 1 << 20
    lifetime_hours: int | None = None


@dataclass
class HistorySpec:
    """A history: `days` Asia/Shanghai days from `first_day`, `base` tasks on day 0 growing `daily_growth`
    compounded per day, times `weekly[weekday]` (Monday first) and (1 + noise x N(0, 1)); `failure_rate` of
    every kind fails; the hour of day follows `hourly` (24 weights, uniform by default); see `assign`."""

    first_day: date
    days: int
    base: float
    daily_growth: float = 0.0
    weekly: tuple = WEEKLY_FLAT
    noise: float = 0.0
    failure_rate: float = 0.0
    hourly: tuple | None = None
    kinds: list = field(default_factory=list)
    seed: int = 7
    project: str = "proj"
    # "hash": each task draws its kind, outcome and hour (seeded hashes); "stride": every block of 1,000
    # consecutive tasks holds the exact shares (a history that follows its law without sampling noise).
    assign: str = "hash"

    def daily_counts(self) -> list[int]:
        rnd = random.Random(self.seed)
        out = []
        for d in range(self.days):
            wd = (self.first_day + timedelta(days=d)).weekday()
            x = self.base * (1 + self.daily_growth) ** d * self.weekly[wd] * (1 + self.noise * rnd.gauss(0, 1))
            out.append(max(0, round(x)))
        return out


def _thresholds(weights, scale=1000) -> list[int]:
    total = sum(weights)
    acc, out = 0.0, []
    for w in weights:
        acc += w
        out.append(round(acc / total * scale))
    out[-1] = scale
    return out


def build_history(store, spec: HistorySpec, *, id_offset: int = 0) -> int:
    """Write the tasks, object facts and bucket facts of `spec` into `store`; returns the tasks written."""
    con = store._con
    counts = spec.daily_counts()
    t0 = datetime.combine(spec.first_day, datetime.min.time(), SHANGHAI)
    hours = _thresholds(spec.hourly or [1] * 24)
    kinds = _thresholds([k.share for k in spec.kinds])
    fail_per_mille = round(spec.failure_rate * 1000)
    with store.transaction():
        con.execute("CREATE OR REPLACE TEMP TABLE _syn_days (d INTEGER, n BIGINT, first BIGINT)")
        first, rows = id_offset, []
        for d, n in enumerate(counts):
            rows.append((d, n, first))
            first += n
        con.executemany("INSERT INTO _syn_days VALUES (?, ?, ?)", rows)
        hour_case = " ".join(f"WHEN hb < {t} THEN {h}" for h, t in enumerate(hours))
        kind_case = " ".join(f"WHEN kb < {t} THEN {k}" for k, t in enumerate(kinds))
        seed = int(spec.seed)
        if spec.assign == "stride":   # multipliers coprime with 1000: permutations of each block of 1000
            draws = "(i * 211 + 5) % 1000 AS hb, (i * 619) % 1000 AS kb, (i * 389 + 17) % 1000 AS fb"
        else:
            draws = f"hash(i, {seed}, 1) % 1000 AS hb, hash(i, {seed}, 2) % 1000 AS kb, hash(i, {seed}, 3) % 1000 AS fb"
        con.execute(f"""
            CREATE OR REPLACE TEMP TABLE _syn AS
            SELECT i, d, CASE {hour_case} END AS hod, CASE {kind_case} END AS kind,
                   fb < {fail_per_mille} AS failed, hash(i, {seed}, 5) % 3600 AS sec
            FROM (SELECT d, first + unnest(range(n)) AS i FROM _syn_days)
                 , LATERAL (SELECT {draws})""")
        for k, spec_k in enumerate(spec.kinds):
            _write_kind(con, spec, k, spec_k, t0)
        con.execute("DROP TABLE _syn")
        con.execute("DROP TABLE _syn_days")
        con.execute("""
            INSERT OR REPLACE INTO buckets (bucket, found, location, storage_class, redundancy,
                                            transfer_acceleration, archive_direct_read,
                                            archive_direct_read_source, checked_at) VALUES
              ('src-std', true, 'oss-cn-hangzhou', 'Standard', 'LRS', false, false, 'api', now()),
              ('src-ia', true, 'oss-cn-hangzhou', 'IA', 'LRS', false, false, 'api', now()),
              ('src-arch', true, 'oss-cn-hangzhou', 'Archive', 'LRS', false, true, 'api', now()),
              ('dst', true, 'oss-cn-hangzhou', 'Standard', 'LRS', false, false, 'api', now())""")
    return sum(counts)


_BUCKET = {"Standard": "src-std", "IA": "src-ia", "Archive": "src-arch"}
POOL = 500   # source objects per kind and class


def _write_kind(con, spec, k, ks: KindSpec, t0) -> None:
    """Tasks of kind `k`, its source objects (a pool per class) and its targets' facts."""
    parts = []
    for j, (cls, n) in enumerate(ks.sources):
        b = _BUCKET[cls]
        parts.append(f"list_transform(range({n}), lambda s: {{'uri': 'oss://{b}/k{k}/' || "
                     f"((i * {n} + s) % {POOL}) || '.jpg', 'rotate': NULL::INTEGER}})")
    sources = "list_concat(" + ", ".join(parts) + ")" if len(parts) > 1 else parts[0]
    end = (f"TIMESTAMPTZ '{t0.isoformat()}' + to_microseconds(((d * 24 + hod) * 3600 + sec)::BIGINT * 1000000)")
    con.execute(f"""
        INSERT INTO tasks (region, project, task_id, task_type, status, start_time, end_time, sources,
                           target_uri, image_format, origin, first_seen, last_seen, key_hash)
        SELECT 'cn-hangzhou', '{spec.project}', 'ImageSplicing-' || i, 'ImageSplicing',
               CASE WHEN failed THEN 'Failed' ELSE 'Succeeded' END, {end} - INTERVAL 5 SECOND, {end}, {sources},
               'oss://dst/out/t' || i || '.jpg', 'jpg', 'import', now(), now(), (hash(i) >> 1)::BIGINT
        FROM _syn WHERE kind = {k}""")
    for cls, _ in ks.sources:
        b = _BUCKET[cls]
        con.execute(f"""
            INSERT OR REPLACE INTO objects (uri, bucket, key, size, storage_class, last_modified, restore_state, restore_expiry, gone, gone_since, checked_at, via)
            SELECT 'oss://{b}/k{k}/' || p || '.jpg', '{b}', 'k{k}/' || p || '.jpg', {ks.source_bytes}, '{cls}',
                   TIMESTAMPTZ '2025-01-01 00:00:00+00', NULL, NULL, false, NULL, now(), 'list'
            FROM range({POOL}) r(p)""")
    gone = "false" if ks.lifetime_hours is None else "true"
    gone_since = "NULL" if ks.lifetime_hours is None else f"{end} + INTERVAL {ks.lifetime_hours} HOUR"
    con.execute(f"""
        INSERT INTO objects (uri, bucket, key, size, storage_class, last_modified, restore_state, restore_expiry, gone, gone_since, checked_at, via)
        SELECT 'oss://dst/out/t' || i || '.jpg', 'dst', 'out/t' || i || '.jpg', {ks.target_bytes},
               '{ks.target_class}', {end}, NULL, NULL, {gone}, {gone_since}, now(), 'list'
        FROM _syn WHERE kind = {k} AND NOT failed""")


__all__ = ["KindSpec", "HistorySpec", "build_history"]
