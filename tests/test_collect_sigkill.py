"""SIGKILL in the middle of `costkit collect`, then a rerun: the store equals the server's set exactly."""
import os
import random
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone

import duckdb
import pytest
from click.testing import CliRunner

from conftest import TEST_AK, TEST_SK
from costkit.cli.main import main
from costkit.sources.retry import RetryPolicy
from costkit.store.db import Store
from imm_server import IMMServer, make_task

UTC = timezone.utc


def child_env():
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(ALIBABA_CLOUD_ACCESS_KEY_ID=TEST_AK, ALIBABA_CLOUD_ACCESS_KEY_SECRET=TEST_SK,
               ALIBABA_CLOUD_ECS_METADATA_DISABLED="true", NO_PROXY="127.0.0.1,localhost")
    return env


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_mid_collection_then_rerun_stores_the_server_set_exactly(tmp_path):
    now = datetime.now(UTC)
    rng = random.Random(3)
    tasks = [make_task("p1", start=now - timedelta(days=6.5) * rng.random(),
                       status=rng.choice(["Succeeded", "Succeeded", "Failed", "Running"])) for _ in range(3000)]
    tasks += [make_task("p1", start=now - timedelta(days=3) * rng.random(), task_type="MediaConvert")
              for _ in range(50)]
    store_path = str(tmp_path / "costkit.duckdb")
    with IMMServer(tasks, latency=0.04, duplicate_across_pages=True) as srv:
        cmd = [sys.executable, "-m", "costkit.cli.main", "--store", store_path, "collect", "--region", "cn-test",
               "--project", "p1", "--endpoint", srv.endpoint, "--concurrency", "3"]
        child = subprocess.Popen(cmd, env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 60
            # Kill once some pages are listed (and so, most likely, some committed), well before the end.
            while srv.request_count("ListTasks") < 12 and time.monotonic() < deadline:
                assert child.poll() is None, child.communicate()
                time.sleep(0.005)
            os.kill(child.pid, signal.SIGKILL)
            child.wait(10)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        assert child.returncode == -signal.SIGKILL
        pages_before_kill = srv.request_count("ListTasks")

        # The killed run left a consistent, partial store.
        with Store.open(store_path) as st:
            partial = st.count_tasks()
        assert partial < len(srv.listed_tasks("p1"))

        srv.latency = 0
        obj = {"collect_kwargs": {"credentials": {"access_key_id": TEST_AK, "access_key_secret": TEST_SK},
                                  "retry": RetryPolicy(base=0.001, cap=0.005, rng=random.Random(0))}}
        r = CliRunner().invoke(main, cmd[cmd.index("--store"):], obj=obj)
        assert r.exit_code == 0, r.output
        assert srv.request_count("ListTasks") > pages_before_kill

        expected = {(t["TaskId"], t["Status"]) for t in srv.listed_tasks("p1")}
    with Store.open(store_path) as st:
        df = st.tasks_frame()
    assert len(df) == len(expected)
    assert set(zip(df["task_id"], df["status"])) == expected
    con = duckdb.connect(store_path, read_only=True)
    try:
        assert con.execute("SELECT count(*) - count(DISTINCT (region, project, task_id)) FROM tasks").fetchone()[0] == 0
    finally:
        con.close()


def test_missing_credentials_is_a_clear_error_without_retries(tmp_path):
    # The default chain with nothing to find: no keys, no CLI profile (HOME is empty), no metadata probe.
    env = {k: v for k, v in child_env().items() if not k.startswith("ALIBABA_CLOUD_ACCESS")}
    env.update(HOME=str(tmp_path), ALIBABA_CLOUD_ECS_METADATA_DISABLED="true")
    env.pop("ALIBABA_CLOUD_PROFILE", None)
    env.pop("ALIBABA_CLOUD_CREDENTIALS_FILE", None)
    with IMMServer([]) as srv:
        r = subprocess.run([sys.executable, "-m", "costkit.cli.main", "--store", str(tmp_path / "s.duckdb"), "collect",
                            "--region", "cn-test", "--project", "p1", "--endpoint", srv.endpoint],
                           env=env, capture_output=True, text=True, timeout=60)
        assert srv.request_count("ListTasks") == 0
    assert r.returncode == 1
    assert "no usable Alibaba Cloud credentials" in r.stderr and "gave up" not in r.stderr
