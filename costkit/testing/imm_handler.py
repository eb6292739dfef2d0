"""The HTTP handler of the local IMM server (and the base of the BSS one): keep-alive bookkeeping, JSON
replies and errors, injected faults, signature checks, and dispatch to the server's ACTIONS."""
from __future__ import annotations

import json
import socket
import time
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl, urlsplit

from costkit.testing.loopback import TrackedConnections
from costkit.testing.imm_signature import verify_request
from costkit.testing.imm_wire import ApiError, Fault, decode_params, decode_params_lenient, request_id


class SignedHandler(TrackedConnections, BaseHTTPRequestHandler):
    """Reads keys, faults, ACTIONS and connection bookkeeping from the server object in `imm`."""

    protocol_version = "HTTP/1.1"
    imm = None

    def log_message(self, *args):  # quiet
        pass

    def do_GET(self):
        self.do_POST()

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        url = urlsplit(self.path)
        pairs = parse_qsl(url.query, keep_blank_values=True)
        raw = dict(pairs)
        action = self.headers.get("x-acs-action") or raw.get("Action") or ""
        imm = self.imm
        try:
            fault = imm._next_fault(action, decode_params_lenient(raw))
            if fault is not None and self._fault(fault):
                return
            self._verify(url.path or "/", pairs, body)
            params = decode_params(raw)
            if imm.record_requests:
                with imm._lock:
                    imm.requests.append((action, params))
            handler = imm.ACTIONS.get(action)
            if handler is None:
                raise ApiError(400, "InvalidAction.NotFound", f"Specified api {action} is not found.")
            if action == "ListTasks" and imm.latency:
                delay = imm.latency(params) if callable(imm.latency) else imm.latency
                if delay:
                    time.sleep(delay)
            self._json(200, handler(imm, params))
        except ApiError as e:
            self._error(e.status, e.code, e.message, e.headers)

    # -- replies
    def _json(self, status, obj, headers=None):
        data = json.dumps(obj, separators=(",", ":")).encode()
        self._raw(status, "application/json;charset=utf-8", data, headers)

    def _raw(self, status, content_type, data: bytes, headers=None, *, length: int | None = None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data) if length is None else length))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status, code, message, headers=None):
        rid = request_id()
        self._json(status, {"RequestId": rid, "HostId": "imm.127.0.0.1", "Code": code, "Message": message,
                            "Recommend": f"https://api.aliyun.com/troubleshoot?q={code}&requestId={rid}"},
                   headers)

    def _drop(self):
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _fault(self, f: Fault) -> bool:
        """Answer (or drop) as the fault says; False when the request should then be served normally."""
        if f.kind == "throttle":
            self._error(503, "Throttling", "Request was denied due to request throttling.",
                        {"x-acs-retry-after": str(f.retry_after_ms)})
        elif f.kind == "throttling_user":
            self._error(400, "Throttling.User", "Request was denied due to user flow control.")
        elif f.kind == "server_503":
            self._error(503, "ServiceUnavailable", "The request has failed due to a temporary failure of the "
                                                   "server.")
        elif f.kind == "html_502":
            page = (b"<html><head><title>502 Bad Gateway</title></head><body><center><h1>502 Bad Gateway"
                    b"</h1></center><hr><center>Tengine</center></body></html>")
            self._raw(502, "text/html", page)
        elif f.kind == "drop":
            self._drop()
        elif f.kind == "error":
            self._error(f.status, f.code or "Error", f.message or "Injected error.")
        elif f.kind == "truncated":
            self._raw(200, "application/json", b'{"RequestId":"X","NextToken":"","Tasks":[{"TaskId":"ImageSpl')
        elif f.kind == "short_body":
            self._raw(200, "application/json", b'{"RequestId":"X","Tasks":[', length=5000)
            self._drop()
        elif f.kind == "slow":
            time.sleep(f.delay)
            return False
        return True

    # -- signature
    def _verify(self, path, pairs, body):
        imm = self.imm
        if not imm.verify_signature:
            return
        verify_request(self.command, self.headers, path, pairs, body, imm.access_key_id, imm.access_key_secret)
