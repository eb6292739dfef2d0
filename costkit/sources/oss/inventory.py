"""OSS object and bucket facts for the stored tasks (`costkit inventory`), cached in the store.

For every source and target URI (`oss://bucket/key`) that the stored tasks reference (targets of Succeeded
tasks only: a failed task wrote none) and that the store does not know yet (or checked longer ago than
`max_age`), the inventory reads through oss2 2.19.1: the size, the
storage class (`x-oss-storage-class`), Last-Modified, the restore state (`x-oss-restore`) and whether the
object is gone. Per bucket it records GetBucketInfo's location, default storage class, redundancy and
transfer acceleration, and Archive direct read from GetBucketArchiveDirectRead where the endpoint exposes
it, else from the settings (`buckets: {name: {archive_direct_read: ...}}`, then `archive_direct_read`).

**Which call (the rule).** The URIs of a bucket are grouped by "directory" (the key up to its last `/`).
For a group of n keys:

- HeadObject: n GET-type requests, priced at `oss.GetRequest` for the class the object is expected to
  have (the class cached from an earlier inventory, else the bucket's default class, else Standard);
- ListObjectsV2 over the group's longest common key prefix: at least ceil(n / 1000) PUT-type requests
  (listing is PUT-type for billing, billing-facts.md section 6), priced at `oss.PutRequest` Standard (a
  bucket operation; OSS prices requests by the class of the object, and a listing has none).

The inventory lists when ceil(n / 1000) x PUT price < n x GET price, priced with the `Pricer` against the
site's book at the time of the run; otherwise (ties included) it sends HeadObject. When a price is missing
the request counts decide (fewer requests wins). A listing stops as soon as it has passed the group's last
key, and it switches to HeadObject for the rest of the group when a page turned out dearer than the HEADs
of the keys it found (a prefix holding many unrelated objects). A key the listing has passed without
returning it is gone, as is a key whose HEAD answers 404 NoSuchKey, and every key of a bucket that answers
NoSuchBucket.

**Errors.** Our own retry loop (oss2 never retries): exponential backoff with full jitter on 5xx, 429,
connection errors and malformed responses (oss2 raises plain ValueError/RuntimeError/ParseError for those).
Other errors (403, 400, ...) stop the run at once; when attempts run out the run stops too. Either way the
error names the bucket and key and the facts gathered so far stay stored (RuntimeFailure, exit 1).

**Cost of the inventory itself.** Only 2xx answers are billed (billing-facts.md section 6): each successful
listing page at the PUT price (Standard), each successful HeadObject at the GET price of the class it
returned, GetBucketInfo and GetBucketArchiveDirectRead at the GET price (Standard).

Credentials: the Alibaba Cloud default chain (`alibabacloud_credentials`), or explicit keys for tests.
They are never printed.
"""
from __future__ import annotations

import math
import threading
import time
import xml.etree.ElementTree as ET
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from fractions import Fraction

import pyarrow as pa

from costkit.sources.retry import RetryPolicy
from costkit.sources.credentials import default_chain, static_keys
from costkit.core.errors import BadInput, CostkitError, RuntimeFailure
from costkit.core.money import fmt_quantity, round_money
from costkit.prices.book import STORAGE_CLASSES, load_price_book
from costkit.prices.pricer import Pricer

UTC = timezone.utc
LIST_PAGE = 1000          # ListObjectsV2 max-keys
HEAD_CHUNK = 200          # HEADs per worker job
WRITE_BATCH = 5000        # facts per store transaction
CONNECT_TIMEOUT = 10


def parse_uri(uri: str) -> tuple[str, str] | None:
    """(bucket, key) of `oss://bucket/key`; None when the URI is not of that form."""
    if not isinstance(uri, str) or not uri.startswith("oss://"):
        return None
    bucket, sep, key = uri[6:].partition("/")
    if not bucket or not sep or not key:
        return None
    return bucket, key


def parse_restore(header: str | None) -> tuple[str | None, datetime | None]:
    """(state, expiry) from `x-oss-restore`: (None, None) when absent; ("ongoing", None);
    ("restored", expiry-date)."""
    if not header:
        return None, None
    h = header.replace(" ", "")
    if 'ongoing-request="true"' in h:
        return "ongoing", None
    expiry = None
    marker = 'expiry-date="'
    i = header.find(marker)
    if i >= 0:
        j = header.find('"', i + len(marker))
        try:
            expiry = parsedate_to_datetime(header[i + len(marker):j]).astimezone(UTC)
        except (TypeError, ValueError):
            expiry = None
    return "restored", expiry


