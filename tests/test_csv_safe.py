"""Every CSV costkit writes is safe to open in a spreadsheet: formula text gets a leading ', numbers never."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from click.testing import CliRunner

from costkit.cli.main import main
from costkit.core.csvsafe import raw_csv, safe_cell

FIX = Path(__file__).parent / "fixtures"
EVIL = "=cmd|' /C calc'!A0"


@pytest.mark.parametrize("text", [EVIL, "+1+2", "-A1", "@SUM(A1)", "\tx", "\rx"])
def test_formula_text_gets_a_quote(text):
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize("value", ["-0.50", "+3", "-1.5E-7", "12", 12, None, "plain", "", "a=b"])
def test_numbers_and_plain_text_are_unchanged(value):
    assert safe_cell(value) == value


def test_raw_csv_turns_the_rule_off_for_a_block():
    with raw_csv():
        assert safe_cell(EVIL) == EVIL
    assert safe_cell(EVIL) == "'" + EVIL


def _task_page() -> str:
    return ('{"ProjectName": "=HYPERLINK(1)", "Tasks": [{"TaskId": "ImageSplicing-e1", "TaskType": "ImageSplicing", '
            '"Status": "Succeeded", "StartTime": "2025-07-01T01:00:00Z", "EndTime": "2025-07-01T01:00:02Z", '
            '"UserData": "@evil", "Tags": {"t": "%s"}, "TaskRequestDefinition": {"Sources": [{"URI": "oss://in/1.jpg"}], '
            '"TargetURI": "oss://out/1.jpg"}}]}' % EVIL.replace("'", "'"))


@pytest.fixture
def store(tmp_path):
    s = tmp_path / "s.duckdb"
    (tmp_path / "t.json").write_text(_task_page(), encoding="utf-8")
    bill = (FIX / "bills" / "en-utf8.csv").read_text(encoding="utf-8").replace("synthetic-project", "=INST()")
    (tmp_path / "b.csv").write_text(bill, encoding="utf-8")
    for args in (("import", "--region", "cn-hangzhou", str(tmp_path / "t.json")), ("import-bill", str(tmp_path / "b.csv"))):
        r = CliRunner().invoke(main, ["--store", str(s), *args])
        assert r.exit_code == 0, r.output
    return s


def _cells(text: str) -> list[str]:
    return [c for row in csv.reader(io.StringIO(text)) for c in row]


def _run(store, *args) -> str:
    r = CliRunner().invoke(main, ["--store", str(store), *args])
    assert r.exit_code == 0, r.output
    return r.stdout


def _assert_safe(cells):
    assert cells
    assert not [c for c in cells if c[:1] in ("=", "+", "@", "\t", "\r")], cells
    assert not [c for c in cells if c[:1] == "-" and not c.lstrip("-").replace(".", "").isdigit()], cells


def test_tasks_csv_neutralises_project_and_user_data(store):
    cells = _cells(_run(store, "tasks", "--format", "csv"))
    _assert_safe(cells)
    assert "'=HYPERLINK(1)" in cells and "'@evil" in cells


def test_cost_by_project_and_tag_csv(store):
    for by in ("project", "tag:t"):
        cells = _cells(_run(store, "cost", "--month", "2025-07", "--by", by, "--format", "csv"))
        _assert_safe(cells)
        assert any(c.startswith("'=") for c in cells)


def test_cost_lines_csv_to_stdout_and_to_a_file(store, tmp_path):
    cells = _cells(_run(store, "cost", "--month", "2025-07", "--lines"))
    _assert_safe(cells)
    assert "'=HYPERLINK(1)" in cells
    out = tmp_path / "lines.csv"
    _run(store, "cost", "--month", "2025-07", "--lines", "--out", str(out))
    file_cells = _cells(out.read_text(encoding="utf-8"))
    _assert_safe(file_cells)
    assert "'=HYPERLINK(1)" in file_cells


def test_bill_lines_csv(store):
    cells = _cells(_run(store, "bill-lines", "--month", "2025-08", "--format", "csv"))
    _assert_safe(cells)
    assert "'=INST()" in cells


def test_export_csv_is_safe_unless_csv_raw(store, tmp_path):
    safe, raw = tmp_path / "f.csv", tmp_path / "raw.csv"
    _run(store, "export", "--month", "2025-08", "--out", str(safe))
    _assert_safe(_cells(safe.read_text(encoding="utf-8")))
    _run(store, "export", "--month", "2025-08", "--out", str(raw), "--csv-raw")
    assert any(c.startswith("=INST()") for c in _cells(raw.read_text(encoding="utf-8")))
