"""costkit cost: the stored history priced with the usage model and the Pricer (hand-computed cases)."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction

import pytest
from click.testing import CliRunner

from costkit.cli.main import main
from costkit.core.errors import BadInput
from costkit.engine.history import cost_frames, price_history
from costkit.engine.period import parse_by, parse_period
from costkit.sources.oss.cache import write_buckets, write_facts
from costkit.sources.oss.facts import BucketFact, Fact
from costkit.model.settings import parse_settings
from costkit.store.db import Store
from costkit.testing.cost_reference import reference_cost

UTC = timezone.utc
GB = 1024**3
KB = 1024
CHECKED = datetime(2025, 10, 10, tzinfo=UTC)

# Round test prices (user layer): 1 per splice; GET 0.01 (Standard) / 0.1 (colder) per request; PUT the same;
# IA retrieval 1 per GB; direct read 2 per GB; storage per GB-hour: Standard 0.001, IA 0.002, Archive 0.0005,
# ColdArchive 0.0002, DeepColdArchive 0.0001 (GB-month = 720 GB-hours).
PRICES = """\
entries:
  - {item: imm.ImageSplicing, unit: calls, price: "1", currency: CNY, effective_from: "2025-07-28T11:00:00+08:00",
     confidence: contract, source: test}
  - {item: oss.IaRetrieval, unit: GB, price: "1", currency: CNY, confidence: contract, source: test}
  - {item: oss.ArchiveDirectRead, unit: GB, price: "2", currency: CNY, confidence: contract, source: test}
  - {item: oss.TransferAcceleration, unit: GB, price: "0.5", currency: CNY, confidence: contract, source: test}
""" + "".join(
    f"""  - {{item: oss.{kind}Request, selectors: {{storage_class: {c}}}, unit: requests, price: "{p}", currency: CNY,
     confidence: contract, source: test}}
""" for kind in ("Get", "Put") for c, p in (("Standard", "0.01"), ("IA", "0.1"), ("Archive", "0.1"),
                                            ("ColdArchive", "0.1"), ("DeepColdArchive", "0.1"))) + "".join(
    f"""  - {{item: oss.Storage, selectors: {{storage_class: {c}, redundancy: {r}}}, unit: GB-month, price: "{p}",
     currency: CNY, confidence: contract, source: test}}
