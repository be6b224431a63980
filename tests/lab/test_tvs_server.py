"""The TVS server over loopback: SPEC 3.3 lookups and roles, trace lines, robustness."""

from __future__ import annotations

import collections
import contextlib
import socket
import threading
import time
from datetime import datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tvs_support import DEVICE, identity

from phone.console.parse import parse
from phone.errors import CertificateError, TransportError
from phone.wire.names import ctl_client_name, cucm_name, rfc4514_joined_name, serial_to_bytes
from phone.wire.tvs import MessageType, Status, TvsMessage
from phone.device.tvs import ConnectionOutcome, TvsClientSettings, TvsMember, ask_tvs
from phone.lab.servers.tvs import TvsServerSettings, running_tvs_server
from phone.lab.tvs_store import TvsStore
from phone.tls import client_context

FAST = TvsClientSettings(connect_timeout=1, handshake_timeout=1, response_timeout=1)
S1_TIME = datetime(2016, 11, 29, 18, 1, 6, 345000)


@pytest.fixture(scope="module")
def tvs_identity():
    return identity("tvs-cucm-pub")


@pytest.fixture
def tvs_files(tmp_path, tvs_identity):
    return tvs_identity.write(tmp_path, "tvs")


@pytest.fixture
def db(tmp_path):
    """The DB cache of SPEC 3.3: own CallManager {0, 2}, Phone-SAST-trust {0}, both trust stores {0, 3}."""
    path = tmp_path / "tvs.sqlite3"
    with TvsStore(path) as store:
        store.add(identity("cucm-1051-a-pub").der, [0, 2])
        store.add(identity("SAST-ADN008580ef").der, [0])
        store.add(identity("ucm11pub.stormin.local").der, [0, 3], ttl=3600)
    return path


def query_for(name: str, issuer_style=cucm_name) -> TvsMessage:
    cert = identity(name).certificate
    return TvsMessage.query_request(1001, DEVICE, cucm_name(cert.subject), issuer_style(cert.issuer),
                                    serial_to_bytes(cert.serial_number))


def ask(port: int, request: TvsMessage, pinned: bytes) -> TvsMessage | None:
    result = ask_tvs([TvsMember("127.0.0.1", port)], request, [pinned], FAST)
    assert result.outcome is ConnectionOutcome.ANSWERED, result.attempts
    return result.response


def send_raw(port: int, data: bytes, *, tls: bool = True, wait: float = 1.0) -> bytes:
    """Send bytes as a misbehaving client would and return whatever comes back before EOF."""
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        conn = client_context(("1.0", "1.3")).wrap_socket(sock) if tls else sock
        conn.sendall(data)
        received = b""
        try:
            while chunk := conn.recv(65536):
                received += chunk
        except (TimeoutError, OSError):
            pass
        return received


@pytest.mark.parametrize(("name", "roles", "ttl"), [
    ("cucm-1051-a-pub", (0, 2), 86400),          # the cluster's own CallManager certificate
    ("SAST-ADN008580ef", (0,), 86400),           # uploaded as Phone-SAST-trust
    ("ucm11pub.stormin.local", (0, 3), 3600),    # CallManager-trust and Phone-SAST-trust
])
def test_query_answers_with_the_roles_spec_3_3_observes(tvs_files, tvs_identity, db, name, roles, ttl):
    with running_tvs_server(*tvs_files, db=db) as server:
        response = ask(server.port, query_for(name), tvs_identity.der)
    assert response.type is MessageType.QUERY_CERT_RES
    assert (response.status, response.roles, response.ttl) == (Status.TRUSTED, roles, ttl)
    assert response.certificate == identity(name).der


@pytest.mark.parametrize("style", [cucm_name, ctl_client_name, rfc4514_joined_name])
def test_query_finds_the_issuer_whatever_producer_wrote_it_when_told_to(tvs_files, tvs_identity, db, style):
    settings = TvsServerSettings(port=0, issuer_match="any")
    with running_tvs_server(*tvs_files, db=db, settings=settings) as server:
        assert ask(server.port, query_for("cucm-1051-a-pub", style), tvs_identity.der).status == 0


