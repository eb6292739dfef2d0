"""`costkit collect` against the local IMM server over real HTTP, with the faults of issue 3."""
import random
import time
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from conftest import TEST_AK, TEST_SK
from costkit.cli.main import main
from costkit.sources.endpoint import parse_endpoint
from costkit.sources.imm.collect import collect
from costkit.sources.imm.plan import make_slices
from costkit.sources.retry import RetryPolicy
from costkit.core.errors import BadInput, RuntimeFailure
from costkit.store.db import Store
from imm_server import IMMServer, make_task

UTC = timezone.utc
REGION = "cn-test"
CREDS = {"access_key_id": TEST_AK, "access_key_secret": TEST_SK}


def fast_retry(attempts=6):
    return RetryPolicy(attempts=attempts, base=0.001, cap=0.005, rng=random.Random(0))


@pytest.fixture
def now():
    return datetime.now(UTC).replace(microsecond=0)


@pytest.fixture
def imm():
    srv = IMMServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def store_path(tmp_path):
    return str(tmp_path / "costkit.duckdb")


def run_cli(store_path, *args, retry=None):
    obj = {"collect_kwargs": {"credentials": CREDS, "retry": retry or fast_retry()}}
    return CliRunner().invoke(main, ["--store", store_path, "collect", "--region", REGION, *args], obj=obj)


def stored(store_path, project=None):
    with Store.open(store_path) as st:
        df = st.tasks_frame(project=project)
    return {r.task_id: r.status for r in df.itertuples()}


def served(srv, project=None):
    return {t["TaskId"]: t["Status"] for t in srv.listed_tasks(project)}


def spread(project, now, n, hours=100, **kw):
    """n tasks spread over the last `hours` hours."""
    return [make_task(project, start=now - timedelta(hours=hours) * (i + 0.5) / n, **kw) for i in range(n)]


def test_collect_stores_every_listed_splice_and_skips_other_types(imm, store_path, now):
    imm.tasks += spread("p1", now, 250) + spread("p1", now, 20, task_type="MediaConvert")
    imm.tasks.append(make_task("p1", start=now - timedelta(hours=3), status="Failed"))
    r = run_cli(store_path, "--project", "p1", "--endpoint", imm.endpoint)
    assert r.exit_code == 0, r.output
    assert stored(store_path) == served(imm, "p1")
    assert len(stored(store_path)) == 251
    assert "251 new, 0 updated, 0 unchanged tasks" in r.stdout
    assert r.stderr == ""  # no progress bar in a pipe
    # Sources and TargetURI come from the request definition (RequestDefinition=True on the wire).
    with Store.open(store_path) as st:
        row = st.tasks_frame().iloc[0]
    assert row["sources"][0]["uri"].startswith("oss://bkt/in/") and row["target_uri"].startswith("oss://bkt/out/")
    params = [p for a, p in imm.requests if a == "ListTasks"]
    assert all(p["TaskTypes"] == ["ImageSplicing"] and p["RequestDefinition"] is True
               and p["MaxResults"] == "100" for p in params)


def test_rerun_finds_the_tasks_unchanged(imm, store_path, now):
    imm.tasks += spread("p1", now, 30, hours=1)
    assert run_cli(store_path, "--project", "p1", "--endpoint", imm.endpoint).exit_code == 0
    r = run_cli(store_path, "--project", "p1", "--endpoint", imm.endpoint)
    assert "0 new, 0 updated, 30 unchanged tasks" in r.stdout


@pytest.mark.parametrize("fault,kw", [
    ("throttle", {"retry_after_ms": 5}),     # 503 + x-acs-retry-after: ThrottlingException
    ("throttling_user", {}),                 # 400 Throttling.User: ClientException
    ("server_503", {}),                      # 503 JSON without retry-after: ServerException
    ("html_502", {}),                        # gateway HTML page: UnretryableException
    ("drop", {}),                            # connection closed without a reply
    ("truncated", {}),                       # 200 with a cut-off JSON body
    ("short_body", {}),                      # connection closed in the middle of the body
    ("error", {"status": 429, "code": "TooManyRequests"}),
    ("error", {"status": 500, "code": "InternalError"}),
])
def test_transient_faults_are_retried_and_nothing_is_lost(imm, store_path, now, fault, kw):
    imm.tasks += spread("p1", now, 450)
    imm.add_fault(fault, times=3, skip=2, **kw)
    r = run_cli(store_path, "--project", "p1", "--endpoint", imm.endpoint)
    assert r.exit_code == 0, r.output
    assert stored(store_path) == served(imm, "p1")
    assert imm.faults[0].fired == 3


