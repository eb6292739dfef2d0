"""The HTTP handler of the local OSS server: path-style routing, request counting and logging, the
signature check, injected faults and the object/bucket operations."""
from __future__ import annotations

import base64
import hashlib
import time
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qsl, unquote, urlsplit

from costkit.testing.oss_data import OSSBucket, OSSObject, http_date
from costkit.testing.oss_wire import (MESSAGES, archive_direct_read_xml, bucket_info_xml, error_xml,
                                      lifecycle_xml, list_page, list_xml, tagging_xml)

UTC = timezone.utc


def handler_class_for(server):
    """The handler class for one OSSServer (its buckets, faults, keys and log)."""
    return type("Handler", (OSSHandler,), {"oss": server})


class OSSHandler(BaseHTTPRequestHandler):
    """Reads buckets, faults, keys, counts and the log from the server object in `oss`."""

    protocol_version = "HTTP/1.1"
    server_version = "AliyunOSS"
    oss = None

    def log_message(self, *args):  # quiet
        pass

    # --- plumbing -------------------------------------------------------------------------------

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, *, length: int | None = None):
        rid = uuid.uuid4().hex[:24].upper()
        self.send_response(status)
        self.send_header("x-oss-request-id", rid)
        self.send_header("Server", "AliyunOSS")
        self.send_header("Date", http_date(datetime.now(UTC)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)
        with self.oss._lock:
            self.oss.log.append((self._op, self._bucket, self._key, status))

    def _xml(self, body: bytes):
        return self._send(200, body, {"Content-Type": "application/xml"})

    def _error(self, status: int, code: str, extra: dict | None = None):
        rid = uuid.uuid4().hex[:24].upper()
        body = error_xml(code, MESSAGES.get(code, code), rid, extra)
        if self.command == "HEAD":
            self._send(status, b"", {"x-oss-err": base64.b64encode(body).decode(),
                                     "Content-Type": "application/xml"}, length=0)
        else:
            self._send(status, body, {"Content-Type": "application/xml"})

    def _route(self):
        parts = urlsplit(self.path)
        params = parse_qsl(parts.query, keep_blank_values=True)
        path = parts.path.lstrip("/")
        bucket, _, raw_key = path.partition("/")
        key = unquote(raw_key)
        q = dict(params)
        if self.command == "HEAD":
            op = "head"
        elif "list-type" in q:
            op = "list"
        elif "bucketInfo" in q:
            op = "info"
        elif "bucketArchiveDirectRead" in q:
            op = "adr"
        elif "lifecycle" in q and not key:
            op = "lifecycle"
        elif "tagging" in q and key and self.command == "GET":
            op = "tagging"
        elif self.command == "GET" and not key:
            op = "list1"
        else:
            op = self.command.lower()
        return op, bucket, key, params, q

    def _handle(self):
        server = self.oss
        self._op, self._bucket, self._key = "?", "", ""
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        op, bucket, key, params, q = self._route()
        self._op, self._bucket, self._key = op, bucket, key
        with server._lock:
            server.counts[op] = server.counts.get(op, 0) + 1
        if server.latency:
            time.sleep(server.latency)
        if server.check_signature:
            bad = server.verify(self.command, self.headers, bucket, key, params)
            if bad:
                return self._error(403, bad)
        fault = server._take_fault(op, q.get("prefix", "") if op == "list" else key)
        if fault is not None and fault.kind == "status":
            return self._error(fault.status, fault.code)
        with server._lock:
            b = server.buckets.get(bucket)
        if b is None:
            return self._error(404, "NoSuchBucket", {"BucketName": bucket})
        if op == "list":
            return self._list(b, q, broken=fault is not None and fault.kind == "badxml")
        if op == "info":
            return self._xml(bucket_info_xml(b))
        if op == "adr":
            if b.archive_direct_read is None:
                return self._error(501, "NotImplemented")
            return self._xml(archive_direct_read_xml(b.archive_direct_read))
        if op == "lifecycle":
            if b.lifecycle is None:
                return self._error(404, "NoSuchLifecycle", {"BucketName": b.name})
            return self._xml(lifecycle_xml(b.lifecycle))
        if op == "tagging":
            with server._lock:
                obj = b.objects.get(key)
            if obj is None:
                return self._error(404, "NoSuchKey", {"Key": key})
            return self._xml(tagging_xml(obj.tags))
        if op == "put":
            return self._put(b, key, body)
        if op in ("head", "get"):
            return self._read(op, b, key)
        return self._error(400, "InvalidArgument")

    # --- operations -----------------------------------------------------------------------------

    def _put(self, b: OSSBucket, key: str, body: bytes):
        with self.oss._lock:
            b.objects[key] = OSSObject(size=len(body), last_modified=datetime.now(UTC).replace(microsecond=0),
                                       etag=hashlib.md5(body).hexdigest().upper(),
                                       storage_class=self.headers.get("x-oss-storage-class") or b.storage_class)
        return self._send(200, b"", {"ETag": f'"{b.objects[key].etag}"'})

    def _read(self, op: str, b: OSSBucket, key: str):
        """HeadObject or GetObject; a cold object not restored (nor Archive with direct read) answers 403."""
        with self.oss._lock:
            obj = b.objects.get(key)
        if obj is None:
            return self._error(404, "NoSuchKey", {"Key": key})
        if op == "get" and obj.storage_class != "Standard" and obj.storage_class != "IA" and not (
                isinstance(obj.restore, datetime) or (obj.storage_class == "Archive" and b.archive_direct_read)):
            return self._error(403, "InvalidObjectState")
        headers = {"Content-Type": obj.content_type, "ETag": f'"{obj.etag}"',
                   "Last-Modified": http_date(obj.last_modified), "x-oss-object-type": obj.object_type,
                   "x-oss-storage-class": obj.storage_class, "Accept-Ranges": "bytes"}
        r = obj.restore_header()
        if r:
            headers["x-oss-restore"] = r
        if op == "head":
            return self._send(200, b"", headers, length=obj.size)
        return self._send(200, b"\0" * obj.size, headers)

    def _list(self, b: OSSBucket, q: dict, *, broken: bool):
        prefix = q.get("prefix", "")
        try:
            max_keys = int(q.get("max-keys") or 100)
        except ValueError:
            return self._error(400, "InvalidArgument")
        if not 1 <= max_keys <= 1000:
            return self._error(400, "InvalidArgument")
        after = q.get("start-after", "")
        token = q.get("continuation-token", "")
        if token:
            try:
                after = max(after, base64.urlsafe_b64decode(token.encode()).decode("utf-8"))
            except Exception:
                return self._error(400, "InvalidArgument")
        with self.oss._lock:
            keys = sorted(k for k in b.objects if k.startswith(prefix) and k > after)
            objs = {k: b.objects[k] for k in keys}
        page = list_page(keys, prefix, q.get("delimiter", ""), max_keys)
        return self._xml(list_xml(b.name, objs, q, max_keys, page, broken=broken))

    def do_HEAD(self):
        self._handle()

    def do_GET(self):
        self._handle()

    def do_PUT(self):
        self._handle()

    def do_POST(self):
        self._handle()

    def do_DELETE(self):
        self._handle()