@dataclass
class Fact:
    uri: str
    bucket: str
    key: str
    gone: bool
    via: str
    size: int | None = None
    storage_class: str | None = None
    last_modified: datetime | None = None
    restore_state: str | None = None
    restore_expiry: datetime | None = None


@dataclass
class BucketFact:
    bucket: str
    found: bool
    location: str | None = None
    storage_class: str | None = None
    redundancy: str | None = None
    transfer_acceleration: bool | None = None
    archive_direct_read: bool | None = None
    archive_direct_read_source: str | None = None


@dataclass
class InventorySummary:
    """What a run did; `requests` counts successful (billed) requests by API."""

    objects: int = 0
    found: int = 0
    gone: int = 0
    via_list: int = 0
    via_head: int = 0
    buckets: int = 0
    prefixes_listed: int = 0
    requests: dict = field(default_factory=lambda: {"ListObjectsV2": 0, "HeadObject": 0, "GetBucketInfo": 0,
                                                    "GetBucketArchiveDirectRead": 0})
    unbilled: int = 0             # 4xx/5xx answers (not billed by OSS)
    retries: int = 0
    skipped_uris: int = 0         # not oss://bucket/key
    cost: Fraction | None = Fraction(0)
    currency: str = ""
    cost_note: str = ""
    seconds: float = 0.0
    warnings: list = field(default_factory=list)

    def line(self) -> str:
        r = self.requests
        cost = ("unknown" if self.cost is None else
                f"{round_money(self.cost)} {self.currency} (exact {fmt_quantity(self.cost, 10)})")
        text = (f"inventory: {self.objects} objects ({self.found} found, {self.gone} gone; {self.via_list} via "
                f"ListObjectsV2 over {self.prefixes_listed} prefixes, {self.via_head} via HeadObject) in "
                f"{self.buckets} buckets; requests: {r['ListObjectsV2']} ListObjectsV2 (PUT-type), "
                f"{r['HeadObject']} HeadObject (GET-type), {r['GetBucketInfo']} GetBucketInfo, "
                f"{r['GetBucketArchiveDirectRead']} GetBucketArchiveDirectRead (GET-type), {self.unbilled} "
                f"unbilled error answers, {self.retries} retries; own request cost {cost}"
                + (f" [{self.cost_note}]" if self.cost_note else "") + f"; {self.seconds:.1f} s")
        return text


# ---------------------------------------------------------------------------------------------
# oss2 plumbing

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


class _Calls:
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
                raise _Stopped()
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
                    hint = ""
                    if getattr(e, "code", "") in ("SignatureDoesNotMatch", "InvalidAccessKeyId",
                                                  "InvalidSecurityToken"):
                        hint = " (check the AccessKey or the credentials chain)"
                    elif getattr(e, "status", 0) == 403:
                        hint = " (the RAM user or role needs oss:GetObject/HeadObject, oss:ListObjects, " \
                               "oss:GetBucketInfo)"
                    raise RuntimeFailure(f"inventory: {what} failed: {desc}{hint}") from None
                if attempt == attempts:
                    raise RuntimeFailure(f"inventory: {what}: gave up after {attempts} attempts; last error: "
                                         f"{desc}") from None
                with self.lock:
                    self.retries += 1
                self.stop.wait(self.policy.delay(attempt))
        raise AssertionError("unreachable")  # pragma: no cover


class _Stopped(Exception):
    pass


# ---------------------------------------------------------------------------------------------
# Planning

def _common_prefix(keys: list[str]) -> str:
    a, b = min(keys), max(keys)
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def _directory(key: str) -> str:
    i = key.rfind("/")
    return key[:i + 1] if i >= 0 else ""


class _Prices:
    """Unit prices (per request) for the decision and the run's own cost, resolved once each."""

    def __init__(self, book, at: datetime):
        self.pricer = Pricer(book)
        self.at = at
        self._cache: dict = {}

    def per_request(self, item: str, storage_class: str) -> Fraction | None:
        k = (item, storage_class)
        if k not in self._cache:
            entry, _ = self.pricer.book.resolve(item, {"storage_class": storage_class}, self.at)
            self._cache[k] = None if entry is None else entry.per_base_unit()
        return self._cache[k]

    def prefer_list(self, n: int, expected_class: str) -> bool:
        pages = math.ceil(n / LIST_PAGE)
        put = self.per_request("oss.PutRequest", "Standard")
        get = self.per_request("oss.GetRequest", expected_class)
        if put is None or get is None:
            return pages < n
        return pages * put < n * get


