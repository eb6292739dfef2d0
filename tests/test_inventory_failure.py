"""A failed inventory: one line naming bucket and key, exit 1, and everything read before it stored (real
oss2 over HTTP to the local OSS server; the CLI in a child process, as cron runs it)."""
from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from conftest import TEST_AK, TEST_SK
from oss_server import OSSServer

from costkit.sources.oss.cache import objects_frame
from costkit.store.db import Store

UTC = timezone.utc
N = 400          # directories of one key each: one HeadObject job per key, most of them queued at the fault
DENIED = "d150/x.jpg"


def _task(i, sources):
    end = datetime(2025, 9, 5, 3, 0, tzinfo=UTC) + timedelta(minutes=i)
    return dict(region="cn-hangzhou", project="p1", task_id=f"t{i}", task_type="ImageSplicing",
                status="Failed", start_time=end - timedelta(seconds=5), end_time=end,
                sources=[{"uri": u, "rotate": None} for u in sources], target_uri=None, origin="import")


def _run(path, endpoint, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(ALIBABA_CLOUD_ACCESS_KEY_ID=TEST_AK, ALIBABA_CLOUD_ACCESS_KEY_SECRET=TEST_SK,
               ALIBABA_CLOUD_ECS_METADATA_DISABLED="true", NO_PROXY="127.0.0.1,localhost", HOME=str(tmp_path))
    return subprocess.run([str(Path(sys.executable).parent / "costkit"), "--store", path, "inventory", "--endpoint",
                           endpoint, "--concurrency", "4"], env=env, capture_output=True, text=True, timeout=120)


@pytest.fixture()
def big(tmp_path):
    with OSSServer() as srv:
        srv.add_bucket("src")
        keys = [f"d{i:03d}/x.jpg" for i in range(N)]
        for k in keys:
            srv.put("src", k, 100)
        path = str(tmp_path / "s.duckdb")
        with Store.open(path) as st:
            st.upsert_tasks([_task(i, [f"oss://src/{k}"]) for i, k in enumerate(keys)], seen_at=datetime.now(UTC))
        yield srv, path, keys


def test_denied_key_is_one_line_exit_1_and_a_rerun_reads_only_what_was_not_stored(big, tmp_path):
    srv, path, keys = big
    srv.add_fault("head", status=403, code="AccessDenied", key=DENIED)
    r = _run(path, srv.endpoint, tmp_path)
    assert r.returncode == 1, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("costkit: error: ") and f"oss://src/{DENIED}" in lines[0]
    assert "AccessDenied" in lines[0] and "Traceback" not in r.stderr and "CancelledError" not in r.stderr
    first = [(op, k) for op, _, k, status in srv.log if status == 200]
    with Store.open(path) as st:
        stored = set(objects_frame(st)["key"])
    heads = {k for op, k in first if op == "head"}
    assert stored == heads                  # every HEAD answered before the failure is stored...
    assert 0 < len(stored) < N - 50         # ...and the run stopped early, with jobs still queued
    assert DENIED not in stored

    srv.reset_counts()
    r = _run(path, srv.endpoint, tmp_path)
    assert r.returncode == 0, r.stderr
    second = [(op, k) for op, _, k, _ in srv.log]
    assert not [k for op, k in second if k in stored]              # nothing read twice
    assert not [op for op, _ in second if op in ("info", "adr", "lifecycle")]  # bucket facts were stored
    assert sorted(k for op, k in second if op == "head") == sorted(set(keys) - stored)
    with Store.open(path) as st:
        assert len(objects_frame(st)) == N


def test_denied_listing_names_the_prefix_and_keeps_the_pages_read(tmp_path):
    with OSSServer() as srv:
        srv.add_bucket("src")
        keys = [f"a/{i:04d}.jpg" for i in range(2500)]   # three listing pages of one group
        for k in keys:
            srv.put("src", k, 10)
        path = str(tmp_path / "s.duckdb")
        with Store.open(path) as st:
            st.upsert_tasks([_task(i, [f"oss://src/{k}" for k in keys[i * 10:(i + 1) * 10]]) for i in range(250)],
                            seen_at=datetime.now(UTC))
        srv.add_fault("list", status=403, code="AccessDenied", after=1)   # the second page is denied
        r = _run(path, srv.endpoint, tmp_path)
        assert r.returncode == 1
        line = r.stderr.strip()
        assert "\n" not in line and "oss://src/a/" in line and "AccessDenied" in line
        with Store.open(path) as st:
            assert len(objects_frame(st)) == 1000   # the first page's keys
