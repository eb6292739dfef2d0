"""The local MNS server speaks the queue protocol as the real aliyun-mns-sdk sends and reads it."""
import threading
import time

import pytest
from mns.account import Account
from mns.auth import StaticCredentialsProvider
from mns.mns_exception import MNSServerException
from mns.queue import Message

from conftest import TEST_AK, TEST_SK
from costkit.testing.mns_server import MNSServer


def queue(srv, name="q", ak=TEST_AK, sk=TEST_SK, token=""):
    q = Account(srv.endpoint, credentials_provider=StaticCredentialsProvider(ak, sk, token)).get_queue(name)
    q.set_encoding(False)
    return q


@pytest.fixture
def srv():
    with MNSServer(visibility_timeout=0.5) as s:
        s.create_queue("q")
        yield s


@pytest.mark.parametrize("ak, sk, code", [(TEST_AK, "wrong-secret", "SignatureDoesNotMatch"),
                                          ("other-ak", TEST_SK, "InvalidAccessKeyId")])
def test_the_signature_check_rejects_a_wrong_key_and_hands_out_nothing(srv, ak, sk, code):
    srv.enqueue("q", "body")
    with pytest.raises(MNSServerException) as e:
        queue(srv, ak=ak, sk=sk).batch_receive_message(16, 0)
    assert e.value.type == code
    assert srv.snapshot("q")[0]["dequeue_count"] == 0
    assert [m.message_body for m in queue(srv).batch_receive_message(16, 0)] == ["body"]


def test_a_security_token_must_match_what_the_server_expects(srv):
    with pytest.raises(MNSServerException) as e:
        queue(srv, token="stale-token").batch_receive_message(16, 0)
    assert e.value.type == "InvalidSecurityToken"
    with MNSServer(security_token="sts-token") as sts:
        sts.enqueue("q", "a")
        with pytest.raises(MNSServerException):
            queue(sts).batch_receive_message(16, 0)
        assert [m.message_body for m in queue(sts, token="sts-token").batch_receive_message(16, 0)] == ["a"]


def test_an_empty_queue_answers_message_not_exist_and_an_unknown_queue_queue_not_exist(srv):
    with pytest.raises(MNSServerException) as e:
        queue(srv).batch_receive_message(16, 0)
    assert e.value.type == "MessageNotExist"
    with pytest.raises(MNSServerException) as e:
        queue(srv, "nope").batch_receive_message(16, 0)
    assert e.value.type == "QueueNotExist"


def test_an_undeleted_message_comes_back_after_its_visibility_timeout_with_a_new_handle(srv):
    srv.enqueue("q", "a")
    q = queue(srv)
    first = q.batch_receive_message(16, 0)[0]
    with pytest.raises(MNSServerException):
        q.batch_receive_message(16, 0)  # invisible now
    time.sleep(0.6)
    again = q.batch_receive_message(16, 0)[0]
    assert (again.message_id, again.dequeue_count) == (first.message_id, 2)
    assert again.receipt_handle != first.receipt_handle
    with pytest.raises(MNSServerException) as e:
        q.delete_message(first.receipt_handle)   # the old handle no longer names it
    assert e.value.type == "MessageNotExist"
    q.delete_message(again.receipt_handle)
    assert srv.queue_size("q") == 0 and srv.deleted("q") == [first.message_id]


def test_batch_delete_deletes_the_valid_handles_and_reports_each_stale_one(srv):
    for body in ("a", "b", "c"):
        srv.enqueue("q", body)
    q = queue(srv)
    msgs = q.batch_receive_message(16, 0)
    stale = msgs[0].receipt_handle + "x"
    with pytest.raises(MNSServerException) as e:
        q.batch_delete_message([stale] + [m.receipt_handle for m in msgs[1:]])
    assert e.value.type == "MessageNotExist"
    assert [s["ReceiptHandle"] for s in e.value.sub_errors] == [stale]
    assert [m["body"] for m in srv.snapshot("q")] == ["a"]


def test_a_long_poll_returns_as_soon_as_a_message_arrives(srv):
    threading.Timer(0.3, srv.enqueue, ("q", "late")).start()
    t0 = time.monotonic()
    msgs = queue(srv).batch_receive_message(16, 10)
    assert [m.message_body for m in msgs] == ["late"]
    assert 0.25 < time.monotonic() - t0 < 3


def test_the_sdk_default_base64_encoding_round_trips_through_send_and_receive(srv):
    q = queue(srv)
    q.set_encoding(True)
    q.send_message(Message("héllo"))
    assert srv.snapshot("q")[0]["body"] == "aMOpbGxv"
    assert q.batch_receive_message(16, 0)[0].message_body == "héllo".encode()


@pytest.mark.parametrize("kind, code", [("server_500", "InternalError"), ("server_503", "ServiceUnavailable"),
                                        ("throttle", "TooManyRequests")])
def test_injected_faults_answer_with_the_mns_error_code_then_recover(srv, kind, code):
    srv.enqueue("q", "a")
    srv.add_fault(kind, times=1)
    with pytest.raises(MNSServerException) as e:
        queue(srv).batch_receive_message(16, 0)
    assert e.value.type == code
    assert [m.message_body for m in queue(srv).batch_receive_message(16, 0)] == ["a"]
