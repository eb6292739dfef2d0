"""OSS object and bucket facts for the stored tasks (`costkit inventory`), cached in the store.

For every source and target URI (`oss://bucket/key`) that the stored tasks reference (targets of Succeeded
tasks only: a failed task wrote none) and that the store does not know yet (or checked longer ago than
`max_age`), the inventory reads through oss2 2.19.1: the size, the
storage class (`x-oss-storage-class`), Last-Modified, the restore state (`x-oss-restore`) and whether the
object is gone. Per bucket it records GetBucketInfo's location, default storage class, redundancy and
transfer acceleration, and Archive direct read from GetBucketArchiveDirectRead where the endpoint exposes
it, else from the settings (`buckets: {name: {archive_direct_read: ...}}`, then `archive_direct_read`), and
its lifecycle rules (GetBucketLifecycle; stored by `costkit.sources.oss.lifecycle`; a denied call is a
warning). When an enabled rule filters on tags, the tags of the bucket's present targets are read once
(GetObjectTagging, GET-type).

**Which call (the rule).** The URIs of a bucket are grouped by "directory" (the key up to its last `/`).
For a group of n keys:

- HeadObject: n GET-type requests, priced at `oss.GetRequest` for the class the object is expected to
  have (the class cached from an earlier inventory, else the bucket's default class, else Standard);
- ListObjectsV2 over the group's longest common key prefix: at least ceil(n / 1000) PUT-type requests
  (listing is PUT-type for billing, billing-facts.md section 6), priced at `oss.PutRequest` Standard (a
  bucket operation; OSS prices requests by the class of the object, and a listing has none).

The inventory lists when ceil(n / 1000) x PUT price < n x GET price, priced with the request prices the
caller passes (costkit.engine.inventory builds them from the site's book at the time of the run); otherwise
(ties included) it sends HeadObject. When a price is missing the request counts decide (fewer requests
wins). A listing stops as soon as it has passed the group's last
key, and it switches to HeadObject for the rest of the group when a page turned out dearer than the HEADs
of the keys it found (a prefix holding many unrelated objects). A key the listing has passed without
returning it is gone, as is a key whose HEAD answers 404 NoSuchKey, and every key of a bucket that answers
NoSuchBucket.

**Errors.** Our own retry loop (oss2 never retries): exponential backoff with full jitter on 5xx, 429,
connection errors and malformed responses (oss2 raises plain ValueError/RuntimeError/ParseError for those).
Other errors (403, 400, ...) stop the run at once; when attempts run out the run stops too. Either way the
error names the bucket and key (a listing: its prefix) in one line (RuntimeFailure, exit 1), and every
answer read before it is stored first: each HEAD and listing page as it is read, the bucket facts, and the
jobs that finished; queued jobs are dropped unsent, so a rerun reads only what was not stored.

**Cost of the inventory itself.** Only 2xx answers are billed (billing-facts.md section 6): each successful
listing page at the PUT price (Standard), each successful HeadObject at the GET price of the class it
returned, GetBucketInfo and GetBucketArchiveDirectRead at the GET price (Standard).

Credentials: the Alibaba Cloud default chain (`alibabacloud_credentials`), or explicit keys for tests.
They are never printed.
"""
from __future__ import annotations

import threading
import time
from concurrent.futures import FIRST_EXCEPTION, CancelledError, ThreadPoolExecutor, wait
from datetime import datetime, timedelta, timezone
from fractions import Fraction

from costkit.core.errors import BadInput, CostkitError, RuntimeFailure
from costkit.sources.retry import RetryPolicy
from costkit.sources.oss.cache import (known_buckets, pending_uris, tag_targets, write_buckets, write_facts,
                                       write_tags)
from costkit.sources.oss.calls import BucketClients, Calls, Stopped, endpoint_for, make_auth
from costkit.sources.oss.facts import Fact
from costkit.sources.oss.plan import HEAD_CHUNK, RequestPrices, group_uris, plan_jobs
from costkit.sources.oss.readers import Reader
from costkit.sources.oss.summary import InventorySummary, own_request_cost

UTC = timezone.utc
WRITE_BATCH = 5000        # facts per store transaction


def check_concurrency(concurrency: int) -> None:
    if concurrency < 1:
        raise BadInput(f"must be at least 1, got {concurrency}", field="--concurrency")


