"""IMM task notifications from an MNS queue: the SDK client, and the decoding of each message body.

A body arrives in whatever form the route gave it (../shared/reference/imm-api.md section 10,
operations-facts.md section 2):
- the raw IMM envelope `{"type", "subject", "content": "<escaped task JSON>", ...}` (a SIMPLIFIED topic
  subscription, or IMM writing to a queue-backed topic);
- the topic's JSON push wrapper `{"TopicName", "MessageId", "Message": "<envelope>", ...}`;
- the topic's XML push wrapper `<Notification><TopicName/>...<Message>envelope</Message></Notification>`;
- an EventBridge CloudEvent `{"specversion", "type": "imm:Task:ImageSplicing", "data": {...}}`;
any of them base64-encoded, or not. The SDK's own base64 decoding is turned off (`set_encoding(False)`)
because one raw body would fail the whole batch with `RespDataDamaged`; `decode_body` tries both.

The records come from the existing parsers in `costkit.sources.imm.taskrecord`.
"""
from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from xml.etree import ElementTree

from costkit.core.errors import BadInput, RuntimeFailure, one_line
from costkit.sources.credentials import default_chain, static_keys
from costkit.sources.retry import RetryPolicy
from costkit.sources.imm.taskrecord import (SPLICING, from_eventbridge_event, from_mns_envelope,
                                            is_eventbridge_event, is_mns_envelope, notification_task_type)

UTC = timezone.utc
MAX_BATCH = 16        # MNS BatchReceiveMessage / BatchDeleteMessage take at most 16
MAX_WAIT_SECONDS = 30
_NESTING = 4          # wrappers and base64 layers one body may carry

# Error codes (MNSServerException.type; it carries no HTTP status) worth another try.
RETRYABLE_CODES = {"InternalError", "ServiceUnavailable", "ServiceBusy", "TooManyRequests", "Throttling",
                   "QpsLimitExceeded", "RequestTimeout", "TimeExpired"}
EMPTY_CODE = "MessageNotExist"   # a receive on an empty queue: not an error


