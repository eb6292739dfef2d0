"""A local OSS server on 127.0.0.1 that speaks the protocol oss2 2.19.1 sends and accepts.

Used by the inventory tests, the cost tests and the demo. See ../shared/reference/oss-api.md: the wire rules
implemented here are those of its sections 2-7 and 10.

- Path-style addressing `/<bucket>/<url-quoted key>`; the key is `unquote()`d after the bucket segment.
- The V1 signature (`Authorization: OSS <ak>:<base64 HMAC-SHA1>`) is verified against the test secret;
  STS tokens (`x-oss-security-token`) are accepted when they match `security_token`.
- `HEAD /bkt/key` (and `?objectMeta`): Content-Length, quoted ETag, Last-Modified (RFC 1123 GMT),
  Content-Type, x-oss-object-type, x-oss-storage-class, x-oss-restore when a restore was requested,
  x-oss-request-id. No body on HEAD; errors carry the `<Error>` XML base64-encoded in `x-oss-err`.
- `GET /bkt/?list-type=2`: ListObjectsV2 with prefix, delimiter, start-after, continuation-token, max-keys
  (<= 1000) and encoding-type=url; `LastModified` as `YYYY-MM-DDTHH:MM:SS.000Z`; `<Type>` always present.
- `GET /bkt/?bucketInfo`: the nine mandatory tags plus DataRedundancyType, AccessMonitor and, when set,
  TransferAcceleration.
- `GET /bkt/?bucketArchiveDirectRead`: `<ArchiveDirectReadConfiguration><Enabled>`; a bucket whose
  `archive_direct_read` is None answers 501 NotImplemented (an endpoint that does not expose it).
- `GET`/`PUT` objects (small bodies; PUT stores the size, no CRC header is returned).
- Errors: `application/xml` `<Error>` bodies with Code, Message, RequestId, HostId.

Faults: `server.add_fault(op, status=503, times=1)` answers the next `times` requests of `op` ("head",
"list", "info", "adr", "get", "put" or "*") with that status and an XML error; `kind="badxml"` sends a
listing with a broken `LastModified` (a plain ValueError in oss2). Every request is counted in
`server.counts[op]` and logged in `server.log` as (op, bucket, key, status).

Library use::

    with OSSServer() as srv:
        srv.add_bucket("bkt", location="oss-cn-hangzhou", archive_direct_read=False)
        srv.put("bkt", "img/a.jpg", size=1234, storage_class="IA")
        bucket = oss2.Bucket(oss2.Auth(srv.access_key_id, srv.access_key_secret), srv.endpoint, "bkt")

Script use: `python -m costkit.testing.oss_server --port 9000`.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, unquote, urlsplit
from xml.sax.saxutils import escape

UTC = timezone.utc
TEST_ACCESS_KEY_ID = "test-ak"
TEST_ACCESS_KEY_SECRET = "test-secret"
STORAGE_CLASSES = ("Standard", "IA", "Archive", "ColdArchive", "DeepColdArchive")

# Sub-resources that enter the V1 signed resource (oss2.auth.ProviderAuth._subresource_key_set, abridged
# to those a costkit client can send).
_SUBRESOURCES = frozenset([
    "acl", "bucketInfo", "bucketArchiveDirectRead", "continuation-token", "objectMeta", "restore", "location",
    "transferAcceleration", "versionId", "versions", "versioning", "tagging", "symlink", "stat", "uploads",
    "uploadId", "partNumber", "security-token", "x-oss-process", "response-content-type",
    "response-content-language", "response-cache-control", "response-content-encoding", "response-expires",
    "response-content-disposition", "delete", "lifecycle", "logging", "website", "referer", "cors",
    "encryption", "policy", "inventory", "inventoryId", "replication", "worm", "wormId", "resourceGroup",
])


def http_date(dt: datetime) -> str:
    """RFC 1123 GMT, e.g. `Wed, 01 May 2024 10:00:00 GMT` (what oss2 requires for Last-Modified)."""
    return format_datetime(dt.astimezone(UTC), usegmt=True)


def list_time(dt: datetime) -> str:
    """ListObjectsV2 `LastModified`: exactly `YYYY-MM-DDTHH:MM:SS.000Z`."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


