"""Retrying Alibaba Cloud SDK calls: the backoff policy, which errors deserve another attempt, and the
one-line text of an SDK error. Shared by the IMM collector, the OSS inventory and the BSS bill fetch.
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field

from costkit.core.errors import one_line

RETRY_AFTER_CAP = 60.0                     # seconds: an absurd x-acs-retry-after is not obeyed blindly


@dataclass
class RetryPolicy:
    """Bounded exponential backoff with full jitter; tests inject a tiny base and a seeded rng."""

    attempts: int = 6
    base: float = 0.5
    cap: float = 20.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, attempt: int, retry_after_ms=None) -> float:
        jitter = self.rng.uniform(0, min(self.cap, self.base * 2 ** (attempt - 1)))
        if retry_after_ms:
            try:
                return max(min(float(retry_after_ms) / 1000.0, RETRY_AFTER_CAP), jitter)
            except (TypeError, ValueError):
                pass
        return jitter


class BadPage(Exception):
    """A 200 answer that is not the page asked for: retried like a gateway fault."""


def describe(e: BaseException) -> str:
    """One line for an error from an SDK call: code, HTTP status, request id and message when known."""
    from alibabacloud_tea_openapi.exceptions import ClientException, ServerException, ThrottlingException

    if isinstance(e, (ClientException, ServerException, ThrottlingException)):
        data = e.data if isinstance(e.data, dict) else {}
        msg = data.get("Message") or data.get("message") or ""
        rid = getattr(e, "request_id", None) or data.get("RequestId")
        text = f"{e.code} (HTTP {e.status_code}"
        text += f", request id {rid})" if rid else ")"
        return text + (f": {one_line(msg, 200)}" if msg else "")
    inner = getattr(e, "inner_exception", None)
    if inner is not None:
        if isinstance(inner, RuntimeError) and "json" in str(inner).lower():
            return "the endpoint answered with a non-JSON page (a gateway error?)"
        return f"{type(inner).__name__}: {one_line(getattr(inner, 'message', None) or inner, 200)}"
    return f"{type(e).__name__}: {one_line(e, 200)}"


def classify(e: BaseException):
    """(retry?, retry_after_ms, restart?) for an exception from an SDK call."""
    if isinstance(e, BadPage):
        return True, None, False
    from alibabacloud_tea_openapi.exceptions import ClientException, ServerException, ThrottlingException
    from darabonba.exceptions import UnretryableException as DaraUnretryable
    from Tea.exceptions import TeaException, UnretryableException as TeaUnretryable

    if isinstance(e, ThrottlingException):
        return True, e.retry_after, False
    if isinstance(e, ClientException):
        code = str(e.code or "")
        if code.startswith("Throttling") or e.status_code == 429 or code in ("ServiceUnavailable",
                                                                             "RequestTimeout"):
            return True, e.retry_after, False
        if "NextToken" in code or "Token" in code and "Security" not in code:
            return False, None, True
        return False, None, False
    if isinstance(e, ServerException):
        return True, e.retry_after, False
    if isinstance(e, (DaraUnretryable, TeaUnretryable)):
        from alibabacloud_credentials.exceptions import CredentialException
        if isinstance(getattr(e, "inner_exception", None), CredentialException):
            return False, None, False  # no credentials: retrying will not find any
        return True, None, False   # non-JSON gateway page, dropped or refused connection, timeout
    if isinstance(e, TeaException):
        status = getattr(e, "status_code", None) or getattr(e, "statusCode", None)
        return bool(status and (status >= 500 or status == 429)), getattr(e, "retry_after", None), False
    try:
        import requests
        if isinstance(e, requests.exceptions.RequestException):
            return True, None, False
    except ImportError:  # pragma: no cover
        pass
    if isinstance(e, (ConnectionError, TimeoutError)):
        return True, None, False
    return False, None, False