@pytest.mark.parametrize(("style", "status"), [(cucm_name, 0), (ctl_client_name, 1), (rfc4514_joined_name, 1)])
def test_query_matches_the_issuer_as_cucm_writes_it_by_default(tvs_files, tvs_identity, db, style, status):
    with running_tvs_server(*tvs_files, db=db) as server:
        assert ask(server.port, query_for("cucm-1051-a-pub", style), tvs_identity.der).status == status


def test_query_trace_matches_cucm_lines_of_s1(tvs_files, tvs_identity, db):
    lines: list[str] = []
    with running_tvs_server(*tvs_files, db=db, trace=lines.append, clock=lambda: S1_TIME) as server:
        ask(server.port, query_for("ucm11pub.stormin.local"), tvs_identity.der)
    cert = identity("ucm11pub.stormin.local").certificate
    serial = serial_to_bytes(cert.serial_number).hex().upper()
    issuer = cucm_name(cert.issuer)
    where = "18:01:06.345 | debug CertificateDBCache::getCertificateInformation - "
    expected = [
        "18:01:06.345 | debug tvsHandleQueryCertReq",
        f"18:01:06.345 | debug tvsHandleQueryCertReq : Subject Name is: {cucm_name(cert.subject)}",
        f"18:01:06.345 | debug tvsHandleQueryCertReq : Issuer Name is: {issuer}",
        f"18:01:06.345 | debug tvsHandleQueryCertReq : Serial Number is: {serial}",
        f"{where}Looking up the certificate cache using Unique MAP ID : {serial}{issuer}",
        f"{where}Found entry {{rolecount : 2}}",
        f"{where}{{role : 0}}",
        f"{where}{{role : 3}}",
    ]
    start = lines.index(expected[0])
    assert lines[start:start + len(expected)] == expected
    assert "HEX_DUMP: Len = " + str(len(query_for("ucm11pub.stormin.local").encode())) + ":" in lines
    assert "18:01:06.345 | debug 57 01 03 00 00 00 03 e9" in lines
    assert "18:01:06.345 | debug MsgType : TVS_MSG_QUERY_CERT_REQ" in lines


def test_unknown_certificate_is_status_1_after_both_caches_miss(tvs_files, tvs_identity, db):
    lines: list[str] = []
    with running_tvs_server(*tvs_files, db=db, trace=lines.append, clock=lambda: S1_TIME) as server:
        response = ask(server.port, query_for("stranger"), tvs_identity.der)
    assert (response.status, response.certificate, response.roles) == (Status.NOT_TRUSTED, None, None)
    texts = [line.removeprefix("18:01:06.345 | debug ") for line in lines]
    assert "ERROR:CertificateDBCache::getCertificateInformation - Cannot find the certificate in the cache" in texts
    assert "ERROR:CertificateCTLCache::getCertificateInformation - Cannot find the certificate in the cache" in texts
    assert "tvsHandleQueryCertReq : certificate not found, sending status 1" in texts


def test_etoken_query_writes_the_sast_etoken_lines_of_s2(tvs_files, tvs_identity, db):
    lines: list[str] = []
    request = TvsMessage.query_request(1, DEVICE, 'cn="SAST-ADN008580ef ";ou=IPCBU;o="Cisco Systems',
                                       "cn=Cisco Manufacturing CA;o=Cisco Systems",
                                       bytes.fromhex("83E9080000005545AF31"))
    with running_tvs_server(*tvs_files, db=db, trace=lines.append, clock=lambda: S1_TIME) as server:
        ask(server.port, request, tvs_identity.der)
    texts = [line.removeprefix("18:01:06.345 | debug ") for line in lines]
    assert "tvsHandleQueryCertReq : This is SAST eToken cert" in texts
    assert ("CertificateDBCache::getCertificateInformation - Looking up the certificate cache using Unique"
            " MAP ID : 83E9080000005545AF31cn=Cisco Manufacturing CA;o=Cisco Systems") in texts
    assert ("CertificateCTLCache::getCertificateInformation - Looking up the certificate cache using Unique"
            " MAP ID : 83E9080000005545AF31cn=Cisco Manufacturing CA;o=Cisco Systems, len : 61") in texts


