"""Normalising one IMM task (ListTasks item, GetTask body, notification) into a store record."""
import json
from datetime import datetime, timezone

import pytest

from costkit.core.errors import BadInput
from costkit.sources.imm.taskrecord import (
    RECORD_KEYS,
    from_api_task,
    from_eventbridge_event,
    from_mns_envelope,
    parse_subject,
    parse_time,
)

UTC = timezone.utc


def _task(**over):
    t = {"TaskId": "ImageSplicing-0001", "TaskType": "ImageSplicing", "Status": "Succeeded", "Code": "",
         "Message": "", "StartTime": "2026-11-20T02:15:03.512Z", "EndTime": "2026-11-20T02:15:05Z",
         "Tags": {"job": "j1", "attempt": 1}, "UserData": '{"id":"abc"}',
         "TaskRequestDefinition": json.dumps({
             "Sources": [{"Rotate": 90, "URI": "oss://bkt/a.jpg"}, {"URI": "oss://bkt/b.png"}],
             "TargetURI": "oss://bkt/out.jpg", "Direction": "horizontal", "ScaleType": "stretch", "Align": 800,
             "Padding": 4, "Margin": 8, "BackgroundColor": "#FFFFFF", "ImageFormat": "png", "Quality": 85})}
    t.update(over)
    return t


@pytest.mark.parametrize("text, expected", [
    ("2024-08-20T07:03:07.36Z", datetime(2024, 8, 20, 7, 3, 7, 360000, UTC)),
    ("2024-08-20T15:03:07.123456789+08:00", datetime(2024, 8, 20, 7, 3, 7, 123456, UTC)),
    ("2024-08-20T15:03:07+0800", datetime(2024, 8, 20, 7, 3, 7, tzinfo=UTC)),
    ("1724133063161", datetime(2024, 8, 20, 5, 51, 3, 161000, UTC)),
    (1724133063161, datetime(2024, 8, 20, 5, 51, 3, 161000, UTC)),
    ("2024-08-20T07:03:07", datetime(2024, 8, 20, 7, 3, 7, tzinfo=UTC)),
])
def test_times_are_parsed_leniently_into_aware_utc(text, expected):
    got = parse_time(text, field="StartTime")
    assert got == expected
    assert got.utcoffset().total_seconds() == 0


@pytest.mark.parametrize("empty", [None, "", "   "])
def test_missing_or_empty_time_is_none(empty):
    assert parse_time(empty, field="EndTime") is None


def test_unparseable_time_is_bad_input_naming_the_field():
    with pytest.raises(BadInput, match="StartTime: not an ISO 8601 time: 'yesterday'"):
        from_api_task(_task(StartTime="yesterday"), region="r", project="p", origin="listtasks")


def test_listtasks_item_becomes_a_record_with_the_request_definition():
    r = from_api_task(_task(), region="cn-hangzhou", project="proj", origin="listtasks")
    assert tuple(r) == RECORD_KEYS
    assert r["sources"] == [{"uri": "oss://bkt/a.jpg", "rotate": 90}, {"uri": "oss://bkt/b.png", "rotate": None}]
    assert r["target_uri"] == "oss://bkt/out.jpg"
    assert r["image_format"] == "png"
    assert r["options"] == {"direction": "horizontal", "scale_type": "stretch", "align": 800, "padding": 4,
                            "margin": 8, "background_color": "#FFFFFF", "quality": 85}
    assert r["tags"] == {"job": "j1", "attempt": 1}
    assert r["user_data"] == '{"id":"abc"}'
    assert r["code"] is None and r["message"] is None  # IMM's "" means unset
    assert r["start_time"] == datetime(2026, 11, 20, 2, 15, 3, 512000, UTC)


def test_task_without_request_definition_has_no_sources():
    t = _task()
    del t["TaskRequestDefinition"]
    r = from_api_task(t, region="r", project="p", origin="listtasks")
    assert r["sources"] == [] and r["target_uri"] is None


def test_task_type_falls_back_to_the_task_id_prefix():
    t = _task()
    del t["TaskType"]
    assert from_api_task(t, region="r", project="p", origin="import")["task_type"] == "ImageSplicing"


