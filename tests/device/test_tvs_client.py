"""The phone's TVS client over loopback: pinning, fail-over, timeouts, TLS versions (SPEC 3.1)."""

from __future__ import annotations

import socket

import pytest
from tvs_support import DEVICE, hold, identity, record_then, scripted_server

from phone.errors import UsageError
from phone.wire.names import cucm_name, serial_to_bytes
from phone.wire.tvs import MessageType, Status, TvsMessage
from phone.device.tvs import (
    ConnectionOutcome,
    TvsClientSettings,
    TvsMember,
    ask_tvs,
)
from phone.lab.servers.tvs import TvsServerSettings, running_tvs_server
from phone.lab.tvs_store import TvsStore
from phone.tls import ClientIdentity

FAST = TvsClientSettings(connect_timeout=1, handshake_timeout=0.3, response_timeout=0.3)


@pytest.fixture(scope="module")
def tvs_identity():
    return identity("tvs-cucm-pub", bits=2048)


@pytest.fixture
def server(tmp_path, tvs_identity):
    """A real TVS server whose DB holds the publisher's CallManager certificate as {0, 2}."""
    pub = identity("cucm-1051-a-pub")
    with TvsStore(tmp_path / "tvs.sqlite3") as store:
        store.add(pub.der, [0, 2])
    cert, key = tvs_identity.write(tmp_path, "tvs")
    with running_tvs_server(cert, key, db=tmp_path / "tvs.sqlite3") as running:
        yield running


def query_for(name: str, request_id: int = 1001) -> TvsMessage:
    cert = identity(name).certificate
    return TvsMessage.query_request(request_id, DEVICE, cucm_name(cert.subject), cucm_name(cert.issuer),
                                    serial_to_bytes(cert.serial_number))


def free_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_query_is_answered_with_certificate_roles_and_ttl(server, tvs_identity):
    result = ask_tvs([TvsMember("127.0.0.1", server.port)], query_for("cucm-1051-a-pub"), [tvs_identity.der], FAST)
    assert [attempt.outcome for attempt in result.attempts] == [ConnectionOutcome.ANSWERED]
    assert result.response.type is MessageType.QUERY_CERT_RES
    assert result.response.request_id == 1001
    assert (result.response.status, result.response.roles, result.response.ttl) == (0, (0, 2), 86400)
    assert result.response.certificate == identity("cucm-1051-a-pub").der
    assert result.attempts[0].as_json() == {
        "server": server.address, "type": 3, "status": 0, "roles": [0, 2], "error": None,
        "outcome": "answered", "tls_version": result.attempts[0].tls_version}


def test_verification_of_an_unknown_certificate_is_status_1(server, tvs_identity):
    request = TvsMessage.verification_request(1002, DEVICE, identity("stranger").der)
    result = ask_tvs([TvsMember("127.0.0.1", server.port)], request, [tvs_identity.der], FAST)
    assert result.outcome is ConnectionOutcome.ANSWERED
    assert result.response.status == Status.NOT_TRUSTED
    assert result.response.roles is None


def test_unpinned_server_is_refused_before_anything_is_sent(tmp_path, tvs_identity):
    with scripted_server(tmp_path, record_then("drop"), server=identity("impostor")) as peer:
        result = ask_tvs([TvsMember("127.0.0.1", peer.port)], query_for("x"), [tvs_identity.der], FAST)
    assert result.outcome is ConnectionOutcome.UNTRUSTED_SERVER
    assert "request not sent" in result.attempts[0].error
    assert result.response is None
    assert peer.received == [b""]


def test_fail_over_to_the_second_member_in_priority_order(server, tvs_identity):
    members = [TvsMember("127.0.0.1", server.port, priority=1),
               TvsMember("127.0.0.1", free_port(), priority=0)]
    result = ask_tvs(members, query_for("cucm-1051-a-pub"), [tvs_identity.der], FAST)
    assert [attempt.outcome for attempt in result.attempts] == [ConnectionOutcome.REFUSED, ConnectionOutcome.ANSWERED]
    assert result.attempts[1].server == server.address
    assert result.response.status == Status.TRUSTED


