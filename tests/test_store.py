"""The DuckDB task-history store: schema, upsert rules, transactions, runs, checkpoints, coverage."""
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta, timezone

import duckdb
import pandas as pd
import pytest

import costkit.store.schema as schema_mod
from costkit.core.errors import BadInput, RuntimeFailure
from costkit.store import Store, UpsertCounts
from costkit.store.schema import MIGRATIONS

UTC = timezone.utc
T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
SEEN1 = datetime(2026, 11, 21, tzinfo=UTC)
SEEN2 = datetime(2026, 11, 22, tzinfo=UTC)


def rec(i=1, status="Succeeded", *, project="proj", region="cn-hangzhou", origin="listtasks", **over):
    r = {"region": region, "project": project, "task_id": f"ImageSplicing-{i:04d}", "task_type": "ImageSplicing",
         "status": status, "code": None, "message": None, "start_time": T0 + timedelta(minutes=i),
         "end_time": None if status == "Running" else T0 + timedelta(minutes=i, seconds=2),
         "sources": [{"uri": f"oss://bkt/{i}-a.jpg", "rotate": 90}, {"uri": f"oss://bkt/{i}-b.jpg", "rotate": None}],
         "target_uri": f"oss://bkt/out/{i}.jpg", "image_format": "jpg",
         "options": {"direction": "vertical", "scale_type": "fit", "align": 800, "padding": 4, "margin": 8,
                     "background_color": "#FFFFFF", "quality": 85},
         "tags": {"job": "j1"}, "user_data": '{"id":1}', "origin": origin}
    r.update(over)
    return r


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "s.duckdb") as s:
        yield s


def row(store, i=1, project="proj"):
    df = store.tasks_frame(project=project)
    return df[df.task_id == f"ImageSplicing-{i:04d}"].iloc[0]


# --- schema and opening -----------------------------------------------------------------------

def test_open_creates_the_file_with_the_current_schema_version(tmp_path):
    path = tmp_path / "sub" / "s.duckdb"
    with Store.open(path) as s:
        assert s.schema_version == len(MIGRATIONS)
    assert path.exists()


def test_reopening_keeps_the_data_and_does_not_rerun_migrations(tmp_path):
    path = tmp_path / "s.duckdb"
    with Store.open(path) as s:
        s.upsert_tasks([rec(1)], seen_at=SEEN1)
    with Store.open(path) as s:
        assert s.count_tasks() == 1
        assert s.schema_version == len(MIGRATIONS)


def test_a_new_migration_upgrades_an_old_store_without_losing_rows(tmp_path, monkeypatch):
    path = tmp_path / "s.duckdb"
    with Store.open(path) as s:
        s.upsert_tasks([rec(1), rec(2)], seen_at=SEEN1)

    def add_note(con):
        con.execute("ALTER TABLE tasks ADD COLUMN note VARCHAR")

    monkeypatch.setattr(schema_mod, "MIGRATIONS", [*MIGRATIONS, add_note])
    with Store.open(path) as s:
        assert s.schema_version == len(MIGRATIONS) + 1
        assert s.count_tasks() == 2
        s.upsert_tasks([rec(3)], seen_at=SEEN2)
        assert s.count_tasks() == 3


def test_a_store_from_a_newer_costkit_is_refused(tmp_path):
    path = tmp_path / "s.duckdb"
    with Store.open(path):
        pass
    con = duckdb.connect(str(path))
    con.execute("INSERT INTO schema_version VALUES (99, now())")
    con.close()
    with pytest.raises(RuntimeFailure, match="schema version 99, newer than this costkit"):
        Store.open(path)


