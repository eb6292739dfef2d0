"""`costkit listen`: the real aliyun-mns-sdk over HTTP to the local MNS server, into a real DuckDB store."""
import base64
import json
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
from costkit.sources.imm.collect import RetryPolicy
from costkit.store.db import Store
from costkit.testing import notifications as note
from costkit.testing.imm_server import make_task
from costkit.testing.mns_server import MNSServer

UTC = timezone.utc
Q = "imm-queue"
T0 = datetime(2025, 8, 20, 2, 0, tzinfo=UTC)


def tasks(project, n, start=T0, **kw):
    return [make_task(project, start=start + timedelta(minutes=i), **kw) for i in range(n)]


def listen(srv, store_path, *args, credentials=(TEST_AK, TEST_SK)):
    obj = {"listen_kwargs": {"credentials": credentials,
                             "retry": RetryPolicy(attempts=6, base=0.001, cap=0.005, rng=random.Random(0))}}
    return CliRunner().invoke(main, ["--store", str(store_path), "listen", "--endpoint", srv.endpoint,
                                     "--queue", Q, "--wait-seconds", "0", "--until-idle", "0.3", *args], obj=obj)


def stored(store_path):
    with Store.open(store_path) as st:
        df = st.tasks_frame()
    return {(r.project, r.task_id): r.status for r in df.itertuples()}


@pytest.fixture
def srv():
    # Long enough for a commit on a busy machine; the poison test shortens it to see re-delivery.
    with MNSServer(visibility_timeout=3) as s:
        s.create_queue(Q)
        yield s


def test_every_delivery_form_is_stored_then_deleted(srv, tmp_path):
    ts = tasks("p1", 9)
    env = [note.envelope(t, "cn-test") for t in ts]
    bodies = [env[0], base64.b64encode(env[1].encode()).decode(), note.json_push(env[2]),
              note.json_push(env[3], encode=True), note.xml_push(env[4]), note.xml_push(env[5], encode=True),
              note.eventbridge_event(ts[6], "cn-test"),
              base64.b64encode(note.eventbridge_event(ts[7], "cn-test").encode()).decode(),
              note.json_push(note.eventbridge_event(ts[8], "cn-test"))]
    for b in bodies:
        srv.enqueue(Q, b)
    srv.enqueue(Q, note.envelope(make_task("p1", start=T0, task_type="MediaConvert"), "cn-test"))
    r = listen(srv, tmp_path / "s.duckdb")
    assert r.exit_code == 0, r.output
    assert stored(tmp_path / "s.duckdb") == {("p1", t["TaskId"]): "Succeeded" for t in ts}
    assert srv.queue_size(Q) == 0
    assert "10 messages, 9 tasks new, 0 updated, 0 unchanged, 0 bad messages; 1 of other task types skipped" in r.output
    with Store.open(tmp_path / "s.duckdb") as st:
        row = st.tasks_frame().iloc[0]
    assert row["origin"] == "notification" and row["target_uri"].startswith("oss://bkt/out/")


def test_a_batch_across_two_projects_is_stored_and_covered_per_project(srv, tmp_path):
    a, b = tasks("p1", 3), tasks("p2", 2, start=T0 + timedelta(hours=1))
    for t in a + b:
        srv.enqueue(Q, note.envelope(t, "cn-test"))
    r = listen(srv, tmp_path / "s.duckdb")
    assert r.exit_code == 0, r.output
    assert srv.request_count("BatchReceiveMessage", 200) == 1   # one batch held both projects
    assert set(stored(tmp_path / "s.duckdb")) == {("p1", t["TaskId"]) for t in a} | {("p2", t["TaskId"]) for t in b}
    with Store.open(tmp_path / "s.duckdb") as st:
        cov = st.coverage(now=T0 + timedelta(days=1))
    got = {(r.project, r.start.to_pydatetime(), r.end.to_pydatetime()) for r in cov.itertuples() if r.kind == "collected"}
    assert got == {("p1", T0, T0 + timedelta(minutes=2)),
                   ("p2", T0 + timedelta(hours=1), T0 + timedelta(hours=1, minutes=1))}


def test_batches_of_one_listen_merge_into_one_covered_window(srv, tmp_path):
    for t in tasks("p1", 5):
        srv.enqueue(Q, note.envelope(t, "cn-test"))
    r = listen(srv, tmp_path / "s.duckdb", "--batch", "2")
    assert r.exit_code == 0, r.output
    with Store.open(tmp_path / "s.duckdb") as st:
        cov = st.coverage(now=T0 + timedelta(hours=1))
    collected = cov[cov["kind"] == "collected"]
    assert len(collected) == 1
    assert (collected.iloc[0]["start"], collected.iloc[0]["end"]) == (T0, T0 + timedelta(minutes=4))