# ---------------------------------------------------------------------------------------------
# The run

def pending_uris(store, *, region: str | None = None, max_age: timedelta | None = None,
                 now: datetime | None = None):
    """[(uri, task region, cached class)] that the stored tasks reference (every source; the targets of
    Succeeded tasks: a failed task wrote none) and that are unknown or were checked before now - max_age."""
    now = now or datetime.now(UTC)
    where = "WHERE region = $region" if region else ""
    stale = "o.uri IS NULL" + (" OR o.checked_at < $cutoff" if max_age is not None else "")
    params = {}
    if region:
        params["region"] = region
    if max_age is not None:
        params["cutoff"] = now - max_age
    sql = f"""
        WITH refs AS (
            SELECT region, unnest(sources).uri AS uri FROM tasks {where}
            UNION ALL
            SELECT region, target_uri FROM tasks WHERE status = 'Succeeded' {where.replace('WHERE', 'AND')}
        ), u AS (
            SELECT uri, min(region) AS region FROM refs WHERE uri IS NOT NULL GROUP BY uri
        )
        SELECT u.uri, u.region, o.storage_class FROM u LEFT JOIN objects o ON o.uri = u.uri
        WHERE {stale}
        ORDER BY u.uri"""
    with store._lock:
        return store._con.execute(sql, params).fetchall()


def _known_buckets(store, names, max_age, now) -> dict:
    if not names:
        return {}
    with store._lock:
        rows = store._con.execute(
            "SELECT bucket, found, location, storage_class, checked_at FROM buckets WHERE bucket IN "
            "(SELECT unnest($names))", {"names": sorted(names)}).fetchall()
    out = {}
    for b, found, loc, cls, checked in rows:
        if max_age is not None and checked < now - max_age:
            continue
        out[b] = (found, loc, cls)
    return out


_OBJ_SCHEMA = pa.schema([
    ("uri", pa.string()), ("bucket", pa.string()), ("key", pa.string()), ("size", pa.int64()),
    ("storage_class", pa.string()), ("last_modified", pa.timestamp("us", tz="UTC")),
    ("restore_state", pa.string()), ("restore_expiry", pa.timestamp("us", tz="UTC")), ("gone", pa.bool_()),
    ("via", pa.string()),
])


def write_facts(store, facts: list[Fact], checked_at: datetime) -> None:
    """Upsert object facts in one transaction; `gone_since` keeps the first check that saw the object gone."""
    if not facts:
        return
    cols = {name: [getattr(f, name) for f in facts] for name in _OBJ_SCHEMA.names}
    table = pa.Table.from_pydict(cols, schema=_OBJ_SCHEMA)
    with store.transaction():
        con = store._con
        con.register("_costkit_facts", table)
        try:
            con.execute("""
                INSERT INTO objects (uri, bucket, key, size, storage_class, last_modified, restore_state,
                                     restore_expiry, gone, gone_since, checked_at, via)
                SELECT uri, bucket, key, size, storage_class, last_modified, restore_state, restore_expiry, gone,
                       CASE WHEN gone THEN $at END, $at, via FROM _costkit_facts
                ON CONFLICT (uri) DO UPDATE SET
                    bucket = excluded.bucket, key = excluded.key,
                    size = CASE WHEN excluded.gone THEN objects.size ELSE excluded.size END,
                    storage_class = CASE WHEN excluded.gone THEN objects.storage_class ELSE excluded.storage_class END,
                    last_modified = CASE WHEN excluded.gone THEN objects.last_modified ELSE excluded.last_modified END,
                    restore_state = excluded.restore_state, restore_expiry = excluded.restore_expiry,
                    gone_since = CASE WHEN excluded.gone THEN coalesce(objects.gone_since, excluded.gone_since) END,
                    gone = excluded.gone, checked_at = excluded.checked_at, via = excluded.via
            """, {"at": checked_at})
        finally:
            con.unregister("_costkit_facts")


