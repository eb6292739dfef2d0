"""The OSS V1 signature check of the local OSS server (`Authorization: OSS <ak>:<base64 HMAC-SHA1>`)."""
from __future__ import annotations

import base64
import hashlib
import hmac

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


def verify_v1(method: str, headers, bucket: str, key: str, params: list[tuple[str, str]], access_key_id: str,
              access_key_secret: str, security_token: str | None) -> str | None:
    """None when the V1 signature (and the STS token, when one is expected) is valid, else the error code."""
    auth = headers.get("Authorization") or ""
    if not auth.startswith("OSS ") or ":" not in auth:
        return "AccessDenied"
    ak, sig = auth[4:].rsplit(":", 1)
    if ak != access_key_id:
        return "InvalidAccessKeyId"
    if security_token is not None and headers.get("x-oss-security-token") != security_token:
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
    want = base64.b64encode(hmac.new(access_key_secret.encode(), text.encode("utf-8"),
                                     hashlib.sha1).digest()).decode()
    return None if hmac.compare_digest(want, sig) else "SignatureDoesNotMatch"