def test_unpinned_first_member_fails_over_to_the_pinned_one(tmp_path, server, tvs_identity):
    with scripted_server(tmp_path, record_then("drop"), server=identity("impostor")) as impostor:
        members = [TvsMember("127.0.0.1", impostor.port), TvsMember("127.0.0.1", server.port, 1)]
        result = ask_tvs(members, query_for("cucm-1051-a-pub"), [tvs_identity.der], FAST)
    assert [a.outcome for a in result.attempts] == [ConnectionOutcome.UNTRUSTED_SERVER, ConnectionOutcome.ANSWERED]


def test_server_that_never_answers_times_out_as_no_answer(tmp_path, tvs_identity):
    with scripted_server(tmp_path, record_then("silent"), server=tvs_identity) as peer:
        result = ask_tvs([TvsMember("127.0.0.1", peer.port)], query_for("x"), [tvs_identity.der], FAST)
    assert result.outcome is ConnectionOutcome.NO_ANSWER
    assert "0.3 s" in result.attempts[0].error
    assert peer.received == [query_for("x").encode()]


def test_server_that_never_handshakes_times_out_as_handshake_timeout(tmp_path, tvs_identity):
    with scripted_server(tmp_path, hold, tls=False) as peer:
        result = ask_tvs([TvsMember("127.0.0.1", peer.port)], query_for("x"), [tvs_identity.der], FAST)
    assert result.outcome is ConnectionOutcome.HANDSHAKE_TIMEOUT


def test_dropped_connection_is_reported_as_dropped(tmp_path, tvs_identity):
    with scripted_server(tmp_path, record_then("drop"), server=tvs_identity) as peer:
        result = ask_tvs([TvsMember("127.0.0.1", peer.port)], query_for("x"), [tvs_identity.der], FAST)
    assert result.outcome is ConnectionOutcome.DROPPED
    assert result.attempts[0].error == "server closed the connection without answering"


@pytest.mark.parametrize(("reply", "error"), [
    (bytes.fromhex("57 01 04 00 00 00 03 e9 00 04"), "truncated after 10 of 14 bytes"),
    (bytes.fromhex("57 01"), "truncated after 2 bytes"),
    (bytes.fromhex("99 01 04 00 00 00 03 e9 00 00"), "protocol id 0x57"),
    (bytes.fromhex("57 01 02 00 00 00 03 e9 00 04 07 00 01 00"), "expected QUERY_CERT_RES, got CERT_VERIFICATION_RES"),
    (bytes.fromhex("57 01 04 00 00 00 03 ea 00 04 07 00 01 00"), "expected request id 1001, got 1002"),
    (bytes.fromhex("57 01 04 00 00 00 03 e9 00 00"), "QUERY_CERT_RES without STATUS"),
    (bytes.fromhex("57 01 04 00 00 00 03 e9 00 04 07 00 02 00"), "element 7 of 2 bytes"),
])
def test_malformed_answers_are_reported_as_malformed(tmp_path, tvs_identity, reply, error):
    with scripted_server(tmp_path, record_then("reply", reply), server=tvs_identity) as peer:
        result = ask_tvs([TvsMember("127.0.0.1", peer.port)], query_for("x"), [tvs_identity.der], FAST)
    assert result.outcome is ConnectionOutcome.MALFORMED
    assert error in result.attempts[0].error


def test_tls_1_0_only_phone_talks_to_the_server(server, tvs_identity):
    settings = TvsClientSettings(tls_versions=("1.0",), response_timeout=2)
    result = ask_tvs([TvsMember("127.0.0.1", server.port)], query_for("cucm-1051-a-pub"), [tvs_identity.der],
                 settings)
    assert result.outcome is ConnectionOutcome.ANSWERED
    assert result.attempts[0].tls_version == "TLSv1"


def test_tls_1_0_only_phone_fails_against_a_server_raised_to_1_2(tmp_path, tvs_identity):
    cert, key = tvs_identity.write(tmp_path, "tvs")
    with running_tvs_server(cert, key, settings=TvsServerSettings(port=0, min_tls="1.2")) as running:
        result = ask_tvs([TvsMember("127.0.0.1", running.port)], query_for("x"), [tvs_identity.der],
                     TvsClientSettings(tls_versions=("1.0",)))
    assert result.outcome is ConnectionOutcome.TLS_FAILED
    assert result.attempts[0].error.startswith("TLS handshake failed")


