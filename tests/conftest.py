"""Shared test setup: traffic stays on 127.0.0.1 and credentials are explicit test keys."""
import os

# The credential chain reads these at import time; the Makefile and .ci/run set them too.
os.environ.setdefault("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")
os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
for _v in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
    os.environ.pop(_v, None)

TEST_AK = "test-ak"
TEST_SK = "test-secret"


# --- Loopback guard: a test that tries to reach anything but 127.0.0.1 (or a Unix socket) fails at once,
# instead of probing the metadata address or a real endpoint. It guards sockets, not SDK methods.
import ipaddress  # noqa: E402
import socket  # noqa: E402

import pytest  # noqa: E402

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo
_LOCAL_NAMES = {"localhost", "127.0.0.1", "::1", "", None}


def _is_loopback(address) -> bool:
    if not isinstance(address, tuple):  # AF_UNIX path
        return True
    host = address[0]
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host in _LOCAL_NAMES


def _guarded_connect(self, address):
    if not _is_loopback(address):
        raise ConnectionRefusedError(f"test tried to reach {address!r}: only 127.0.0.1 is allowed")
    return _real_connect(self, address)


def _guarded_connect_ex(self, address):
    if not _is_loopback(address):
        raise ConnectionRefusedError(f"test tried to reach {address!r}: only 127.0.0.1 is allowed")
    return _real_connect_ex(self, address)


def _guarded_getaddrinfo(host, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else host
    if name not in _LOCAL_NAMES and not _is_loopback((name, 0)):
        raise socket.gaierror(f"test tried to resolve {name!r}: only 127.0.0.1 is allowed")
    return _real_getaddrinfo(host, *args, **kwargs)


@pytest.fixture(autouse=True, scope="session")
def _loopback_only():
    socket.socket.connect = _guarded_connect
    socket.socket.connect_ex = _guarded_connect_ex
    socket.getaddrinfo = _guarded_getaddrinfo
    yield
    socket.socket.connect = _real_connect
    socket.socket.connect_ex = _real_connect_ex
    socket.getaddrinfo = _real_getaddrinfo


def pytest_terminal_summary(terminalreporter):
    """One visible line when the browser tests skipped because chromium is missing (tests/browser.py)."""
    from browser import INSTALL_HINT, MISSING
    if MISSING:
        terminalreporter.write_line(f"{INSTALL_HINT} (missing: {', '.join(sorted(set(MISSING)))})",
                                    yellow=True, bold=True)
