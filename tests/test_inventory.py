"""costkit inventory against the local OSS server (real oss2 2.19.1 over HTTP on 127.0.0.1)."""
from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone
from fractions import Fraction

import pytest
from click.testing import CliRunner

from conftest import TEST_AK, TEST_SK
from oss_server import OSSServer

from costkit.cli.main import main
from costkit.sources.retry import RetryPolicy
from costkit.core.errors import RuntimeFailure
from costkit.engine.inventory import run_inventory
from costkit.sources.oss.cache import buckets_frame, objects_frame
from costkit.sources.oss.facts import parse_restore
from costkit.model.settings import parse_settings
from costkit.store.db import Store

UTC = timezone.utc
CREDS = (TEST_AK, TEST_SK)
FAST = RetryPolicy(attempts=3, base=0.001, cap=0.01, rng=random.Random(1))
LM = datetime(2025, 8, 1, 10, 0, tzinfo=UTC)


def task(i, sources, target, status="Succeeded", region="cn-hangzhou"):
    end = datetime(2025, 9, 5, 3, 0, tzinfo=UTC) + timedelta(minutes=i)
    return dict(region=region, project="p1", task_id=f"t{i}", task_type="ImageSplicing", status=status,
                start_time=end - timedelta(seconds=5), end_time=end,
                sources=[{"uri": u, "rotate": None} for u in sources], target_uri=target, origin="import")


@pytest.fixture()
def srv():
    with OSSServer() as s:
        yield s


@pytest.fixture()
def store():
    with Store.open(":memory:") as st:
        yield st


def inv(store, srv, **kw):
    kw.setdefault("retry", FAST)
    return run_inventory(store, endpoint=srv.endpoint, credentials=CREDS, concurrency=kw.pop("concurrency", 4),
                         **kw)


def facts(store):
    df = objects_frame(store)
    return {r.uri: r for r in df.itertuples()}


def test_every_class_and_restore_state_via_head(srv, store):
    srv.add_bucket("src")
    restored_until = datetime(2025, 12, 1, tzinfo=UTC)
    classes = ["Standard", "IA", "Archive", "ColdArchive", "DeepColdArchive"]
    uris = []
    for i, cls in enumerate(classes):  # one object per directory: HeadObject is cheaper
        restore = {"Archive": "ongoing", "ColdArchive": restored_until}.get(cls)
        srv.put("src", f"{cls}/x.jpg", 1000 + i, cls, last_modified=LM, restore=restore)
        uris.append(f"oss://src/{cls}/x.jpg")
    store.upsert_tasks([task(1, uris, "oss://src/out/t1.jpg")], seen_at=datetime.now(UTC))
    srv.put("src", "out/t1.jpg", 70_000, "IA", last_modified=LM)
    s = inv(store, srv)
    f = facts(store)
    for i, cls in enumerate(classes):
        r = f[f"oss://src/{cls}/x.jpg"]
        assert (r.storage_class, r.size, r.gone, r.via) == (cls, 1000 + i, False, "head")
        assert r.last_modified == LM
    assert f["oss://src/Archive/x.jpg"].restore_state == "ongoing"
    assert f["oss://src/ColdArchive/x.jpg"].restore_state == "restored"
    assert f["oss://src/ColdArchive/x.jpg"].restore_expiry == restored_until
    assert f["oss://src/Standard/x.jpg"].restore_state is None or str(f["oss://src/Standard/x.jpg"].restore_state) == "nan"
    assert s.requests["HeadObject"] == 6 and s.requests["ListObjectsV2"] == 0
    assert s.via_head == 6 and s.found == 6 and s.gone == 0


def test_listing_url_encoded_keys_and_missing_objects(srv, store):
    srv.add_bucket("src")
    keys = ["img/中文 a+b.jpg", "img/b%2F.jpg", "img/c.jpg"]
    for k in keys:
        srv.put("src", k, 2048, "IA", last_modified=LM, restore=datetime(2026, 1, 1, tzinfo=UTC))
    srv.put("src", "img/zz-unrelated.jpg", 1, "Standard")
    uris = [f"oss://src/{k}" for k in keys] + ["oss://src/img/deleted.jpg"]
    store.upsert_tasks([task(1, uris, "oss://src/out/none.jpg")], seen_at=datetime.now(UTC))
    s = inv(store, srv)
    f = facts(store)
    for k in keys:
        r = f[f"oss://src/{k}"]
        assert (r.size, r.storage_class, r.via, r.gone, r.restore_state) == (2048, "IA", "list", False, "restored")
    gone = f["oss://src/img/deleted.jpg"]
    assert gone.gone and gone.via == "list" and gone.gone_since is not None
    assert f["oss://src/out/none.jpg"].gone and f["oss://src/out/none.jpg"].via == "head"
    assert s.requests["ListObjectsV2"] == 1 and s.requests["HeadObject"] == 0  # the 404 HEAD is not billed
    assert s.unbilled == 2   # the 404 HEAD and the bucket's 404 NoSuchLifecycle
    assert s.prefixes_listed == 1 and s.via_list == 4 and s.gone == 2