class BadMessage(Exception):
    """A body that is not an IMM task notification; `reason` says why (logged with the MessageId)."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass
class Received:
    """One received message: its id, receipt handle, body text and queue bookkeeping."""

    message_id: str
    receipt_handle: str
    body: str
    dequeue_count: int = 1
    enqueue_time: datetime | None = None


@dataclass
class Decoded:
    """What one body held: ImageSplicing records, and how many notifications of other task types."""

    records: list = field(default_factory=list)
    other_types: int = 0


# --- decoding ------------------------------------------------------------------------------------

def decode_body(text: str, *, default_region: str | None = None) -> Decoded:
    """Decode one message body into records (see the module docstring); raise BadMessage with the reason."""
    obj = _unwrap(text, _NESTING)
    if is_mns_envelope(obj):
        kind, convert = "envelope", from_mns_envelope
    elif is_eventbridge_event(obj):
        kind, convert = "event", from_eventbridge_event
    else:
        keys = ", ".join(sorted(obj)[:6]) or "no fields"
        raise BadMessage(f"not an IMM notification (an MNS envelope, a topic push or an EventBridge event): {keys}")
    ttype = notification_task_type(obj)
    if ttype is not None and ttype != SPLICING:
        return Decoded(other_types=1)
    try:
        return Decoded(records=[convert(obj, default_region=default_region)])
    except BadInput as e:
        raise BadMessage(f"{kind}: {getattr(e, 'reason', e)}") from None


def _unwrap(text, depth: int):
    """The innermost JSON object of a body: push wrappers opened, base64 layers decoded."""
    if depth <= 0:
        raise BadMessage("too many wrappers or base64 layers")
    if not isinstance(text, str) or not text.strip():
        raise BadMessage("empty body")
    stripped = text.strip()
    if stripped.startswith("<"):
        return _unwrap(_xml_push_message(stripped), depth - 1)
    try:
        obj = json.loads(stripped)
    except ValueError as e:
        inner = _base64_text(stripped)
        if inner is None:
            raise BadMessage(f"neither JSON, XML nor base64 ({e.msg} at char {e.pos})") from None
        return _unwrap(inner, depth - 1)
    if isinstance(obj, dict) and isinstance(obj.get("Message"), str) and "TopicName" in obj:
        return _unwrap(obj["Message"], depth - 1)
    if not isinstance(obj, dict):
        raise BadMessage(f"expected a JSON object, got {type(obj).__name__}")
    return obj


def _xml_push_message(text: str) -> str:
    try:
        root = ElementTree.fromstring(text)
    except ElementTree.ParseError as e:
        raise BadMessage(f"not valid XML: {e}") from None
    tag = root.tag.rsplit("}", 1)[-1]
    found = [el for el in root if el.tag.rsplit("}", 1)[-1] == "Message"]
    if tag != "Notification" or not found:
        raise BadMessage(f"XML <{tag}> is not a topic push (<Notification> with <Message>)")
    return found[0].text or ""


def _base64_text(text: str) -> str | None:
    try:
        return base64.b64decode(text, validate=True).decode("utf-8")
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None


# --- the SDK -------------------------------------------------------------------------------------

class _ChainCredentials:
    """An MNS SDK credentials provider over the Alibaba Cloud default chain (refreshes as the chain does).
    The token is "" when there is none: the SDK sends a security-token header for anything else."""

    def __init__(self, client):
        self._client = client

    def get_credentials(self):
        from mns.auth import Credentials
        c = self._client.get_credential()
        return Credentials(c.access_key_id, c.access_key_secret, c.security_token or "")


def _provider(credentials):
    from mns.auth import StaticCredentialsProvider
    if credentials is None:
        return _ChainCredentials(default_chain())
    if hasattr(credentials, "get_credential"):
        return _ChainCredentials(credentials)
    ak, sk, token = static_keys(credentials)
    return StaticCredentialsProvider(ak, sk, token or "")


class QueueClient:
    """One MNS queue through `aliyun-mns-sdk`, with retries on 5xx, throttling and network errors.

    `credentials`: None (the default chain), a credentials client, or static keys (see
    `costkit.sources.credentials.static_keys`). Raises RuntimeFailure (exit 1) for errors that another try
    does not fix (access denied, no such queue) and when the retries run out.
    """

    def __init__(self, endpoint: str, queue: str, *, credentials=None, retry: RetryPolicy | None = None,
                 wait_seconds: int = MAX_WAIT_SECONDS, sleep=time.sleep):
        from mns.account import Account
        from mns.mns_exception import MNSClientParameterException
        try:
            account = Account(endpoint, credentials_provider=_provider(credentials))
        except MNSClientParameterException as e:
            raise BadInput(f"not an MNS endpoint (http:// or https:// URL): {e.message}", field="--endpoint") from None
        # A long poll holds the socket for wait_seconds: the timeout must outlast it.
        account.mns_client.set_connection_timeout(wait_seconds + 15)
        self.queue_name = queue
        self._queue = account.get_queue(queue)
        self._queue.set_encoding(False)
        self.retry = retry or RetryPolicy(attempts=8)
        self._sleep = sleep
        self.retries = 0

    def receive(self, n: int, wait_seconds: int) -> list[Received]:
        """Long-poll up to `wait_seconds` for at most `n` messages; [] when the queue stays empty."""
        msgs = self._call("receive", lambda: self._queue.batch_receive_message(n, wait_seconds), empty_ok=True)
        return [Received(m.message_id, m.receipt_handle, _text(m.message_body), m.dequeue_count,
                         datetime.fromtimestamp(m.enqueue_time / 1000, UTC) if m.enqueue_time > 0 else None)
                for m in msgs or ()]

    def delete(self, handles: list[str]) -> list[tuple[str, str]]:
        """Delete by receipt handle, in batches of 16; return (handle, error code) for each that failed
        (such a message comes back after its visibility timeout)."""
        from mns.mns_exception import MNSServerException
        failed = []
        for i in range(0, len(handles), MAX_BATCH):
            chunk = handles[i:i + MAX_BATCH]
            try:
                self._call("delete", lambda: self._queue.batch_delete_message(chunk))
            except _PartialDelete as e:
                failed += e.failed
            except MNSServerException as e:  # pragma: no cover - _call converts these
                failed += [(h, e.type) for h in chunk]
        return failed

    def _call(self, what: str, fn, *, empty_ok: bool = False):
        from mns.mns_exception import MNSClientNetworkException, MNSServerException
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn()
            except MNSServerException as e:
                if empty_ok and e.type == EMPTY_CODE:
                    return []
                if what == "delete" and e.sub_errors:
                    raise _PartialDelete([(s.get("ReceiptHandle"), s.get("ErrorCode")) for s in e.sub_errors]) from None
                if e.type not in RETRYABLE_CODES:
                    raise RuntimeFailure(f"MNS queue {self.queue_name}: {what}: {e.type}: {one_line(e.message, 200)}") from None
                problem = f"{e.type}: {one_line(e.message, 200)}"
            except MNSClientNetworkException as e:
                # Includes a gateway's HTML page, which the SDK cannot read as XML.
                problem = f"network: {e.type}: {one_line(e.message, 200)}"
            if attempt >= self.retry.attempts:
                raise RuntimeFailure(f"MNS queue {self.queue_name}: {what}: gave up after {attempt} attempts: "
                                     f"{problem}")
            self.retries += 1
            self._sleep(self.retry.delay(attempt))


class _PartialDelete(Exception):
    def __init__(self, failed):
        super().__init__(f"{len(failed)} handle(s) not deleted")
        self.failed = failed


def _text(body) -> str:
    if isinstance(body, bytes):
        return body.decode("utf-8", errors="replace")
    return body or ""