def test_duplicate_notifications_store_each_task_once_and_a_final_status_wins(srv, tmp_path):
    t = make_task("p1", start=T0)
    running = dict(t, Status="Running", EndTime="")
    for body in (note.envelope(t, "cn-test"), note.envelope(t, "cn-test"), note.eventbridge_event(t, "cn-test")):
        srv.enqueue(Q, body)
    r = listen(srv, tmp_path / "s.duckdb")
    assert r.exit_code == 0, r.output
    assert "3 messages, 1 task new, 0 updated" in r.output
    srv.enqueue(Q, note.envelope(running, "cn-test"))   # a late, stale duplicate
    r = listen(srv, tmp_path / "s.duckdb")
    assert r.exit_code == 0, r.output
    assert stored(tmp_path / "s.duckdb") == {("p1", t["TaskId"]): "Succeeded"}
    assert srv.queue_size(Q) == 0


def test_a_poison_message_is_reported_and_left_in_the_queue(srv, tmp_path):
    good = make_task("p1", start=T0)
    srv.create_queue(Q, visibility_timeout=1)
    Store.open(tmp_path / "s.duckdb").close()   # made beforehand: the first commit is quick
    poison = srv.enqueue(Q, "this is not a notification")
    srv.enqueue(Q, note.envelope(good, "cn-test"))
    r = listen(srv, tmp_path / "s.duckdb", "--until-idle", "2.5")
    assert r.exit_code == 0, r.output
    assert f"bad message {poison}" in r.output and r.output.count(f"bad message {poison}") == 1
    assert "1 bad message" in r.output
    assert stored(tmp_path / "s.duckdb") == {("p1", good["TaskId"]): "Succeeded"}
    left = srv.snapshot(Q)
    assert [m["message_id"] for m in left] == [poison] and left[0]["dequeue_count"] >= 2   # re-delivered


def test_with_dead_letter_a_poison_message_is_written_then_deleted(srv, tmp_path):
    poison = srv.enqueue(Q, json.dumps({"content": "{not json", "type": "imm:Task:ImageSplicing"}))
    dead = tmp_path / "dead.jsonl"
    r = listen(srv, tmp_path / "s.duckdb", "--dead-letter", str(dead))
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in dead.read_text().splitlines()]
    assert [(x["message_id"], x["queue"]) for x in lines] == [(poison, Q)]
    assert "content" in lines[0]["reason"] and lines[0]["body"].startswith('{"content"')
    assert srv.queue_size(Q) == 0 and srv.deleted(Q) == [poison]
    assert "1 bad message (1 written to the dead-letter file)" in r.output


def test_5xx_throttling_and_gateway_pages_are_retried(srv, tmp_path):
    ts = tasks("p1", 4)
    for t in ts:
        srv.enqueue(Q, note.envelope(t, "cn-test"))
    srv.add_fault("server_500", times=1)
    srv.add_fault("throttle", times=2)
    srv.add_fault("html_502", times=1)
    srv.add_fault("server_503", action="BatchDeleteMessage", times=1)
    r = listen(srv, tmp_path / "s.duckdb")
    assert r.exit_code == 0, r.output
    assert len(stored(tmp_path / "s.duckdb")) == 4 and srv.queue_size(Q) == 0
    assert srv.request_count("BatchReceiveMessage", 429) == 2 and srv.request_count("BatchDeleteMessage", 503) == 1


def test_a_wrong_key_fails_in_one_line_without_retries(srv, tmp_path):
    srv.enqueue(Q, note.envelope(make_task("p1", start=T0), "cn-test"))
    r = listen(srv, tmp_path / "s.duckdb", credentials=(TEST_AK, "wrong"))
    assert r.exit_code == 1
    assert r.output.strip().splitlines() == [
        f"costkit: error: MNS queue {Q}: receive: SignatureDoesNotMatch: The request signature does not match."]
    # One attempt by costkit (its retry policy here allows 6). The SDK itself resends a request once when a
    # kept-alive connection answers with a BadStatusLine (mns_http.send_request), which a loaded machine can
    # provoke: that resend is not a costkit retry.
    assert srv.request_count("BatchReceiveMessage") in (1, 2) and srv.snapshot(Q)[0]["dequeue_count"] == 0