def run_inventory(store, *, prices: RequestPrices, bucket_settings: dict | None = None,
                  archive_direct_read: bool = False, region: str | None = None, endpoint: str | None = None,
                  concurrency: int = 8, max_age: timedelta | None = None, credentials=None,
                  retry: RetryPolicy | None = None, now: datetime | None = None, progress=None) -> InventorySummary:
    """Read OSS facts for the URIs the stored tasks reference (see the module doc); return the summary.

    `prices`: the request prices that choose LIST or HEAD and price the run's own requests (currency
    `prices.currency`). `bucket_settings`: {bucket: {archive_direct_read, redundancy}} from the settings;
    `archive_direct_read`: the default when neither the API nor those say. `credentials`: None for the
    default Alibaba Cloud chain, or explicit (access_key_id, access_key_secret[, security_token]). Raises
    RuntimeFailure naming bucket and key when a call fails for good.
    """
    check_concurrency(concurrency)
    t0 = time.monotonic()
    now = now or datetime.now(UTC)
    summary = InventorySummary(currency=prices.currency)
    stop = threading.Event()
    calls = Calls(retry or RetryPolicy(attempts=5, base=0.2, cap=5.0), stop)
    auth = make_auth(credentials)
    if endpoint:
        endpoint_for(endpoint, None)  # validate early

    rows = pending_uris(store, region=region, max_age=max_age, now=now)
    by_bucket, bucket_region, summary.skipped_uris = group_uris(rows, region)
    if summary.skipped_uris:
        summary.warnings.append(f"{summary.skipped_uris} URI(s) are not of the form oss://bucket/key (with a "
                                "valid bucket name) and were skipped")
    reader = Reader(BucketClients(auth, endpoint, bucket_region), calls, prices, summary, by_bucket)
    try:
        bucket_state = _read_buckets(store, reader, bucket_settings or {}, archive_direct_read,
                                     concurrency=concurrency, max_age=max_age, now=now, stop=stop)
    except CostkitError:
        raise
    except Exception as e:
        raise RuntimeFailure(f"inventory: {type(e).__name__}: {e}") from None
    summary.buckets = len(by_bucket)
    jobs, gone_with_bucket = plan_jobs(by_bucket, bucket_state, prices)
    failure = _read_objects(store, reader, jobs, gone_with_bucket, concurrency=concurrency, now=now, stop=stop,
                            progress=progress)
    if failure is None:
        failure = _read_tags(store, reader, concurrency=concurrency, stop=stop)

    summary.retries = calls.retries
    summary.unbilled = calls.unbilled
    summary.cost, summary.cost_note = own_request_cost(summary.requests, reader.heads_by_class, prices)
    summary.seconds = time.monotonic() - t0
    if failure is not None:
        if isinstance(failure, CostkitError):
            raise failure
        raise RuntimeFailure(f"inventory: {type(failure).__name__}: {failure}")
    return summary


def _read_buckets(store, reader: Reader, bucket_settings: dict, archive_direct_read: bool, *, concurrency: int,
                  max_age, now: datetime, stop: threading.Event) -> dict:
    """{bucket: (found, location, default class)}: fresh stored facts, the rest read and stored now."""
    by_bucket = reader.by_bucket
    known = known_buckets(store, set(by_bucket), max_age, now)
    todo = sorted(b for b in by_bucket if b not in known)
    bucket_facts = []
    state: dict[str, tuple] = dict(known)

    def job(name):
        return reader.bucket(name, bucket_settings.get(name, {}), archive_direct_read)

    failure = None
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="oss-inv") as pool:
        futures = [pool.submit(job, name) for name in todo]
        for f in futures:
            # Every bucket read before a failure is stored before the failure is raised.
            try:
                fact = f.result()
            except BaseException as e:
                stop.set()
                if failure is None or isinstance(failure, Stopped):
                    failure = e
                continue
            bucket_facts.append(fact)
            state[fact.bucket] = (fact.found, fact.location, fact.storage_class)
    write_buckets(store, bucket_facts, now)
    if failure is not None:
        raise failure
    return state


def _read_objects(store, reader: Reader, jobs: list, pending: list[Fact], *, concurrency: int, now: datetime,
                  stop: threading.Event, progress) -> BaseException | None:
    """Run the planned jobs in a pool, storing facts in batches as they come (`pending` first); return the
    first failure (the others are cancelled, the facts gathered so far stay stored) or None."""
    summary = reader.summary
    pending = list(pending)
    done_jobs = 0

    def flush(force=False):
        nonlocal pending
        pending.extend(reader.take())
        if pending and (force or len(pending) >= WRITE_BATCH):
            write_facts(store, pending, now)
            summary.add_facts(pending)
            pending = []

    failure = None
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="oss-inv") as pool:
        futures = [pool.submit(reader.list_keys if kind == "list" else reader.head_keys, name, loc, gkeys)
                   for kind, name, loc, gkeys in jobs]
        remaining = set(futures)
        while remaining:
            done, remaining = wait(remaining, return_when=FIRST_EXCEPTION)
            for f in done:
                if f.cancelled():   # queued when the run stopped: never started, nothing read
                    continue
                e = f.exception()
                if e is not None:
                    if not isinstance(e, Stopped) and failure is None:
                        failure = e
                    stop.set()
                    continue
                done_jobs += 1
            flush()
            if progress is not None:
                progress(done_jobs, len(jobs))
            if failure is not None:
                for f in remaining:
                    f.cancel()
    flush(force=True)   # what every job read before the failure, including the failed job's own answers
    return failure


def _read_tags(store, reader: Reader, *, concurrency: int, stop: threading.Event) -> BaseException | None:
    """GetObjectTagging for the targets that a tag-filtered lifecycle rule may match (tags not read yet);
    each job's tags are stored as it ends. Returns the first failure or None."""
    by_bucket: dict[tuple, list] = {}
    for uri, bucket, key, location in tag_targets(store):
        by_bucket.setdefault((bucket, location), []).append((uri, key))
    jobs = [(b, loc, items[i:i + HEAD_CHUNK]) for (b, loc), items in sorted(by_bucket.items(), key=str)
            for i in range(0, len(items), HEAD_CHUNK)]
    failure = None
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="oss-inv") as pool:
        futures = [pool.submit(reader.tags, b, loc, items) for b, loc, items in jobs]
        for f in futures:
            try:
                write_tags(store, f.result())
            except BaseException as e:   # a cancelled or stopped job included
                stop.set()
                if failure is None and not isinstance(e, (Stopped, CancelledError)):
                    failure = e
                for g in futures:
                    g.cancel()
    return failure


def parse_max_age(days) -> timedelta | None:
    """The --max-age option (days, a decimal number) as a timedelta; None when not given."""
    if days is None:
        return None
    try:
        d = Fraction(str(days))
    except (ValueError, ZeroDivisionError):
        raise BadInput(f"expected a number of days, got {days!r}", field="--max-age") from None
    if d < 0:
        raise BadInput(f"must not be negative, got {days}", field="--max-age")
    return timedelta(seconds=float(d * 86400))