def test_throttling_waits_at_least_the_retry_after(imm, store_path, now):
    imm.tasks += spread("p1", now, 10, hours=1)
    imm.add_fault("throttle", times=2, retry_after_ms=150)
    with Store.open(store_path) as st:
        t0 = time.monotonic()
        s = collect(st, region=REGION, projects=["p1"], endpoint=imm.endpoint, credentials=CREDS,
                    retry=fast_retry(), concurrency=1)
        assert time.monotonic() - t0 >= 0.3
    assert s.new == 10


def test_exhausted_attempts_exit_1_record_a_failed_run_and_keep_the_checkpoint(imm, store_path, now):
    imm.tasks += spread("p1", now, 20, hours=1)
    assert run_cli(store_path, "--project", "p1", "--endpoint", imm.endpoint).exit_code == 0
    with Store.open(store_path) as st:
        before = st.get_checkpoint(REGION, "p1")
    imm.add_fault("throttle", times=None, retry_after_ms=1)
    r = run_cli(store_path, "--project", "p1", "--endpoint", imm.endpoint, retry=fast_retry(attempts=4))
    assert r.exit_code == 1
    assert "gave up after 4 attempts" in r.stderr and "Throttling" in r.stderr
    assert "checkpoint kept" in r.stderr
    with Store.open(store_path) as st:
        assert st.get_checkpoint(REGION, "p1") == before
        runs = st.runs_frame(region=REGION, project="p1")
    assert list(runs["ok"]) == [True, False]
    assert runs["errors"].iloc[-1]


def test_checkpoint_advances_only_over_the_completed_prefix_of_slices(imm, store_path, now):
    imm.tasks += spread("p1", now, 300, hours=24 * 6)
    since, until = now - timedelta(days=6), now - timedelta(hours=1)
    slices = make_slices(since, until, 1)
    bad_start = slices[3][0] - timedelta(seconds=1)
    imm.add_fault("server_503", times=None,
                  match=lambda p: p.get("StartTimeRange", {}).get("Start") == bad_start.strftime("%Y-%m-%dT%H:%M:%SZ"))
    with Store.open(store_path) as st:
        st.set_checkpoint(REGION, "p1", since)
        with pytest.raises(RuntimeFailure, match="gave up after 3 attempts"):
            collect(st, region=REGION, projects=["p1"], endpoint=imm.endpoint, credentials=CREDS,
                    retry=fast_retry(attempts=3), concurrency=1, since=since, until=until)
        assert st.get_checkpoint(REGION, "p1") == slices[2][1]
        # A rerun from the checkpoint, once the fault clears, completes the history.
        imm.clear_faults()
        collect(st, region=REGION, projects=["p1"], endpoint=imm.endpoint, credentials=CREDS,
                retry=fast_retry(), concurrency=1, now=now)
        assert st.get_checkpoint(REGION, "p1") == now
    assert stored(store_path) == served(imm, "p1")


def test_signature_mismatch_is_a_clear_error_without_the_secret(imm, store_path, now):
    imm.tasks += spread("p1", now, 5, hours=1)
    imm.access_key_secret = "the-server-expects-another-secret"
    r = run_cli(store_path, "--project", "p1", "--endpoint", imm.endpoint, "--concurrency", "1")
    assert r.exit_code == 1
    assert "SignatureDoesNotMatch" in r.stderr and "check the AccessKey" in r.stderr
    assert TEST_SK not in r.output and imm.access_key_secret not in r.output
    assert imm.request_count("ListTasks") == 1  # not retried


def test_forbidden_is_not_retried(imm, store_path, now):
    imm.tasks += spread("p1", now, 5, hours=1)
    imm.add_fault("error", times=None, status=403, code="Forbidden.NoPermission", message="denied")
    r = run_cli(store_path, "--project", "p1", "--endpoint", imm.endpoint, "--concurrency", "1")
    assert r.exit_code == 1 and "Forbidden.NoPermission" in r.stderr
    assert imm.request_count("ListTasks") == 1