def test_client_presents_its_certificate_when_asked(tmp_path, tvs_identity):
    phone = identity("CP-8861-SEPB000B4BA0AEE", organisation=None)
    cert, key = phone.write(tmp_path, "lsc")
    settings = TvsClientSettings(identity=ClientIdentity(cert, key), response_timeout=0.3)
    with scripted_server(tmp_path, record_then("drop"), server=tvs_identity, trust_client=phone) as peer:
        ask_tvs([TvsMember("127.0.0.1", peer.port)], query_for("x"), [tvs_identity.der], settings)
    assert peer.client_certificates == [phone.der]


def test_every_member_failing_gives_no_response_and_all_attempts(tvs_identity):
    members = [TvsMember("127.0.0.1", free_port()), TvsMember("127.0.0.1", free_port(), 1)]
    result = ask_tvs(members, query_for("x"), [tvs_identity.der], FAST)
    assert [a.outcome for a in result.attempts] == [ConnectionOutcome.REFUSED, ConnectionOutcome.REFUSED]
    assert result.response is None


def test_failover_can_be_limited_to_connection_failures(tmp_path, server, tvs_identity):
    settings = TvsClientSettings(response_timeout=0.3, failover_on=frozenset({ConnectionOutcome.REFUSED}))
    with scripted_server(tmp_path, record_then("drop"), server=tvs_identity) as dropper:
        members = [TvsMember("127.0.0.1", dropper.port), TvsMember("127.0.0.1", server.port, 1)]
        result = ask_tvs(members, query_for("cucm-1051-a-pub"), [tvs_identity.der], settings)
    assert [a.outcome for a in result.attempts] == [ConnectionOutcome.DROPPED]


def test_asking_without_a_pinned_certificate_or_member_is_a_usage_error(tvs_identity):
    with pytest.raises(UsageError, match="no TVS certificate to pin"):
        ask_tvs([TvsMember("127.0.0.1", 2445)], query_for("x"), [])
    with pytest.raises(UsageError, match="no TVS server"):
        ask_tvs([], query_for("x"), [tvs_identity.der])


@pytest.mark.parametrize(("text", "member"), [
    ("cucm", TvsMember("cucm", 2445)),
    ("10.0.0.1:2446", TvsMember("10.0.0.1", 2446)),
    ("[::1]:2447", TvsMember("::1", 2447)),
    ("::1", TvsMember("::1", 2445)),
])
def test_member_parsing(text, member):
    assert TvsMember.parse(text) == member


def test_member_with_a_bad_port_is_a_usage_error():
    with pytest.raises(UsageError, match="bad port"):
        TvsMember.parse("cucm:99999")


def test_a_stored_member_whose_name_cannot_be_encoded_is_a_refused_attempt_and_the_next_is_asked(
        server, tvs_identity):
    # A configuration file names the members; "a..b" makes the IDNA codec raise UnicodeError,
    # which is not an OSError: it must fail over like any unreachable member.
    members = [TvsMember("a..b", 2445), TvsMember("x" * 64 + ".example", 2445, 1),
               TvsMember("127.0.0.1", server.port, 2)]
    result = ask_tvs(members, query_for("cucm-1051-a-pub"), [tvs_identity.der], FAST)
    assert [a.outcome for a in result.attempts] == [ConnectionOutcome.REFUSED, ConnectionOutcome.REFUSED, ConnectionOutcome.ANSWERED]
    assert "cannot connect" in result.attempts[0].error


@pytest.mark.parametrize("text", ["a..b", "a..b:2445", "cucm:²", "cucm:" + "9" * 5000, "cucm:0", "[::1]:x",
                                  "bad host:2445"])
def test_member_that_cannot_name_a_server_is_a_usage_error(text):
    with pytest.raises(UsageError, match="bad (host|port)"):
        TvsMember.parse(text)