def write_buckets(store, facts: list[BucketFact], checked_at: datetime) -> None:
    if not facts:
        return
    rows = [(f.bucket, f.found, f.location, f.storage_class, f.redundancy, f.transfer_acceleration,
             f.archive_direct_read, f.archive_direct_read_source, checked_at) for f in facts]
    with store.transaction():
        store._con.executemany(
            "INSERT OR REPLACE INTO buckets (bucket, found, location, storage_class, redundancy, "
            "transfer_acceleration, archive_direct_read, archive_direct_read_source, checked_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


def objects_frame(store):
    """The cached object facts as a DataFrame (one row per URI)."""
    with store._lock:
        return store._con.execute("SELECT * FROM objects ORDER BY uri").df()


def buckets_frame(store):
    """The cached bucket facts as a DataFrame."""
    with store._lock:
        return store._con.execute("SELECT * FROM buckets ORDER BY bucket").df()


def run_inventory(store, *, region: str | None = None, endpoint: str | None = None, concurrency: int = 8,
                  max_age: timedelta | None = None, credentials=None, settings=None, prices_file=None,
                  retry: RetryPolicy | None = None, now: datetime | None = None,
                  progress=None) -> InventorySummary:
    """Read OSS facts for the URIs the stored tasks reference (see the module doc); return the summary.

    `credentials`: None for the default Alibaba Cloud chain, or explicit (access_key_id, access_key_secret
    [, security_token]). Raises RuntimeFailure naming bucket and key when a call fails for good.
    """
    import oss2
    from costkit.model.settings import load_settings

    if concurrency < 1:
        raise BadInput(f"must be at least 1, got {concurrency}", field="--concurrency")
    t0 = time.monotonic()
    settings = settings or load_settings(None)
    now = now or datetime.now(UTC)
    book = load_price_book(settings.site, prices_file=prices_file, scenario_prices=settings.splice.prices,
                           scenario_path=settings.path)
    prices = _Prices(book, now)
    summary = InventorySummary(currency=book.currency)
    retry = retry or RetryPolicy(attempts=5, base=0.2, cap=5.0)
    stop = threading.Event()
    calls = _Calls(retry, stop)
    auth = make_auth(credentials)
    if endpoint:
        endpoint_for(endpoint, None)  # validate early

    rows = pending_uris(store, region=region, max_age=max_age, now=now)
    by_bucket: dict[str, dict[str, tuple[str, str | None]]] = {}
    bucket_region: dict[str, str] = {}
    for uri, task_region, known_class in rows:
        parsed = parse_uri(uri)
        if parsed is None or not oss2.utils.is_valid_bucket_name(parsed[0]):
            summary.skipped_uris += 1
            continue
        b, k = parsed
        by_bucket.setdefault(b, {})[k] = (uri, known_class)
        bucket_region.setdefault(b, region or task_region)
    if summary.skipped_uris:
        summary.warnings.append(f"{summary.skipped_uris} URI(s) are not of the form oss://bucket/key (with a "
                                "valid bucket name) and were skipped")

    local = threading.local()

    def bucket_client(name: str, location: str | None):
        cache = getattr(local, "buckets", None)
        if cache is None:
            cache = local.buckets = {}
        url = endpoint_for(endpoint, bucket_region.get(name), location)
        c = cache.get((name, url))
        if c is None:
            c = cache[(name, url)] = oss2.Bucket(auth, url, name, connect_timeout=CONNECT_TIMEOUT)
        return c

    # --- bucket facts --------------------------------------------------------------------------
    known = _known_buckets(store, set(by_bucket), max_age, now)
    bucket_facts: list[BucketFact] = []
    count_lock = threading.Lock()

    def count(api: str, n: int = 1):
        with count_lock:
            summary.requests[api] += n

    def bucket_job(name: str) -> BucketFact:
        client = bucket_client(name, None)
        conf = settings.buckets.get(name, {})
        try:
            info = calls(f"GetBucketInfo {name}", client.get_bucket_info, ok_statuses=(404,))
        except oss2.exceptions.NoSuchBucket:
            return BucketFact(name, found=False)
        except oss2.exceptions.NotFound:
            return BucketFact(name, found=False)
        count("GetBucketInfo")
        ta = info.transfer_acceleration
        fact = BucketFact(name, found=True, location=info.location, storage_class=info.storage_class,
                          redundancy=info.data_redundancy_type or conf.get("redundancy"),
                          transfer_acceleration=None if ta is None else str(ta).lower() == "enabled")
        try:
            adr = calls(f"GetBucketArchiveDirectRead {name}", client.get_bucket_archive_direct_read,
                        ok_statuses=(400, 403, 404, 405, 501))
            count("GetBucketArchiveDirectRead")
            if adr.enabled is not None:
                fact.archive_direct_read, fact.archive_direct_read_source = bool(adr.enabled), "api"
        except oss2.exceptions.OssError:
            pass
        except RuntimeFailure as e:   # optional fact: fall back to the configuration, say so
            with count_lock:
                summary.warnings.append(f"{e}; Archive direct read of bucket {name} taken from the settings")
        if fact.archive_direct_read is None:
            if "archive_direct_read" in conf:
                fact.archive_direct_read, fact.archive_direct_read_source = conf["archive_direct_read"], "config"
            else:
                fact.archive_direct_read = settings.splice.archive_direct_read
                fact.archive_direct_read_source = "default"
        return fact

    todo_buckets = sorted(b for b in by_bucket if b not in known)
    bucket_state: dict[str, tuple] = dict(known)
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="oss-inv") as pool:
        try:
            for fact in pool.map(bucket_job, todo_buckets):
                bucket_facts.append(fact)
                bucket_state[fact.bucket] = (fact.found, fact.location, fact.storage_class)
        except BaseException:
            stop.set()
            raise
    write_buckets(store, bucket_facts, now)
    summary.buckets = len(by_bucket)

    # --- object facts --------------------------------------------------------------------------
    jobs = []
    gone_with_bucket: list[Fact] = []
    for name in sorted(by_bucket):
        keys = by_bucket[name]
        found, location, default_class = bucket_state.get(name, (True, None, None))
        if not found:
            for k, (uri, _) in keys.items():
                gone_with_bucket.append(Fact(uri, name, k, gone=True, via="bucket"))
            continue
        groups: dict[str, list[str]] = {}
        for k in keys:
            groups.setdefault(_directory(k), []).append(k)
        for _, gkeys in sorted(groups.items()):
            gkeys.sort()
            classes = [keys[k][1] or default_class or "Standard" for k in gkeys]
            expected = max(set(classes), key=classes.count)
            if len(gkeys) > 1 and prices.prefer_list(len(gkeys), expected):
                jobs.append(("list", name, location, gkeys))
            else:
                for i in range(0, len(gkeys), HEAD_CHUNK):
                    jobs.append(("head", name, location, gkeys[i:i + HEAD_CHUNK]))

    def head_keys(name, location, gkeys) -> list[Fact]:
        client = bucket_client(name, location)
        out = []
        for k in gkeys:
            uri = by_bucket[name][k][0]
            try:
                r = calls(f"HeadObject oss://{name}/{k}", client.head_object, k, ok_statuses=(404,))
            except oss2.exceptions.NotFound:
                out.append(Fact(uri, name, k, gone=True, via="head"))
                continue
            count("HeadObject")
            state, expiry = parse_restore(r.headers.get("x-oss-restore"))
            cls = r.headers.get("x-oss-storage-class") or "Standard"
            out.append(Fact(uri, name, k, gone=False, via="head", size=r.content_length,
                            storage_class=cls if cls in STORAGE_CLASSES else cls,
                            last_modified=datetime.fromtimestamp(r.last_modified, UTC) if r.last_modified else None,
                            restore_state=state, restore_expiry=expiry))
            with cost_lock:
                cost_heads[cls] = cost_heads.get(cls, 0) + 1
        return out

    def list_keys(name, location, gkeys) -> list[Fact]:
        client = bucket_client(name, location)
        prefix = _common_prefix(gkeys)
        wanted = set(gkeys)
        last_wanted = gkeys[-1]
        out, seen = [], set()
        token = ""
        put = prices.per_request("oss.PutRequest", "Standard")
        with count_lock:
            summary.prefixes_listed += 1
        while True:
            page = calls(f"ListObjectsV2 oss://{name}/{prefix}*", client.list_objects_v2, prefix=prefix,
                         continuation_token=token, max_keys=LIST_PAGE)
            count("ListObjectsV2")
            hits = 0
            for o in page.object_list:
                if o.key in wanted and o.key not in seen:
                    seen.add(o.key)
                    hits += 1
                    state, expiry = parse_restore(o.restore_info)
                    out.append(Fact(by_bucket[name][o.key][0], name, o.key, gone=False, via="list", size=o.size,
                                    storage_class=o.storage_class,
                                    last_modified=datetime.fromtimestamp(o.last_modified, UTC),
                                    restore_state=state, restore_expiry=expiry))
            last_key = page.object_list[-1].key if page.object_list else None
            if not page.is_truncated:
                passed = [k for k in gkeys if k not in seen]
                out += [Fact(by_bucket[name][k][0], name, k, gone=True, via="list") for k in passed]
                return out
            covered_to = last_key or ""
            if covered_to >= last_wanted:
                passed = [k for k in gkeys if k not in seen and k <= covered_to]
                out += [Fact(by_bucket[name][k][0], name, k, gone=True, via="list") for k in passed]
                rest = [k for k in gkeys if k > covered_to]
                return out + (head_keys(name, location, rest) if rest else [])
            rest = [k for k in gkeys if k > covered_to]
            # Switch to HeadObject when this page cost more than HEADing the keys it found.
            get_price = prices.per_request("oss.GetRequest", "Standard")
            dear = hits * get_price < put if put is not None and get_price is not None else hits < 1
            if dear:
                passed = [k for k in gkeys if k not in seen and k <= covered_to]
                out += [Fact(by_bucket[name][k][0], name, k, gone=True, via="list") for k in passed]
                return out + head_keys(name, location, rest)
            token = page.next_continuation_token

    cost_lock = threading.Lock()
    cost_heads: dict[str, int] = {}
    pending: list[Fact] = list(gone_with_bucket)
    all_facts = 0
    done_jobs = 0

    def flush(force=False):
        nonlocal pending, all_facts
        if pending and (force or len(pending) >= WRITE_BATCH):
            write_facts(store, pending, now)
            all_facts += len(pending)
            for f in pending:
                summary.objects += 1
                if f.gone:
                    summary.gone += 1
                else:
                    summary.found += 1
                if f.via == "list":
                    summary.via_list += 1
                elif f.via == "head":
                    summary.via_head += 1
            pending = []

    failure = None
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="oss-inv") as pool:
        futures = [pool.submit(list_keys if kind == "list" else head_keys, name, loc, gkeys)
                   for kind, name, loc, gkeys in jobs]
        remaining = set(futures)
        while remaining:
            done, remaining = wait(remaining, return_when=FIRST_EXCEPTION)
            for f in done:
                e = f.exception()
                if e is not None:
                    if not isinstance(e, _Stopped) and failure is None:
                        failure = e
                    stop.set()
                    continue
                pending.extend(f.result())
                done_jobs += 1
            flush()
            if progress is not None:
                progress(done_jobs, len(jobs))
            if failure is not None:
                for f in remaining:
                    f.cancel()
    flush(force=True)

    summary.retries = calls.retries
    summary.unbilled = calls.unbilled
    # Cost of the run's own (successful) requests.
    cost = Fraction(0)
    missing = []
    pricer = prices.pricer
    parts = [("oss.PutRequest", "Standard", summary.requests["ListObjectsV2"]),
             ("oss.GetRequest", "Standard",
              summary.requests["GetBucketInfo"] + summary.requests["GetBucketArchiveDirectRead"])]
    parts += [("oss.GetRequest", cls, n) for cls, n in sorted(cost_heads.items())]
    for item, cls, n in parts:
        if not n:
            continue
        cls = cls if cls in STORAGE_CLASSES else "Standard"
        amount = pricer.amount(item, {"storage_class": cls}, now, Fraction(n))
        if pricer.missing:
            missing.extend(pricer.missing)
            pricer.missing.clear()
        cost += amount
    if missing:
        summary.cost = None
        summary.cost_note = "missing price for " + ", ".join(sorted(set(missing)))
    else:
        summary.cost = cost
    summary.seconds = time.monotonic() - t0
    if failure is not None:
        if isinstance(failure, CostkitError):
            raise failure
        raise RuntimeFailure(f"inventory: {type(failure).__name__}: {failure}")
    return summary


def parse_max_age(days) -> timedelta | None:
    if days is None:
        return None
    try:
        d = Fraction(str(days))
    except (ValueError, ZeroDivisionError):
        raise BadInput(f"expected a number of days, got {days!r}", field="--max-age") from None
    if d < 0:
        raise BadInput(f"must not be negative, got {days}", field="--max-age")
    return timedelta(seconds=float(d * 86400))


__all__ = ["run_inventory", "objects_frame", "buckets_frame", "parse_uri", "parse_restore", "endpoint_for",
           "make_auth", "InventorySummary"]