def test_a_task_on_two_pages_is_stored_once(store_path, now):
    with IMMServer(spread("p1", now, 230, hours=2), duplicate_across_pages=True) as srv:
        with Store.open(store_path) as st:
            s = collect(st, region=REGION, projects=["p1"], endpoint=srv.endpoint, credentials=CREDS,
                        retry=fast_retry(), since=now - timedelta(hours=3), until=now, concurrency=1)
            assert st.count_tasks() == 230
        listed = sum(1 for a, _ in srv.requests if a == "ListTasks")
        assert listed >= 3 and s.new == 230 and s.unchanged == 0
        assert stored(store_path) == served(srv, "p1")


def test_running_then_succeeded_between_runs_is_updated(imm, store_path, now):
    imm.tasks += spread("p1", now, 40, hours=10)
    # One started just before the next run's overlap, one long before it: both must be re-read.
    recent = make_task("p1", start=now - timedelta(minutes=30), status="Running")
    old = make_task("p1", start=now - timedelta(hours=20), status="Running")
    imm.tasks += [recent, old]
    with Store.open(store_path) as st:
        collect(st, region=REGION, projects=["p1"], endpoint=imm.endpoint, credentials=CREDS,
                retry=fast_retry(), now=now)
        assert stored(store_path)[recent["TaskId"]] == "Running"
        later = now + timedelta(hours=6)
        imm.now = later
        for t in (recent, old):
            imm.update_task(t["TaskId"], Status="Succeeded", EndTime=t["StartTime"], Progress=100)
        s = collect(st, region=REGION, projects=["p1"], endpoint=imm.endpoint, credentials=CREDS,
                    retry=fast_retry(), now=later)
    assert s.updated == 2 and s.new == 0
    got = stored(store_path)
    assert got[recent["TaskId"]] == got[old["TaskId"]] == "Succeeded"
    assert got == served(imm, "p1")


def test_tasks_older_than_7_days_are_not_listed_and_the_lost_window_is_named(imm, store_path, now):
    t0 = now - timedelta(days=20)
    imm.tasks += [make_task("p1", start=t0 + timedelta(hours=6 * i)) for i in range(4 * 20)]
    imm.now = t0 + timedelta(days=2)
    warnings = []
    with Store.open(store_path) as st:
        collect(st, region=REGION, projects=["p1"], endpoint=imm.endpoint, credentials=CREDS,
                retry=fast_retry(), now=imm.now, warn=warnings.append)
        assert warnings == []
        first_end = imm.now
        # Nine days without a run: IMM has dropped what started before now - 7 d.
        imm.now = first_end + timedelta(days=9)
        s = collect(st, region=REGION, projects=["p1"], endpoint=imm.endpoint, credentials=CREDS,
                    retry=fast_retry(), now=imm.now, warn=warnings.append)
    assert len(warnings) == 1 and s.warnings == warnings
    lost_from, lost_to = first_end, imm.now - timedelta(days=7)
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    assert f"from {lost_from.strftime(fmt)} to {lost_to.strftime(fmt)}" in warnings[0]
    assert "may already be lost" in warnings[0]
    got = stored(store_path)
    gap = [t["TaskId"] for t in imm.tasks if lost_from < datetime.fromisoformat(t["StartTime"]) < lost_to]
    assert gap and not set(gap) & set(got)
    listable = {k for k, t in ((t["TaskId"], t) for t in imm.listed_tasks("p1"))
                if datetime.fromisoformat(t["StartTime"]) <= imm.now}
    assert listable and listable <= set(got)


def test_retention_warning_on_the_cli(imm, store_path, now):
    imm.tasks += spread("p1", now, 5, hours=1)
    with Store.open(store_path) as st:
        run = st.begin_run("listtasks", REGION, "p1", now - timedelta(days=9), now - timedelta(days=8))
        st.finish_run(run, pages=1, new=0, updated=0, unchanged=0, errors=[], ok=True)
    r = run_cli(store_path, "--project", "p1", "--endpoint", imm.endpoint)
    assert r.exit_code == 0
    assert "warning" in r.stderr and "may already be lost" in r.stderr


