"""A local MNS queue server on 127.0.0.1, speaking the queue REST/XML protocol as `aliyun-mns-sdk` 1.3.0
sends and reads it (see ../shared/reference/operations-facts.md section 2).

Requests (the SDK's `mns/mns_client.py`):
- `GET /queues/<q>/messages?waitseconds=W` (ReceiveMessage) and `...?numOfMessages=N&waitseconds=W`
  (BatchReceiveMessage): long polling up to W seconds (at most 30); an empty queue answers 404
  `MessageNotExist`;
- `DELETE /queues/<q>/messages?ReceiptHandle=H` (DeleteMessage) and `DELETE /queues/<q>/messages` with a
  `<ReceiptHandles>` body (BatchDeleteMessage): 204, or 404 with an `<Errors>` list naming each handle that
  failed (the others are deleted);
- `POST /queues/<q>/messages` (SendMessage), so tests can also publish through the SDK.

Every request is signed: `Authorization: MNS <AccessKeyId>:<base64 HMAC-SHA1>` over method, Content-MD5,
Content-Type, Date, the sorted `x-mns-*` headers and the path with its query; a wrong key or signature gets
403 with the MNS error XML, and so does a `security-token` header when the server expects none (the SDK
sends one whenever the token is not ""). Content-MD5 is base64 of the hex MD5 of the body, as the SDK makes it.

Visibility: a received message is invisible for the queue's `visibility_timeout` seconds; it comes back with
a new receipt handle and `DequeueCount` + 1 unless deleted. A receipt handle is valid only until then.

Faults (`add_fault`; `action` is ReceiveMessage, BatchReceiveMessage, DeleteMessage, BatchDeleteMessage or
SendMessage): "server_500" (InternalError), "server_503" (ServiceUnavailable), "throttle" (429
TooManyRequests), "html_502" (a gateway page), "drop" (close without a reply), "slow" (answer after
`delay` s) and "stall" (wait `delay` s, then close without doing anything: a reply that never came).

Library use::

    with MNSServer() as srv:
        srv.enqueue("imm-queue", json.dumps(envelope))
        ... Account(srv.endpoint, srv.access_key_id, srv.access_key_secret).get_queue("imm-queue") ...
        assert srv.queue_size("imm-queue") == 0
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import socket
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl, urlsplit
from xml.sax.saxutils import escape

from costkit.testing.loopback import TrackedConnections
from costkit.testing.imm_server import TEST_ACCESS_KEY_ID, TEST_ACCESS_KEY_SECRET, Fault, LoopbackServer
from costkit.testing.mns_wire import (XMLNS, Reject, action_of, document, error_xml, int_param, message_xml,
                                      parse_xml, signature)

MAX_WAIT = 30
MAX_BATCH = 16
ACTIONS = ("ReceiveMessage", "BatchReceiveMessage", "DeleteMessage", "BatchDeleteMessage", "SendMessage")
FAULT_KINDS = {"server_500", "server_503", "throttle", "html_502", "drop", "slow", "stall"}
_FAULT_REPLIES = {"server_500": (500, "InternalError", "The request processing has failed due to some unknown error."),
                  "server_503": (503, "ServiceUnavailable", "The service is temporarily unavailable."),
                  "throttle": (429, "TooManyRequests", "The request rate exceeds the queue's limit.")}


@dataclass
class Message:
    """One message in a queue; `body` is the text exactly as stored and delivered."""

    message_id: str
    body: str
    enqueue_time: float
    visible_at: float
    priority: int = 8
    dequeue_count: int = 0
    first_dequeue_time: float | None = None
    receipt_handle: str | None = None

    @property
    def md5(self) -> str:
        return hashlib.md5(self.body.encode("utf-8")).hexdigest().upper()


@dataclass
class Queue:
    name: str
    visibility_timeout: float = 30.0
    messages: dict = field(default_factory=dict)   # message_id -> Message, in enqueue order
    deleted: list = field(default_factory=list)    # message ids, in delete order


class MNSServer(LoopbackServer):
    """MNS queues on 127.0.0.1:port. Queues are made by `create_queue` or on first `enqueue`."""

    thread_name = "mns-test-server"

    def __init__(self, *, access_key_id: str = TEST_ACCESS_KEY_ID, access_key_secret: str = TEST_ACCESS_KEY_SECRET,
                 security_token: str | None = None, visibility_timeout: float = 30.0, verify_signature: bool = True,
                 host: str = "127.0.0.1", port: int = 0):
        self.access_key_id, self.access_key_secret = access_key_id, access_key_secret
        self.security_token = security_token
        self.verify_signature = verify_signature
        self.default_visibility = visibility_timeout
        self.queues: dict[str, Queue] = {}
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, int]] = []   # (action, status)
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._init_server(host, port)
        self.handler_class = _Handler

    # --- helpers for tests ---------------------------------------------------------------------

    def create_queue(self, name: str, *, visibility_timeout: float | None = None) -> Queue:
        """Make (or return) the queue `name`; `visibility_timeout` in seconds."""
        with self._lock:
            q = self.queues.get(name)
            if q is None:
                q = self.queues[name] = Queue(name, self.default_visibility)
            if visibility_timeout is not None:
                q.visibility_timeout = visibility_timeout
            return q

    def enqueue(self, queue: str, body: str | bytes, *, base64_encode: bool = False, delay: float = 0.0,
                priority: int = 8) -> str:
        """Put a message in `queue` (made if missing); return its MessageId. Bytes are stored as UTF-8 text,
        or as base64 text with `base64_encode` (what the SDK's default encoding sends)."""
        raw = body.encode("utf-8") if isinstance(body, str) else body
        text = base64.b64encode(raw).decode("ascii") if base64_encode else raw.decode("utf-8")
        return self._put(queue, text, delay, priority)

    def _put(self, queue: str, text: str, delay: float, priority: int) -> str:
        now = time.time()
        mid = uuid.uuid4().hex.upper()
        with self._changed:
            q = self.create_queue(queue)
            q.messages[mid] = Message(mid, text, now, now + delay, priority)
            self._changed.notify_all()
        return mid

    def queue_size(self, queue: str) -> int:
        """Messages not deleted yet, visible or not."""
        with self._lock:
            q = self.queues.get(queue)
            return 0 if q is None else len(q.messages)

    def snapshot(self, queue: str) -> list[dict]:
        """The undeleted messages of `queue`: message_id, body, dequeue_count, visible (now)."""
        now = time.time()
        with self._lock:
            q = self.queues.get(queue)
            return [{"message_id": m.message_id, "body": m.body, "dequeue_count": m.dequeue_count,
                     "visible": m.visible_at <= now} for m in (q.messages.values() if q else ())]

    def deleted(self, queue: str) -> list[str]:
        """MessageIds deleted from `queue`, in order."""
        with self._lock:
            q = self.queues.get(queue)
            return list(q.deleted) if q else []

    def add_fault(self, kind: str, *, action: str | None = "BatchReceiveMessage", **kw) -> Fault:
        """Inject a fault (see the module docstring); `times=None` hits every matching request."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; one of {sorted(FAULT_KINDS)}")
        if action is not None and action not in ACTIONS:
            raise ValueError(f"unknown action {action!r}; one of {ACTIONS}")
        f = Fault(kind, action=action, **kw)
        with self._lock:
            self.faults.append(f)
        return f

    def clear_faults(self) -> None:
        with self._lock:
            self.faults.clear()

    def request_count(self, action: str | None = None, status: int | None = None) -> int:
        with self._lock:
            return sum(1 for a, s in self.requests if (action is None or a == action)
                       and (status is None or s == status))

    # --- queue operations (called by the handler) ----------------------------------------------

    def _receive(self, q: Queue, n: int, wait: float) -> list[Message]:
        deadline = time.time() + wait
        with self._changed:
            while True:
                now = time.time()
                ready = [m for m in q.messages.values() if m.visible_at <= now]
                if ready or now >= deadline or self._stopped:
                    break
                later = [m.visible_at for m in q.messages.values()]
                self._changed.wait(min([deadline] + later) - now)
            ready.sort(key=lambda m: (m.visible_at, m.enqueue_time))
            out = ready[:n]
            for m in out:
                m.dequeue_count += 1
                m.first_dequeue_time = m.first_dequeue_time or now
                m.visible_at = now + q.visibility_timeout
                m.receipt_handle = f"{m.message_id}-{m.dequeue_count}-{uuid.uuid4().hex[:12]}"
            return out

    def _delete(self, q: Queue, handle: str) -> tuple[str, str] | None:
        """Delete the message a valid handle names; None, or (ErrorCode, ErrorMessage)."""
        mid = handle.split("-", 1)[0]
        with self._lock:
            m = q.messages.get(mid)
            if m is None or m.receipt_handle != handle:
                return ("MessageNotExist", "The receipt handle names no message (deleted or received again).")
            if m.visible_at <= time.time():
                return ("MessageNotExist", "The receipt handle has expired: the message is visible again.")
            del q.messages[mid]
            q.deleted.append(mid)
            return None


class _Handler(TrackedConnections, BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    imm: MNSServer   # LoopbackServer.start sets it (the attribute name is the base class's)

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        self._serve()

    do_POST = do_PUT = do_DELETE = do_GET

    # --- plumbing ------------------------------------------------------------------------------

    def _reply(self, status: int, body: bytes = b"", content_type: str = "text/xml;charset=utf-8"):
        self.send_response(status)
        self.send_header("x-mns-request-id", self._rid)
        self.send_header("Server", "AliyunMNS")
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        with self.imm._lock:
            self.imm.requests.append((self._action, status))

    def _error(self, status: int, code: str, message: str):
        self._reply(status, error_xml(code, message, self._rid, self.imm.endpoint))

    def _serve(self):
        self._rid = uuid.uuid4().hex[:24].upper()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        parts = url.path.strip("/").split("/")
        self._action = action_of(self.command, parts, params)
        try:
            if self._action is None:
                raise Reject(400, "InvalidArgument", f"{self.command} {url.path} is not a queue message request")
            self._check_auth(body)
            if self._fault():
                return
            q = self.imm.queues.get(parts[1])
            if q is None:
                raise Reject(404, "QueueNotExist", f"The queue {parts[1]} does not exist.")
            getattr(self, "_op_" + self._action)(q, params, body)
        except Reject as e:
            self._error(e.status, e.code, e.message)

    def _check_auth(self, body: bytes):
        srv = self.imm
        headers = {k.lower(): v for k, v in self.headers.items()}
        auth = headers.get("authorization", "")
        if not auth.startswith("MNS ") or ":" not in auth:
            raise Reject(403, "AccessDenied", "The Authorization header is missing or not 'MNS ak:signature'.")
        if not headers.get("date"):
            raise Reject(403, "AccessDenied", "The Date header is missing.")
        token = headers.get("security-token")
        if token != srv.security_token:
            raise Reject(403, "InvalidSecurityToken", f"The security token {token!r} is not valid here.")
        if body and headers.get("content-md5") != base64.b64encode(hashlib.md5(body).hexdigest().encode()).decode():
            raise Reject(400, "InvalidDigest", "The Content-MD5 does not match the body.")
        if not srv.verify_signature:
            return
        ak, sig = auth[4:].split(":", 1)
        if ak != srv.access_key_id:
            raise Reject(403, "InvalidAccessKeyId", f"The AccessKeyId {ak} does not exist.")
        if not hmac.compare_digest(sig, signature(srv.access_key_secret, self.command, headers, self.path)):
            raise Reject(403, "SignatureDoesNotMatch", "The request signature does not match.")

    def _fault(self) -> bool:
        srv = self.imm
        with srv._lock:
            fault = next((f for f in srv.faults if f.take(self._action, {})), None)
        if fault is None:
            return False
        if fault.kind in ("slow", "stall"):
            time.sleep(fault.delay)
            if fault.kind == "slow":
                return False
        if fault.kind in ("drop", "stall"):
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:   # the client is gone already
                pass
            return True
        if fault.kind == "html_502":
            self._reply(502, b"<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html")
            return True
        self._error(*_FAULT_REPLIES[fault.kind])
        return True

    # --- operations ----------------------------------------------------------------------------

    def _op_ReceiveMessage(self, q, params, body, batch=False):
        n = int_param(params, "numOfMessages", 1, MAX_BATCH) if batch else 1
        wait = int_param(params, "waitseconds", 0, MAX_WAIT) if "waitseconds" in params else 0
        got = self.imm._receive(q, n, wait)
        if not got:
            raise Reject(404, "MessageNotExist", "Message not exist.")
        xml = "".join(message_xml(m) for m in got)
        self._reply(200, document(f'<Messages xmlns="{XMLNS}">{xml}</Messages>' if batch else xml.replace(
            "<Message>", f'<Message xmlns="{XMLNS}">', 1)))

    def _op_BatchReceiveMessage(self, q, params, body):
        self._op_ReceiveMessage(q, params, body, batch=True)

    def _op_DeleteMessage(self, q, params, body):
        err = self.imm._delete(q, params["ReceiptHandle"])
        if err:
            raise Reject(404, *err)
        self._reply(204)

    def _op_BatchDeleteMessage(self, q, params, body):
        handles = [e.text or "" for e in parse_xml(body).iter(f"{{{XMLNS}}}ReceiptHandle")]
        if not handles or len(handles) > MAX_BATCH:
            raise Reject(400, "InvalidArgument", f"ReceiptHandles: 1 to {MAX_BATCH} handles, got {len(handles)}")
        errors = [(h, e) for h in handles if (e := self.imm._delete(q, h))]
        if not errors:
            self._reply(204)
            return
        items = "".join(f"<Error><ErrorCode>{c}</ErrorCode><ErrorMessage>{escape(m)}</ErrorMessage>"
                        f"<ReceiptHandle>{escape(h)}</ReceiptHandle></Error>" for h, (c, m) in errors)
        self._reply(404, document(f'<Errors xmlns="{XMLNS}">{items}</Errors>'))

    def _op_SendMessage(self, q, params, body):
        root = parse_xml(body)
        text = root.findtext(f"{{{XMLNS}}}MessageBody") or ""
        delay = int(root.findtext(f"{{{XMLNS}}}DelaySeconds") or 0)
        mid = self.imm._put(q.name, text, delay, int(root.findtext(f"{{{XMLNS}}}Priority") or 8))
        md5 = q.messages[mid].md5
        self._reply(201, document(f'<Message xmlns="{XMLNS}"><MessageId>{mid}</MessageId>'
                              f"<MessageBodyMD5>{md5}</MessageBodyMD5></Message>"))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="A local MNS queue server on 127.0.0.1 (test keys test-ak/test-secret).")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--queue", action="append", default=[], help="Queue to create (repeatable).")
    p.add_argument("--visibility-timeout", type=float, default=30.0)
    args = p.parse_args(argv)
    srv = MNSServer(port=args.port, visibility_timeout=args.visibility_timeout).start()
    for name in args.queue:
        srv.create_queue(name)
    print(f"MNS test server on {srv.endpoint}", flush=True)
    srv.serve_until_interrupted()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