def test_list_pages_over_1000_keys_and_cost_of_own_requests(srv, store):
    srv.add_bucket("src")
    keys = [f"p/{i:05d}.jpg" for i in range(1500)]
    for k in keys:
        srv.put("src", k, 10, "Standard")
    store.upsert_tasks([task(i, [f"oss://src/{k}" for k in keys[i * 10:(i + 1) * 10]], None) for i in range(150)],
                       seen_at=datetime.now(UTC))
    s = inv(store, srv)
    assert s.requests["ListObjectsV2"] == 2 and s.requests["HeadObject"] == 0 and s.via_list == 1500
    # cn book: PUT-type 0.01 CNY per 10,000 (Standard), GET-type 0.01 per 10,000: 2 pages + bucket info + ADR
    assert s.cost == Fraction(2 + 2, 1_000_000)
    assert "2 ListObjectsV2 (PUT-type)" in s.line() and "0.00 CNY" in s.line()


def test_list_switches_to_head_when_a_page_finds_nothing(srv, store):
    srv.add_bucket("src")
    for i in range(2500):
        srv.put("src", f"d/m{i:04d}.jpg", 1)
    srv.put("src", "d/a1.jpg", 5)
    srv.put("src", "d/z9.jpg", 6)
    store.upsert_tasks([task(1, ["oss://src/d/a1.jpg", "oss://src/d/z9.jpg"], None)], seen_at=datetime.now(UTC))
    s = inv(store, srv)
    f = facts(store)
    assert f["oss://src/d/a1.jpg"].via == "list" and f["oss://src/d/z9.jpg"].via == "head"
    assert f["oss://src/d/z9.jpg"].size == 6
    assert s.requests["ListObjectsV2"] == 2 and s.requests["HeadObject"] == 1


def test_price_rule_prefers_head_when_listing_is_dearer(srv, store, tmp_path):
    srv.add_bucket("src")
    for i in range(3):
        srv.put("src", f"img/{i}.jpg", 10)
    store.upsert_tasks([task(1, [f"oss://src/img/{i}.jpg" for i in range(3)], None)], seen_at=datetime.now(UTC))
    prices = tmp_path / "p.yaml"
    prices.write_text('- {item: oss.PutRequest, selectors: {storage_class: Standard}, unit: requests, price: "1", '
                      'currency: CNY, confidence: contract, source: test}\n')
    s = inv(store, srv, prices_file=str(prices))
    assert s.requests["HeadObject"] == 3 and s.requests["ListObjectsV2"] == 0
    # HEADs at the book's GET price (0.01 per 10,000) + GetBucketInfo/ADR
    assert s.cost == Fraction(5, 1_000_000)


def test_bucket_facts_direct_read_api_config_default_and_missing_bucket(srv, store):
    srv.add_bucket("adr-on", archive_direct_read=True, transfer_acceleration="Enabled", storage_class="IA",
                   redundancy="ZRS", location="oss-cn-shanghai")
    srv.add_bucket("adr-off", archive_direct_read=False)
    srv.add_bucket("hidden", archive_direct_read=None)      # endpoint answers 501: from configuration
    srv.add_bucket("hidden2", archive_direct_read=None)     # not configured: the settings' default
    for b in ("adr-on", "adr-off", "hidden", "hidden2"):
        srv.put(b, "k.jpg", 1, "Archive")
    store.upsert_tasks([task(1, [f"oss://{b}/k.jpg" for b in ("adr-on", "adr-off", "hidden", "hidden2", "nobucket")]
                             + ["oss://x/bad-bucket-name.jpg"],
                             None)], seen_at=datetime.now(UTC))
    settings = parse_settings({"archive_direct_read": False, "buckets": {"hidden": {"archive_direct_read": True}}})
    s = inv(store, srv, settings=settings)
    assert s.skipped_uris == 1 and "not of the form" in s.warnings[0]
    b = {r.bucket: r for r in buckets_frame(store).itertuples()}
    assert (b["adr-on"].archive_direct_read, b["adr-on"].archive_direct_read_source) == (True, "api")
    assert b["adr-on"].transfer_acceleration == True and b["adr-on"].storage_class == "IA"  # noqa: E712
    assert b["adr-on"].redundancy == "ZRS" and b["adr-on"].location == "oss-cn-shanghai"
    assert (b["adr-off"].archive_direct_read, b["adr-off"].archive_direct_read_source) == (False, "api")
    assert (b["hidden"].archive_direct_read, b["hidden"].archive_direct_read_source) == (True, "config")
    assert (b["hidden2"].archive_direct_read, b["hidden2"].archive_direct_read_source) == (False, "default")
    assert b["nobucket"].found == False  # noqa: E712
    f = facts(store)
    assert f["oss://nobucket/k.jpg"].gone and f["oss://nobucket/k.jpg"].via == "bucket"