def test_all_projects_lists_the_projects(store_path, now):
    tasks = spread("alpha", now, 120, hours=5) + spread("beta", now, 7, hours=5)
    with IMMServer(tasks, projects=["alpha", "beta", "empty"]) as srv:
        r = run_cli(store_path, "--all-projects", "--endpoint", srv.endpoint)
        assert r.exit_code == 0, r.output
        assert "collected 3 project(s)" in r.stdout
        assert stored(store_path) == served(srv)
        assert srv.request_count("ListProjects") == 1


def test_project_and_all_projects_are_exclusive(store_path, imm):
    r = run_cli(store_path, "--all-projects", "--project", "p1", "--endpoint", imm.endpoint)
    assert r.exit_code == 2
    r = run_cli(store_path, "--endpoint", imm.endpoint)
    assert r.exit_code == 2 and "--all-projects" in r.stderr


def test_unknown_project_is_an_error(store_path):
    with IMMServer([], projects=["p1"]) as srv:
        r = run_cli(store_path, "--project", "nope", "--endpoint", srv.endpoint)
    assert r.exit_code == 1 and "ResourceNotFound" in r.stderr


@pytest.mark.parametrize("value,expected", [
    ("http://127.0.0.1:8080", ("127.0.0.1:8080", "http")),
    ("http://127.0.0.1:8080/", ("127.0.0.1:8080", "http")),
    ("https://imm-vpc.cn-hangzhou.aliyuncs.com", ("imm-vpc.cn-hangzhou.aliyuncs.com", "https")),
    ("imm-vpc.cn-hangzhou.aliyuncs.com", ("imm-vpc.cn-hangzhou.aliyuncs.com", "https")),
    (None, ("imm.cn-test.aliyuncs.com", "https")),
])
def test_endpoint_forms(value, expected):
    assert parse_endpoint(value, "cn-test") == expected


@pytest.mark.parametrize("value", ["ftp://host", "http://", "http://host:port", "host/path", "http://h/x"])
def test_bad_endpoint_is_exit_2(store_path, value):
    r = run_cli(store_path, "--project", "p1", "--endpoint", value)
    assert r.exit_code == 2 and "--endpoint" in r.stderr


def test_endpoint_with_trailing_slash_works(imm, store_path, now):
    imm.tasks += spread("p1", now, 3, hours=1)
    r = run_cli(store_path, "--project", "p1", "--endpoint", imm.endpoint + "/")
    assert r.exit_code == 0 and "3 new" in r.stdout


@pytest.mark.parametrize("args", [
    ["--since", "2025-08-01T00:00:00"],                   # no offset
    ["--since", "yesterday"],
    ["--since", "2025-08-02T00:00:00Z", "--until", "2025-08-01T00:00:00Z"],
    ["--concurrency", "0"],
])
def test_bad_input_is_exit_2_with_one_line(imm, store_path, args):
    r = run_cli(store_path, "--project", "p1", "--endpoint", imm.endpoint, *args)
    assert r.exit_code == 2
    assert len(r.stderr.strip().splitlines()) == 1
    assert imm.request_count("ListTasks") == 0


def test_explicit_window_is_collected_and_reported(imm, store_path, now):
    imm.tasks += spread("p1", now, 48, hours=48)
    since, until = now - timedelta(hours=24), now - timedelta(hours=12)
    r = run_cli(store_path, "--project", "p1", "--endpoint", imm.endpoint,
                "--since", since.isoformat(), "--until", until.isoformat())
    assert r.exit_code == 0
    expected = {t["TaskId"] for t in imm.tasks
                if since <= datetime.fromisoformat(t["StartTime"]) < until}
    assert expected <= set(stored(store_path)) and len(stored(store_path)) <= len(expected) + 2
    with Store.open(store_path) as st:
        runs = st.runs_frame(region=REGION, project="p1")
        # A window that does not join on to a checkpoint does not create one... unless it is the first.
        assert st.get_checkpoint(REGION, "p1") == until
    assert runs["window_start"].iloc[0].to_pydatetime() == since


def test_collect_rejects_naive_datetimes_in_the_api(store_path):
    with Store.open(store_path) as st, pytest.raises(BadInput):
        collect(st, region=REGION, projects=["p1"], since=datetime(2025, 8, 1), credentials=CREDS,
                endpoint="http://127.0.0.1:9")


