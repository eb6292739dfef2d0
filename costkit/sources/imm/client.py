"""The IMM SDK client, and how one IMM call runs: bounded retries, interruptible, with a fatal error that
says what to fix."""
from __future__ import annotations

import threading

from costkit.core.errors import CostkitError, RuntimeFailure, one_line
from costkit.sources.credentials import tea_config_kwargs
from costkit.sources.endpoint import parse_endpoint
from costkit.sources.retry import RetryPolicy, classify, describe

CONNECT_TIMEOUT_MS = 5_000
READ_TIMEOUT_MS = 10_000                  # the SDK default; a hung reply is retried


def make_client(region: str, endpoint: str | None, credentials=None):
    """An IMM SDK client. `credentials`: None for the default Alibaba Cloud chain, a credentials client
    (`alibabacloud_credentials.client.Client`), or static keys as a dict or tuple
    (access_key_id, access_key_secret[, security_token])."""
    from alibabacloud_imm20200930.client import Client
    from alibabacloud_tea_openapi.models import Config

    host, protocol = parse_endpoint(endpoint, region)
    kw = dict(endpoint=host, protocol=protocol, region_id=region, connect_timeout=CONNECT_TIMEOUT_MS,
              read_timeout=READ_TIMEOUT_MS)
    kw.update(tea_config_kwargs(credentials))
    return Client(Config(**kw))


def thread_clients(region: str, endpoint: str | None, credentials=None):
    """A function returning the calling thread's own IMM client (made on first use)."""
    local = threading.local()

    def client():
        c = getattr(local, "client", None)
        if c is None:
            c = local.client = make_client(region, endpoint, credentials)
        return c

    return client


class Restart(Exception):
    """The server rejected a NextToken: list the slice again from its first page."""


class Stopped(Exception):
    """Another slice failed; stop quietly."""


_CREDENTIAL_CODES = ("InvalidAccessKeyId", "SignatureDoesNotMatch", "InvalidCredentials",
                     "InvalidSecurityToken", "IncompleteSignature", "MissingAuthorization")


def fatal_message(what: str, e: BaseException) -> str:
    """The failure text for an error not worth retrying, with a hint at the fix (credentials, RAM)."""
    from alibabacloud_credentials.exceptions import CredentialException

    inner = getattr(e, "inner_exception", None)
    if isinstance(e, CredentialException) or isinstance(inner, CredentialException):
        return (f"{what}: no usable Alibaba Cloud credentials (set ALIBABA_CLOUD_ACCESS_KEY_ID and "
                f"ALIBABA_CLOUD_ACCESS_KEY_SECRET, a CLI profile or a RAM role): {one_line(inner or e, 160)}")
    msg = f"{what} failed: {describe(e)}"
    code = str(getattr(e, "code", "") or "")
    if code.startswith(_CREDENTIAL_CODES):
        msg += " (check the AccessKey: ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET or the credentials chain)"
    elif code.startswith(("Forbidden", "NoPermission")):
        msg += " (the RAM user or role needs imm:ListTasks and imm:ListProjects)"
    return msg


class Caller:
    """Runs one SDK call with bounded retries; interruptible through `stop`."""

    def __init__(self, policy: RetryPolicy, stop: threading.Event, sleep=None):
        self.policy, self.stop = policy, stop
        self._sleep = sleep or (lambda s: stop.wait(s))
        self.retries = 0
        self._lock = threading.Lock()

    def __call__(self, what: str, fn, *args):
        attempts = max(1, self.policy.attempts)
        for attempt in range(1, attempts + 1):
            if self.stop.is_set():
                raise Stopped()
            try:
                return fn(*args)
            except CostkitError:
                raise
            except Exception as e:
                retry, retry_after, restart = classify(e)
                if restart:
                    raise Restart(describe(e)) from None
                if not retry:
                    raise RuntimeFailure(fatal_message(what, e)) from None
                if attempt == attempts:
                    raise RuntimeFailure(f"{what}: gave up after {attempts} attempts; last error: "
                                         f"{describe(e)}") from None
                with self._lock:
                    self.retries += 1
                self._sleep(self.policy.delay(attempt, retry_after))
        raise AssertionError("unreachable")  # pragma: no cover
