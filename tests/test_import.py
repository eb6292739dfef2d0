"""`costkit import` and `costkit.importers`: kinds, detection, regions, bad records, upsert rules."""
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from costkit.cli.main import main
from costkit.core.errors import BadInput
from costkit.sources.imm.importers import parse_file
from costkit.store.db import Store
from costkit.store.ingest import import_files

FIX = Path(__file__).parent / "fixtures" / "tasks"


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path / "s.duckdb") as s:
        yield s


def run(tmp_path, *args):
    return CliRunner().invoke(main, ["--store", str(tmp_path / "s.duckdb"), *args])


@pytest.mark.parametrize("name, kind, new, skipped", [
    ("listtasks_raw.json", "listtasks", 3, 1),
    ("listtasks_sdk_to_map.json", "listtasks", 3, 1),
    ("gettask.json", "gettask", 1, 0),
    ("tasks.jsonl", "jsonl", 3, 1),
    ("mns_envelope.json", "mns", 1, 0),
    ("mns_envelopes_array.json", "mns", 1, 1),
    ("eventbridge_event.json", "eventbridge", 1, 0),
])
def test_each_kind_is_detected_and_other_task_types_are_skipped_and_counted(store, name, kind, new, skipped):
    summary = import_files(store, [FIX / name], region="cn-hangzhou")
    (f,) = summary.files
    assert f.kind == kind
    assert (summary.new, summary.skipped_other_types) == (new, skipped)
    assert set(store.tasks_frame().task_type) == {"ImageSplicing"}


def test_kind_can_be_forced(store):
    summary = import_files(store, [FIX / "tasks.jsonl"], kind="jsonl")
    assert summary.new == 3


def test_forcing_the_wrong_kind_fails_the_file(store):
    with pytest.raises(BadInput, match="listtasks_raw.json"):
        import_files(store, [FIX / "listtasks_raw.json"], kind="mns")
    with pytest.raises(BadInput, match="not a ListTasks response"):
        import_files(store, [FIX / "gettask.json"], kind="listtasks", region="cn-hangzhou")
    assert store.count_tasks() == 0


def test_listtasks_dump_without_region_asks_for_region(store):
    with pytest.raises(BadInput, match=r"listtasks_raw.json: ListTasks responses carry no region; pass --region"):
        import_files(store, [FIX / "listtasks_raw.json"])
    with pytest.raises(BadInput, match=r"gettask.json: GetTask responses carry no region; pass --region"):
        import_files(store, [FIX / "gettask.json"])


def test_jsonl_takes_region_and_project_from_each_line(store):
    import_files(store, [FIX / "tasks.jsonl"])
    df = store.tasks_frame()
    assert set(zip(df.region, df.project)) == {("cn-shanghai", "proj-b")}
    assert set(df.origin) == {"import"}


def test_notification_region_and_project_come_from_subject_and_content(store):
    import_files(store, [FIX / "mns_envelope.json", FIX / "eventbridge_event.json"])
    df = store.tasks_frame()
    assert set(zip(df.region, df.project)) == {("cn-hangzhou", "proj-a"), ("cn-beijing", "proj-c")}
    assert set(df.origin) == {"notification"}


def test_a_bad_jsonl_record_fails_its_file_naming_the_line_and_nothing_is_stored(store):
    with pytest.raises(BadInput) as e:
        import_files(store, [FIX / "tasks.jsonl", FIX / "bad_record.jsonl"])
    assert str(e.value).endswith("bad_record.jsonl:3: Status: 'Done' is not one of Running, Succeeded, Failed")
    assert store.count_tasks() == 0  # not even the good file before it


def test_a_bad_array_item_is_named_by_its_index(store):
    with pytest.raises(BadInput, match=r"bad_envelope_array.json: \[1\]: TaskId: missing or empty"):
        import_files(store, [FIX / "bad_envelope_array.json"])
    assert store.count_tasks() == 0


def test_skip_bad_stores_the_good_records_and_lists_the_bad(store):
    summary = import_files(store, [FIX / "bad_record.jsonl", FIX / "bad_envelope_array.json"], skip_bad=True)
    assert summary.new == 3
    assert [(b.where, b.reason.split(":")[0]) for b in summary.bad] == [("line 3", "Status"), ("[1]", "TaskId")]
    assert str(summary.bad[0]).endswith("bad_record.jsonl: line 3: Status: 'Done' is not one of Running, "
                                        "Succeeded, Failed")


def test_a_line_that_is_not_json_is_a_bad_record(tmp_path, store):
    good = json.loads((FIX / "tasks.jsonl").read_text().splitlines()[0])
    p = tmp_path / "t.jsonl"
    p.write_text(json.dumps(good) + "\n{broken\n")
    with pytest.raises(BadInput, match=r"t.jsonl:2: not valid JSON"):
        import_files(store, [p])


