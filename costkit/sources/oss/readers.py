"""Reading facts from OSS for one inventory run: GetBucketInfo (+ Archive direct read), HeadObject per key
and ListObjectsV2 over a group's common prefix, counting every billed request."""
from __future__ import annotations

import threading
from datetime import datetime, timezone

from costkit.core.errors import RuntimeFailure
from costkit.sources.oss.facts import BucketFact, Fact, parse_restore
from costkit.sources.oss.lifecycle import _tags_of, rule_rows, tag_pairs
from costkit.sources.oss.plan import LIST_PAGE, common_prefix

UTC = timezone.utc


class Reader:
    """Reads bucket and object facts through `clients` and `calls`; counts successful requests into
    `summary.requests` and HeadObject answers by returned class into `heads_by_class`.

    `by_bucket`: {bucket: {key: (uri, cached class)}}; `prices`: a plan.RequestPrices (for the switch from a
    listing to HeadObject).

    Object facts go to `take()` as soon as each answer is read (a HEAD, a listing page), not when a job
    ends: when a later call of the same job fails, what was read before it is still stored."""

    def __init__(self, clients, calls, prices, summary, by_bucket: dict):
        self.clients, self.calls, self.prices = clients, calls, prices
        self.summary, self.by_bucket = summary, by_bucket
        self.lock = threading.Lock()
        self.heads_by_class: dict[str, int] = {}
        self._read: list[Fact] = []

    def _emit(self, facts: list[Fact]) -> None:
        if facts:
            with self.lock:
                self._read.extend(facts)

    def take(self) -> list[Fact]:
        """The object facts read since the last call (thread-safe)."""
        with self.lock:
            out, self._read = self._read, []
        return out

    def count(self, api: str, n: int = 1) -> None:
        with self.lock:
            self.summary.requests[api] += n

    # --- buckets ---------------------------------------------------------------------------------

    def bucket(self, name: str, conf: dict, default_direct_read: bool) -> BucketFact:
        """The bucket's facts; Archive direct read from the API, else `conf`, else the default."""
        import oss2
        client = self.clients(name, None)
        try:
            info = self.calls(f"GetBucketInfo {name}", client.get_bucket_info, ok_statuses=(404,))
        except oss2.exceptions.NoSuchBucket:
            return BucketFact(name, found=False)
        except oss2.exceptions.NotFound:
            return BucketFact(name, found=False)
        self.count("GetBucketInfo")
        ta = info.transfer_acceleration
        fact = BucketFact(name, found=True, location=info.location, storage_class=info.storage_class,
                          redundancy=info.data_redundancy_type or conf.get("redundancy"),
                          transfer_acceleration=None if ta is None else str(ta).lower() == "enabled")
        try:
            adr = self.calls(f"GetBucketArchiveDirectRead {name}", client.get_bucket_archive_direct_read,
                             ok_statuses=(400, 403, 404, 405, 501))
            self.count("GetBucketArchiveDirectRead")
            if adr.enabled is not None:
                fact.archive_direct_read, fact.archive_direct_read_source = bool(adr.enabled), "api"
        except oss2.exceptions.OssError:
            pass
        except RuntimeFailure as e:   # optional fact: fall back to the configuration, say so
            with self.lock:
                self.summary.warnings.append(f"{e}; Archive direct read of bucket {name} taken from the settings")
        fact.lifecycle = self._lifecycle(name, client)
        if fact.archive_direct_read is None:
            if "archive_direct_read" in conf:
                fact.archive_direct_read, fact.archive_direct_read_source = conf["archive_direct_read"], "config"
            else:
                fact.archive_direct_read = default_direct_read
                fact.archive_direct_read_source = "default"
        return fact

    def _lifecycle(self, name: str, client) -> list | None:
        """The bucket's lifecycle rows ([] when it has none: 404 NoSuchLifecycle); None when the call is
        denied (a warning says so: targets are then priced without rules)."""
        import oss2
        try:
            lc = self.calls(f"GetBucketLifecycle {name}", client.get_bucket_lifecycle, ok_statuses=(403, 404))
        except oss2.exceptions.NotFound:
            return []
        except oss2.exceptions.OssError as e:
            with self.lock:
                self.summary.warnings.append(f"GetBucketLifecycle {name}: {e.code} (HTTP {e.status}); its "
                                             "lifecycle rules are not known (needs oss:GetBucketLifecycle)")
            return None
        self.count("GetBucketLifecycle")
        rows, warnings = rule_rows(name, lc.rules)
        with self.lock:
            self.summary.warnings.extend(warnings)
        return rows

    def tags(self, name: str, location: str | None, items: list[tuple[str, str]]) -> list[tuple[str, list]]:
        """[(uri, tag pairs)] from GetObjectTagging for `items` [(uri, key)]; a key gone meanwhile is left out."""
        import oss2
        client = self.clients(name, location)
        out = []
        for uri, k in items:
            try:
                r = self.calls(f"GetObjectTagging oss://{name}/{k}", client.get_object_tagging, k,
                               ok_statuses=(404,))
            except oss2.exceptions.NotFound:
                continue
            self.count("GetObjectTagging")
            out.append((uri, tag_pairs(_tags_of(r)) or []))
        return out

    # --- objects ---------------------------------------------------------------------------------

    def _gone(self, name: str, keys, via: str) -> list[Fact]:
        return [Fact(self.by_bucket[name][k][0], name, k, gone=True, via=via) for k in keys]

    def head_keys(self, name: str, location: str | None, gkeys: list[str]) -> int:
        """One HeadObject per key (a 404 means gone), each fact emitted as read; returns the facts read."""
        import oss2
        client = self.clients(name, location)
        for k in gkeys:
            uri = self.by_bucket[name][k][0]
            try:
                r = self.calls(f"HeadObject oss://{name}/{k}", client.head_object, k, ok_statuses=(404,))
            except oss2.exceptions.NotFound:
                self._emit([Fact(uri, name, k, gone=True, via="head")])
                continue
            self.count("HeadObject")
            state, expiry = parse_restore(r.headers.get("x-oss-restore"))
            cls = r.headers.get("x-oss-storage-class") or "Standard"
            self._emit([Fact(uri, name, k, gone=False, via="head", size=r.content_length, storage_class=cls,
                             last_modified=datetime.fromtimestamp(r.last_modified, UTC) if r.last_modified else None,
                             restore_state=state, restore_expiry=expiry)])
            with self.lock:
                self.heads_by_class[cls] = self.heads_by_class.get(cls, 0) + 1
        return len(gkeys)

    def _listed(self, name: str, page, wanted: set, seen: set) -> tuple[list[Fact], int]:
        """(facts of the wanted keys first seen on this listing page, how many)."""
        out = []
        for o in page.object_list:
            if o.key in wanted and o.key not in seen:
                seen.add(o.key)
                state, expiry = parse_restore(o.restore_info)
                out.append(Fact(self.by_bucket[name][o.key][0], name, o.key, gone=False, via="list", size=o.size,
                                storage_class=o.storage_class,
                                last_modified=datetime.fromtimestamp(o.last_modified, UTC),
                                restore_state=state, restore_expiry=expiry))
        return out, len(out)

    def list_keys(self, name: str, location: str | None, gkeys: list[str]) -> int:
        """ListObjectsV2 over the keys' common prefix until past the last key; a key passed without being
        returned is gone. Switches to HeadObject for the rest when a page cost more than HEADing its hits.
        Each page's facts (found and passed) are emitted as it is read; returns the facts read."""
        client = self.clients(name, location)
        prefix = common_prefix(gkeys)
        wanted = set(gkeys)
        last_wanted = gkeys[-1]
        seen, done = set(), set()
        token = ""
        put = self.prices.per_request("oss.PutRequest", "Standard")
        with self.lock:
            self.summary.prefixes_listed += 1
        while True:
            page = self.calls(f"ListObjectsV2 oss://{name}/{prefix}*", client.list_objects_v2, prefix=prefix,
                              continuation_token=token, max_keys=LIST_PAGE)
            self.count("ListObjectsV2")
            found, hits = self._listed(name, page, wanted, seen)
            last_key = page.object_list[-1].key if page.object_list else None
            covered_to = None if not page.is_truncated else (last_key or "")
            passed = [k for k in gkeys if k not in seen and k not in done
                      and (covered_to is None or k <= covered_to)]
            done.update(passed)
            self._emit(found + self._gone(name, passed, "list"))
            if covered_to is None:
                return len(gkeys)
            rest = [k for k in gkeys if k > covered_to]
            if covered_to >= last_wanted:
                return len(gkeys) - len(rest) + (self.head_keys(name, location, rest) if rest else 0)
            get_price = self.prices.per_request("oss.GetRequest", "Standard")
            dear = hits * get_price < put if put is not None and get_price is not None else hits < 1
            if dear:
                return len(gkeys) - len(rest) + self.head_keys(name, location, rest)
            token = page.next_continuation_token
