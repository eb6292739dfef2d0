"""The XML bodies of the local OSS server: errors, GetBucketInfo, GetBucketArchiveDirectRead and a
ListObjectsV2 page (see ../shared/reference/oss-api.md)."""
from __future__ import annotations

import base64
from urllib.parse import quote
from xml.sax.saxutils import escape

from costkit.testing.oss_data import OSSBucket, list_time


def error_xml(code: str, message: str, request_id: str, extra: dict | None = None) -> bytes:
    parts = [f"<Code>{escape(code)}</Code>", f"<Message>{escape(message)}</Message>",
             f"<RequestId>{request_id}</RequestId>", "<HostId>127.0.0.1</HostId>"]
    for k, v in (extra or {}).items():
        parts.append(f"<{k}>{escape(str(v))}</{k}>")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Error>' + "".join(parts) + "</Error>").encode()


MESSAGES = {
    "NoSuchKey": "The specified key does not exist.",
    "NoSuchBucket": "The specified bucket does not exist.",
    "SignatureDoesNotMatch": "The request signature we calculated does not match the signature you provided.",
    "InvalidAccessKeyId": "The OSS Access Key Id you provided does not exist in our records.",
    "AccessDenied": "You have no right to access this object.",
    "ServiceUnavailable": "Please reduce your request rate.",
    "NotImplemented": "This API is not supported here.",
    "InvalidArgument": "Invalid argument.",
    "InternalError": "We encountered an internal error. Please try again.",
    "NoSuchLifecycle": "No Row found in Lifecycle Table.",
}


def bucket_info_xml(b: OSSBucket) -> bytes:
    """GetBucketInfo: the nine mandatory tags plus DataRedundancyType, AccessMonitor and, when set,
    TransferAcceleration."""
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
    return xml.encode()


def archive_direct_read_xml(enabled: bool) -> bytes:
    return ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<ArchiveDirectReadConfiguration><Enabled>"
            f"{'true' if enabled else 'false'}</Enabled></ArchiveDirectReadConfiguration>").encode()


def list_page(keys: list[str], prefix: str, delimiter: str, max_keys: int) -> tuple[list, list, bool, str | None]:
    """(contents, common prefixes, truncated, last key covered) of one page over the sorted `keys`."""
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
    return contents, prefixes, truncated, last


def list_xml(name: str, objs: dict, q: dict, max_keys: int, page, *, broken: bool) -> bytes:
    """The ListObjectsV2 body of a page from `list_page` (`objs`: key -> OSSObject; `broken`: a
    LastModified oss2 cannot parse)."""
    contents, prefixes, truncated, last = page
    prefix, delimiter, start_after = q.get("prefix", ""), q.get("delimiter", ""), q.get("start-after", "")
    encode = q.get("encoding-type") == "url"

    def enc(s):
        return quote(s, safe="") if encode else escape(s)

    out = ['<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult>',
           f"<Name>{escape(name)}</Name><Prefix>{enc(prefix)}</Prefix>",
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
    return "".join(out).encode("utf-8")


def _tag_xml(tags: dict) -> str:
    return "".join(f"<Tag><Key>{escape(k)}</Key><Value>{escape(v)}</Value></Tag>" for k, v in tags.items())


def tagging_xml(tags: dict) -> bytes:
    """GetObjectTagging: `<Tagging><TagSet><Tag>...`."""
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Tagging><TagSet>' + _tag_xml(tags)
            + "</TagSet></Tagging>").encode()


def lifecycle_xml(rules: list[dict]) -> bytes:
    """GetBucketLifecycle (`<LifecycleConfiguration><Rule>...`). A rule dict: id, prefix, status (default
    Enabled), expiration_days | expiration_date | created_before_date ("YYYY-MM-DD"), transitions [(days,
    class)], tags {k: v}, not_prefix, not_tag (k, v), size_gt, size_lt."""
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n<LifecycleConfiguration>']
    for r in rules:
        part = [f"<ID>{escape(r.get('id', 'rule'))}</ID>", f"<Prefix>{escape(r.get('prefix', ''))}</Prefix>",
                f"<Status>{r.get('status', 'Enabled')}</Status>"]
        if r.get("expiration_days") is not None:
            part.append(f"<Expiration><Days>{r['expiration_days']}</Days></Expiration>")
        elif r.get("expiration_date"):
            part.append(f"<Expiration><Date>{r['expiration_date']}T00:00:00.000Z</Date></Expiration>")
        elif r.get("created_before_date"):
            part.append(f"<Expiration><CreatedBeforeDate>{r['created_before_date']}T00:00:00.000Z"
                        "</CreatedBeforeDate></Expiration>")
        for days, cls in r.get("transitions", []):
            part.append(f"<Transition><Days>{days}</Days><StorageClass>{cls}</StorageClass></Transition>")
        part.append(_tag_xml(r.get("tags") or {}))
        flt = ""
        if r.get("size_gt") is not None:
            flt += f"<ObjectSizeGreaterThan>{r['size_gt']}</ObjectSizeGreaterThan>"
        if r.get("size_lt") is not None:
            flt += f"<ObjectSizeLessThan>{r['size_lt']}</ObjectSizeLessThan>"
        if r.get("not_prefix") is not None:
            nt = r.get("not_tag")
            flt += (f"<Not><Prefix>{escape(r['not_prefix'])}</Prefix>"
                    + (_tag_xml({nt[0]: nt[1]}) if nt else "") + "</Not>")
        if flt:
            part.append(f"<Filter>{flt}</Filter>")
        out.append("<Rule>" + "".join(part) + "</Rule>")
    out.append("</LifecycleConfiguration>")
    return "".join(out).encode("utf-8")