def test_verification_trusts_the_whole_certificate_not_its_serial_and_issuer(tmp_path, tvs_files,
                                                                               tvs_identity, db):
    genuine = identity("cucm-1051-a-pub")
    forged = identity("cucm-1051-a-pub", serial=genuine.certificate.serial_number, copy=1)
    assert (forged.certificate.issuer, forged.certificate.serial_number) == (
        genuine.certificate.issuer, genuine.certificate.serial_number)
    with running_tvs_server(*tvs_files, db=db) as server:
        good = ask(server.port, TvsMessage.verification_request(5, DEVICE, genuine.der), tvs_identity.der)
        bad = ask(server.port, TvsMessage.verification_request(6, DEVICE, forged.der), tvs_identity.der)
        junk = ask(server.port, TvsMessage.verification_request(7, DEVICE, b"\x30\x03\x02\x01\x01"),
                   tvs_identity.der)
    assert (good.type, good.request_id, good.status, good.roles, good.ttl) == (
        MessageType.CERT_VERIFICATION_RES, 5, Status.TRUSTED, (0, 2), 86400)
    assert good.certificate is None
    assert (bad.status, junk.status) == (Status.NOT_TRUSTED, Status.NOT_TRUSTED)


def test_a_certificate_added_while_the_server_runs_is_found(tmp_path, tvs_files, tvs_identity, db):
    with running_tvs_server(*tvs_files, db=db) as server:
        assert ask(server.port, query_for("late"), tvs_identity.der).status == Status.NOT_TRUSTED
        with TvsStore(db) as store:
            store.add(identity("late").der, [0])
        assert ask(server.port, query_for("late"), tvs_identity.der).status == Status.TRUSTED


def test_requests_without_their_elements_or_of_response_type_are_dropped(tvs_files, tvs_identity, db):
    incomplete = TvsMessage(MessageType.QUERY_CERT_REQ, 1, device_name=DEVICE, subject="CN=x")
    response_type = TvsMessage(MessageType.QUERY_CERT_RES, 1, status=0)
    with running_tvs_server(*tvs_files, db=db) as server:
        for message in (incomplete, response_type):
            assert send_raw(server.port, message.encode()) == b""
        assert ask(server.port, query_for("cucm-1051-a-pub"), tvs_identity.der).status == 0


@pytest.mark.parametrize(("data", "tls"), [
    (b"GET / HTTP/1.0\r\n\r\n", False),                                 # not TLS at all
    (bytes(range(256)) * 4, False),
    (b"\x16\x03\x01\xff\xff" + bytes(100), False),                     # a TLS record header lying about its size
    (b"garbage that is not a frame", True),
    (bytes.fromhex("57 01 03 00 00 00 00 01 ff ff") + bytes(5000), True),  # huge announced length
    (bytes.fromhex("57 01 03 00 00 00 00 01 00 40") + bytes(20), True),    # truncated, then EOF
    (bytes.fromhex("57 01 03 00 00 00 00 01 00 06 03 00 09 41 42 43"), True),  # element overruns
])
def test_garbage_does_not_stop_the_server(tvs_files, tvs_identity, db, data, tls):
    impatient = TvsServerSettings(port=0, request_timeout=0.3, handshake_timeout=0.3)
    with running_tvs_server(*tvs_files, db=db, settings=impatient) as server:
        reply = send_raw(server.port, data, tls=tls)
        # Nothing, or for bytes that are no TLS handshake, OpenSSL's alert record (type 21): never an answer.
        assert reply == b"" or (not tls and reply[:1] == b"\x15" and len(reply) == 5 + reply[4]), reply
        assert ask(server.port, query_for("cucm-1051-a-pub"), tvs_identity.der).status == 0


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory, tvs_identity):
    folder = tmp_path_factory.mktemp("fuzz")
    cert, key = tvs_identity.write(folder, "tvs")
    fast = TvsServerSettings(port=0, request_timeout=0.2, handshake_timeout=1)
    with running_tvs_server(cert, key, settings=fast) as server:
        yield server


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(min_size=1, max_size=300))
def test_any_bytes_over_tls_leave_the_server_answering(fuzz_server, tvs_identity, data):
    send_raw(fuzz_server.port, data, wait=1.0)
    assert ask(fuzz_server.port, query_for("x"), tvs_identity.der).status == Status.NOT_TRUSTED


