"""The test session itself refuses traffic off the loopback interface (see conftest.py)."""
import socket

import pytest


def test_connecting_to_the_metadata_address_is_refused():
    with socket.socket() as s, pytest.raises(ConnectionRefusedError, match="only 127.0.0.1"):
        s.connect(("100.100.100.200", 80))


def test_resolving_a_public_name_is_refused():
    with pytest.raises(socket.gaierror, match="only 127.0.0.1"):
        socket.getaddrinfo("imm.cn-hangzhou.aliyuncs.com", 443)