def test_a_broken_json_document_names_its_line(tmp_path, store):
    p = tmp_path / "page.json"
    p.write_text('{\n  "ProjectName": "p",\n  "Tasks": [\n    {"TaskId": }\n  ]\n}\n')
    with pytest.raises(BadInput, match=r"page.json:4: not valid JSON"):
        import_files(store, [p], region="cn-hangzhou")


def test_an_unrecognised_file_is_bad_input(tmp_path, store):
    p = tmp_path / "x.json"
    p.write_text('{"hello": "world"}')
    with pytest.raises(BadInput, match="cannot tell what this file holds"):
        import_files(store, [p])


def test_importing_the_same_file_twice_counts_unchanged(store):
    import_files(store, [FIX / "listtasks_raw.json"], region="cn-hangzhou")
    again = import_files(store, [FIX / "listtasks_sdk_to_map.json"], region="cn-hangzhou")
    assert (again.new, again.updated, again.unchanged) == (0, 0, 3)


def test_a_notification_completes_a_running_task_and_keeps_its_sources_and_tags(store):
    import_files(store, [FIX / "listtasks_raw.json"], region="cn-hangzhou")
    summary = import_files(store, [FIX / "mns_envelope.json"])
    assert summary.updated == 1
    df = store.tasks_frame()
    r = df[df.task_id.str.endswith("000000000003")].iloc[0]
    assert r.status == "Succeeded" and r.origin == "notification"
    assert len(r.sources) == 2 and r.end_time.isoformat() == "2026-11-20T02:17:46.360000+00:00"


def test_script_in_tags_and_user_data_round_trips_unchanged(store):
    raw = json.loads((FIX / "script_in_tags.json").read_text())["Tasks"][0]
    import_files(store, [FIX / "script_in_tags.json"], region="cn-hangzhou")
    r = store.tasks_frame().iloc[0]
    assert r.tags == raw["Tags"] and r.user_data == raw["UserData"]


def test_imports_are_recorded_as_coverage_windows(store):
    import_files(store, [FIX / "listtasks_raw.json"], region="cn-hangzhou")
    cov = store.coverage()
    first = cov.iloc[0]
    assert (first.kind, first.via) == ("collected", "import")
    assert first.start.isoformat() == "2026-11-20T02:15:03.512000+00:00"
    assert first.end.isoformat() == "2026-11-20T02:17:44.100000+00:00"


def test_parse_file_does_not_touch_the_store():
    f = parse_file(FIX / "mns_envelopes_array.json")
    assert len(f.records) == 1 and f.skipped_other_types == 1
    assert f.records[0]["start_time"].isoformat() == "2026-11-20T02:30:00+00:00"


# --- the command ------------------------------------------------------------------------------

def test_import_command_prints_one_summary_line(tmp_path):
    result = run(tmp_path, "import", "--region", "cn-hangzhou", str(FIX / "listtasks_raw.json"),
                 str(FIX / "mns_envelope.json"))
    assert result.exit_code == 0, result.output
    assert result.output == ("imported 2 files: 3 new, 1 updated, 0 unchanged; 1 task of other types skipped\n")


def test_import_command_bad_record_exits_2_with_one_line(tmp_path):
    result = run(tmp_path, "import", str(FIX / "bad_record.jsonl"))
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert result.output.strip().splitlines() == [
        f"costkit: error: {FIX / 'bad_record.jsonl'}:3: Status: 'Done' is not one of Running, Succeeded, Failed"]


def test_import_command_skip_bad_lists_skipped_records(tmp_path):
    result = run(tmp_path, "import", "--skip-bad", str(FIX / "bad_record.jsonl"))
    assert result.exit_code == 0
    assert "skipped bad record: " in result.stderr and "line 3: Status" in result.stderr
    assert result.stdout.strip() == ("imported 1 file: 2 new, 0 updated, 0 unchanged; 0 tasks of other types "
                                     "skipped; 1 bad record skipped")


def test_import_command_missing_region_is_exit_2(tmp_path):
    result = run(tmp_path, "import", str(FIX / "listtasks_raw.json"))
    assert result.exit_code == 2
    assert "pass --region" in result.output


def test_import_command_missing_file_is_exit_2_and_creates_no_store(tmp_path):
    result = run(tmp_path, "import", str(tmp_path / "nope.json"))
    assert result.exit_code == 2 and "no such file" in result.output
    assert not (tmp_path / "s.duckdb").exists()


def test_an_mns_http_push_with_a_base64_message_is_unwrapped(store):
    summary = import_files(store, [FIX / "mns_http_push_base64.json"])
    assert summary.files[0].kind == "mns" and summary.new == 1
    r = store.tasks_frame().iloc[0]
    assert (r.region, r.project, r.origin) == ("cn-hangzhou", "proj-a", "notification")
