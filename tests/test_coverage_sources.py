"""`coverage`: collection, notifications and imported files side by side, and the span a failed collection
run covered (its completed prefix of slices)."""
from datetime import datetime, timezone

import pytest
from click.testing import CliRunner

from costkit.cli.main import main
from costkit.store.db import Store

UTC = timezone.utc
D = lambda d, h=0: datetime(2026, 11, d, h, tzinfo=UTC)   # noqa: E731


@pytest.fixture()
def path(tmp_path):
    p = str(tmp_path / "s.duckdb")
    with Store.open(p) as st:
        run = st.begin_run("listtasks", "cn-test", "p1", D(10), D(12))
        st.finish_run(run, pages=3, new=1, updated=0, unchanged=0, errors=[], ok=True)
        run = st.begin_run("listtasks", "cn-test", "p1", D(12), D(16))
        # failed after its slices up to D(14) completed: that much is covered
        st.finish_run(run, pages=2, new=0, updated=0, unchanged=0, errors=["HTTP 500"], ok=False, covered_end=D(14))
        st.record_import("mns:q", "listen", {"new": 1}, {("cn-test", "p1"): (D(13), D(15))})
        st.record_import("dump.json", "listtasks", {"new": 1}, {("cn-test", "p1"): (D(18), D(19))})
    return p


def test_windows_name_their_sources_and_a_failed_run_covers_its_prefix(path):
    with Store.open(path, read_only=True) as st:
        cov = st.coverage(now=D(20))
        src = st.coverage_sources()
    got = [(r.kind, r.start.to_pydatetime(), r.end.to_pydatetime(), r.via) for r in cov.itertuples()]
    assert got == [("collected", D(10), D(15), "collect+listen"), ("gap", D(15), D(18), None),
                   ("collected", D(18), D(19), "import"), ("gap", D(19), D(20), None)]
    rows = {r.source: (r.first.to_pydatetime(), r.last.to_pydatetime(), r.n) for r in src.itertuples()}
    assert rows == {"collect": (D(10), D(14), 2), "listen": (D(13), D(15), 1), "import": (D(18), D(19), 1)}


def test_coverage_command_shows_the_sources_side_by_side(path):
    r = CliRunner().invoke(main, ["--store", path, "coverage"])
    assert r.exit_code == 0, r.output
    assert "collect+listen" in r.output
    for name in ("collection (collect)", "notifications (listen)", "imported files (import)"):
        assert name in r.output


def test_a_failed_run_without_a_completed_slice_covers_nothing(tmp_path):
    with Store.open(tmp_path / "s.duckdb") as st:
        run = st.begin_run("listtasks", "cn-test", "p1", D(10), D(12))
        st.finish_run(run, pages=0, new=0, updated=0, unchanged=0, errors=["x"], ok=False)
        assert st.coverage(now=D(13)).empty
