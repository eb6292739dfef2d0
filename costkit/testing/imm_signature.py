"""Signature checks of the local IMM and BSS servers: ACS3-HMAC-SHA256 (Authorization header) and the
legacy v2 HMAC-SHA1 (`Signature` query parameter), verified against the test secret."""
from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote, quote_plus

from costkit.testing.imm_wire import ApiError

_UNSIGNED_HEADERS = {"authorization", "content-length", "accept-encoding"}


def verify_request(method: str, headers, path: str, pairs: list, body: bytes, access_key_id: str,
                   access_key_secret: str) -> None:
    """Nothing when the request is signed with the key; ApiError (the API's code) otherwise."""
    auth = headers.get("Authorization")
    if auth:
        return verify_acs3(method, headers, auth, path, pairs, body, access_key_id, access_key_secret)
    q = dict(pairs)
    if "Signature" in q:
        return verify_v2(method, q, access_key_id, access_key_secret)
    raise ApiError(400, "MissingAuthorization", "The request is not signed (no Authorization header).")


def verify_acs3(method, headers, auth, path, pairs, body, access_key_id, access_key_secret) -> None:
    try:
        algo, rest = auth.split(" ", 1)
        parts = dict(p.strip().split("=", 1) for p in rest.split(","))
        ak, signed, sig = parts["Credential"], parts["SignedHeaders"], parts["Signature"]
    except (ValueError, KeyError):
        raise ApiError(400, "InvalidAuthorization", "The Authorization header is malformed.")
    if algo != "ACS3-HMAC-SHA256":
        raise ApiError(400, "InvalidAuthorization", f"Unsupported signature algorithm {algo}.")
    if ak != access_key_id:
        raise ApiError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
    names = signed.split(";")
    if any(n.lower() in _UNSIGNED_HEADERS for n in names) or "x-acs-date" not in names:
        raise ApiError(400, "InvalidAuthorization", "SignedHeaders is invalid.")
    canon_headers = ""
    for n in sorted(names):
        values = headers.get_all(n) or []
        canon_headers += f"{n}:{','.join(sorted(v.strip() for v in values))}\n"
    canon_query = "&".join(f"{k}={quote(v, safe='~')}" for k, v in sorted(pairs))
    payload = hashlib.sha256(body).hexdigest()
    if (headers.get("x-acs-content-sha256") or payload) != payload:
        raise ApiError(400, "InvalidContentSha256", "x-acs-content-sha256 does not match the body.")
    canonical = f"{method}\n{path}\n{canon_query}\n{canon_headers}\n{signed}\n{payload}"
    to_sign = "ACS3-HMAC-SHA256\n" + hashlib.sha256(canonical.encode()).hexdigest()
    expect = hmac.new(access_key_secret.encode(), to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expect, sig):
        raise ApiError(400, "SignatureDoesNotMatch", "The request signature does not conform to Aliyun "
                                                     "standards.")


def verify_v2(method, q: dict, access_key_id, access_key_secret) -> None:
    if q.get("AccessKeyId") != access_key_id:
        raise ApiError(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
    signed = {k: v for k, v in q.items() if k != "Signature"}
    cq = "&".join(f"{quote(k, safe='~')}={quote(v, safe='~')}" for k, v in sorted(signed.items()))
    to_sign = f"{method}&%2F&{quote_plus(cq, safe='~')}"
    digest = hmac.new((access_key_secret + "&").encode(), to_sign.encode(), hashlib.sha1).digest()
    if not hmac.compare_digest(base64.b64encode(digest).decode(), q["Signature"]):
        raise ApiError(400, "SignatureDoesNotMatch", "The request signature does not conform to Aliyun "
                                                     "standards.")
