"""The IMM-style wire rules the local servers share: API errors, injectable faults, parameter decoding
(nested values as JSON strings, booleans True/False), opaque NextTokens and request ids."""
from __future__ import annotations

import base64
import json
import uuid
from dataclasses import dataclass

from costkit.testing.imm_tasks import parse_time

# Parameters the SDK sends as compact JSON strings.
_JSON_PARAMS = {"TaskTypes", "StartTimeRange", "EndTimeRange", "Sources", "Notification",
                "CredentialConfig", "Tags", "Tag"}
_BOOL_PARAMS = {"RequestDefinition"}

FAULT_KINDS = {
    "throttle",         # 503 JSON + x-acs-retry-after (ms): ThrottlingException
    "throttling_user",  # 400 JSON Code=Throttling.User: ClientException
    "server_503",       # 503 JSON ServiceUnavailable, no retry-after: ServerException
    "html_502",         # 502 HTML gateway page: UnretryableException (not JSON)
    "drop",             # close the socket without a reply
    "error",            # any status/code/message given in the fault (e.g. 403 Forbidden, 429, 500)
    "truncated",        # 200 with a cut-off JSON body
    "short_body",       # Content-Length larger than what is sent, then the socket closes
    "slow",             # the reply comes after `delay` seconds (then served normally)
}


@dataclass
class Fault:
    kind: str
    times: int | None = 1          # how many requests it hits (None: all)
    skip: int = 0                  # matching requests to let through first
    action: str | None = "ListTasks"
    retry_after_ms: int = 10
    status: int = 400
    code: str = ""
    message: str = ""
    match: object = None           # optional predicate on the decoded params
    delay: float = 0.0             # for "slow"
    seen: int = 0
    fired: int = 0

    def take(self, action: str, params: dict) -> bool:
        if self.action is not None and action != self.action:
            return False
        if self.match is not None and not self.match(params):
            return False
        self.seen += 1
        if self.seen <= self.skip or (self.times is not None and self.fired >= self.times):
            return False
        self.fired += 1
        return True


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def decode_params(raw: dict) -> dict:
    """Query parameters as the API reads them (JSON and boolean ones decoded); ApiError when malformed."""
    params = {}
    for k, v in raw.items():
        if k in _JSON_PARAMS and v != "":
            try:
                v = json.loads(v)
            except ValueError:
                raise ApiError(400, f"InvalidParameter.{k}", f"{k} is not valid JSON.")
        elif k in _BOOL_PARAMS:
            if v.lower() not in ("true", "false"):
                raise ApiError(400, f"InvalidParameter.{k}", f"{k} must be true or false.")
            v = v.lower() == "true"
        params[k] = v
    return params


def decode_params_lenient(raw: dict) -> dict:
    try:
        return decode_params(raw)
    except ApiError:
        return dict(raw)


def int_param(params, name, default):
    v = params.get(name)
    if v in (None, ""):
        return default
    try:
        return int(v)
    except (TypeError, ValueError):
        raise ApiError(400, f"InvalidParameter.{name}", f"{name} must be an integer.")


def range_bound(rng, key):
    v = rng.get(key) if isinstance(rng, dict) else None
    if not v:
        return None
    try:
        return parse_time(v)
    except ValueError:
        raise ApiError(400, "InvalidParameter.TimeRange", f"{key} is not an ISO 8601 time: {v}")


def encode_token(offset: int, prefix: str = "o") -> str:
    """An opaque NextToken for a listing offset."""
    return base64.urlsafe_b64encode(f"{prefix}:{offset}".encode()).decode().rstrip("=")


def decode_token(token: str, prefix: str = "o") -> int:
    """The offset in a NextToken from `encode_token` (an empty token is the first page)."""
    if not token:
        return 0
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        assert text.startswith(prefix + ":")
        return int(text[len(prefix) + 1:])
    except Exception:
        raise ApiError(400, "InvalidParameter.NextToken", "The NextToken is invalid.")


def request_id() -> str:
    return str(uuid.uuid4()).upper()