@dataclass
class OSSObject:
    size: int
    storage_class: str = "Standard"
    last_modified: datetime = field(default_factory=lambda: datetime(2025, 8, 1, tzinfo=UTC))
    # None: never restored; "ongoing": a restore in progress; a datetime: restored until then.
    restore: object = None
    etag: str = ""
    object_type: str = "Normal"
    content_type: str = "image/jpeg"

    def restore_header(self) -> str | None:
        if self.restore is None:
            return None
        if self.restore == "ongoing":
            return 'ongoing-request="true"'
        return f'ongoing-request="false", expiry-date="{http_date(self.restore)}"'


@dataclass
class OSSBucket:
    name: str
    location: str = "oss-cn-hangzhou"
    storage_class: str = "Standard"
    redundancy: str = "LRS"
    transfer_acceleration: str | None = None     # "Enabled" / "Disabled" / None (tag omitted)
    archive_direct_read: bool | None = False     # None: the API answers 501 (not exposed)
    creation_date: datetime = field(default_factory=lambda: datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC))
    objects: dict = field(default_factory=dict)  # key -> OSSObject


@dataclass
class _Fault:
    op: str
    status: int
    times: int
    code: str
    kind: str = "status"


class OSSServer:
    """The server; a context manager that serves on 127.0.0.1 (port 0 = any free port)."""

    def __init__(self, port: int = 0, *, access_key_id: str = TEST_ACCESS_KEY_ID,
                 access_key_secret: str = TEST_ACCESS_KEY_SECRET, security_token: str | None = None,
                 check_signature: bool = True, latency: float = 0.0):
        self.access_key_id, self.access_key_secret = access_key_id, access_key_secret
        self.security_token = security_token
        self.check_signature = check_signature
        self.latency = latency
        self.buckets: dict[str, OSSBucket] = {}
        self.counts: dict[str, int] = {}
        self.log: list[tuple[str, str, str, int]] = []
        self._faults: list[_Fault] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    # --- data -----------------------------------------------------------------------------------

    def add_bucket(self, name: str, **kw) -> OSSBucket:
        with self._lock:
            b = self.buckets[name] = OSSBucket(name=name, **kw)
            return b

    def put(self, bucket: str, key: str, size: int, storage_class: str = "Standard", *,
            last_modified: datetime | None = None, restore=None) -> OSSObject:
        if storage_class not in STORAGE_CLASSES:
            raise ValueError(f"unknown storage class {storage_class!r}")
        with self._lock:
            b = self.buckets.get(bucket) or self.buckets.setdefault(bucket, OSSBucket(name=bucket))
            obj = OSSObject(size=size, storage_class=storage_class,
                            last_modified=last_modified or datetime(2025, 8, 1, tzinfo=UTC), restore=restore,
                            etag=hashlib.md5(f"{bucket}/{key}/{size}".encode()).hexdigest().upper())
            b.objects[key] = obj
            return obj

    def delete(self, bucket: str, key: str) -> None:
        with self._lock:
            self.buckets[bucket].objects.pop(key, None)

    def add_fault(self, op: str, status: int = 503, times: int = 1, code: str = "ServiceUnavailable",
                  kind: str = "status") -> None:
        """Answer the next `times` requests of `op` with `status` (or a broken listing, kind="badxml")."""
        with self._lock:
            self._faults.append(_Fault(op, status, times, code, kind))

    def _take_fault(self, op: str) -> _Fault | None:
        with self._lock:
            for f in self._faults:
                if f.times > 0 and f.op in (op, "*"):
                    f.times -= 1
                    return f
        return None

    def reset_counts(self) -> None:
        with self._lock:
            self.counts.clear()
            self.log.clear()

    # --- lifecycle ------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "OSSServer":
        self._thread = threading.Thread(target=self._httpd.serve_forever, name="oss-server", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> "OSSServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- signature ------------------------------------------------------------------------------

    def verify(self, method: str, headers, bucket: str, key: str, params: list[tuple[str, str]]) -> str | None:
        """None when the V1 signature is valid, else the error code."""
        auth = headers.get("Authorization") or ""
        if not auth.startswith("OSS ") or ":" not in auth:
            return "AccessDenied"
        ak, sig = auth[4:].rsplit(":", 1)
        if ak != self.access_key_id:
            return "InvalidAccessKeyId"
        if self.security_token is not None and headers.get("x-oss-security-token") != self.security_token:
            return "InvalidSecurityToken"
        canon = sorted((k.lower(), v) for k, v in headers.items() if k.lower().startswith("x-oss-"))
        head = "".join(f"{k}:{v}\n" for k, v in canon)
        sub = sorted((k, v) for k, v in params if k in _SUBRESOURCES)
        resource = f"/{bucket}/{key}" if bucket else "/"
        if sub:
            resource += "?" + "&".join(f"{k}={v}" if v else k for k, v in sub)
        date = headers.get("x-oss-date") or headers.get("Date") or ""
        text = "\n".join([method, headers.get("Content-MD5", ""), headers.get("Content-Type", ""), date,
                          head + resource])
        want = base64.b64encode(hmac.new(self.access_key_secret.encode(), text.encode("utf-8"),
                                         hashlib.sha1).digest()).decode()
        return None if hmac.compare_digest(want, sig) else "SignatureDoesNotMatch"


def _error_xml(code: str, message: str, request_id: str, extra: dict | None = None) -> bytes:
    parts = [f"<Code>{escape(code)}</Code>", f"<Message>{escape(message)}</Message>",
             f"<RequestId>{request_id}</RequestId>", "<HostId>127.0.0.1</HostId>"]
    for k, v in (extra or {}).items():
        parts.append(f"<{k}>{escape(str(v))}</{k}>")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Error>' + "".join(parts) + "</Error>").encode()


_MESSAGES = {
    "NoSuchKey": "The specified key does not exist.",
    "NoSuchBucket": "The specified bucket does not exist.",
    "SignatureDoesNotMatch": "The request signature we calculated does not match the signature you provided.",
    "InvalidAccessKeyId": "The OSS Access Key Id you provided does not exist in our records.",
    "AccessDenied": "You have no right to access this object.",
    "ServiceUnavailable": "Please reduce your request rate.",
    "NotImplemented": "This API is not supported here.",
    "InvalidArgument": "Invalid argument.",
    "InternalError": "We encountered an internal error. Please try again.",
}


def _make_handler(server: OSSServer):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "AliyunOSS"

        def log_message(self, *args):  # quiet
            pass

        # --- plumbing -----------------------------------------------------------------------

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
            with server._lock:
                server.log.append((self._op, self._bucket, self._key, status))

        def _error(self, status: int, code: str, extra: dict | None = None):
            rid = uuid.uuid4().hex[:24].upper()
            body = _error_xml(code, _MESSAGES.get(code, code), rid, extra)
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
            elif self.command == "GET" and not key:
                op = "list1"
            else:
                op = self.command.lower()
            return op, bucket, key, params, q

        def _handle(self):
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
            fault = server._take_fault(op)
            if fault is not None and fault.kind == "status":
                return self._error(fault.status, fault.code)
            with server._lock:
                b = server.buckets.get(bucket)
            if b is None:
                return self._error(404, "NoSuchBucket", {"BucketName": bucket})
            if op == "list":
                return self._list(b, q, broken=fault is not None and fault.kind == "badxml")
            if op == "info":
                return self._info(b)
            if op == "adr":
                if b.archive_direct_read is None:
                    return self._error(501, "NotImplemented")
                xml = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ArchiveDirectReadConfiguration><Enabled>"
                       f"{'true' if b.archive_direct_read else 'false'}</Enabled></ArchiveDirectReadConfiguration>")
                return self._send(200, xml.encode(), {"Content-Type": "application/xml"})
            if op == "put":
                with server._lock:
                    b.objects[key] = OSSObject(size=len(body), last_modified=datetime.now(UTC).replace(microsecond=0),
                                               etag=hashlib.md5(body).hexdigest().upper(),
                                               storage_class=self.headers.get("x-oss-storage-class") or b.storage_class)
                return self._send(200, b"", {"ETag": f'"{b.objects[key].etag}"'})
            if op in ("head", "get"):
                with server._lock:
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
            return self._error(400, "InvalidArgument")

        def _info(self, b: OSSBucket):
            ta = f"<TransferAcceleration>{b.transfer_acceleration}</TransferAcceleration>" \
                if b.transfer_acceleration is not None else ""
            region = b.location[4:] if b.location.startswith("oss-") else b.location
            xml = ('<?xml version="1.0" encoding="UTF-8"?>\n<BucketInfo><Bucket>'
                   f"<AccessMonitor>Disabled</AccessMonitor>"
                   f"<CreationDate>{list_time(b.creation_date)}</CreationDate>"
                   f"<ExtranetEndpoint>oss-{region}.aliyuncs.com</ExtranetEndpoint>"
                   f"<IntranetEndpoint>oss-{region}-internal.aliyuncs.com</IntranetEndpoint>"
                   f"<Location>{escape(b.location)}</Location>"
                   f"<StorageClass>{b.storage_class}</StorageClass>"
                   f"{ta}"
                   f"<Name>{escape(b.name)}</Name>"
                   f"<DataRedundancyType>{b.redundancy}</DataRedundancyType>"
                   "<Owner><DisplayName>1234</DisplayName><ID>1234</ID></Owner>"
                   "<AccessControlList><Grant>private</Grant></AccessControlList>"
                   "<Comment></Comment><Versioning>Disabled</Versioning>"
                   "</Bucket></BucketInfo>")
            return self._send(200, xml.encode(), {"Content-Type": "application/xml"})

        def _list(self, b: OSSBucket, q: dict, *, broken: bool):
            prefix = q.get("prefix", "")
            delimiter = q.get("delimiter", "")
            start_after = q.get("start-after", "")
            token = q.get("continuation-token", "")
            encode = q.get("encoding-type") == "url"
            try:
                max_keys = int(q.get("max-keys") or 100)
            except ValueError:
                return self._error(400, "InvalidArgument")
            if not 1 <= max_keys <= 1000:
                return self._error(400, "InvalidArgument")
            after = start_after
            if token:
                try:
                    after = max(after, base64.urlsafe_b64decode(token.encode()).decode("utf-8"))
                except Exception:
                    return self._error(400, "InvalidArgument")
            with server._lock:
                keys = sorted(k for k in b.objects if k.startswith(prefix) and k > after)
                objs = {k: b.objects[k] for k in keys}
            contents, prefixes, seen_prefixes = [], [], set()
            truncated, last = False, None
            for k in keys:
                if len(contents) + len(prefixes) >= max_keys:
                    truncated = True
                    break
                if delimiter:
                    rest = k[len(prefix):]
                    if delimiter in rest:
                        cp = prefix + rest[:rest.index(delimiter) + len(delimiter)]
                        if cp not in seen_prefixes:
                            seen_prefixes.add(cp)
                            prefixes.append(cp)
                        last = k
                        continue
                contents.append(k)
                last = k

            def enc(s):
                return quote(s, safe="") if encode else escape(s)

            out = ['<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult>',
                   f"<Name>{escape(b.name)}</Name><Prefix>{enc(prefix)}</Prefix>",
                   f"<StartAfter>{enc(start_after)}</StartAfter>" if start_after else "",
                   f"<MaxKeys>{max_keys}</MaxKeys><Delimiter>{enc(delimiter)}</Delimiter>",
                   "<EncodingType>url</EncodingType>" if encode else "",
                   f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>"]
            if truncated:
                nxt = base64.urlsafe_b64encode(last.encode("utf-8")).decode()
                out.append(f"<NextContinuationToken>{enc(nxt)}</NextContinuationToken>")
            for k in contents:
                o = objs[k]
                lm = list_time(o.last_modified)
                if broken:
                    lm = lm.replace(".000Z", ".123Z")
                r = o.restore_header()
                out.append(f"<Contents><Key>{enc(k)}</Key><LastModified>{lm}</LastModified>"
                           f'<ETag>"{o.etag}"</ETag><Type>{o.object_type}</Type><Size>{o.size}</Size>'
                           f"<StorageClass>{o.storage_class}</StorageClass>"
                           + (f"<RestoreInfo>{escape(r)}</RestoreInfo>" if r else "")
                           + "<Owner><ID>1234</ID><DisplayName>1234</DisplayName></Owner></Contents>")
            for p in prefixes:
                out.append(f"<CommonPrefixes><Prefix>{enc(p)}</Prefix></CommonPrefixes>")
            out.append(f"<KeyCount>{len(contents) + len(prefixes)}</KeyCount></ListBucketResult>")
            return self._send(200, "".join(out).encode("utf-8"), {"Content-Type": "application/xml"})

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

    return Handler


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="Local OSS test server (127.0.0.1 only).")
    ap.add_argument("--port", type=int, default=9000)
    ap.add_argument("--bucket", action="append", default=[], help="Create an empty bucket (repeatable).")
    args = ap.parse_args(argv)
    srv = OSSServer(args.port)
    for name in args.bucket:
        srv.add_bucket(name)
    srv.start()
    print(f"OSS test server on {srv.endpoint} (access key {srv.access_key_id}); Ctrl-C stops it", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        srv.stop()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