def test_retries_that_run_out_fail_with_exit_1_and_store_nothing(srv, tmp_path):
    srv.enqueue(Q, note.envelope(make_task("p1", start=T0), "cn-test"))
    srv.add_fault("server_503", times=None)
    r = listen(srv, tmp_path / "s.duckdb")
    assert r.exit_code == 1 and "gave up after 6 attempts: ServiceUnavailable" in r.output
    assert srv.queue_size(Q) == 1


@pytest.mark.parametrize("args, field", [(["--batch", "17"], "--batch"), (["--wait-seconds", "31"], "--wait-seconds"),
                                         (["--max-messages", "0"], "--max-messages")])
def test_out_of_range_options_are_bad_input(srv, tmp_path, args, field):
    r = listen(srv, tmp_path / "s.duckdb", *args)
    assert r.exit_code == 2 and f"costkit: error: {field}: must be" in r.output


def test_max_messages_stops_after_that_many(srv, tmp_path):
    for t in tasks("p1", 5):
        srv.enqueue(Q, note.envelope(t, "cn-test"))
    r = listen(srv, tmp_path / "s.duckdb", "--max-messages", "3")
    assert r.exit_code == 0, r.output
    assert len(stored(tmp_path / "s.duckdb")) == 3 and srv.queue_size(Q) == 2


# --- real processes: SIGKILL and SIGTERM ---------------------------------------------------------

def child(srv, store_path, *args):
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(ALIBABA_CLOUD_ACCESS_KEY_ID=TEST_AK, ALIBABA_CLOUD_ACCESS_KEY_SECRET=TEST_SK,
               ALIBABA_CLOUD_ECS_METADATA_DISABLED="true", NO_PROXY="127.0.0.1,localhost")
    cmd = [sys.executable, "-m", "costkit.cli.main", "--store", str(store_path), "listen", "--endpoint",
           srv.endpoint, "--queue", Q, *args]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(cond, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while not cond():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_between_commit_and_delete_loses_nothing_and_doubles_nothing(srv, tmp_path):
    a, b = tasks("p1", 20), tasks("p2", 12)
    for t in a + b:
        srv.enqueue(Q, note.envelope(t, "cn-test"))
    stall = srv.add_fault("stall", action="BatchDeleteMessage", times=1, delay=30)
    store_path = tmp_path / "s.duckdb"
    proc = child(srv, store_path, "--wait-seconds", "1")
    try:
        wait_for(lambda: stall.fired == 1, proc)   # the first batch is committed; its delete hangs
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert len(stored(store_path)) == 16 and srv.queue_size(Q) == 32   # committed, nothing deleted

    r = listen(srv, store_path, "--until-idle", "5", "--wait-seconds", "1")   # past the visibility timeout
    assert r.exit_code == 0, r.output
    assert "32 messages, 16 tasks new, 0 updated, 16 unchanged, 0 bad" in r.output
    assert set(stored(store_path)) == {("p1", t["TaskId"]) for t in a} | {("p2", t["TaskId"]) for t in b}
    assert srv.queue_size(Q) == 0
    con = duckdb.connect(str(store_path), read_only=True)
    try:
        assert con.execute("SELECT count(*) - count(DISTINCT (region, project, task_id)) FROM tasks").fetchone()[0] == 0
    finally:
        con.close()


@pytest.mark.parametrize("during", ["poll", "delete"])
def test_sigterm_stops_cleanly_after_the_batch_in_flight(srv, tmp_path, during):
    store_path = tmp_path / "s.duckdb"
    srv.create_queue(Q, visibility_timeout=30)   # the handles outlive the slow delete
    if during == "delete":
        for t in tasks("p1", 3):
            srv.enqueue(Q, note.envelope(t, "cn-test"))
        fault = srv.add_fault("slow", action="BatchDeleteMessage", times=1, delay=1.0)
    proc = child(srv, store_path, "--wait-seconds", "30")
    try:
        if during == "delete":
            wait_for(lambda: fault.fired == 1, proc)
        else:
            wait_for(lambda: srv.request_count() == 0 and len(srv._conns) > 0, proc)
            time.sleep(0.3)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert time.monotonic() - t0 < 5
    assert out.startswith("listened ")
    if during == "delete":
        assert "3 messages, 3 tasks new" in out and srv.queue_size(Q) == 0
