"""The MNS queue wire format for the local test server (`costkit.testing.mns_server`): the request
signature, the XML documents, and request routing, as `aliyun-mns-sdk` 1.3.0 sends and reads them."""
from __future__ import annotations

import base64
import hashlib
import hmac
from xml.etree import ElementTree
from xml.sax.saxutils import escape

XMLNS = "http://mns.aliyuncs.com/doc/v1/"


def epoch_ms(t: float) -> int:
    return int(t * 1000)


def message_xml(m) -> str:
    """One <Message> element of a `mns_server.Message` (the caller puts the namespace on the root)."""
    return (f"<Message><MessageId>{m.message_id}</MessageId><ReceiptHandle>{m.receipt_handle}</ReceiptHandle>"
            f"<MessageBodyMD5>{m.md5}</MessageBodyMD5><MessageBody>{escape(m.body)}</MessageBody>"
            f"<EnqueueTime>{epoch_ms(m.enqueue_time)}</EnqueueTime><NextVisibleTime>{epoch_ms(m.visible_at)}</NextVisibleTime>"
            f"<FirstDequeueTime>{epoch_ms(m.first_dequeue_time)}</FirstDequeueTime>"
            f"<DequeueCount>{m.dequeue_count}</DequeueCount><Priority>{m.priority}</Priority></Message>")


def document(inner: str) -> bytes:
    """An XML document as bytes."""
    return f'<?xml version="1.0" encoding="UTF-8"?>{inner}'.encode("utf-8")


def signature(secret: str, method: str, headers: dict, resource: str) -> str:
    """The MNS signature (base64 HMAC-SHA1) of a request, as `MNSClient.get_signature` computes it;
    `headers` has lower-case names."""
    mns_headers = "".join(f"{k}:{headers[k]}\n" for k in sorted(headers) if k.startswith("x-mns-"))
    text = (f"{method}\n{headers.get('content-md5', '')}\n{headers.get('content-type', '')}\n"
            f"{headers.get('date', '')}\n{mns_headers}{resource}")
    return base64.b64encode(hmac.new(secret.encode("utf-8"), text.encode("utf-8"), hashlib.sha1).digest()).decode()


class Reject(Exception):
    """A request refused with an MNS error: HTTP status, Code, Message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message



def action_of(method: str, parts: list, params: dict) -> str | None:
    """The MNS action of a request on /queues/<q>/messages; None for anything else."""
    if len(parts) != 3 or parts[0] != "queues" or parts[2] != "messages":
        return None
    if method == "GET":
        return "BatchReceiveMessage" if "numOfMessages" in params else "ReceiveMessage"
    if method == "DELETE":
        return "DeleteMessage" if "ReceiptHandle" in params else "BatchDeleteMessage"
    return "SendMessage" if method == "POST" else None


def int_param(params: dict, name: str, low: int, high: int) -> int:
    try:
        v = int(params[name])
    except (KeyError, ValueError):
        raise Reject(400, "InvalidArgument", f"{name}: not an integer") from None
    if not low <= v <= high:
        raise Reject(400, "InvalidArgument", f"{name}: {v} is not in {low}..{high}")
    return v


def parse_xml(body: bytes):
    try:
        return ElementTree.fromstring(body)
    except ElementTree.ParseError as e:
        raise Reject(400, "MalformedXML", f"The request body is not valid XML: {e}") from None




def error_xml(code: str, message: str, request_id: str, host_id: str) -> bytes:
    """The MNS error document (what the SDK's ErrorDecoder reads)."""
    return document(f'<Error xmlns="{XMLNS}"><Code>{code}</Code><Message>{escape(message)}</Message>'
                    f"<RequestId>{request_id}</RequestId><HostId>{host_id}</HostId></Error>")
