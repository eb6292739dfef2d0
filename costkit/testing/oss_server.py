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
- `GET /bkt/?lifecycle`: `<LifecycleConfiguration>` rules (ID, Prefix, Status, Expiration Days/Date/
  CreatedBeforeDate, Transition Days+StorageClass, Tag, Filter with Not and size bounds); a bucket without
  rules answers 404 NoSuchLifecycle. `GET /bkt/key?tagging`: `<Tagging><TagSet>` of the object's tags.
- `GET`/`PUT` objects (small bodies; PUT stores the size, no CRC header is returned).
- Errors: `application/xml` `<Error>` bodies with Code, Message, RequestId, HostId.

Faults: `server.add_fault(op, status=503, times=1, key=None)` answers the next `times` requests of `op` ("head",
"list", "info", "adr", "lifecycle", "tagging", "get", "put" or "*") with that status and an XML error; `kind="badxml"` sends a
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
import hashlib
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import ThreadingHTTPServer

from costkit.testing.oss_data import STORAGE_CLASSES, OSSBucket, OSSFault, OSSObject, http_date, list_time
from costkit.testing.oss_handler import handler_class_for
from costkit.testing.oss_signature import verify_v1

UTC = timezone.utc
TEST_ACCESS_KEY_ID = "test-ak"
TEST_ACCESS_KEY_SECRET = "test-secret"

__all__ = ["TEST_ACCESS_KEY_ID", "TEST_ACCESS_KEY_SECRET", "STORAGE_CLASSES", "OSSBucket", "OSSObject", "OSSServer",
           "http_date", "list_time", "main"]


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
        self._faults: list[OSSFault] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), handler_class_for(self))
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    # --- data -----------------------------------------------------------------------------------

    def add_bucket(self, name: str, **kw) -> OSSBucket:
        with self._lock:
            b = self.buckets[name] = OSSBucket(name=name, **kw)
            return b

    def put(self, bucket: str, key: str, size: int, storage_class: str = "Standard", *,
            last_modified: datetime | None = None, restore=None, tags: dict | None = None) -> OSSObject:
        if storage_class not in STORAGE_CLASSES:
            raise ValueError(f"unknown storage class {storage_class!r}")
        with self._lock:
            b = self.buckets.get(bucket) or self.buckets.setdefault(bucket, OSSBucket(name=bucket))
            obj = OSSObject(size=size, storage_class=storage_class,
                            last_modified=last_modified or datetime(2025, 8, 1, tzinfo=UTC), restore=restore,
                            etag=hashlib.md5(f"{bucket}/{key}/{size}".encode()).hexdigest().upper(),
                            tags=dict(tags or {}))
            b.objects[key] = obj
            return obj

    def delete(self, bucket: str, key: str) -> None:
        with self._lock:
            self.buckets[bucket].objects.pop(key, None)

    def add_fault(self, op: str, status: int = 503, times: int = 1, code: str = "ServiceUnavailable",
                  kind: str = "status", key: str | None = None, after: int = 0) -> None:
        """Answer the next `times` requests of `op` with `status` (or a broken listing, kind="badxml");
        with `key`, only requests for that key (a listing: with that prefix), e.g. one denied object;
        with `after`, only once that many matching requests have been answered normally."""
        with self._lock:
            self._faults.append(OSSFault(op, status, times, code, kind, key, after))

    def _take_fault(self, op: str, key: str = "") -> OSSFault | None:
        with self._lock:
            for f in self._faults:
                if f.times > 0 and f.op in (op, "*") and (f.key is None or f.key == key):
                    if f.after > 0:
                        f.after -= 1
                        return None
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

    def verify(self, method: str, headers, bucket: str, key: str, params: list[tuple[str, str]]) -> str | None:
        """None when the V1 signature is valid, else the error code."""
        return verify_v1(method, headers, bucket, key, params, self.access_key_id, self.access_key_secret,
                         self.security_token)


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