def test_a_new_project_takes_whatever_the_server_still_lists(store_path, now):
    # A server that keeps tasks longer than IMM's 7 days: the first collection still takes them all.
    tasks = [make_task("p1", start=now - timedelta(days=d)) for d in (1, 8, 20)]
    with IMMServer(tasks, retention=None) as srv:
        r = run_cli(store_path, "--project", "p1", "--endpoint", srv.endpoint)
        assert r.exit_code == 0, r.output
        assert stored(store_path) == served(srv, "p1") and len(served(srv, "p1")) == 3
    with Store.open(store_path) as st:
        run = st.runs_frame().iloc[0]
    # ...but the run only claims the window IMM guarantees.
    assert run["window_start"].to_pydatetime() >= now - timedelta(days=7, minutes=1)


def test_a_rejected_next_token_restarts_the_slice(imm, store_path, now):
    imm.tasks += spread("p1", now, 350, hours=2)
    imm.add_fault("error", times=1, status=400, code="InvalidParameter.NextToken", message="expired",
                  match=lambda p: bool(p.get("NextToken")))
    r = run_cli(store_path, "--project", "p1", "--endpoint", imm.endpoint, "--concurrency", "1")
    assert r.exit_code == 0, r.output
    assert stored(store_path) == served(imm, "p1") and imm.faults[0].fired == 1


def test_a_late_task_is_caught_by_the_daily_reconciliation(imm, store_path, now):
    imm.tasks += spread("p1", now, 30, hours=48)
    kw = dict(region=REGION, projects=["p1"], endpoint=imm.endpoint, credentials=CREDS, retry=fast_retry())
    with Store.open(store_path) as st:
        collect(st, now=now, **kw)
        # A task that shows up late, stamped long before the checkpoint's overlap.
        late = make_task("p1", start=now - timedelta(hours=30))
        imm.tasks.append(late)
        imm.now = now + timedelta(hours=1)
        s = collect(st, now=imm.now, **kw)            # incremental: from the checkpoint - 2 h
        assert s.projects[0].window_start == now - timedelta(hours=2) and s.new == 0
        imm.now = now + timedelta(hours=25)
        s = collect(st, now=imm.now, **kw)            # a day after the last full listing: re-list it all
        assert s.new == 1
    assert stored(store_path) == served(imm, "p1")


def test_listed_tasks_without_a_task_type_are_kept_as_splices(imm, store_path, now):
    # The listing is filtered to ImageSplicing, so an item that omits TaskType (and has an opaque id) is ours.
    task = make_task("p1", start=now - timedelta(hours=2))
    task["TaskId"] = "t-0001"
    imm.tasks.append(task)
    imm.omit_task_fields = {"TaskType"}
    r = run_cli(store_path, "--project", "p1", "--endpoint", imm.endpoint)
    assert r.exit_code == 0, r.output
    assert stored(store_path) == {"t-0001": task["Status"]}


def test_a_task_that_cannot_be_stored_is_reported_not_dropped_silently(imm, store_path, now):
    task = make_task("p1", start=now - timedelta(hours=2))
    task["Status"] = "Cancelled"  # not a documented status
    imm.tasks.append(task)
    r = run_cli(store_path, "--project", "p1", "--endpoint", imm.endpoint)
    assert "warning: p1: 1 problem(s)" in r.stderr and task["TaskId"] in r.stderr


def test_a_200_answer_with_an_error_body_is_retried_not_taken_as_an_empty_page(imm, store_path, now):
    # A gateway that answers 200 with an error object instead of a task list must not end the listing.
    imm.tasks += spread("p1", now, 150)
    imm.add_fault("error", times=2, status=200, code="InternalError", message="try again")
    r = run_cli(store_path, "--project", "p1", "--endpoint", imm.endpoint)
    assert r.exit_code == 0, r.output
    assert stored(store_path) == served(imm, "p1")


def test_a_page_that_stays_malformed_fails_the_run_and_keeps_the_checkpoint(imm, store_path, now):
    imm.tasks += spread("p1", now, 10)
    imm.add_fault("error", times=None, status=200, code="InternalError", message="broken")
    r = run_cli(store_path, "--project", "p1", "--endpoint", imm.endpoint)
    assert r.exit_code == 1
    assert "without a task list" in r.stderr
    with Store.open(store_path) as st:
        assert st.get_checkpoint(REGION, "p1") is None