""" for c, p in (("Standard", "0.72"), ("IA", "1.44"), ("Archive", "0.36"), ("ColdArchive", "0.144"),
                 ("DeepColdArchive", "0.072")) for r in ("LRS", "ZRS"))


@pytest.fixture()
def prices(tmp_path):
    p = tmp_path / "prices.yaml"
    p.write_text(PRICES)
    return str(p)


@pytest.fixture()
def store():
    with Store.open(":memory:") as st:
        yield st


def add_task(store, tid, end, sources, target, status="Succeeded", project="p1", tags=None):
    store.upsert_tasks([dict(region="cn-hangzhou", project=project, task_id=tid, task_type="ImageSplicing",
                             status=status, start_time=end - timedelta(seconds=3) if end else None, end_time=end,
                             sources=[{"uri": u, "rotate": None} for u in sources], target_uri=target,
                             tags=tags or {}, origin="import")], seen_at=datetime.now(UTC))


def obj(store, uri, size, cls="Standard", gone_since=None, restore=None, expiry=None):
    b, k = uri[6:].split("/", 1)
    f = Fact(uri, b, k, gone=gone_since is not None, via="head", size=size, storage_class=cls,
             restore_state=restore, restore_expiry=expiry)
    write_facts(store, [f], gone_since or CHECKED)
    if gone_since is not None:   # keep the size: as if seen before, then gone
        store._con.execute("UPDATE objects SET size = ?, storage_class = ? WHERE uri = ?", [size, cls, uri])


def bucket(store, name, adr, cls="Standard", red="LRS"):
    write_buckets(store, [BucketFact(name, True, "oss-cn-hangzhou", cls, red, False, adr, "api")], CHECKED)


def sep(store, prices, **kw):
    return price_history(store, parse_period("2025-09"), prices_file=prices, **kw)


def T(y, m, d, h=0, mi=0, s=0):
    return datetime(y, m, d, h, mi, s, tzinfo=UTC)


def test_hand_computed_month(store, prices):
    # Completes 2025-09-10T00:30Z = 08:30 Shanghai. Sources: 1 GB Standard, 0.5 GB IA. Target 1 GB Standard, kept.
    add_task(store, "t1", T(2025, 9, 10, 0, 30), ["oss://s/a.jpg", "oss://s/b.jpg"], "oss://d/o.jpg")
    obj(store, "oss://s/a.jpg", GB)
    obj(store, "oss://s/b.jpg", GB // 2, "IA")
    obj(store, "oss://d/o.jpg", GB)
    r = sep(store, prices)
    hours = 20 * 24 + 16   # 2025-09-10T00:00Z .. 2025-09-30T16:00Z (end of September in Shanghai)
    assert r["items"] == {
        "imm.ImageSplicing": "1.00",
        "oss.GetRequest": "0.22",          # 2 x 0.01 + 2 x 0.1
        "oss.PutRequest": "0.01",
        "oss.IaRetrieval": "0.50",         # 0.5 GB x 1
        "oss.ArchiveDirectRead": "0.00",
        "oss.TransferAcceleration": "0.00",
        # 496 h x 0.001 = 0.496 exactly, but the figure is the sum of day lines each rounded once (as a bill's
        # daily lines are): 09-10 from 08:00 (16 h: 0.016 -> 0.02) + 20 days x 24 h (0.024 -> 0.02 each)
        "oss.Storage": "0.42",
        "oss.EarlyDeletion": "0.00"}
    assert hours == 496 and r["total"] == "2.15"
    assert (r["tasks"], r["succeeded"], r["failed"], r["billable_splices"]) == (1, 1, 0, 1)
    assert r["quantities"]["oss.Storage"] == {"quantity": "496", "unit": "GB-hour"}
    assert set(r) >= {"period", "site", "currency", "tasks", "succeeded", "failed", "billable_splices", "items",
                      "total", "groups", "warnings"}
    assert r["site"] == "cn" and r["currency"] == "CNY" and r["groups"] == []


def test_month_boundary_is_shanghai_not_utc(store, prices):
    add_task(store, "sep", T(2025, 8, 31, 16, 30), ["oss://s/a.jpg"], None)     # 00:30 on Sep 1 in Shanghai
    add_task(store, "aug", T(2025, 8, 31, 15, 59, 59), ["oss://s/a.jpg"], None)  # 23:59:59 on Aug 31
    add_task(store, "sep-last", T(2025, 9, 30, 15, 59, 59), ["oss://s/a.jpg"], None)
    add_task(store, "oct", T(2025, 9, 30, 16, 0), ["oss://s/a.jpg"], None)
    obj(store, "oss://s/a.jpg", 1)
    r = sep(store, prices)
    assert r["tasks"] == 2 and r["billable_splices"] == 2
    a = price_history(store, parse_period("2025-08"), prices_file=prices)
    assert a["tasks"] == 1
    d = sep(store, prices, by="day")
    assert [g["group"] for g in d["groups"]] == ["2025-09-01", "2025-09-30"]


def test_cutover_both_sides_and_failed_splices_setting(store, prices):
    add_task(store, "before", T(2025, 7, 28, 2, 59, 59), ["oss://s/a.jpg"], None)   # 10:59:59 +08:00
    add_task(store, "at", T(2025, 7, 28, 3, 0, 0), ["oss://s/a.jpg"], None)         # 11:00:00 +08:00
    add_task(store, "failed", T(2025, 7, 29), ["oss://s/a.jpg"], None, status="Failed")
    obj(store, "oss://s/a.jpg", 1)
    jul = parse_period("2025-07")
    r = price_history(store, jul, prices_file=prices)
    assert r["billable_splices"] == 1 and r["items"]["imm.ImageSplicing"] == "1.00"
    assert r["items"]["oss.GetRequest"] == "0.06"   # every task, the failed one too: 3 x 2 x 0.01
    assert r["items"]["oss.PutRequest"] == "0.02"   # succeeded only
    s = parse_settings({"usage": {"charge_failed_splices": True}})
    r = price_history(store, jul, prices_file=prices, settings=s)
    assert r["billable_splices"] == 2
    s = parse_settings({"usage": {"imm_billing_start": "2025-07-01T00:00:00+08:00"}})
    assert price_history(store, jul, prices_file=prices, settings=s)["billable_splices"] == 2
    # the bundled book alone: free before the cutover, unknown after it -> exit 2 naming the item
    with pytest.raises(BadInput, match=r"imm\.ImageSplicing"):
        price_history(store, jul)
    assert price_history(store, parse_period("2025-06"))["total"] == "0.00"


def test_every_source_class_restore_states_and_direct_read(store, prices):
    # one task per (source class, direct read, restore state, status)
    bucket(store, "on", True)
    bucket(store, "off", False)
    cases = []
    for cls in ("Standard", "IA", "Archive", "ColdArchive", "DeepColdArchive"):
        for b in ("on", "off"):
            for restore in (None, "ongoing", "restored"):
                for status in ("Succeeded", "Failed"):
                    uri = f"oss://{b}/{cls}-{restore}.jpg"
                    cases.append((cls, b, restore, status, uri))
    for i, (cls, b, restore, status, uri) in enumerate(cases):
        add_task(store, f"t{i}", T(2025, 9, 2, 1), [uri], None, status=status)
    for cls in ("Standard", "IA", "Archive", "ColdArchive", "DeepColdArchive"):
        for b in ("on", "off"):
            for restore in (None, "ongoing", "restored"):
                obj(store, f"oss://{b}/{cls}-{restore}.jpg", GB, cls, restore=restore,
                    expiry=T(2025, 12, 1) if restore == "restored" else None)
    r = sep(store, prices)
    # GETs: Archive unreadable only when failed, bucket off, not restored (2 tasks: restore None/ongoing): HEAD only
    n_std = 12
    gets = Fraction(2 * n_std, 100) + Fraction(2 * 48 - 2, 10)
    assert Decimal(r["items"]["oss.GetRequest"]) == Decimal(str(float(gets))).quantize(Decimal("0.01"))
    # IA retrieval: 12 IA tasks x 1 GB; direct read: Archive on bucket "on", not restored: 2 x 2 tasks x 1 GB x 2
    assert r["items"]["oss.IaRetrieval"] == "12.00"
    assert r["items"]["oss.ArchiveDirectRead"] == "8.00"
    assert any("ColdArchive/DeepColdArchive" in w for w in r["warnings"])
    ref = reference_cost(store, parse_period("2025-09"), prices_file=prices)
    assert {k: str(v) for k, v in ref["rounded"].items()} == r["items"]


def test_min_billable_size_early_deletion_and_overwrite(store, prices):
    c = T(2025, 9, 1, 0, 10)     # completion hour 2025-09-01T00:00Z
    add_task(store, "small-ia", c, [], "oss://d/small-ia.jpg")
    add_task(store, "small-std", c, [], "oss://d/small-std.jpg")
    add_task(store, "deleted-ia", c, [], "oss://d/deleted.jpg")
    add_task(store, "w1", c, [], "oss://d/same.jpg")
    add_task(store, "w2", c + timedelta(hours=100), [], "oss://d/same.jpg")
    obj(store, "oss://d/small-ia.jpg", 10 * KB, "IA")
    obj(store, "oss://d/small-std.jpg", 10 * KB, "Standard")
    obj(store, "oss://d/deleted.jpg", GB, "IA", gone_since=T(2025, 9, 11, 0, 30))   # seen gone in hour 00:00 -> 01:00
    obj(store, "oss://d/same.jpg", GB, "Standard")
    lines, totals = cost_frames(store, parse_period("2025-09"), prices_file=prices, lines=True, granularity="hour")
    storage = lines[lines["item"] == "oss.Storage"]
    per_task = storage.groupby("task_id")["amount"].apply(lambda s: sum(s, Decimal(0)))
    h = 16 + 29 * 24   # 2025-09-01T00:00Z .. 2025-09-30T16:00Z
    assert h == 712
    # IA below 64 KB bills 64 KB; Standard bills its size
    assert abs(per_task["small-ia"] - Decimal(64 * KB) / GB * Decimal("0.002") * h) < Decimal("1e-15")
    assert abs(per_task["small-std"] - Decimal(10 * KB) / GB * Decimal("0.001") * h) < Decimal("1e-15")
    # deleted after 241 stored hours (00:00 Sep 1 .. 01:00 Sep 11): 241 h, then 720 - 241 h early deletion
    assert per_task["deleted-ia"] == Decimal("0.482")
    ed = lines[lines["item"] == "oss.EarlyDeletion"]
    assert list(ed["task_id"]) == ["deleted-ia"] and ed["amount"].iloc[0] == Decimal("0.958")
    assert str(ed["hour"].iloc[0]) == "2025-09-11 01:00:00+00:00"
    # overwrite: w1 is stored 100 h (Standard has no minimum duration), w2 from then on
    assert per_task["w1"] == Decimal("0.1") and per_task["w2"] == Decimal("0.612")
    assert len(storage[storage["task_id"] == "w1"]) == 100
    t = dict(zip(totals["item"], totals["amount"]))
    exact = (Fraction(64 * KB, GB) * Fraction(2, 1000) * h + Fraction(10 * KB, GB) * Fraction(1, 1000) * h
             + Fraction(482, 1000) + Fraction(1, 10) + Fraction(612, 1000))
    from costkit.testing.cost_reference import reference_cost
    ref = reference_cost(store, parse_period("2025-09"), prices_file=prices)
    assert ref["items"]["oss.Storage"] == exact           # the exact amount; the figure: its day lines rounded
    assert t["oss.Storage"] == ref["rounded"]["oss.Storage"] and t["oss.EarlyDeletion"] == Decimal("0.96")


def test_unknown_facts_use_defaults_and_warn_with_task_count(store, prices):
    add_task(store, "k", T(2025, 9, 3), ["oss://s/known.jpg"], "oss://d/known.jpg")
    add_task(store, "u1", T(2025, 9, 3), ["oss://s/unknown.jpg", "oss://s/known.jpg"], "oss://d/u1.jpg")
    add_task(store, "u2", T(2025, 9, 3), ["oss://s/known.jpg"], "oss://d/u2.jpg")
    add_task(store, "u3", T(2025, 9, 3), ["oss://s/unknown2.jpg"], "oss://d/u3.jpg", status="Failed")
    obj(store, "oss://s/known.jpg", 100)
    obj(store, "oss://d/known.jpg", 100)
    obj(store, "oss://d/u1.jpg", 100)
    s = parse_settings({"source_size_mb": 2, "source_storage_class": "IA", "target_size_mb": 1,
                        "target_storage_class": "IA", "target_retention_days": 10})
    r = sep(store, prices, settings=s)
    assert any(w.startswith("3 task(s) use default object facts (2 source(s) and 1 target(s)") for w in r["warnings"])
    assert r["items"]["oss.IaRetrieval"] == "0.00"        # 2 unknown IA sources x 2 MB x 1/GB = 0.0039
    assert r["quantities"]["oss.IaRetrieval"]["quantity"] == "0.003906"
    # u2's unknown target: 1 MB IA (64 KB minimum does not apply), kept 240 h, then 480 h early deletion
    lines, _ = cost_frames(store, parse_period("2025-09"), settings=s, prices_file=prices, lines=True)
    ed = lines[(lines["item"] == "oss.EarlyDeletion")]
    assert list(ed["task_id"]) == ["u2"]
    assert ed["amount"].iloc[0] == Decimal(1) / 1024 * Decimal("0.002") * 480


def test_engine_matches_naive_reference_on_a_random_history(store, prices):
    import random
    rng = random.Random(7)
    bucket(store, "b-on", True, cls="IA", red="ZRS")
    bucket(store, "b-off", False)
    classes = ["Standard", "IA", "Archive", "ColdArchive", "DeepColdArchive"]
    pool = [f"oss://{rng.choice(['b-on', 'b-off', 'b-x'])}/src/{i}.jpg" for i in range(60)]
    present, gone = [], []
    for i, u in enumerate(pool):
        if i % 9:
            b, k = u[6:].split("/", 1)
            restored = rng.choice([None, "restored"])
            present.append(Fact(u, b, k, False, "list", size=rng.randrange(1, 5 * 2**20),
                                storage_class=rng.choice(classes), restore_state=restored,
                                restore_expiry=rng.choice([T(2025, 9, 15), None]) if restored else None))
    tasks = []
    for i in range(400):
        end = T(2025, 8, 20) + timedelta(seconds=rng.randrange(0, 50 * 86400))
        tgt = f"oss://{rng.choice(['b-on', 'b-off'])}/out/{rng.randrange(0, 300)}.jpg"
        tasks.append(dict(region="r", project=f"p{i % 3}", task_id=f"t{i}", task_type="ImageSplicing",
                          status=rng.choice(["Succeeded"] * 9 + ["Failed"]), start_time=end, end_time=end,
                          sources=[{"uri": u, "rotate": None} for u in rng.sample(pool, rng.randint(1, 6))],
                          target_uri=tgt, tags={"team": f"x{i % 2}"} if i % 4 else {}, origin="import"))
        if rng.random() < 0.7:
            b, k = tgt[6:].split("/", 1)
            size, cls = rng.randrange(1, 3 * 2**20), rng.choice(["Standard", "IA", "Archive"])
            when = rng.choice([None, None, end + timedelta(hours=rng.randrange(1, 2000))])
            (present if when is None else gone).append((Fact(tgt, b, k, when is not None, "head", size=size,
                                                             storage_class=cls), when))
    store.upsert_tasks(tasks, seen_at=datetime.now(UTC))
    write_facts(store, [f if isinstance(f, Fact) else f[0] for f in present], CHECKED)
    for f, when in gone:   # seen with its size, then gone at `when`
        write_facts(store, [f], when)
        store._con.execute("UPDATE objects SET size = ?, storage_class = ? WHERE uri = ?",
                           [f.size, f.storage_class, f.uri])
    changes = [  # the settings' prices: a mid-month change of storage and GET prices (hour boundaries)
        {"item": "oss.Storage", "selectors": {"storage_class": "Standard", "redundancy": "LRS"}, "unit": "GB-month",
         "price": "1.5", "currency": "CNY", "effective_from": "2025-09-15T10:00:00+08:00", "confidence": "contract",
         "source": "test"},
        {"item": "oss.GetRequest", "selectors": {"storage_class": "IA"}, "unit": "10000 requests", "price": "7",
         "currency": "CNY", "effective_from": "2025-09-20T00:00:00Z", "effective_to": "2025-10-02T05:00:00+08:00",
         "confidence": "contract", "source": "test"}]
    s = parse_settings({"accelerated_gb_per_task": "0.1", "target_retention_days": 20, "prices": changes})
    for month in ("2025-08", "2025-09", "2025-10"):
        p = parse_period(month)
        r = price_history(store, p, prices_file=prices, settings=s)
        ref = reference_cost(store, p, prices_file=prices, settings=s)
        assert {k: str(v) for k, v in ref["rounded"].items()} == r["items"], month
        assert (ref["tasks"], ref["succeeded"], ref["splices"]) == (r["tasks"], r["succeeded"], r["billable_splices"])
        for by in ("day", "project", "tag:team"):
            g = price_history(store, p, prices_file=prices, settings=s, by=by)
            assert sum(Decimal(x["total"]) for x in g["groups"]) == Decimal(g["total"])
            for k in g["items"]:
                assert sum(Decimal(x["items"][k]) for x in g["groups"]) == Decimal(g["items"][k])
                # each group line is rounded from its exact sum: within half a cent per group of the period line
                assert abs(Decimal(g["items"][k]) - Decimal(r["items"][k])) <= Decimal("0.005") * len(g["groups"]) + Decimal("0.005")
    lines, totals = cost_frames(store, parse_period("2025-09"), prices_file=prices, settings=s, lines=True)
    by_item = lines.groupby("item")["amount"].apply(lambda x: sum(x, Decimal(0)))
    exact = reference_cost(store, parse_period("2025-09"), prices_file=prices, settings=s)["items"]
    for item, amount in by_item.items():
        assert abs(Fraction(amount) - exact[item]) < Fraction(1, 10**12), item


def test_parse_period_and_by():
    p = parse_period("2025-09")
    assert p.start.isoformat() == "2025-09-01T00:00:00+08:00" and p.end.isoformat() == "2025-10-01T00:00:00+08:00"
    q = parse_period(None, "2025-09-01", "2025-09-02T00:00:00+08:00")
    assert (q.h0, q.h1) == (p.h0, p.h0 + 24)
    for args in (("2025-09", "2025-09-01", None), (None, "2025-09-01", None), (None, "2025-09-02", "2025-09-01"),
                 (None, "2025-09-01T00:30:00+08:00", "2025-09-02"), (None, "x", "2025-09-02")):
        with pytest.raises(BadInput):
            parse_period(*args)
    assert parse_by("tag:team") == "tag:team"
    with pytest.raises(BadInput):
        parse_by("week")


def _cli_store(tmp_path):
    path = str(tmp_path / "s.duckdb")
    with Store.open(path) as st:
        add_task(st, "t1", T(2025, 9, 10, 0, 30), ["oss://s/a.jpg", "oss://s/b.jpg"], "oss://d/o.jpg",
                 project="alpha", tags={"team": "red"})
        add_task(st, "t2", T(2025, 9, 12), ["oss://s/a.jpg"], "oss://d/o2.jpg", project="beta", status="Failed")
        obj(st, "oss://s/a.jpg", GB)
        obj(st, "oss://s/b.jpg", GB // 2, "IA")
        obj(st, "oss://d/o.jpg", GB)
    return path


def test_cli_cost_formats(tmp_path, prices):
    path = _cli_store(tmp_path)
    run = CliRunner().invoke
    r = run(main, ["--store", path, "cost", "--month", "2025-09", "--prices", prices, "--format", "json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["total"] == "2.17" and data["tasks"] == 2 and data["failed"] == 1   # 2.15 + t2's 2 GETs (0.02)
    assert data["period"]["label"] == "2025-09"
    assert data["assumptions"]["usage"]["charge_failed_splices"] is False
    r = run(main, ["--store", path, "cost", "--since", "2025-09-01", "--until", "2025-10-01T00:00:00+08:00",
                   "--prices", prices, "--format", "json", "--out", str(tmp_path / "r.json")])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "r.json").read_text())["items"] == data["items"]
    r = run(main, ["--store", path, "cost", "--month", "2025-09", "--prices", prices, "--by", "project",
                   "--format", "json"])
    groups = {g["group"]: g for g in json.loads(r.stdout)["groups"]}
    # the projects add up to the month exactly: each takes its share of the day x item lines' cents
    assert groups["alpha"]["total"] == "2.15" and groups["beta"]["total"] == "0.02"
    assert groups["alpha"]["exact_total"] == "2.226"
    r = run(main, ["--store", path, "cost", "--month", "2025-09", "--prices", prices, "--by", "tag:team",
                   "--format", "csv"])
    assert r.exit_code == 0 and "2025-09,red,oss.GetRequest,0.22,CNY" in r.stdout
    assert "2025-09,(none),total,0.02,CNY" in r.stdout
    r = run(main, ["--store", path, "cost", "--month", "2025-09", "--prices", prices])
    assert r.exit_code == 0 and "total" in r.stdout and "2.17" in r.stdout
    out = tmp_path / "lines.csv"
    r = run(main, ["--store", path, "cost", "--month", "2025-09", "--prices", prices, "--lines", "--out", str(out)])
    assert r.exit_code == 0, r.output
    head, *rows = out.read_text().splitlines()
    assert head == ("task_id,project,day,charge_start,charge_end,item,quantity,unit,unit_price,currency,amount,"
                    "price_source")
    assert "t1,alpha,2025-09-10,2025-09-10T00:00:00+08:00,2025-09-11T00:00:00+08:00,imm.ImageSplicing," \
           "1.000000000000000000,calls,1.000000000000000000,CNY,1.000000000000000000,user: test (contract)" in rows
    # t1: splice, GET rows for 2 classes, PUT, IA retrieval; t2: 1 GET row; storage: 21 billing days (Sep 10-30)
    assert len(rows) == 5 + 1 + 21
    r = run(main, ["--store", path, "cost", "--month", "2025-09", "--prices", prices, "--lines"])
    assert r.exit_code == 0 and r.stdout.splitlines() == [head, *rows]
    pq = tmp_path / "lines.parquet"
    r = run(main, ["--store", path, "cost", "--month", "2025-09", "--prices", prices, "--lines", "--format",
                   "parquet", "--out", str(pq)])
    assert r.exit_code == 0, r.output
    import pyarrow.parquet as papq
    t = papq.read_table(pq)
    assert t.num_rows == len(rows) and t.schema.field("amount").type == __import__("pyarrow").decimal128(38, 18)
    assert sum(t.column("amount").to_pylist(), Decimal(0)).quantize(Decimal("0.01")) == Decimal("2.25")


def test_cli_cost_bad_input(tmp_path, prices):
    path = _cli_store(tmp_path)
    run = CliRunner().invoke
    for args in (["--month", "2025-13"], ["--month", "2025-09", "--since", "2025-09-01"], ["--by", "week", "--month",
                 "2025-09"], ["--month", "2025-09", "--lines", "--format", "json"],
                 ["--month", "2025-09", "--format", "parquet"]):
        r = run(main, ["--store", path, "cost", "--prices", prices, *args])
        assert r.exit_code == 2 and r.output.count("\n") == 1, (args, r.output)
    r = run(main, ["--store", path, "cost", "--month", "2025-09"])   # the bundled book: ImageSplicing unknown
    assert r.exit_code == 2 and "imm.ImageSplicing" in r.output
    r = run(main, ["--store", str(tmp_path / "none.duckdb"), "cost", "--month", "2025-09"])
    assert r.exit_code == 2
    bad = tmp_path / "settings.yaml"
    bad.write_text("site: cn\ntarget_retension_days: 3\n")
    r = run(main, ["--store", path, "cost", "--month", "2025-09", "--settings", str(bad)])
    assert r.exit_code == 2 and "target_retension_days" in r.output and ":2:" in r.output


def test_inventory_then_cost_end_to_end(store, prices):
    """Facts read from the local OSS server through oss2, then priced: direct read from the bucket API,
    restore state from x-oss-restore, a target deleted before the inventory saw it."""
    from conftest import TEST_AK, TEST_SK
    from oss_server import OSSServer

    from costkit.sources.retry import RetryPolicy
    from costkit.engine.inventory import run_inventory
    with OSSServer() as srv:
        srv.add_bucket("src-adr", archive_direct_read=True)
        srv.add_bucket("dst", storage_class="IA")
        srv.put("src-adr", "a/cold.jpg", GB, "Archive")                                   # direct read: 2 per GB
        srv.put("src-adr", "a/warm.jpg", GB, "Archive", restore=T(2025, 12, 1))         # restored: read free
        srv.put("src-adr", "b/ia.jpg", GB // 4, "IA")
        srv.put("dst", "out/1.jpg", 10 * KB, "IA")
        add_task(store, "t1", T(2025, 9, 1, 0, 30), ["oss://src-adr/a/cold.jpg", "oss://src-adr/a/warm.jpg",
                                                     "oss://src-adr/b/ia.jpg"], "oss://dst/out/1.jpg")
        add_task(store, "t2", T(2025, 9, 1, 0, 40), ["oss://src-adr/b/ia.jpg"], "oss://dst/out/2.jpg")
        s = run_inventory(store, endpoint=srv.endpoint, credentials=(TEST_AK, TEST_SK),
                          retry=RetryPolicy(attempts=2, base=0.001), now=T(2025, 9, 6))
        assert (s.found, s.gone) == (4, 1)
    r = sep(store, prices)
    assert r["items"]["oss.ArchiveDirectRead"] == "2.00"
    assert r["items"]["oss.IaRetrieval"] == "0.50"
    assert r["items"]["oss.GetRequest"] == "0.80"      # (2 Archive + 2 IA sources) x 2 requests x 0.1
    assert r["items"]["oss.PutRequest"] == "0.20"      # both targets IA (the unknown one: the bucket's class)
    # out/1.jpg: 64 KB IA kept 712 h; out/2.jpg gone at the inventory (2025-09-06T00:00Z): 120 h of the default
    # 1 MB, then 600 h of early deletion
    storage = Fraction(64 * KB, GB) * 712 * Fraction(2, 1000) + Fraction(1, 1024) * 120 * Fraction(2, 1000)
    from costkit.core.money import round_money
    assert r["items"]["oss.Storage"] == str(round_money(storage))
    assert r["items"]["oss.EarlyDeletion"] == str(round_money(Fraction(1, 1024) * 600 * Fraction(2, 1000)))
    # out/2.jpg was seen gone: a separate warning (deleted, nothing to do), not "run costkit inventory"
    assert not any("use default object facts" in w for w in r["warnings"])
    assert any(w.startswith("1 task(s) reference objects the inventory found already deleted (0 source(s), "
                            "1 target(s))") for w in r["warnings"])


def test_memory_limit_setting_is_applied_and_restored(store, prices, monkeypatch):
    add_task(store, "t1", T(2025, 9, 10, 0, 30), ["oss://s/a.jpg"], None)
    before = store._con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    monkeypatch.setenv("COSTKIT_MEMORY_LIMIT", "512MB")
    assert sep(store, prices)["tasks"] == 1
    assert store._con.execute("SELECT current_setting('memory_limit')").fetchone()[0] == before
    monkeypatch.setenv("COSTKIT_MEMORY_LIMIT", "lots")
    with pytest.raises(BadInput, match="COSTKIT_MEMORY_LIMIT"):
        sep(store, prices)
    assert store._con.execute("SELECT current_setting('memory_limit')").fetchone()[0] == before