def test_503_once_is_retried_and_bad_listing_xml_too(srv, store):
    srv.add_bucket("src")
    srv.put("src", "a/1.jpg", 1)
    srv.put("src", "a/2.jpg", 2)
    srv.put("src", "b/1.jpg", 3)
    store.upsert_tasks([task(1, ["oss://src/a/1.jpg", "oss://src/a/2.jpg", "oss://src/b/1.jpg"], None)],
                       seen_at=datetime.now(UTC))
    srv.add_fault("head", status=503)
    srv.add_fault("list", kind="badxml")
    s = inv(store, srv)
    assert s.retries == 2 and s.found == 3
    assert srv.counts["head"] == 2 and srv.counts["list"] == 2


def test_failure_names_bucket_and_key_and_keeps_earlier_facts(srv, store):
    srv.add_bucket("src")
    srv.put("src", "a/ok.jpg", 1)
    store.upsert_tasks([task(1, ["oss://src/a/ok.jpg"], None)], seen_at=datetime.now(UTC))
    inv(store, srv)
    store.upsert_tasks([task(2, ["oss://src/x/broken.jpg"], None)], seen_at=datetime.now(UTC))
    srv.add_fault("head", status=503, times=10)
    with pytest.raises(RuntimeFailure, match=r"oss://src/x/broken\.jpg.*gave up after 3 attempts"):
        inv(store, srv)
    assert "oss://src/a/ok.jpg" in facts(store)


def test_wrong_secret_fails_at_once_without_printing_it(srv, store):
    srv.add_bucket("src")
    store.upsert_tasks([task(1, ["oss://src/a.jpg"], None)], seen_at=datetime.now(UTC))
    with pytest.raises(RuntimeFailure) as e:
        run_inventory(store, endpoint=srv.endpoint, credentials=(TEST_AK, "not-the-secret"), retry=FAST)
    assert "SignatureDoesNotMatch" in str(e.value) and "not-the-secret" not in str(e.value)
    assert srv.counts["info"] == 1


def test_max_age_rereads_and_keeps_first_gone_time(srv, store):
    srv.add_bucket("src")
    srv.put("src", "a/1.jpg", 1)
    store.upsert_tasks([task(1, ["oss://src/a/1.jpg"], "oss://src/out/t.jpg")], seen_at=datetime.now(UTC))
    srv.put("src", "out/t.jpg", 100)
    t1 = datetime(2025, 9, 6, tzinfo=UTC)
    inv(store, srv, now=t1)
    assert inv(store, srv, now=t1 + timedelta(days=1)).objects == 0   # everything known
    srv.delete("src", "out/t.jpg")
    t2 = t1 + timedelta(days=2)
    assert inv(store, srv, now=t2, max_age=timedelta(days=1)).objects == 2
    t3 = t1 + timedelta(days=4)
    inv(store, srv, now=t3, max_age=timedelta(days=1))
    r = facts(store)["oss://src/out/t.jpg"]
    assert r.gone and r.gone_since == t2 and r.checked_at == t3 and r.size == 100   # last known size kept


def test_parse_restore_header():
    assert parse_restore(None) == (None, None)
    assert parse_restore('ongoing-request="true"') == ("ongoing", None)
    assert parse_restore('ongoing-request="false", expiry-date="Sun, 16 Apr 2017 08:12:33 GMT"') == (
        "restored", datetime(2017, 4, 16, 8, 12, 33, tzinfo=UTC))


