"""Calling OSS through oss2: auth from the credential chain, endpoints, per-thread bucket clients and our
own bounded retry loop (oss2 never retries)."""
from __future__ import annotations

import threading
import xml.etree.ElementTree as ET

from costkit.core.errors import BadInput, CostkitError, RuntimeFailure
from costkit.sources.credentials import default_chain, static_keys
from costkit.sources.retry import RetryPolicy

CONNECT_TIMEOUT = 10


class _ChainProvider:
    """oss2 credentials provider backed by the Alibaba Cloud default credential chain."""

    def __init__(self):
        self._client = default_chain()

    def get_credentials(self):
        import oss2
        try:
            c = self._client.get_credential()
        except Exception as e:
            raise RuntimeFailure(f"no usable Alibaba Cloud credentials ({type(e).__name__}): set "
                                 "ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET, or configure "
                                 "the Alibaba Cloud credentials chain") from None
        return oss2.credentials.Credentials(c.access_key_id, c.access_key_secret, c.security_token or "")


def make_auth(credentials=None):
    """oss2 V1 auth: explicit (access_key_id, access_key_secret[, security_token]) / dict, or the chain."""
    import oss2
    if credentials is None:
        return oss2.ProviderAuth(_ChainProvider())
    ak, sk, token = static_keys(credentials)
    if token:
        return oss2.StsAuth(ak, sk, token)
    return oss2.Auth(ak, sk)


def endpoint_for(endpoint: str | None, region: str | None, location: str | None = None) -> str:
    """The OSS endpoint URL: --endpoint as given (a bare host gets https://), else the bucket's location
    (`oss-cn-hangzhou` -> https://oss-cn-hangzhou.aliyuncs.com), else the region's."""
    if endpoint:
        e = endpoint.strip()
        if "://" not in e:
            e = "https://" + e
        if not e.startswith(("http://", "https://")):
            raise BadInput(f"expected http://host[:port] or https://host, got {endpoint!r}", field="--endpoint")
        return e.rstrip("/")
    if location:
        return f"https://{location}.aliyuncs.com"
    if region:
        return f"https://oss-{region}.aliyuncs.com"
    raise BadInput("no OSS region known for a bucket: pass --region or --endpoint", field="--region")


class BucketClients:
    """oss2.Bucket clients per worker thread, keyed by (bucket, endpoint URL)."""

    def __init__(self, auth, endpoint: str | None, bucket_region: dict[str, str]):
        self.auth, self.endpoint, self.bucket_region = auth, endpoint, bucket_region
        self._local = threading.local()

    def __call__(self, name: str, location: str | None):
        import oss2
        cache = getattr(self._local, "buckets", None)
        if cache is None:
            cache = self._local.buckets = {}
        url = endpoint_for(self.endpoint, self.bucket_region.get(name), location)
        c = cache.get((name, url))
        if c is None:
            c = cache[(name, url)] = oss2.Bucket(self.auth, url, name, connect_timeout=CONNECT_TIMEOUT)
        return c


def _classify(e: BaseException) -> tuple[bool, str]:
    """(retry?, description) for an exception from an oss2 call."""
    import oss2
    if isinstance(e, oss2.exceptions.RequestError):
        return True, f"connection error ({str(e)[:160]})"
    if isinstance(e, oss2.exceptions.OssError):
        rid = getattr(e, "request_id", "") or ""
        desc = f"{e.code or 'HTTP ' + str(e.status)} (HTTP {e.status}" + (f", request id {rid})" if rid else ")")
        if e.message:
            desc += f": {str(e.message)[:160]}"
        return (e.status >= 500 or e.status == 429 or e.status < 0), desc
    if isinstance(e, (ValueError, RuntimeError, ET.ParseError, KeyError, AttributeError)):
        return True, f"malformed response ({type(e).__name__}: {str(e)[:160]})"
    if isinstance(e, (ConnectionError, TimeoutError, OSError)):
        return True, f"{type(e).__name__}: {str(e)[:160]}"
    return False, f"{type(e).__name__}: {str(e)[:160]}"


def _hint(e: BaseException) -> str:
    """What to check when a call fails for good with an auth or permission error."""
    if getattr(e, "code", "") in ("SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidSecurityToken"):
        return " (check the AccessKey or the credentials chain)"
    if getattr(e, "status", 0) == 403:
        return " (the RAM user or role needs oss:GetObject/HeadObject, oss:ListObjects, oss:GetBucketInfo)"
    return ""


class Stopped(Exception):
    """The run is stopping (another job failed); raised instead of sending a request."""


class Calls:
    """Runs oss2 calls with bounded retries; counts billed and unbilled answers."""

    def __init__(self, policy: RetryPolicy, stop: threading.Event):
        self.policy, self.stop = policy, stop
        self.lock = threading.Lock()
        self.retries = 0
        self.unbilled = 0

    def __call__(self, what: str, fn, *args, ok_statuses=(), **kw):
        import oss2
        attempts = max(1, self.policy.attempts)
        for attempt in range(1, attempts + 1):
            if self.stop.is_set():
                raise Stopped()
            try:
                return fn(*args, **kw)
            except CostkitError:
                raise
            except Exception as e:
                if isinstance(e, oss2.exceptions.OssError) and e.status in ok_statuses:
                    with self.lock:
                        self.unbilled += 1
                    raise
                retry, desc = _classify(e)
                with self.lock:
                    self.unbilled += 1 if isinstance(e, oss2.exceptions.ServerError) else 0
                if not retry:
                    raise RuntimeFailure(f"inventory: {what} failed: {desc}{_hint(e)}") from None
                if attempt == attempts:
                    raise RuntimeFailure(f"inventory: {what}: gave up after {attempts} attempts; last error: "
                                         f"{desc}") from None
                with self.lock:
                    self.retries += 1
                self.stop.wait(self.policy.delay(attempt))
        raise AssertionError("unreachable")  # pragma: no cover