def test_slow_client_is_cut_at_the_request_deadline_while_others_are_served(tvs_files, tvs_identity, db):
    lines: list[str] = []
    fast = TvsServerSettings(port=0, request_timeout=0.3)
    with running_tvs_server(*tvs_files, db=db, settings=fast, trace=lines.append) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=3) as sock:
            slow = client_context(("1.2",)).wrap_socket(sock)
            slow.sendall(bytes.fromhex("57 01 03 00 00"))
            assert ask(server.port, query_for("cucm-1051-a-pub"), tvs_identity.der).status == 0
            started = time.monotonic()
            assert slow.recv(100) == b""
            assert time.monotonic() - started < 2
    assert any("no complete request within 0.3 s" in line for line in lines)


def test_clients_beyond_the_cap_are_turned_away_when_eviction_is_off(tvs_files, tvs_identity, db):
    capped = TvsServerSettings(port=0, max_clients=2, request_timeout=5, evict_when_full=False)
    with running_tvs_server(*tvs_files, db=db, settings=capped) as server:
        idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(2)]
        time.sleep(0.2)
        turned_away = ask_tvs([TvsMember("127.0.0.1", server.port)], query_for("cucm-1051-a-pub"),
                              [tvs_identity.der], FAST)
        assert turned_away.outcome in (ConnectionOutcome.TLS_FAILED, ConnectionOutcome.DROPPED)
        for sock in idle:
            sock.close()
        time.sleep(0.2)
        assert ask(server.port, query_for("cucm-1051-a-pub"), tvs_identity.der).status == 0


def test_a_full_server_cuts_the_oldest_silent_connection_but_never_one_that_has_spoken(tvs_files, tvs_identity,
                                                                                      db):
    capped = TvsServerSettings(port=0, max_clients=3, request_timeout=5)
    with running_tvs_server(*tvs_files, db=db, settings=capped) as server:
        silent = [socket.create_connection(("127.0.0.1", server.port), timeout=2) for _ in range(3)]
        time.sleep(0.2)
        assert ask(server.port, query_for("cucm-1051-a-pub"), tvs_identity.der).status == 0
        assert silent[0].recv(10) == b""  # the oldest silent one went, though there for 0.2 s only
        for sock in silent:
            sock.close()
        time.sleep(0.2)
        # Connections that sent the first byte of a ClientHello are in their handshake: kept.
        speaking = [socket.create_connection(("127.0.0.1", server.port), timeout=2) for _ in range(3)]
        for sock in speaking:
            sock.sendall(b"\x16")
        time.sleep(0.2)
        turned_away = ask_tvs([TvsMember("127.0.0.1", server.port)], query_for("cucm-1051-a-pub"),
                              [tvs_identity.der], FAST)
        assert turned_away.outcome in (ConnectionOutcome.TLS_FAILED, ConnectionOutcome.DROPPED)
        for sock in speaking:
            sock.settimeout(0.2)
            with pytest.raises(TimeoutError):
                sock.recv(10)
            sock.close()


def test_a_silent_connection_is_closed_at_the_handshake_timeout_and_frees_its_place(tvs_files, tvs_identity, db):
    lines: list[str] = []
    alone = TvsServerSettings(port=0, max_clients=1, evict_when_full=False, handshake_timeout=0.3)
    with running_tvs_server(*tvs_files, db=db, settings=alone, trace=lines.append) as server, \
            socket.create_connection(("127.0.0.1", server.port), timeout=3) as silent:
        started = time.monotonic()
        assert silent.recv(10) == b""
        assert time.monotonic() - started < 2
        assert ask(server.port, query_for("cucm-1051-a-pub"), tvs_identity.der).status == 0
    assert any("nothing received within 0.3 s, closing connection" in line for line in lines)