@pytest.mark.parametrize("over, message", [
    ({"TaskId": ""}, "TaskId: missing or empty"),
    ({"Status": "Done"}, "Status: 'Done' is not one of Running, Succeeded, Failed"),
    ({"TaskRequestDefinition": "{not json"}, "TaskRequestDefinition: not valid JSON"),
    ({"TaskRequestDefinition": '{"Sources":[{"Rotate":90}]}'}, r"Sources\[0\].URI: missing or empty"),
    ({"TaskRequestDefinition": '{"Sources":[{"URI":"oss://b/a.jpg","Rotate":"ninety"}]}'},
     r"Sources\[0\].Rotate: expected an integer"),
    ({"Tags": ["a"]}, "Tags: expected an object"),
])
def test_malformed_task_is_bad_input_with_a_clear_message(over, message):
    with pytest.raises(BadInput, match=message):
        from_api_task(_task(**over), region="r", project="p", origin="listtasks")


def test_tags_given_as_a_json_string_are_decoded():
    r = from_api_task(_task(Tags='{"job":"j2"}'), region="r", project="p", origin="listtasks")
    assert r["tags"] == {"job": "j2"}


def test_subject_names_region_project_and_type():
    assert parse_subject("acs:imm:cn-beijing:1023****:test-proj/imm:Task:ImageSplicing") == {
        "region": "cn-beijing", "project": "test-proj", "task_type": "ImageSplicing"}
    assert parse_subject(None)["region"] is None


def test_mns_envelope_content_is_decoded_twice_and_region_comes_from_the_subject():
    content = {"TaskId": "ImageSplicing-9", "Status": "Failed", "Code": "ResourceNotFound", "Message": "gone",
               "StartTime": "2024-08-20T07:03:07.36Z", "EndTime": "2024-08-20T07:03:08.57Z", "UserData": ""}
    env = {"id": "1", "source": "acs.imm", "type": "imm:Task:ImageSplicing",
           "subject": "acs:imm:cn-beijing:1023****:proj-m/imm:Task:ImageSplicing", "time": "1724133063161",
           "content": json.dumps(content)}
    r = from_mns_envelope(env)
    assert (r["region"], r["project"], r["task_type"], r["status"]) == ("cn-beijing", "proj-m", "ImageSplicing",
                                                                        "Failed")
    assert r["origin"] == "notification" and r["code"] == "ResourceNotFound" and r["user_data"] is None


def test_mns_envelope_with_broken_content_is_bad_input():
    env = {"type": "imm:Task:ImageSplicing", "subject": "acs:imm:r:u:p/imm:Task:ImageSplicing", "content": "{oops"}
    with pytest.raises(BadInput, match="content: not an escaped JSON object"):
        from_mns_envelope(env)


def test_eventbridge_region_comes_from_aliyunregionid_then_the_subject():
    data = {"ProjectName": "proj-e", "TaskType": "ImageSplicing", "TaskId": "ImageSplicing-e1", "Status": "Succeeded",
            "StartTime": "2026-11-21T08:00:00.5Z", "EndTime": "2026-11-21T08:00:02Z",
            "Sources": [{"URI": "oss://b/1.jpg"}], "TargetURI": "oss://b/o.webp", "ImageFormat": "webp"}
    ev = {"specversion": "1.0", "source": "acs.imm", "type": "imm:Task:ImageSplicing",
          "subject": "acs:imm:cn-shanghai:1023****:proj-e/imm:Task:ImageSplicing", "aliyunregionid": "cn-beijing",
          "data": data}
    assert from_eventbridge_event(ev)["region"] == "cn-beijing"
    del ev["aliyunregionid"]
    r = from_eventbridge_event(ev)
    assert r["region"] == "cn-shanghai"
    assert r["sources"] == [{"uri": "oss://b/1.jpg", "rotate": None}] and r["image_format"] == "webp"


def test_status_case_is_tolerated_but_other_words_are_not():
    assert from_api_task(_task(Status="succeeded"), region="r", project="p", origin="import")["status"] == "Succeeded"
    with pytest.raises(BadInput, match="Status: 'Success' is not one of"):
        from_api_task(_task(Status="Success"), region="r", project="p", origin="import")
