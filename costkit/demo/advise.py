"""The demo's advice on the SYNTHETIC month: the audit demo's store gets SYNTHETIC object and bucket facts (as
`costkit inventory` would cache them) with three planted wastes, then `advise` writes advise.html/.json.

Planted (every object is synthetic; the bucket is the synthetic month's own):
- `ia_small_targets`: every tenth target (task number n % 10 == 0) is a 20 KB IA object (billed as 64 KB);
- `early_deleted_targets`: targets with n % 10 == 1 completed before DELETED_BEFORE are 512 MB IA objects
  deleted three days after they were written (IA's minimum is 30 days);
- `archive_no_direct_read`: the sources of the Failed tasks completed before ARCHIVE_BEFORE are unrestored Archive
  objects, and
  the bucket has Archive direct read off.
Every other source is a 200 KB Standard object, every other target a 48 KB Standard object (below IA's minimum
size, so moving them to IA would not pay).
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from costkit.core.timeutil import SHANGHAI

UTC = timezone.utc
BUCKET = "demo-synthetic-bucket"
ARCHIVE_BEFORE = datetime(2025, 8, 8, tzinfo=SHANGHAI)
DELETED_BEFORE = datetime(2025, 8, 20, tzinfo=SHANGHAI)
CHECKED = datetime(2025, 9, 1, 1, 0, tzinfo=UTC)
KB = 1024


def _number(task_id: str) -> int:
    return int(task_id.rsplit("-", 1)[1])


def synthetic_facts(store) -> dict:
    """Write the SYNTHETIC facts with the three plants; returns how many targets or tasks each plant covers."""
    from costkit.sources.oss.cache import write_buckets, write_facts
    from costkit.sources.oss.facts import BucketFact
    rows = store._con.execute("SELECT task_id, status, end_time, target_uri, [s.uri FOR s IN sources] "
                              "FROM tasks ORDER BY end_time").fetchall()
    facts, gone, planted = {}, [], {"ia_small_targets": 0, "early_deleted_targets": 0, "archive_no_direct_read": 0}
    for task_id, status, end, target, sources in rows:
        n = _number(task_id)
        archive = status == "Failed" and end is not None and end < ARCHIVE_BEFORE
        for uri in sources or []:
            facts[uri] = _fact(uri, 200 * KB, "Archive" if archive else "Standard", datetime(2025, 7, 1, tzinfo=UTC))
        planted["archive_no_direct_read"] += archive
        if not target or status != "Succeeded":
            continue
        if n % 10 == 0:
            facts[target] = _fact(target, 20 * KB, "IA", end)
            planted["ia_small_targets"] += 1
        elif n % 10 == 1 and end < DELETED_BEFORE:
            facts[target] = _fact(target, 512 * KB * KB, "IA", end)
            gone.append((target, end + timedelta(days=3)))
            planted["early_deleted_targets"] += 1
        else:
            facts[target] = _fact(target, 48 * KB, "Standard", end)
    write_facts(store, list(facts.values()), CHECKED)
    for uri, since in gone:   # seen, then gone three days after it was written
        store._con.execute("UPDATE objects SET gone = true, gone_since = ? WHERE uri = ?", [since, uri])
    write_buckets(store, [BucketFact(BUCKET, True, "oss-cn-hangzhou", "Standard", "LRS", False, False, "api")], CHECKED)
    return planted


def _fact(uri, size, cls, modified):
    from costkit.sources.oss.facts import Fact
    b, k = uri[6:].split("/", 1)
    return Fact(uri, b, k, gone=False, via="head", size=size, storage_class=cls, last_modified=modified)


def run_demo_advise(out_dir, store_path, prices, month: str) -> tuple[list[Path], dict, dict]:
    """Advice on the demo month: ([html, json] paths, the model, the plant counts)."""
    from costkit.advise.run import advise
    from costkit.engine.period import parse_period
    from costkit.outputs.advise import render_advise
    from costkit.outputs.files import write_output
    from costkit.store.db import Store
    out = Path(out_dir)
    # The synthetic object facts go into a copy: the audit's store keeps the figures its report printed
    # (one figure per fact: `cost --month` on audit-demo.duckdb equals the audit's expected KPI).
    store_path = _copy_store(store_path, out / "advise-demo.duckdb")
    with Store.open(store_path) as store:
        planted = synthetic_facts(store)
        model = advise(store, parse_period(month), prices_file=prices)
    model["synthetic"] = True   # the report's banner: no figure in the demo is a real charge
    paths = [out / "advise.html", out / "advise.json"]
    for p, fmt in zip(paths, ("html", "json")):
        write_output(render_advise(model, fmt), str(p))
    return paths, model, planted


def _copy_store(src, dst: Path) -> Path:
    """A fresh copy of the store file at `dst` (replaced on each run)."""
    import shutil

    dst.unlink(missing_ok=True)
    shutil.copyfile(src, dst)
    return dst


__all__ = ["run_demo_advise", "synthetic_facts"]