def test_a_file_that_is_not_a_store_is_bad_input(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("not a database\n" * 100)
    with pytest.raises(BadInput, match="not a costkit store"):
        Store.open(path)


def test_opening_a_missing_store_without_create_is_bad_input(tmp_path):
    with pytest.raises(BadInput, match="no task store here"):
        Store.open(tmp_path / "none.duckdb", create=False)


def test_a_store_locked_by_another_process_is_a_runtime_failure(tmp_path):
    path = tmp_path / "s.duckdb"
    with Store.open(path):
        pass
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('ok', flush=True); "
                               "time.sleep(30)", str(path)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ok"
        with pytest.raises(RuntimeFailure, match="in use by another costkit process"):
            Store.open(path, lock_timeout=0.3)
    finally:
        holder.kill()
        holder.wait()


# --- upsert rules -----------------------------------------------------------------------------

def test_new_tasks_are_stored_with_aware_utc_times_and_first_seen(store):
    assert store.upsert_tasks([rec(1), rec(2, "Running")], seen_at=SEEN1) == UpsertCounts(2, 0, 0)
    r = row(store, 1)
    assert r.start_time == pd.Timestamp(T0 + timedelta(minutes=1))
    assert str(r.start_time.tz) == "UTC"
    assert r.first_seen == r.last_seen == pd.Timestamp(SEEN1)
    assert r.sources == [{"uri": "oss://bkt/1-a.jpg", "rotate": 90}, {"uri": "oss://bkt/1-b.jpg", "rotate": None}]
    assert r.tags == {"job": "j1"} and r["align"] == 800 and r.origin == "listtasks"


def test_an_identical_record_is_unchanged_and_only_last_seen_moves(store):
    store.upsert_tasks([rec(1)], seen_at=SEEN1)
    assert store.upsert_tasks([rec(1)], seen_at=SEEN2) == UpsertCounts(0, 0, 1)
    r = row(store, 1)
    assert r.first_seen == pd.Timestamp(SEEN1) and r.last_seen == pd.Timestamp(SEEN2)


def test_tags_in_another_key_order_are_unchanged(store):
    store.upsert_tasks([rec(1, tags={"a": "1", "b": "2"})], seen_at=SEEN1)
    assert store.upsert_tasks([rec(1, tags={"b": "2", "a": "1"})], seen_at=SEEN2).unchanged == 1


def test_a_final_status_replaces_running(store):
    store.upsert_tasks([rec(1, "Running")], seen_at=SEEN1)
    assert store.upsert_tasks([rec(1, "Failed", code="InternalError", message="boom")],
                              seen_at=SEEN2) == UpsertCounts(0, 1, 0)
    r = row(store, 1)
    assert (r.status, r.code, r.message) == ("Failed", "InternalError", "boom")
    assert r.end_time == pd.Timestamp(T0 + timedelta(minutes=1, seconds=2))
    assert r.first_seen == pd.Timestamp(SEEN1)


def test_running_never_replaces_a_final_status_but_fills_missing_fields(store):
    store.upsert_tasks([rec(1, "Succeeded", tags={}, sources=[], origin="notification")], seen_at=SEEN1)
    counts = store.upsert_tasks([rec(1, "Running", origin="listtasks")], seen_at=SEEN2)
    assert counts == UpsertCounts(0, 1, 0)
    r = row(store, 1)
    assert r.status == "Succeeded" and r.end_time == pd.Timestamp(T0 + timedelta(minutes=1, seconds=2))
    assert r.tags == {"job": "j1"} and len(r.sources) == 2
    # Once complete, the stale Running record changes nothing.
    assert store.upsert_tasks([rec(1, "Running")], seen_at=SEEN2) == UpsertCounts(0, 0, 1)
    assert row(store, 1).status == "Succeeded"


def test_fields_missing_from_a_notification_do_not_erase_stored_ones(store):
    store.upsert_tasks([rec(1, "Running")], seen_at=SEEN1)
    note = rec(1, "Succeeded", origin="notification", tags={}, sources=[], target_uri=None, user_data=None,
               options={})
    assert store.upsert_tasks([note], seen_at=SEEN2).updated == 1
    r = row(store, 1)
    assert r.status == "Succeeded" and r.tags == {"job": "j1"} and len(r.sources) == 2
    assert r.target_uri == "oss://bkt/out/1.jpg" and r.user_data == '{"id":1}' and r.quality == 85


def test_origin_is_kept_when_nothing_changes_and_moves_with_new_data(store):
    store.upsert_tasks([rec(1, "Running", origin="listtasks")], seen_at=SEEN1)
    store.upsert_tasks([rec(1, "Running", origin="import")], seen_at=SEEN2)
    assert row(store, 1).origin == "listtasks"
    store.upsert_tasks([rec(1, "Succeeded", origin="notification")], seen_at=SEEN2)
    assert row(store, 1).origin == "notification"


def test_duplicate_keys_in_one_batch_collapse_to_the_most_final(store):
    counts = store.upsert_tasks([rec(1, "Succeeded"), rec(1, "Running"), rec(2), rec(2)], seen_at=SEEN1)
    assert counts == UpsertCounts(2, 0, 0)
    assert row(store, 1).status == "Succeeded"
    assert store.count_tasks() == 2


def test_the_same_task_id_in_another_project_or_region_is_another_task(store):
    store.upsert_tasks([rec(1), rec(1, project="other"), rec(1, region="cn-beijing")], seen_at=SEEN1)
    assert store.count_tasks() == 3


def test_a_mixed_batch_counts_new_updated_and_unchanged(store):
    store.upsert_tasks([rec(1, "Running"), rec(2)], seen_at=SEEN1)
    assert store.upsert_tasks([rec(1), rec(2), rec(3)], seen_at=SEEN2) == UpsertCounts(1, 1, 1)
    assert store.count_tasks() == 3


def test_html_in_tags_and_user_data_round_trips_unchanged(store):
    tags = {"job": "<script>alert('x')</script>", "q": "\"&amp;\" <b>"}
    store.upsert_tasks([rec(1, tags=tags, user_data="<script>alert(1)</script>")], seen_at=SEEN1)
    r = row(store, 1)
    assert r.tags == tags and r.user_data == "<script>alert(1)</script>"


def test_a_bad_record_fails_the_whole_batch_before_anything_is_written(store):
    with pytest.raises(BadInput, match="record 1: status"):
        store.upsert_tasks([rec(1), rec(2, status="Done")], seen_at=SEEN1)
    assert store.count_tasks() == 0


def test_naive_datetimes_are_refused(store):
    with pytest.raises(ValueError, match="timezone-aware"):
        store.upsert_tasks([rec(1)], seen_at=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="start_time must be a timezone-aware"):
        store.upsert_tasks([rec(1, start_time=datetime(2026, 1, 1))], seen_at=SEEN1)


# --- transactions, checkpoints, runs ------------------------------------------------------------

def test_a_page_and_its_checkpoint_commit_together(store):
    with store.transaction():
        store.upsert_tasks([rec(1)], seen_at=SEEN1)
        store.set_checkpoint("cn-hangzhou", "proj", T0)
    assert store.count_tasks() == 1 and store.get_checkpoint("cn-hangzhou", "proj") == T0


def test_an_error_inside_a_transaction_rolls_back_the_page_and_the_checkpoint(store):
    store.set_checkpoint("cn-hangzhou", "proj", T0)
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.upsert_tasks([rec(1), rec(2)], seen_at=SEEN1)
            store.set_checkpoint("cn-hangzhou", "proj", T0 + timedelta(hours=1))
            raise RuntimeError("crash between page and commit")
    assert store.count_tasks() == 0
    assert store.get_checkpoint("cn-hangzhou", "proj") == T0


def test_checkpoints_are_per_region_and_project(store):
    assert store.get_checkpoint("cn-hangzhou", "proj") is None
    store.set_checkpoint("cn-hangzhou", "proj", datetime(2026, 11, 20, 10, 0, tzinfo=timezone(timedelta(hours=8))))
    got = store.get_checkpoint("cn-hangzhou", "proj")
    assert got == T0 and got.utcoffset() == timedelta(0)
    assert store.get_checkpoint("cn-beijing", "proj") is None


def test_runs_record_their_window_counts_and_errors(store):
    assert store.last_successful_run("cn-hangzhou", "proj") is None
    run = store.begin_run("collect", "cn-hangzhou", "proj", T0, T0 + timedelta(hours=1))
    store.finish_run(run, pages=3, new=250, updated=2, unchanged=1, errors=["retried: Throttling.User"], ok=True)
    failed = store.begin_run("collect", "cn-hangzhou", "proj", T0 + timedelta(hours=1), T0 + timedelta(hours=2))
    store.finish_run(failed, pages=1, new=0, updated=0, unchanged=0, errors=["503 after 6 attempts"], ok=False)
    runs = store.runs_frame(region="cn-hangzhou", project="proj")
    assert list(runs.ok) == [True, False] and runs.errors[0] == ["retried: Throttling.User"]
    assert int(runs.pages[0]) == 3 and int(runs.new[0]) == 250
    last = store.last_successful_run("cn-hangzhou", "proj")
    assert last is not None and last.tzinfo is not None
    assert last == runs.finished_at[0].to_pydatetime()


# --- frames and coverage ------------------------------------------------------------------------

def test_tasks_frame_filters_by_project_status_and_start_time(store):
    store.upsert_tasks([rec(i, "Running" if i % 2 else "Succeeded") for i in range(1, 11)]
                       + [rec(1, project="other")], seen_at=SEEN1)
    assert len(store.tasks_frame(project="proj")) == 10
    assert len(store.tasks_frame(status="Running", project="proj")) == 5
    df = store.tasks_frame(since=T0 + timedelta(minutes=3), until=T0 + timedelta(minutes=6), project="proj")
    assert list(df.task_id) == ["ImageSplicing-0003", "ImageSplicing-0004", "ImageSplicing-0005"]
    assert str(df.start_time.dt.tz) == "UTC" and str(df.last_seen.dt.tz) == "UTC"


def test_coverage_merges_successful_windows_and_names_the_gaps(store):
    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    w = [(datetime(2026, 11, 10, tzinfo=UTC), datetime(2026, 11, 12, tzinfo=UTC), True),
         (datetime(2026, 11, 11, tzinfo=UTC), datetime(2026, 11, 13, tzinfo=UTC), True),
         (datetime(2026, 11, 13, tzinfo=UTC), datetime(2026, 11, 16, tzinfo=UTC), False),  # failed: no coverage
         (datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 24, tzinfo=UTC), True)]
    for a, b, ok in w:
        run = store.begin_run("collect", "cn-hangzhou", "proj", a, b)
        store.finish_run(run, pages=1, new=0, updated=0, unchanged=0, errors=[], ok=ok)
    cov = store.coverage(now=now)
    got = [(r.kind, r.start.to_pydatetime(), r.end.to_pydatetime()) for r in cov.itertuples()]
    assert got == [
        ("collected", datetime(2026, 11, 10, tzinfo=UTC), datetime(2026, 11, 13, tzinfo=UTC)),
        ("gap", datetime(2026, 11, 13, tzinfo=UTC), datetime(2026, 11, 20, tzinfo=UTC)),
        ("collected", datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 24, tzinfo=UTC)),
        ("gap", datetime(2026, 11, 24, tzinfo=UTC), now),
    ]
    assert "partly older than IMM's 7-day retention" in cov.note[1]
    assert "still within" in cov.note[3]
    assert set(cov.via.dropna()) == {"collect"}


