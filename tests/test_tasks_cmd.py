"""`costkit tasks`, `costkit coverage` and the `costkit.load_tasks` API."""
import csv
import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner

import costkit
from costkit.cli.main import main
from costkit.core.errors import BadInput
from costkit.store.ingest import import_files
from costkit.store.db import Store

FIX = Path(__file__).parent / "fixtures" / "tasks"
UTC = timezone.utc
JSON_KEYS = ["task_id", "region", "project", "status", "start_time", "end_time", "sources", "target_uri", "tags",
             "user_data", "origin"]


@pytest.fixture
def store_path(tmp_path):
    path = tmp_path / "s.duckdb"
    with Store.open(path) as s:
        import_files(s, [FIX / "listtasks_raw.json", FIX / "script_in_tags.json"], region="cn-hangzhou")
        import_files(s, [FIX / "tasks.jsonl", FIX / "eventbridge_event.json", FIX / "mns_envelopes_array.json"])
    return path


def run(store_path, *args, **kw):
    return CliRunner().invoke(main, ["--store", str(store_path), *args], **kw)


def test_json_has_a_format_version_and_objects_with_the_documented_keys(store_path):
    result = run(store_path, "tasks", "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["format_version"] == 1
    tasks = doc["tasks"]
    assert len(tasks) == 9
    assert all(list(t) == JSON_KEYS for t in tasks)
    first = tasks[0]
    assert first["start_time"] == "2026-11-20T02:15:03.512000+00:00"
    assert first["end_time"] == "2026-11-20T02:15:05.070000+00:00"
    assert first["sources"] == ["oss://splice-in/batch7/1-0.jpg", "oss://splice-in/batch7/1-1.jpg"]
    assert first["tags"] == {"job": "catalog", "attempt": 1}
    running = [t for t in tasks if t["status"] == "Running"]
    assert running and all(t["end_time"] is None for t in running)
    for t in tasks:
        assert datetime.fromisoformat(t["start_time"]).utcoffset() == timedelta(0)


def test_html_in_tags_and_user_data_is_output_unchanged(store_path):
    tasks = json.loads(run(store_path, "tasks", "--project", "proj-x", "--format", "json").output)["tasks"]
    raw = json.loads((FIX / "script_in_tags.json").read_text())["Tasks"][0]
    assert tasks[0]["tags"] == raw["Tags"] and tasks[0]["user_data"] == raw["UserData"]


@pytest.mark.parametrize("args, count", [
    (["--project", "proj-a"], 4),
    (["--status", "failed"], 3),
    (["--status", "Running", "--project", "proj-b"], 1),
    (["--since", "2026-11-20T02:16:00Z", "--until", "2026-11-20T02:17:00+00:00"], 2),
    (["--since", "2026-11-21"], 2),  # a date is 00:00 in Asia/Shanghai
    (["--region", "cn-beijing"], 1),
])
def test_filters_select_tasks(store_path, args, count):
    result = run(store_path, "tasks", "--format", "json", *args)
    assert result.exit_code == 0, result.output
    assert len(json.loads(result.output)["tasks"]) == count


def test_a_time_without_offset_is_exit_2(store_path):
    result = run(store_path, "tasks", "--since", "2026-11-20T02:16:00")
    assert result.exit_code == 2
    assert "--since: timestamp has no UTC offset" in result.output


def test_csv_has_the_json_columns_and_json_cells_for_lists(store_path):
    result = run(store_path, "tasks", "--format", "csv", "--project", "proj-x")
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert list(rows[0]) == JSON_KEYS
    assert json.loads(rows[0]["sources"]) == ["oss://splice-in/batch7/9-0.jpg", "oss://splice-in/batch7/9-1.jpg"]
    assert rows[0]["user_data"] == "<script>alert(\"user\")</script>&amp;"


def test_table_lists_tasks_and_a_count(store_path):
    result = run(store_path, "tasks", "--project", "proj-c")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split()[:4] == ["TASK_ID", "REGION", "PROJECT", "STATUS"]
    assert "ImageSplicing-eb000000-0000-4000-8000-000000000007" in lines[1]
    assert lines[-1] == "1 task"


def test_the_store_path_can_come_from_the_environment(store_path):
    result = CliRunner().invoke(main, ["tasks", "--format", "json"], env={"COSTKIT_STORE": str(store_path)})
    assert result.exit_code == 0 and len(json.loads(result.output)["tasks"]) == 9


def test_tasks_without_a_store_is_exit_2_and_creates_nothing(tmp_path):
    result = run(tmp_path / "missing.duckdb", "tasks")
    assert result.exit_code == 2
    assert "no task store here" in result.output
    assert not (tmp_path / "missing.duckdb").exists()


def test_coverage_json_lists_windows_and_gaps_per_project(store_path):
    with Store.open(store_path) as s:
        run_id = s.begin_run("collect", "cn-hangzhou", "proj-a", datetime(2026, 11, 19, tzinfo=UTC),
                             datetime(2026, 11, 20, 3, tzinfo=UTC))
        s.finish_run(run_id, pages=2, new=0, updated=0, unchanged=3, errors=[], ok=True)
    result = run(store_path, "coverage", "--project", "proj-a", "--format", "json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["format_version"] == 1
    rows = doc["coverage"]
    assert rows[0] == {"region": "cn-hangzhou", "project": "proj-a", "kind": "collected",
                       "start": "2026-11-19T00:00:00+00:00", "end": "2026-11-20T03:00:00+00:00",
                       "via": "collect+import", "note": None}
    assert rows[-1]["kind"] == "gap" and rows[-1]["start"] == "2026-11-20T03:00:00+00:00"


def test_coverage_table_names_each_project(store_path):
    result = run(store_path, "coverage", "--wide")
    assert result.exit_code == 0
    assert result.output.splitlines()[0].split() == ["REGION", "PROJECT", "KIND", "START", "END", "VIA", "NOTE"]
    narrow = run(store_path, "coverage").output
    assert max(len(line) for line in narrow.splitlines()) <= 100 < max(len(line) for line in result.output.splitlines())
    assert "NOTE" in narrow and "+08:00" in narrow and "+00:00" not in narrow
    for project in ("proj-a", "proj-b", "proj-c", "proj-x"):
        assert project in result.output


def test_load_tasks_returns_a_frame_with_aware_times(store_path):
    df = costkit.load_tasks(store_path, project="proj-a", status="Succeeded")
    assert len(df) == 1
    assert str(df.start_time.dt.tz) == "UTC"
    with pytest.raises(BadInput):
        costkit.load_tasks(store_path.parent / "none.duckdb")


def test_load_tasks_accepts_iso_text_and_rejects_an_unknown_status(store_path):
    df = costkit.load_tasks(store_path, since="2026-11-21T00:00:00+08:00")
    assert set(df.project) == {"proj-c", "proj-x"}
    with pytest.raises(BadInput, match="status: 'Done' is not one of"):
        costkit.load_tasks(store_path, status="Done")
    with pytest.raises(BadInput, match="no UTC offset"):
        costkit.load_tasks(store_path, since="2026-11-21T00:00:00")
