"""The local IMM server speaks the protocol the real SDK sends (the collector's tests rely on it)."""
import subprocess
import sys
from pathlib import Path
from datetime import datetime, timedelta, timezone

import pytest
from alibabacloud_imm20200930 import models as m
from alibabacloud_imm20200930.client import Client
from alibabacloud_tea_openapi.exceptions import ClientException
from alibabacloud_tea_openapi.models import Config

from conftest import TEST_AK, TEST_SK
from imm_server import IMMServer, make_task

UTC = timezone.utc
NOW = datetime(2025, 8, 20, 12, tzinfo=UTC)


def client(srv, secret=TEST_SK, **kw):
    return Client(Config(endpoint=srv.host_port, protocol="http", access_key_id=TEST_AK,
                         access_key_secret=secret, **kw))


@pytest.fixture
def srv():
    tasks = [make_task("p1", start=NOW - timedelta(hours=i), task_id=f"ImageSplicing-{i:03d}",
                       status="Running" if i == 0 else "Succeeded") for i in range(250)]
    tasks.append(make_task("p1", start=NOW - timedelta(hours=2), task_type="MediaConvert",
                           task_id="MediaConvert-1"))
    with IMMServer(tasks, now=NOW) as s:
        yield s


def list_all(c, **kw):
    out, token = [], ""
    while True:
        body = c.list_tasks(m.ListTasksRequest(project_name="p1", next_token=token, **kw)).body
        out += body.tasks
        token = body.next_token
        if not token:
            return out


def test_pages_follow_next_token_and_respect_retention(srv):
    tasks = list_all(client(srv), max_results=100, task_types=["ImageSplicing"])
    assert len(tasks) == 7 * 24 + 1  # hours 0..168: older tasks are past the 7-day retention
    assert len({t.task_id for t in tasks}) == len(tasks)


def test_time_range_type_status_sort_and_definition(srv):
    c = client(srv)
    rng = m.TimeRange(start=(NOW - timedelta(hours=5)).isoformat(), end=(NOW - timedelta(hours=1)).isoformat())
    got = list_all(c, start_time_range=rng, task_types=["ImageSplicing"], sort="StartTime", order="desc",
                   request_definition=True, status="Succeeded")
    assert [t.task_id for t in got] == [f"ImageSplicing-{i:03d}" for i in range(1, 6)]
    assert '"TargetURI"' in got[0].task_request_definition
    plain = list_all(c, start_time_range=rng, task_types=["MediaConvert"])
    assert [t.task_id for t in plain] == ["MediaConvert-1"] and plain[0].task_request_definition is None


def test_get_task_and_list_projects(srv):
    c = client(srv)
    body = c.get_task(m.GetTaskRequest(project_name="p1", task_id="ImageSplicing-000", task_type="ImageSplicing",
                                       request_definition=True)).body
    assert body.status == "Running" and body.event_id and body.task_request_definition
    assert [p.project_name for p in c.list_projects(m.ListProjectsRequest()).body.projects] == ["p1"]


def test_wrong_secret_and_unknown_key_are_rejected(srv):
    with pytest.raises(ClientException) as e:
        client(srv, secret="nope").list_tasks(m.ListTasksRequest(project_name="p1"))
    assert e.value.code == "SignatureDoesNotMatch"
    srv.access_key_id = "another-key"
    with pytest.raises(ClientException) as e:
        client(srv).list_tasks(m.ListTasksRequest(project_name="p1"))
    assert e.value.code == "InvalidAccessKeyId.NotFound"


def test_legacy_v2_signature_is_verified(srv):
    assert client(srv, signature_algorithm="v2").list_tasks(m.ListTasksRequest(project_name="p1", max_results=1))
    with pytest.raises(ClientException, match="SignatureDoesNotMatch"):
        client(srv, secret="nope", signature_algorithm="v2").list_tasks(m.ListTasksRequest(project_name="p1"))


def test_max_results_over_100_is_rejected(srv):
    with pytest.raises(ClientException, match="MaxResults"):
        client(srv).list_tasks(m.ListTasksRequest(project_name="p1", max_results=101))


def test_script_mode_serves_a_synthetic_month():
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("imm_server.py")), "--port", "0", "--synthetic-month", "2025-08"],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "http://127.0.0.1:" in line and "synthetic" in line
        host_port = line.split("http://", 1)[1].split()[0]
        c = Client(Config(endpoint=host_port, protocol="http", access_key_id=TEST_AK, access_key_secret=TEST_SK))
        assert [p.project_name for p in c.list_projects(m.ListProjectsRequest()).body.projects] == ["demo-synthetic"]
    finally:
        proc.terminate()
        proc.wait(10)