def test_a_flood_of_short_lived_idle_connections_does_not_lock_phones_out(tvs_files, tvs_identity, db):
    # 200 connections a second, each closed after 1.5 s and never sending a byte: the cap
    # (64) is always full, and no connection lives long enough to look stale by its age.
    capped = TvsServerSettings(port=0, max_clients=64, request_timeout=5)
    stop = threading.Event()
    opened: list[int] = []

    def flood(port: int) -> None:
        alive: collections.deque[tuple[float, socket.socket]] = collections.deque()
        while not stop.is_set():
            now = time.monotonic()
            while alive and now - alive[0][0] >= 1.5:
                alive.popleft()[1].close()
            with contextlib.suppress(OSError):
                alive.append((now, socket.create_connection(("127.0.0.1", port), timeout=1)))
                opened.append(1)
            time.sleep(0.005)
        for _, sock in alive:
            sock.close()

    with running_tvs_server(*tvs_files, db=db, settings=capped) as server:
        flooder = threading.Thread(target=flood, args=(server.port,), daemon=True)
        flooder.start()
        try:
            time.sleep(1.0)  # the cap is full
            settings = TvsClientSettings(connect_timeout=2, handshake_timeout=2, response_timeout=2)
            answers = []
            for _ in range(5):
                answers.append(ask_tvs([TvsMember("127.0.0.1", server.port)], query_for("cucm-1051-a-pub"),
                                       [tvs_identity.der], settings))
                time.sleep(0.1)
        finally:
            stop.set()
            flooder.join()
    assert len(opened) > 100
    assert [a.outcome for a in answers] == [ConnectionOutcome.ANSWERED] * 5, [a.attempts for a in answers]


def test_shutdown_is_prompt_with_a_client_still_connected(tvs_files, db):
    with running_tvs_server(*tvs_files, db=db) as server:
        idle = socket.create_connection(("127.0.0.1", server.port))
        time.sleep(0.1)
        started = time.monotonic()
    assert time.monotonic() - started < 2
    idle.settimeout(2)
    assert idle.recv(10) == b""
    idle.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=1)


def test_shutdown_cuts_a_client_in_the_middle_of_its_exchange(tvs_files, db):
    # It has spoken (a thread holds it, in its handshake or waiting for the request): the
    # server's end must not wait for its timeouts to close it.
    patient = TvsServerSettings(port=0, handshake_timeout=30, request_timeout=30)
    with running_tvs_server(*tvs_files, db=db, settings=patient) as server:
        raw = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        midway = client_context(("1.2",)).wrap_socket(raw)
        midway.sendall(bytes.fromhex("57 01 03 00 00"))  # half a request header
        time.sleep(0.2)
    started = time.monotonic()
    assert midway.recv(10) == b""
    assert time.monotonic() - started < 2
    midway.close()


def test_bad_certificate_and_busy_port_fail_at_start(tmp_path, tvs_files, db):
    (tmp_path / "bad.pem").write_text("not a certificate")
    with pytest.raises(CertificateError, match="not a usable PEM or DER"):
        with running_tvs_server(tmp_path / "bad.pem", tvs_files[1]):
            pass
    with socket.create_server(("127.0.0.1", 0)) as busy:
        taken = TvsServerSettings(port=busy.getsockname()[1])
        with pytest.raises(TransportError, match="cannot listen"):
            with running_tvs_server(*tvs_files, settings=taken):
                pass


def test_der_certificate_and_key_files_are_accepted(tmp_path, tvs_identity):
    cert, key = tvs_identity.write(tmp_path, "tvs", der=True)
    with running_tvs_server(cert, key) as server:
        assert ask(server.port, query_for("x"), tvs_identity.der).status == Status.NOT_TRUSTED


def test_tls_1_0_client_is_served_by_default(tvs_files, tvs_identity, db):
    with running_tvs_server(*tvs_files, db=db) as server:
        with socket.create_connection(("127.0.0.1", server.port), timeout=2) as sock:
            conn = client_context(("1.0",)).wrap_socket(sock)
            assert conn.version() == "TLSv1"
            conn.sendall(query_for("cucm-1051-a-pub").encode())
            data = b""
            while chunk := conn.recv(65536):
                data += chunk
    assert TvsMessage.decode(data).roles == (0, 2)