def test_coverage_reports_a_project_with_tasks_but_no_window(store):
    store.upsert_tasks([rec(1)], seen_at=SEEN1)
    cov = store.coverage(now=SEEN2)
    assert list(cov.kind) == ["gap"] and cov.start.isna().all()


# --- concurrency and crashes --------------------------------------------------------------------

def test_threads_sharing_a_store_are_serialised(store):
    def work(k):
        for j in range(5):
            store.upsert_tasks([rec(1000 * k + 10 * j + i) for i in range(10)], seen_at=SEEN1)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.count_tasks() == 200


_WRITER = r"""
import sys
from datetime import datetime, timedelta, timezone
from costkit.store import Store
UTC = timezone.utc
t0 = datetime(2026, 11, 1, tzinfo=UTC)
with Store.open(sys.argv[1]) as s:
    for b in range(100000):
        recs = [{"region": "cn-hangzhou", "project": "proj", "task_id": f"ImageSplicing-{b:06d}-{i:03d}",
                 "task_type": "ImageSplicing", "status": "Succeeded", "start_time": t0 + timedelta(seconds=b),
                 "end_time": None, "sources": [{"uri": "oss://b/a.jpg", "rotate": 0}], "tags": {"b": b},
                 "origin": "listtasks"} for i in range(200)]
        with s.transaction():
            s.upsert_tasks(recs, seen_at=datetime.now(UTC))
            s.set_checkpoint("cn-hangzhou", "proj", t0 + timedelta(seconds=b + 1))
        print(b, flush=True)
"""


