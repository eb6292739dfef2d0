"""Readers beside writers: `tasks`, `cost` and `audit` run (in their own processes) while a slow `collect`
runs against the local IMM server, and all of them succeed; the collect stores the server's set exactly."""
import os
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

from conftest import TEST_AK, TEST_SK
from costkit.cli.main import main
from costkit.core.errors import BadInput, RuntimeFailure
from costkit.store.db import Store, lock_wait
from costkit.store.session import SessionStore
from imm_server import IMMServer, make_task

UTC = timezone.utc
FIXTURE_BILL = Path(__file__).parent / "fixtures" / "bills" / "en-utf8.csv"
COSTKIT = str(Path(sys.executable).parent / "costkit")


def env(**extra):
    e = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    e.update(ALIBABA_CLOUD_ACCESS_KEY_ID=TEST_AK, ALIBABA_CLOUD_ACCESS_KEY_SECRET=TEST_SK,
             ALIBABA_CLOUD_ECS_METADATA_DISABLED="true", NO_PROXY="127.0.0.1,localhost", **extra)
    return e


def run(store, *args):
    return subprocess.run([COSTKIT, "--store", store, *args], env=env(), capture_output=True, text=True,
                          timeout=120)


def test_tasks_cost_and_audit_succeed_while_a_slow_collect_runs(tmp_path):
    store = str(tmp_path / "s.duckdb")
    r = CliRunner().invoke(main, ["--store", store, "import-bill", str(FIXTURE_BILL)])
    assert r.exit_code == 0, r.output
    now = datetime.now(UTC)
    tasks = [make_task("p1", start=now - timedelta(days=6) * (i + 0.5) / 3000) for i in range(3000)]
    with IMMServer(tasks, latency=1.0) as srv:     # about 30 pages, 2 at a time: slow until the readers are done
        child = subprocess.Popen([COSTKIT, "--store", store, "collect", "--region", "cn-test", "--project", "p1",
                                  "--endpoint", srv.endpoint, "--concurrency", "2"], env=env(),
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        results = []
        try:
            deadline = time.monotonic() + 60
            while srv.request_count("ListTasks") < 3 and time.monotonic() < deadline:
                assert child.poll() is None, child.communicate()
                time.sleep(0.01)
            for _ in range(1):
                for args in (["tasks", "--project", "p1"], ["cost", "--month", "2025-08"],
                             ["audit", "--month", "2025-08", "--format", "json"]):
                    results.append((args[0], run(store, *args), child.poll() is None))
            srv.latency = 0
            out, err = child.communicate(timeout=120)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        assert child.returncode == 0, err
        for name, r, during in results:
            # audit: 0 or 3 (a variance is not a failure); the store was never "in use"
            assert r.returncode in ((0, 3) if name == "audit" else (0,)), (name, r.stderr)
            assert "in use" not in r.stderr
        assert all(during for _, _, during in results)   # every reader ran while collect was running
        expected = {t["TaskId"] for t in srv.listed_tasks("p1")}
    with Store.open(store, read_only=True) as st:
        assert set(st.tasks_frame()["task_id"]) == expected


def test_a_writer_waits_for_a_reader_up_to_the_lock_wait(tmp_path):
    path = str(tmp_path / "s.duckdb")
    Store.open(path).close()
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from costkit.store.db import Store\n"
        f"s = Store.open({path!r}, read_only=True); print('open', flush=True); time.sleep(1.0); s.close()")],
        stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "open"
    t0 = time.monotonic()
    with SessionStore(path, lock_timeout=10) as st:            # waits for the reader, then writes
        st.set_checkpoint("r", "p", datetime(2025, 9, 1, tzinfo=UTC))
    assert time.monotonic() - t0 > 0.3
    holder.wait(10)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import time; from costkit.store.db import Store\n"
        f"s = Store.open({path!r}); print('open', flush=True); time.sleep(3); s.close()")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        with pytest.raises(RuntimeFailure, match="COSTKIT_LOCK_WAIT"):
            Store.open(path, read_only=True, lock_timeout=0.3)
    finally:
        holder.kill()
        holder.wait()


def test_session_store_holds_the_file_only_inside_a_session(tmp_path):
    path = str(tmp_path / "s.duckdb")
    st = SessionStore(path)
    with st.transaction():
        st.set_checkpoint("r", "p", datetime(2025, 9, 1, tzinfo=UTC))
        assert st._open is not None
    assert st._open is None
    # between sessions another process can open the file
    r = subprocess.run([sys.executable, "-c", f"from costkit.store.db import Store; Store.open({path!r}).close()"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert st.get_checkpoint("r", "p") == datetime(2025, 9, 1, tzinfo=UTC)


def test_lock_wait_setting(monkeypatch):
    monkeypatch.delenv("COSTKIT_LOCK_WAIT", raising=False)
    assert lock_wait() == 60.0
    monkeypatch.setenv("COSTKIT_LOCK_WAIT", "2.5")
    assert lock_wait() == 2.5
    for bad in ("x", "-1", "nan", "1e9"):
        monkeypatch.setenv("COSTKIT_LOCK_WAIT", bad)
        with pytest.raises(BadInput, match="COSTKIT_LOCK_WAIT"):
            lock_wait()