def test_cli_inventory(srv, tmp_path):
    path = str(tmp_path / "s.duckdb")
    srv.add_bucket("src")
    srv.put("src", "a/1.jpg", 1, "IA")
    with Store.open(path) as st:
        st.upsert_tasks([task(1, ["oss://src/a/1.jpg", "oss://src/a/2.jpg"], None)], seen_at=datetime.now(UTC))
    obj = {"inventory_kwargs": {"credentials": CREDS, "retry": FAST}}
    r = CliRunner().invoke(main, ["--store", path, "inventory", "--endpoint", srv.endpoint, "--concurrency", "2"],
                           obj=obj)
    assert r.exit_code == 0, r.output
    assert "2 objects (1 found, 1 gone" in r.output and TEST_SK not in r.output
    r = CliRunner().invoke(main, ["--store", path, "inventory", "--endpoint", srv.endpoint, "--max-age", "x"],
                           obj=obj)
    assert r.exit_code == 2 and "--max-age" in r.output
    r = CliRunner().invoke(main, ["--store", path, "inventory", "--endpoint", "ftp://h"], obj=obj)
    assert r.exit_code == 2
    srv.add_fault("*", status=403, code="AccessDenied", times=5)
    with Store.open(path) as st:
        st.upsert_tasks([task(2, ["oss://src/b/9.jpg"], None)], seen_at=datetime.now(UTC))
    r = CliRunner().invoke(main, ["--store", path, "inventory", "--endpoint", srv.endpoint], obj=obj)
    assert r.exit_code == 1 and "oss://src/b/9.jpg" in r.output and "AccessDenied" in r.output


def test_direct_read_call_failing_for_good_falls_back_to_settings(srv, store):
    srv.add_bucket("flaky", archive_direct_read=True)
    srv.put("flaky", "k.jpg", 1, "Archive")
    store.upsert_tasks([task(1, ["oss://flaky/k.jpg"], None)], seen_at=datetime.now(UTC))
    srv.add_fault("adr", status=500, code="InternalError", times=10)
    s = inv(store, srv, settings=parse_settings({"buckets": {"flaky": {"archive_direct_read": False}}}))
    b = buckets_frame(store).iloc[0]
    assert (b.archive_direct_read, b.archive_direct_read_source) == (False, "config")
    assert any("flaky" in w and "GetBucketArchiveDirectRead" in w for w in s.warnings) and s.found == 1


def test_cli_default_credential_chain_from_environment(srv, tmp_path):
    """The real chain reads the environment when it is imported: run the CLI in a child process."""
    import os
    import subprocess
    import sys
    path = str(tmp_path / "s.duckdb")
    srv.add_bucket("src")
    srv.put("src", "a/1.jpg", 1)
    with Store.open(path) as st:
        st.upsert_tasks([task(1, ["oss://src/a/1.jpg"], None)], seen_at=datetime.now(UTC))
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(ALIBABA_CLOUD_ACCESS_KEY_ID=TEST_AK, ALIBABA_CLOUD_ACCESS_KEY_SECRET=TEST_SK,
               ALIBABA_CLOUD_ECS_METADATA_DISABLED="true", NO_PROXY="127.0.0.1,localhost", HOME=str(tmp_path))
    r = subprocess.run([sys.executable, "-m", "costkit.cli.main", "--store", path, "inventory", "--endpoint",
                        srv.endpoint], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "1 objects (1 found" in r.stdout and TEST_SK not in r.stdout + r.stderr
    env.pop("ALIBABA_CLOUD_ACCESS_KEY_ID")
    env.pop("ALIBABA_CLOUD_ACCESS_KEY_SECRET")
    r = subprocess.run([sys.executable, "-m", "costkit.cli.main", "--store", path, "inventory", "--endpoint",
                        srv.endpoint, "--max-age", "0"], env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 1 and "no usable Alibaba Cloud credentials" in r.stderr


def test_sts_token_is_sent_and_checked(store):
    with OSSServer(security_token="sts-token") as srv:
        srv.add_bucket("src")
        srv.put("src", "a.jpg", 3)
        store.upsert_tasks([task(1, ["oss://src/a.jpg"], None)], seen_at=datetime.now(UTC))
        with pytest.raises(RuntimeFailure, match="InvalidSecurityToken"):
            run_inventory(store, endpoint=srv.endpoint, credentials=CREDS, retry=FAST)
        s = run_inventory(store, endpoint=srv.endpoint, credentials=(*CREDS, "sts-token"), retry=FAST)
        assert s.found == 1


def test_cli_inventory_without_a_store_is_bad_input(tmp_path):
    r = CliRunner().invoke(main, ["--store", str(tmp_path / "none.duckdb"), "inventory", "--endpoint",
                                  "http://127.0.0.1:9"])
    assert r.exit_code == 2 and "no task store" in r.output
