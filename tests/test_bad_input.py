"""The bad-input table: every malformed input answered in one line, exit 2, nothing stored changed.

Each row is (id, command args, input files, expected exit code, words the stderr line must contain).
`{d}` in an argument is the test's folder; files are written there first. Every row runs the real CLI
against a copy of a store that already holds tasks and a bill, and checks: the exit code, exactly one
stderr line, no traceback, and (unless the row stores on purpose) the same store contents before and after.
The next bug report becomes a row.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import stat
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner

from costkit.cli.main import main

FIX = Path(__file__).parent / "fixtures"

SCENARIO = """\
name: t
site: cn
start: 2025-01
months: 3
tasks_per_month: 1000
sources_per_task: 2
source_size_mb: 1
target_size_mb: 1
"""


def scenario(**over) -> str:
    """The base scenario with keys replaced (values are YAML text, written as given)."""
    lines = dict(line.split(": ", 1) for line in SCENARIO.splitlines())
    lines.update(over)
    return "".join(f"{k}: {v}\n" for k, v in lines.items())


def entry(**over) -> str:
    """One price entry as a YAML list item (values are YAML text)."""
    e = {"item": "imm.ImageSplicing", "unit": "calls", "price": '"0.001"', "currency": "CNY",
         "confidence": "user", "source": "test"}
    e.update(over)
    items = [f"{k}: {v}" for k, v in e.items()]
    return "- " + "\n  ".join(items) + "\n"


def with_prices(text: str, *entries: str) -> str:
    """A scenario with a `prices:` list of entries (default: an ImageSplicing price, so any month prices)."""
    entries = entries or (entry(),)
    return text + "prices:\n" + "".join("  " + e.replace("\n  ", "\n    ") for e in entries)


def task(n=1, *, start="2025-07-01T01:00:00Z", end="2025-07-01T01:00:02Z", align="1", rotate="0",
         user_data='"x"', tags='{"team": "a"}', project="p") -> str:
    """A ListTasks page with one ImageSplicing task (JSON text; values are JSON text)."""
    return ('{"ProjectName": "%s", "Tasks": [{"TaskId": "ImageSplicing-t%d", "TaskType": "ImageSplicing", '
            '"Status": "Succeeded", "StartTime": "%s", "EndTime": "%s", "UserData": %s, "Tags": %s, '
            '"TaskRequestDefinition": {"Sources": [{"URI": "oss://in/%d.jpg", "Rotate": %s}], '
            '"TargetURI": "oss://out/%d.jpg", "Align": %s}}]}' % (
                project, n, start, end, user_data, tags, n, rotate, n, align))


def bill(amount="0.30", currency2="CNY") -> str:
    head = FIX.joinpath("bills", "en-utf8.csv").read_text(encoding="utf-8").splitlines()[:3]
    third = head[2].replace(",0.30,CNY,", f",{amount},{currency2},")
    return "\n".join(head[:2] + [third]) + "\n"


IMPORT = ("import", "--region", "cn-hangzhou")
ESTIMATE = ("estimate", "{d}/s.yaml")

# (id, args, files, exit code, words in the one stderr line[, stores: the store changes on purpose])
ROWS = [
    # 1. large numbers: bounds, and exact arithmetic for valid ones
    ("tasks-1e400", ESTIMATE, {"s.yaml": scenario(tasks_per_month="1e400")}, 2, ["s.yaml:5", "tasks_per_month", "exponent"]),
    ("tasks-past-bound", ESTIMATE, {"s.yaml": scenario(tasks_per_month="2000000000")}, 2, ["tasks_per_month", "out of range"]),
    ("growth-100", ESTIMATE, {"s.yaml": scenario(monthly_growth="100")}, 2, ["monthly_growth", "out of range"]),
    ("negative-size", ESTIMATE, {"s.yaml": scenario(source_size_mb="-1")}, 2, ["source_size_mb", "out of range"]),
    ("too-many-decimals", ESTIMATE, {"s.yaml": scenario(target_size_mb="0.0000000000001")}, 2, ["target_size_mb", "decimals"]),
    ("valid-huge-forecast", ESTIMATE + ("--format", "json"),
     {"s.yaml": with_prices(scenario(months="120", monthly_growth="0.5", tasks_per_month="1200000"))}, 0, []),
    # 2. YAML numbers only in decimal digits
    ("octal", ESTIMATE, {"s.yaml": scenario(tasks_per_month="010")}, 2, ["tasks_per_month", "write 10, not 010"]),
    ("hex", ESTIMATE, {"s.yaml": scenario(tasks_per_month="0x10")}, 2, ["write 16, not 0x10"]),
    ("base-60", ESTIMATE, {"s.yaml": scenario(tasks_per_month="1:30")}, 2, ["tasks_per_month", "base-60"]),
    ("underscores", ESTIMATE, {"s.yaml": scenario(tasks_per_month="1_000")}, 2, ["write 1000, not 1_000"]),
    ("settings-octal", ("cost", "--month", "2025-07", "--settings", "{d}/set.yaml"),
     {"set.yaml": "source_size_mb: 010\n"}, 2, ["set.yaml:1", "source_size_mb", "write 10"]),
    # 3. years 2000..2100
    ("year-0", ESTIMATE, {"s.yaml": scenario(start="0000-01")}, 2, ["start", "2000..2100"]),
    ("past-2100", ESTIMATE, {"s.yaml": scenario(start="2100-12")}, 2, ["months", "after 2100-12"]),
    ("price-from-year-1", ("prices", "check", "{d}/p.yaml"),
     {"p.yaml": entry(effective_from='"0001-01-01T00:00:00+08:00"')}, 2, ["effective_from", "2000..2100"]),
    # 4. null and mistyped price entries, the same in `prices check` and when a book is loaded
    ("book-unit-null", ("prices", "--prices", "{d}/p.yaml"), {"p.yaml": entry(unit="null")}, 2, ["p.yaml:2", "unit: null"]),
    ("check-unit-null", ("prices", "check", "{d}/p.yaml"), {"p.yaml": entry(unit="null")}, 2, ["unit: null"]),
    ("check-item-null", ("prices", "check", "{d}/p.yaml"), {"p.yaml": entry(item="null")}, 2, ["item: null"]),
    ("scenario-price-unit-null", ESTIMATE, {"s.yaml": with_prices(scenario(), entry(unit="null"))},
     2, ["s.yaml", "unit: null"]),
    ("price-list-unit", ("prices", "check", "{d}/p.yaml"), {"p.yaml": entry(unit="[calls]")}, 2, ["unit", "expected text"]),
    ("price-hex", ("prices", "check", "{d}/p.yaml"), {"p.yaml": entry(price="0x10")}, 2, ["price", "write 16"]),
    ("price-past-bound", ("prices", "check", "{d}/p.yaml"), {"p.yaml": entry(price='"2000000"')}, 2, ["price", "out of range"]),
    # 5. deep and big input
    ("deep-json", IMPORT + ("{d}/deep.json",), {"deep.json": "[" * 100000 + "]" * 100000}, 2, ["deep.json", "nested too deeply"]),
    ("deep-yaml", ESTIMATE, {"s.yaml": "[" * 100000 + "]" * 100000}, 2, ["s.yaml", "nested too deeply"]),
    ("huge-scenario", ESTIMATE, {"s.yaml": "# padding\n" * 500_000}, 2, ["s.yaml", "larger than"]),
    ("huge-json-integer", IMPORT + ("{d}/n.json",), {"n.json": task(align="9" * 5000)}, 2, ["n.json", "not valid JSON"]),
    # 6. out-of-range times
    ("start-year-1", IMPORT + ("{d}/t.json",), {"t.json": task(start="0001-01-01T00:30:00+01:00")}, 2,
     ["t.json", "StartTime", "2000..2100"]),
    # 7. integers past the store's columns, and all files checked before anything is stored
    ("align-past-int32", IMPORT + ("{d}/a-good.json", "{d}/z-align.json"),
     {"a-good.json": task(1), "z-align.json": task(2, align="3000000000")}, 2, ["z-align.json", "Align", "32-bit"]),
    ("rotate-2-40", IMPORT + ("{d}/r.json",), {"r.json": task(rotate=str(2**40))}, 2, ["Sources[0].Rotate", "32-bit"]),
    # 8. a cut emoji
    ("lone-surrogate", IMPORT + ("{d}/u.json",), {"u.json": task(user_data='"abc\\ud83d"')}, 2, ["UserData", "surrogate"]),
    ("lone-surrogate-tag", IMPORT + ("{d}/u.json",), {"u.json": task(tags='{"k": "\\udc00"}')}, 2, ["Tags", "surrogate"]),
    # 9. exponents in bill amounts
    ("bill-1e5", ("import-bill", "{d}/b.csv"), {"b.csv": bill(amount="1e5")}, 2, ["b.csv:3", "PretaxAmount", "exponent"]),
    # 10./11. paths: one line, before the work
    ("store-is-dir", ("tasks",), {"sd/keep": ""}, 2, ["--store", "Is a directory"]),
    ("out-is-dir", ESTIMATE + ("--out", "{d}/od"), {"s.yaml": scenario(), "od/keep": ""}, 2, ["--out", "cannot write", "Is a directory"]),
    ("out-parent-is-file", ESTIMATE + ("--out", "{d}/f/x.html"), {"s.yaml": scenario(), "f": "x"}, 2, ["--out", "Not a directory"]),
    ("audit-out-parent-is-file", ("audit", "--month", "2025-08", "--out", "{d}/f/a.html"), {"f": "x"}, 2,
     ["--out", "cannot write", "Not a directory"]),
    ("cost-lines-out-is-dir", ("cost", "--month", "2025-07", "--lines", "--out", "{d}/od"), {"od/keep": ""}, 2,
     ["--out", "Is a directory"]),
    ("export-out-is-dir", ("export", "--month", "2025-08", "--out", "{d}/od"), {"od/keep": ""}, 2, ["--out", "Is a directory"]),
    # judgement calls (README, "Bad input")
    ("out-read-only-file", ESTIMATE + ("--out", "{d}/ro.txt"), {"s.yaml": scenario(), "ro.txt": "keep"}, 2,
     ["--out", "read-only"]),
    ("end-before-start-warns", IMPORT + ("{d}/t.json",),
     {"t.json": task(start="2025-07-01T02:00:00Z", end="2025-07-01T01:00:00Z")}, 0,
     ["warning", "ImageSplicing-t1", "EndTime", "before StartTime"], True),
    ("bill-mixed-currencies", ("import-bill", "{d}/b.csv"), {"b.csv": bill(currency2="USD")}, 2,
     ["b.csv:3", "Currency", "one currency per month"]),
    ("tasks-since-after-until", ("tasks", "--since", "2025-08-02", "--until", "2025-08-01"), {}, 2,
     ["--until must be after --since"]),
    ("negative-min-billable-kb", ESTIMATE, {"s.yaml": scenario(usage="{min_billable_kb: -1}")}, 2,
     ["min_billable_kb", "out of range"]),
]


def _digest(path: Path) -> str:
    """A hash of every table's rows in the store (sorted), so any write shows."""
    h = hashlib.sha256()
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = [r[0] for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main' ORDER BY 1").fetchall()]
        for t in tables:
            h.update(t.encode())
            for row in con.execute(f'SELECT * FROM "{t}" ORDER BY ALL').fetchall():
                h.update(repr(row).encode())
    finally:
        con.close()
    return h.hexdigest()


@pytest.fixture(scope="module")
def base_store(tmp_path_factory) -> Path:
    """A store with tasks (November 2026 and July 2025) and an August 2025 bill."""
    d = tmp_path_factory.mktemp("base")
    store = d / "s.duckdb"
    (d / "july.json").write_text(task(1, project="proj-a"), encoding="utf-8")
    runner = CliRunner()
    for args in (("import", "--region", "cn-hangzhou", str(FIX / "tasks" / "listtasks_raw.json"), str(d / "july.json")),
                 ("import-bill", str(FIX / "bills" / "en-utf8.csv"))):
        r = runner.invoke(main, ["--store", str(store), *args])
        assert r.exit_code == 0, r.output
    return store


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_bad_input_is_one_line_and_leaves_the_store_alone(row, tmp_path, base_store):
    _id, args, files, code, words, *rest = row
    stores = bool(rest and rest[0])
    for name, content in files.items():
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(content, encoding="utf-8")
    if "ro.txt" in files:
        os.chmod(tmp_path / "ro.txt", stat.S_IRUSR | stat.S_IRGRP)
    store = tmp_path / ("sd" if "sd/keep" in files else "store.duckdb")
    if store.suffix == ".duckdb":
        shutil.copy(base_store, store)
        before = _digest(store)
    argv = ["--store", str(store), *(a.replace("{d}", str(tmp_path)) for a in args)]
    result = CliRunner().invoke(main, argv)
    out = result.stdout + result.stderr
    assert "Traceback" not in out
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == code, out
    err_lines = result.stderr.strip().splitlines()
    if code != 0 or words:
        assert len(err_lines) == 1, result.stderr
        for w in words:
            assert w in err_lines[0], err_lines[0]
    if code == 2:
        assert err_lines[0].startswith("costkit: error: ") or args[:2] == ("prices", "check"), err_lines[0]
    if store.suffix == ".duckdb" and not stores:
        assert _digest(store) == before
    if "ro.txt" in files:
        assert (tmp_path / "ro.txt").read_text() == "keep"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_out_in_a_read_only_folder_is_one_line(tmp_path):
    (tmp_path / "s.yaml").write_text(scenario(), encoding="utf-8")
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    r = CliRunner().invoke(main, ["estimate", str(tmp_path / "s.yaml"), "--out", str(ro / "x.html")])
    assert r.exit_code == 2
    assert r.stderr.strip() == f"costkit: error: --out: cannot write {ro / 'x.html'}: Permission denied"


def test_scenario_size_is_refused_before_parsing(tmp_path):
    import time
    p = tmp_path / "big.yaml"
    p.write_bytes(b"a: [" + b"1, " * 20_000_000 + b"1]\n")  # 60 MB
    t0 = time.monotonic()
    r = CliRunner().invoke(main, ["estimate", str(p)])
    assert r.exit_code == 2 and "larger than" in r.stderr
    assert time.monotonic() - t0 < 2