def test_a_writer_killed_mid_upsert_leaves_whole_batches_and_a_matching_checkpoint(tmp_path):
    path = tmp_path / "s.duckdb"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(8):  # let several batches commit, then kill in the middle of the loop
            assert proc.stdout.readline()
        time.sleep(0.05)
    finally:
        proc.kill()  # SIGKILL
        proc.wait()
    with Store.open(path) as s:
        n = s.count_tasks()
        assert n >= 8 * 200 and n % 200 == 0
        batches = n // 200
        checkpoint = s.get_checkpoint("cn-hangzhou", "proj")
        assert checkpoint == datetime(2026, 11, 1, tzinfo=UTC) + timedelta(seconds=batches)
        # The reopened store takes writes again.
        s.upsert_tasks([rec(1)], seen_at=SEEN1)
        assert s.count_tasks() == n + 1


def test_identical_re_listed_tasks_skip_the_full_merge(store, monkeypatch):
    store.upsert_tasks([rec(i) for i in range(1, 51)], seen_at=SEEN1)

    def no_merge(*a, **k):
        raise AssertionError("full merge used for identical records")

    monkeypatch.setattr(Store, "_merge", no_merge)
    assert store.upsert_tasks([rec(i) for i in range(1, 51)], seen_at=SEEN2) == UpsertCounts(0, 0, 50)
    assert row(store, 7).last_seen == pd.Timestamp(SEEN2)
    monkeypatch.undo()
    # A changed task in the batch takes the merge, which counts the rest as unchanged.
    batch = [rec(i) for i in range(1, 51)]
    batch[3] = rec(4, code="Late")
    assert store.upsert_tasks(batch, seen_at=SEEN2) == UpsertCounts(0, 1, 49)


def test_a_stale_digest_only_costs_a_merge(store):
    store.upsert_tasks([rec(1), rec(2)], seen_at=SEEN1)
    store._con.execute("UPDATE tasks SET digest = 42")  # as if written by another DuckDB version
    assert store.upsert_tasks([rec(1), rec(2)], seen_at=SEEN2) == UpsertCounts(0, 0, 2)
    assert store._con.execute("SELECT count(*) FROM tasks WHERE digest = 42").fetchone()[0] == 0


def test_tag_values_of_equal_python_value_but_other_json_keep_their_type(store):
    store.upsert_tasks([rec(1, tags={"n": 1}), rec(2, tags={"n": True}), rec(3, tags={"n": 1.0})], seen_at=SEEN1)
    assert [row(store, i).tags["n"].__class__ for i in (1, 2, 3)] == [int, bool, float]