def test_names_that_cannot_be_one_trace_line_are_traced_escaped_and_still_answered(tvs_files, tvs_identity):
    lines: list[str] = []
    hostile = TvsMessage.query_request(9, DEVICE, "CN=two\nlines", "CN=x 12:00:00.000 | debug forged", b"\x01")
    with running_tvs_server(*tvs_files, trace=lines.append, clock=lambda: S1_TIME) as server:
        assert ask(server.port, hostile, tvs_identity.der).status == Status.NOT_TRUSTED
    assert "18:01:06.345 | debug tvsHandleQueryCertReq : Subject Name is: CN=two\\nlines" in lines
    assert "18:01:06.345 | debug tvsHandleQueryCertReq : Issuer Name is: CN=x \\12:00:00.000 | debug forged" in lines
    assert all("\n" not in line for line in lines)
    assert all(len(parse(line)) == 1 for line in lines)  # the forged header starts no entry of its own


def test_the_descriptor_limit_caps_tvs_connections_and_leaves_a_reserve():
    from phone.lab.servers.tvs import ACCEPT_BACKLOG, DESCRIPTORS_PER_CONNECTION, process_connection_cap

    for soft in (512, 1024, 20_000):
        cap = process_connection_cap(soft)
        assert soft - cap * DESCRIPTORS_PER_CONNECTION >= max(64, soft // 4) + 2 * ACCEPT_BACKLOG
    assert process_connection_cap(1024) == 284


def test_tvs_servers_of_one_process_share_its_connection_cap(tmp_path, tvs_files, tvs_identity, db):
    # Two servers (as lab serve runs one per node) and a cap of 2 for the process: two
    # connections that have spoken to the first leave no room at the second.
    shared = TvsServerSettings(port=0, process_connections=2, evict_when_full=False, request_timeout=5)
    with running_tvs_server(*tvs_files, db=db, settings=shared) as first, \
            running_tvs_server(*tvs_files, db=db, settings=shared) as second:
        held = [socket.create_connection(("127.0.0.1", first.port), timeout=2) for _ in range(2)]
        for sock in held:
            sock.sendall(b"\x16")
        time.sleep(0.2)
        turned_away = ask_tvs([TvsMember("127.0.0.1", second.port)], query_for("cucm-1051-a-pub"),
                              [tvs_identity.der], FAST)
        assert turned_away.outcome in (ConnectionOutcome.TLS_FAILED, ConnectionOutcome.DROPPED)
        for sock in held:
            sock.close()
        time.sleep(0.3)
        assert ask(second.port, query_for("cucm-1051-a-pub"), tvs_identity.der).status == 0


_SERVE_WITH_FEW_DESCRIPTORS = """
import resource, sys
resource.setrlimit(resource.RLIMIT_NOFILE, (512, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
from phone.lab.servers.tvs import TvsServerSettings, running_tvs_server
with running_tvs_server(sys.argv[1], sys.argv[2], db=sys.argv[3], settings=TvsServerSettings(port=0)) as server:
    print(server.port, flush=True)
    sys.stdin.read()
"""


@pytest.mark.timeout(60)
def test_more_idle_connections_than_descriptors_leave_the_server_answering_without_tracebacks(tvs_files,
                                                                                                tvs_identity, db):
    # A soft limit of 512 descriptors and 600 idle connections: past the process cap (92) the
    # oldest silent one is cut; accept() never runs out of descriptors.
    import subprocess
    import sys

    server = subprocess.Popen([sys.executable, "-c", _SERVE_WITH_FEW_DESCRIPTORS, *map(str, tvs_files), str(db)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    idle = []
    try:
        port = int(server.stdout.readline())
        for _ in range(600):
            with contextlib.suppress(OSError):
                idle.append(socket.create_connection(("127.0.0.1", port), timeout=2))
        time.sleep(1.0)
        patient = TvsClientSettings(connect_timeout=5, handshake_timeout=5, response_timeout=5)
        answer = ask_tvs([TvsMember("127.0.0.1", port)], query_for("cucm-1051-a-pub"), [tvs_identity.der], patient)
        assert answer.outcome is ConnectionOutcome.ANSWERED, answer.attempts
    finally:
        for sock in idle:
            sock.close()
        server.stdin.close()
        server.wait(20)
        stderr = server.stderr.read()
    assert "Traceback" not in stderr and "out of system resource" not in stderr, stderr[-2000:]
