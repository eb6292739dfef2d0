"""IMM task notification bodies in each form an MNS queue may deliver them (imm-api.md section 10), for
tests and the demo: the raw envelope, the topic's JSON and XML push wrappers, and an EventBridge event."""
from __future__ import annotations

import base64
import json
import uuid
from xml.sax.saxutils import escape

ACCOUNT = "1234567890123456"
_CONTENT_FIELDS = ("ProjectName", "TaskId", "TaskType", "Status", "Code", "Message", "StartTime", "EndTime",
                   "UserData")


def _content(task: dict) -> dict:
    """The notification content of a task as the IMM test server holds it (no Tags: IMM sends none); the
    splicing inputs are read from its TaskRequestDefinition."""
    out = {k: task.get(k, "") for k in _CONTENT_FIELDS}
    out.update(DatasetName="", RequestId=str(uuid.uuid4()).upper(), EventSourceId="")
    definition = json.loads(task.get("TaskRequestDefinition") or "{}")
    out.update({k: definition[k] for k in ("Sources", "TargetURI", "ImageFormat") if k in definition})
    return out


def envelope(task: dict, region: str, *, account: str = ACCOUNT) -> str:
    """The MNS/RocketMQ envelope: `content` is the task as an escaped JSON string."""
    ttype = task.get("TaskType", "ImageSplicing")
    return json.dumps({
        "id": uuid.uuid4().hex, "source": "acs.imm", "type": f"imm:Task:{ttype}",
        "subject": f"acs:imm:{region}:{account}:{task['ProjectName']}/imm:Task:{ttype}",
        "time": "1724133063161", "content": json.dumps(_content(task), separators=(",", ":"))})


def eventbridge_event(task: dict, region: str, *, account: str = ACCOUNT) -> str:
    """An EventBridge CloudEvent: `data` is the task as an object."""
    ttype = task.get("TaskType", "ImageSplicing")
    return json.dumps({
        "id": str(uuid.uuid4()), "source": "acs.imm", "specversion": "1.0", "type": f"imm:Task:{ttype}",
        "subject": f"acs:imm:{region}:{account}:{task['ProjectName']}/imm:Task:{ttype}",
        "time": "2024-08-20T07:03:08.570Z", "aliyunaccountid": account, "aliyunregionid": region,
        "aliyuneventbusname": "default", "aliyunpublishtime": "2024-08-20T07:03:08.600Z",
        "data": _content(task)})


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def json_push(body: str, *, topic: str = "imm-topic", encode: bool = False) -> str:
    """The topic's JSON push format around `body` (base64 of it with `encode`)."""
    return json.dumps({"TopicOwner": ACCOUNT, "TopicName": topic, "Subscriber": ACCOUNT,
                       "SubscriptionName": "costkit", "MessageId": uuid.uuid4().hex.upper(),
                       "Message": _b64(body) if encode else body, "MessageMD5": "", "PublishTime": "1724133063200"})


def xml_push(body: str, *, topic: str = "imm-topic", encode: bool = False) -> str:
    """The topic's XML push format around `body` (base64 of it with `encode`)."""
    message = _b64(body) if encode else escape(body)
    return ('<?xml version="1.0" encoding="utf-8"?><Notification xmlns="http://mns.aliyuncs.com/doc/v1/">'
            f"<TopicOwner>{ACCOUNT}</TopicOwner><TopicName>{topic}</TopicName><Subscriber>{ACCOUNT}</Subscriber>"
            f"<SubscriptionName>costkit</SubscriptionName><MessageId>{uuid.uuid4().hex.upper()}</MessageId>"
            f"<MessageMD5></MessageMD5><Message>{message}</Message><PublishTime>1724133063200</PublishTime>"
            "</Notification>")
