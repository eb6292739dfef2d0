"""Shell conventions on every command: group options after the command, `-` for stdout and stdin, dates
and instants, --help examples, format_version, display-width tables that fit 100 columns, +08:00 times,
-q, shell completion."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from costkit.cli.main import main
from costkit.outputs.text import display_width, text_table

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "costkit" / "data" / "demo-scenario.yaml"
run = CliRunner().invoke


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from costkit.demo.audit import run_demo_audit
    return run_demo_audit(tmp_path_factory.mktemp("conv") / "demo", per_day=12)


def _commands(group: click.Group, prefix=()):
    for name, cmd in sorted(group.commands.items()):
        yield (*prefix, name), cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, (*prefix, name))


ALL = [p for p, _ in _commands(main)]


@pytest.mark.parametrize("path", [()] + ALL, ids=lambda p: " ".join(p) or "costkit")
def test_every_help_has_examples(path):
    r = run(main, [*path, "--help"])
    assert r.exit_code == 0, r.output
    ex = r.output.split("Examples:", 1)
    assert len(ex) == 2, f"no examples in costkit {' '.join(path)} --help"
    assert 1 <= len(re.findall(r"^\s+costkit ", ex[1].split("\n\n")[0], re.M)) <= 2


STORE_COMMANDS = {"advise", ("scenario", "from-history"), ("scenario", "backtest"), "tasks", "coverage", "cost", "inventory", "import", "collect", "import-bill", "fetch-bill",
                  "bill-lines", "export", "audit", "listen", ("prices", "learn")}


@pytest.mark.parametrize("path", sorted(STORE_COMMANDS, key=str), ids=str)
def test_store_is_an_option_of_every_store_command(path):
    path = path if isinstance(path, tuple) else (path,)
    assert "--store" in run(main, [*path, "--help"]).output


def test_store_before_or_after_the_command_is_the_same(demo):
    store = str(demo.store)
    before = run(main, ["--store", store, "tasks", "--format", "json"])
    after = run(main, ["tasks", "--store", store, "--format", "json"])
    assert before.exit_code == after.exit_code == 0, after.output
    assert before.stdout == after.stdout and json.loads(after.stdout)["tasks"]
    # the command's option wins over the group's and over the environment
    r = CliRunner().invoke(main, ["--store", "/nonexistent/x.duckdb", "coverage", "--store", store, "--format",
                                  "json"], env={"COSTKIT_STORE": "/nonexistent/y.duckdb"})
    assert r.exit_code == 0, r.output
    r = run(main, ["audit", "--month", "2025-08", "--store", store, "--prices", str(demo.prices), "--format",
                   "json", "--out", "-", "-q"])
    assert r.exit_code in (0, 3) and json.loads(r.stdout)["format_version"] == 1
    assert r.stderr == "" or r.stderr.startswith("costkit: error: ")   # -q: no item lines


def test_dash_is_stdout_for_out_and_stdin_for_a_scenario(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    by_path = run(main, ["estimate", str(SCENARIO), "--format", "json", "--out", "-"])
    assert by_path.exit_code == 0, by_path.output
    assert not (tmp_path / "-").exists()
    by_stdin = run(main, ["estimate", "-", "--format", "json"], input=SCENARIO.read_text())
    assert by_stdin.exit_code == 0, by_stdin.output
    a, b = json.loads(by_path.stdout), json.loads(by_stdin.stdout)
    assert a["total"] == b["total"] and a["months"] == b["months"]
    bad = run(main, ["estimate", "-"], input="name: x\nsite: cn\nmonths: lots\n")
    assert bad.exit_code == 2 and bad.output.startswith("costkit: error: <stdin>") and bad.output.count("\n") == 1


def test_prices_at_takes_a_date_or_an_instant():
    d = run(main, ["prices", "--at", "2025-07-28", "--format", "json"])
    i = run(main, ["prices", "--at", "2025-07-28T00:00:00+08:00", "--format", "json"])
    assert d.exit_code == i.exit_code == 0, d.output
    assert json.loads(d.stdout) == json.loads(i.stdout)
    assert json.loads(d.stdout)["at"] == "2025-07-28T00:00:00+08:00"
    assert run(main, ["prices", "--at", "2025-07-28T11:00:00"]).exit_code == 2
    table = run(main, ["prices", "--at", "2025-07-28T03:00:00Z"]).stdout
    assert "at 2025-07-28 11:00:00+08:00" in table.splitlines()[0]


def test_every_json_output_has_a_format_version(demo, tmp_path):
    store, prices = str(demo.store), str(demo.prices)
    outputs = {
        "tasks": ["tasks", "--store", store, "--format", "json"],
        "coverage": ["coverage", "--store", store, "--format", "json"],
        "bill-lines": ["bill-lines", "--store", store, "--month", "2025-08", "--format", "json"],
        "prices": ["prices", "--format", "json"],
        "cost": ["cost", "--store", store, "--month", "2025-08", "--prices", prices, "--format", "json"],
        "estimate": ["estimate", str(SCENARIO), "--format", "json"],
        "audit": ["audit", "--store", store, "--month", "2025-08", "--prices", prices, "--format", "json"],
    }
    for name, args in outputs.items():
        r = run(main, args)
        assert r.exit_code in (0, 3), (name, r.output)
        assert isinstance(json.loads(r.stdout)["format_version"], int), name


def test_tables_count_display_width_and_fit_100_columns():
    t = text_table(["项目", "amount"], [["图片拼接", "1.00"], ["oss", "12.50"]])
    lines = t.splitlines()
    assert len({display_width(x) for x in (lines[0], lines[2], lines[3])}) == 1   # right edge aligned
    assert display_width("图片拼接") == 8 and display_width("ｶ") == 1 and display_width("Ａ") == 2
    headers = ["month"] + [f"oss.Item{i}" for i in range(14)]
    rows = [["2025-09"] + ["1234.56"] * 7 + ["0.00"] * 7, ["TOTAL"] + ["2469.12"] * 7 + ["0.00"] * 7]
    narrow = text_table(headers, rows, width=100)
    assert max(display_width(x) for x in narrow.splitlines()[:-1]) <= 100
    assert "oss.Item13" not in narrow.split("(all-zero")[0] and "oss.Item13" in narrow.splitlines()[-1]
    wide = text_table(headers, rows, width=None)
    assert len(wide.splitlines()) == 4 and display_width(wide.splitlines()[0]) > 100
    rows[0][-1] = "5.00"     # not all zero: kept, wrapped into a second block that repeats the month
    wrapped = text_table(headers, rows, width=60)
    assert wrapped.count("2025-09") >= 2 and "oss.Item13" in wrapped.split("(all-zero")[0]


def test_tasks_table_shows_shanghai_times_without_microseconds_and_wide_shows_all(demo):
    r = run(main, ["tasks", "--store", str(demo.store)])
    assert r.exit_code == 0
    body = r.stdout.splitlines()
    assert max(display_width(x) for x in body) <= 100
    assert re.search(r"2025-0\d-\d\d \d\d:\d\d:\d\d\+08:00", r.stdout)
    assert "+00:00" not in r.stdout and not re.search(r":\d\d\.\d{6}", r.stdout)
    w = run(main, ["tasks", "--store", str(demo.store), "--wide"])
    assert max(display_width(x) for x in w.stdout.splitlines()) > 100
    assert w.stdout.splitlines()[0].split() == ["TASK_ID", "REGION", "PROJECT", "STATUS", "START", "END", "SOURCES",
                                                "TARGET", "ORIGIN"]


def test_quiet_prints_nothing_but_warnings(tmp_path):
    fix = ROOT / "tests" / "fixtures" / "tasks" / "tasks.jsonl"
    loud = run(main, ["import", "--store", str(tmp_path / "a.duckdb"), str(fix)])
    quiet = run(main, ["import", "--store", str(tmp_path / "b.duckdb"), str(fix), "-q"])
    assert loud.exit_code == quiet.exit_code == 0
    assert loud.stdout and quiet.stdout == ""
    assert run(main, ["tasks", "--store", str(tmp_path / "b.duckdb"), "--format", "json"]).stdout == \
        run(main, ["tasks", "--store", str(tmp_path / "a.duckdb"), "--format", "json"]).stdout
    for cmd in ("collect", "inventory", "import", "fetch-bill", "listen", "audit", "demo", "import-bill"):
        assert "--quiet" in run(main, [cmd, "--help"]).output, cmd


def test_shell_completion_script_comes_from_the_costkit_command():
    exe = shutil.which("costkit", path=str(Path(sys.executable).parent))
    assert exe
    env = dict(os.environ, _COSTKIT_COMPLETE="bash_source")
    out = subprocess.run([exe], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "_COSTKIT_COMPLETE" in out.stdout and "complete " in out.stdout
    env = dict(os.environ, _COSTKIT_COMPLETE="bash_complete", COMP_WORDS="costkit ta", COMP_CWORD="1")
    out = subprocess.run([exe], env=env, capture_output=True, text=True, timeout=60)
    assert "tasks" in out.stdout
    assert "_COSTKIT_COMPLETE" in (ROOT / "README.md").read_text()
