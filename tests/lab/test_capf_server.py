"""The lab's CAPF server over real TLS: operations, authentication modes, keys, refusals, hostile clients."""

from __future__ import annotations

import contextlib
import datetime
import socket
import ssl
import time

import attrs
import pytest
from capf_support import (
    DEVICE,
    NOW,
    CapfConnection,
    CapfPhone,
    capf_identity,
    device,
    lsc_from,
    manufacturing_ca,
    mic,
    phone_key,
    public_der,
    put,
)
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from phone.lab.devices import DeviceStore
from phone.lab.servers.capf import CapfServerSettings, running_capf_server
from phone.wire.capf import CapfHeader, CapfMessage, Command, Curve, KeyType, Reason
from phone.wire.certs import Profile, make_certificate, simple_subject

FAST = CapfServerSettings(port=0, handshake_timeout=1, step_timeout=1, keygen_timeout=2, send_timeout=1)


@pytest.fixture
def store(tmp_path):
    return DeviceStore(tmp_path / "devices.sqlite")


@pytest.fixture
def serve(store):
    """Start a CAPF server (settings overridable); yields the running server."""
    import contextlib

    with contextlib.ExitStack() as stack:
        def start(**overrides):
            settings = attrs.evolve(FAST, **overrides)
            return stack.enter_context(running_capf_server(
                capf_identity(), store, trusted_capf=lambda: [capf_identity().certificate],
                trusted_manufacturing=lambda: [manufacturing_ca().certificate], settings=settings,
                clock=lambda: NOW))
        yield start


@pytest.fixture
def server(serve):
    return serve()


def wait_for_results(server, count: int = 1, timeout: float = 5.0):
    deadline = time.monotonic() + timeout
    while len(server.server.results) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return server.server.results


# -- the opening ------------------------------------------------------------------------------

def test_the_server_speaks_first_with_version_3_and_auth_type_0_in_one_write(server, store):
    with CapfConnection(server.port) as connection:
        # One TLS record carries the whole frame: header and body were written together.
        data = connection.tls.recv(65536)
    message = CapfMessage.decode(data)
    assert message.command is Command.AUTH_REQUEST
    assert (message.version, message.auth_type) == (3, 0)


def test_auth_type_can_be_left_out_as_cucm_does(serve):
    server = serve(auth_type_in_request=False)
    with CapfConnection(server.port) as connection:
        message = connection.receive()
    assert message.version == 3 and message.auth_type is None


def test_the_server_presents_the_capf_certificate(server):
    with CapfConnection(server.port) as connection:
        assert connection.server_certificate == capf_identity().der


def test_each_connection_gets_its_own_session_id_echoed_in_every_frame(server, store):
    put(store, device())
    first = CapfPhone().run(server.port)
    second = CapfPhone().run(server.port)
    ids = {m.session_id for m in first.received}
    assert len(ids) == 1 and ids != {m.session_id for m in second.received}
    assert 0 not in ids


# -- install / upgrade ----------------------------------------------------------------------

@pytest.mark.parametrize(("key", "asked"), [
    ("rsa1024", {"key_size": 1024, "key_type": KeyType.RSA, "curve": None}),
    ("rsa2048", {"key_size": 2048, "key_type": KeyType.RSA, "curve": None}),
    ("ec256", {"key_size": None, "key_type": KeyType.EC, "curve": Curve.P256}),
    ("ec384", {"key_size": None, "key_type": KeyType.EC, "curve": Curve.P384}),
    ("ec521", {"key_size": None, "key_type": KeyType.EC, "curve": Curve.P521}),
])
def test_install_asks_for_the_devices_key_and_stores_the_lsc_it_issued(server, store, key, asked):
    put(store, device(key=key))
    transcript = CapfPhone().run(server.port)
    assert transcript.commands() == [Command.AUTH_REQUEST, Command.KEY_GENERATE_REQUEST,
                                     Command.STORE_CERTIFICATE_REQUEST, Command.END_SESSION]
    request = transcript.received[1]
    assert {"key_size": request.key_size, "key_type": request.key_type, "curve": request.curve} == asked
    assert transcript.end_reason == Reason.OK
    lsc = transcript.lsc
    assert lsc.public_key().public_numbers() == transcript.key.public_key().public_numbers()
    lsc.verify_directly_issued_by(capf_identity().certificate)
    assert lsc.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value == f"CP-8861-{DEVICE}"
    record = store.get(DEVICE)
    assert record.capf.status == "successful" and not record.capf.pending
    assert record.lsc_der == transcript.received[2].certificate[1]


def test_store_request_carries_certificate_type_lsc(server, store):
    put(store, device())
    transcript = CapfPhone().run(server.port)
    store_request = transcript.received[2]
    assert store_request.elements[next(t for t in store_request.elements if t.name == "CERTIFICATE_TYPE")] == b"\x01"
    assert store_request.certificate[0] == 1


def test_rsa_key_size_alone_when_key_type_is_not_sent(serve, store):
    server = serve(key_type_for_rsa=False)
    put(store, device())
    request = CapfPhone().run(server.port).received[1]
    assert (request.key_size, request.key_type) == (1024, None)


def test_a_phone_below_version_3_gets_rsa_when_its_device_asks_for_ec(server, store):
    put(store, device(key="ec256"))
    transcript = CapfPhone(version=2).run(server.port)
    request = transcript.received[1]
    assert (request.key_type, request.key_size, request.curve) == (KeyType.RSA, 2048, None)
    assert transcript.end_reason == Reason.OK


def test_without_an_rsa_fallback_ec_for_a_version_2_phone_fails(serve, store):
    server = serve(ec_fallback_rsa_bits=None)
    put(store, device(key="ec256"))
    transcript = CapfPhone(version=2).run(server.port)
    assert transcript.commands() == [Command.AUTH_REQUEST, Command.END_SESSION]
    assert transcript.end_reason == Reason.FAILED
    assert store.get(DEVICE).capf.status == "failed"


def product_serial(lsc: x509.Certificate) -> str:
    return lsc.subject.get_attributes_for_oid(x509.NameOID.SERIAL_NUMBER)[0].value


def test_upgrade_replaces_the_lsc_and_names_the_mac_when_the_mic_has_no_serial(server, store):
    old = lsc_from(capf_identity())
    put(store, device(operation="upgrade", auth="existing-mic", lsc_der=old.der))
    transcript = CapfPhone(certificate=mic()).run(server.port)
    assert transcript.end_reason == Reason.OK
    assert store.get(DEVICE).lsc_der not in (None, old.der)
    assert product_serial(transcript.lsc) == "PID:CP-8861 SN:001122334455"


def test_the_product_serial_comes_from_a_mic_that_carries_one(server, store):
    subject = simple_subject(serialNumber="PID:CP-8861 SN:FCH2231ABCD", O="Cisco Systems Inc.", OU="CTG",
                             CN=f"CP-8861-{DEVICE}")
    carrying = make_certificate(subject, phone_key(KeyType.RSA, 1024, 3), not_before=NOW - datetime.timedelta(days=1),
                                serial=0x1234, profile=Profile.DEVICE, issuer=manufacturing_ca())
    put(store, device(auth="existing-mic"))
    transcript = CapfPhone(certificate=carrying).run(server.port)
    assert product_serial(transcript.lsc) == "PID:CP-8861 SN:FCH2231ABCD"


@pytest.mark.parametrize(("behaviour", "detail"), [
    ({"public_key": lambda key: None}, "could not generate"),
    ({"public_key": lambda key: public_der(phone_key(KeyType.RSA, 2048))}, "RSA-1024"),
    ({"public_key": lambda key: public_der(phone_key(KeyType.EC, Curve.P256))}, "RSA-1024"),
    ({"public_key": lambda key: b"\x30\x03\x02\x01\x01"}, "PUBLIC_KEY"),
    ({"store_reason": Reason.FAILED}, "did not store"),
])
def test_a_failed_install_is_recorded_and_keeps_the_old_lsc(server, store, behaviour, detail):
    old = lsc_from(capf_identity())
    put(store, device(lsc_der=old.der))
    transcript = CapfPhone(**behaviour).run(server.port)
    assert transcript.end_reason == Reason.FAILED
    record = store.get(DEVICE)
    assert record.capf.status == "failed" and record.lsc_der == old.der
    assert detail in wait_for_results(server)[-1].detail


def test_an_ec_key_where_rsa_was_asked_is_refused_by_curve_too(server, store):
    put(store, device(key="ec384"))
    transcript = CapfPhone(public_key=lambda key: public_der(phone_key(KeyType.EC, Curve.P256))).run(server.port)
    assert transcript.end_reason == Reason.FAILED
    assert "secp384r1" in wait_for_results(server)[-1].detail


def test_many_request_in_progress_frames_are_allowed_up_to_a_bound(serve, store):
    server = serve(max_in_progress=3)
    put(store, device())
    assert CapfPhone(in_progress=3).run(server.port).end_reason == Reason.OK
    put(store, device())
    transcript = CapfPhone(in_progress=4).run(server.port)
    assert transcript.closed_early and store.get(DEVICE).capf.status == "pending"


# -- fetch and delete ---------------------------------------------------------------------------

def test_fetch_gets_the_phones_certificate_and_ends_with_0(server, store):
    old = lsc_from(capf_identity())
    put(store, device(operation="fetch", lsc_der=old.der))
    transcript = CapfPhone(held=old).run(server.port)
    assert transcript.commands() == [Command.AUTH_REQUEST, Command.FETCH_CERTIFICATE_REQUEST, Command.END_SESSION]
    assert transcript.end_reason == Reason.NOTHING_PENDING
    record = store.get(DEVICE)
    assert record.capf.status == "successful" and record.lsc_der == old.der


def test_fetch_from_a_phone_without_a_certificate_fails(server, store):
    put(store, device(operation="fetch"))
    assert CapfPhone(held=None).run(server.port).end_reason == Reason.FAILED
    assert store.get(DEVICE).capf.status == "failed"


def test_delete_removes_the_recorded_lsc_and_ends_with_1(server, store):
    put(store, device(operation="delete", lsc_der=lsc_from(capf_identity()).der))
    transcript = CapfPhone().run(server.port)
    assert transcript.commands() == [Command.AUTH_REQUEST, Command.DELETE_CERTIFICATE_REQUEST, Command.END_SESSION]
    assert transcript.end_reason == Reason.OK
    record = store.get(DEVICE)
    assert record.capf.status == "successful" and record.lsc_der is None


def test_delete_on_a_phone_without_an_lsc_fails_and_keeps_the_record(server, store):
    old = lsc_from(capf_identity())
    put(store, device(operation="delete", lsc_der=old.der))
    assert CapfPhone(delete_reason=Reason.FAILED).run(server.port).end_reason == Reason.FAILED
    record = store.get(DEVICE)
    assert record.capf.status == "failed" and record.lsc_der == old.der


# -- refusals before any operation ------------------------------------------------------------------

def test_an_unknown_device_ends_with_9_and_nothing_is_stored(server, store):
    transcript = CapfPhone().run(server.port)
    assert transcript.commands() == [Command.AUTH_REQUEST, Command.END_SESSION]
    assert transcript.end_reason == Reason.UNKNOWN_DEVICE
    assert store.list() == []


@pytest.mark.parametrize("record", [device(operation="none"),
                                    attrs.evolve(device(), capf=attrs.evolve(device().capf, status="successful")),
                                    attrs.evolve(device(), capf=attrs.evolve(device().capf, status="failed"))])
def test_nothing_pending_ends_with_0_and_changes_nothing(server, store, record):
    put(store, record)
    assert CapfPhone().run(server.port).end_reason == Reason.NOTHING_PENDING
    assert store.get(DEVICE) == record


def test_nothing_pending_reason_is_a_setting(serve, store):
    server = serve(nothing_pending_reason=1)
    put(store, device(operation="none"))
    assert CapfPhone().run(server.port).end_reason == 1


# -- authentication modes -----------------------------------------------------------------------

def test_auth_string_installs_once_and_only_with_the_right_digits(server, store):
    put(store, device(auth="auth-string", auth_string="12345"))
    assert CapfPhone(password="12345").run(server.port).end_reason == Reason.OK
    # Single use: the operation is done, the same string gets nothing more.
    assert CapfPhone(password="12345").run(server.port).end_reason == Reason.NOTHING_PENDING


@pytest.mark.parametrize("typed", ["54321", "", None, "123456"])
def test_a_wrong_auth_string_ends_with_7_and_fails_the_operation(server, store, typed):
    put(store, device(auth="auth-string", auth_string="12345"))
    transcript = CapfPhone(password=typed).run(server.port)
    assert transcript.commands() == [Command.AUTH_REQUEST, Command.END_SESSION]
    assert transcript.end_reason == Reason.FAILED
    record = store.get(DEVICE)
    assert record.capf.status == "failed" and record.lsc_der is None


def test_null_string_takes_any_password(server, store):
    put(store, device(auth="null-string"))
    assert CapfPhone(password="9999").run(server.port).end_reason == Reason.OK


@pytest.mark.parametrize("mode", ["existing-mic", "existing-lsc"])
def test_a_mic_from_a_manufacturing_ca_authenticates_and_is_kept(server, store, mode):
    put(store, device(auth=mode))
    assert CapfPhone(certificate=mic()).run(server.port).end_reason == Reason.OK
    assert store.get(DEVICE).mic_der == mic().der


@pytest.mark.parametrize("mode", ["existing-lsc", "existing-mic"])
@pytest.mark.parametrize("key", [("rsa", 1024), ("ec", Curve.P256)])
def test_an_lsc_from_capf_trust_authenticates_an_upgrade(server, store, mode, key):
    own = lsc_from(capf_identity(), key=phone_key(KeyType.RSA if key[0] == "rsa" else KeyType.EC, key[1], 1))
    put(store, device(operation="upgrade", auth=mode, lsc_der=own.der))
    assert CapfPhone(certificate=own).run(server.port).end_reason == Reason.OK
    record = store.get(DEVICE)
    assert record.lsc_der != own.der and record.mic_der is None


@pytest.mark.parametrize(("mode", "expected"), [("existing-lsc", "Invalid LSC"), ("existing-mic", "Invalid MIC")])
def test_a_certificate_from_an_untrusted_authority_is_refused_by_the_modes_name(server, store, mode, expected):
    put(store, device(auth=mode))
    foreign = lsc_from(capf_identity(1))
    transcript = CapfPhone(certificate=foreign).run(server.port)
    assert transcript.end_reason == Reason.FAILED
    assert wait_for_results(server)[-1].detail == expected
    assert store.get(DEVICE).capf.status == "failed"


def test_a_mic_of_another_manufacturing_ca_is_refused(server, store):
    put(store, device(auth="existing-mic"))
    assert CapfPhone(certificate=mic(DEVICE, 1)).run(server.port).end_reason == Reason.FAILED
    assert store.get(DEVICE).mic_der is None


def test_another_devices_certificate_is_refused(server, store):
    put(store, device(auth="existing-mic"))
    transcript = CapfPhone(certificate=mic("SEP0000000000AA")).run(server.port)
    assert transcript.end_reason == Reason.FAILED
    assert "another device" in wait_for_results(server)[-1].detail


def test_an_expired_certificate_is_refused(serve, store):
    server = serve()
    server.server.clock = lambda: NOW + datetime.timedelta(days=9000)
    put(store, device(auth="existing-mic"))
    assert CapfPhone(certificate=mic()).run(server.port).end_reason == Reason.FAILED


class _Forger(CapfPhone):
    """A phone that tampers with one field of its certificate credentials."""

    def __init__(self, change, **kwargs):
        super().__init__(**kwargs)
        self.change = change

    def auth_fields(self):
        fields = super().auth_fields()
        self.change(fields)
        return fields


@pytest.mark.parametrize(("change", "detail"), [
    (lambda f: f.update(signed_data=bytes(len(f["signed_data"]))), "SIGNED_DATA does not verify"),
    (lambda f: f.update(sha2_signed_data=f["sha2_signed_data"][:-1] + b"\x00"), "SHA2_SIGNED_DATA"),
    (lambda f: f.update(sha2_signed_data=b"\x02" + f["sha2_signed_data"][1:]), "SHA2_SIGNED_DATA"),
    (lambda f: f.update(sha2_signed_data=b"\x03\x00\x05ab"), "SHA2_SIGNED_DATA as a digest code"),
    (lambda f: f.pop("signed_data"), "no certificate"),
    (lambda f: f.pop("certificate_der"), "no certificate"),
    (lambda f: f.update(certificate_der=b"\x30\x00"), "does not parse"),
])
def test_certificate_credentials_that_do_not_verify_are_refused(server, store, change, detail):
    put(store, device(auth="existing-mic"))
    transcript = _Forger(change, certificate=mic()).run(server.port)
    assert transcript.end_reason == Reason.FAILED
    assert detail in wait_for_results(server)[-1].detail
    assert store.get(DEVICE).mic_der is None


def test_signatures_by_another_key_over_the_real_certificate_are_refused(server, store):
    put(store, device(auth="existing-mic"))
    stolen = attrs.evolve(mic(), private_key=phone_key(KeyType.RSA, 2048, 7))
    assert CapfPhone(certificate=stolen).run(server.port).end_reason == Reason.FAILED


# -- hostile clients -------------------------------------------------------------------------------

def assert_unchanged(store, record):
    assert store.get(DEVICE) == record


@pytest.fixture
def pending(store):
    record = device()
    put(store, record)
    return record


def test_garbage_after_the_handshake_is_cut_and_changes_nothing(server, store, pending):
    with CapfConnection(server.port) as connection:
        connection.receive()
        connection.send_raw(b"GET / HTTP/1.1\r\n\r\n")
        assert connection.closed_by_server()
    assert_unchanged(store, pending)
    assert CapfPhone().run(server.port).end_reason == Reason.OK  # the server serves on


def test_a_wrong_session_id_ends_the_session(server, store, pending):
    with CapfConnection(server.port) as connection:
        request = connection.receive()
        connection.send(Command.AUTH_RESPONSE, session_id=request.session_id ^ 1, **CapfPhone().auth_fields())
        assert connection.closed_by_server()
    assert_unchanged(store, pending)
    assert "session id" in wait_for_results(server)[-1].detail


def test_a_command_out_of_turn_ends_the_session(server, store, pending):
    with CapfConnection(server.port) as connection:
        connection.receive()
        connection.send(Command.KEY_GENERATE_RESPONSE, public_key=public_der(phone_key(KeyType.RSA, 1024)))
        assert connection.closed_by_server()
    assert_unchanged(store, pending)


def test_a_wrong_session_id_mid_install_leaves_the_operation_pending(server, store, pending):
    with CapfConnection(server.port) as connection:
        connection.receive()
        connection.send(Command.AUTH_RESPONSE, **CapfPhone().auth_fields())
        assert connection.receive().command is Command.KEY_GENERATE_REQUEST
        connection.send(Command.KEY_GENERATE_RESPONSE, session_id=connection.session_id + 1,
                        public_key=public_der(phone_key(KeyType.RSA, 1024)))
        assert connection.closed_by_server()
    assert_unchanged(store, pending)


def test_a_frame_announcing_more_than_the_cap_is_cut_before_its_body(serve, store, pending):
    server = serve(max_body=4096)
    with CapfConnection(server.port) as connection:
        request = connection.receive()
        connection.send_raw(CapfHeader(Command.AUTH_RESPONSE, request.session_id, 0xFFFF).encode())
        started = time.monotonic()
        assert connection.closed_by_server()
        assert time.monotonic() - started < 0.9  # refused on the header, not by the step timeout
    assert_unchanged(store, pending)


def test_a_huge_frame_within_the_16_bit_length_is_refused(server, store, pending):
    with CapfConnection(server.port) as connection:
        request = connection.receive()
        body = bytes([2]) + (60000).to_bytes(2, "big") + bytes(60000)
        # Refused on the header: the server may close while the 60 KB are still on their way.
        with contextlib.suppress(ssl.SSLError, ConnectionError):
            connection.send_raw(CapfHeader(Command.AUTH_RESPONSE, request.session_id, len(body)).encode() + body)
        assert connection.closed_by_server()
    assert_unchanged(store, pending)


def test_a_length_that_lies_is_cut_at_the_step_deadline(server, store, pending):
    with CapfConnection(server.port) as connection:
        request = connection.receive()
        connection.send_raw(CapfHeader(Command.AUTH_RESPONSE, request.session_id, 100).encode() + b"\x0d\x00")
        started = time.monotonic()
        assert connection.closed_by_server()
        assert 0.5 < time.monotonic() - started < 4
    assert_unchanged(store, pending)
    assert wait_for_results(server)[-1].detail == "silent past the deadline"


def test_elements_that_overrun_the_body_are_garbage(server, store, pending):
    with CapfConnection(server.port) as connection:
        request = connection.receive()
        body = b"\x0d\x00\x40SEP"
        connection.send_raw(CapfHeader(Command.AUTH_RESPONSE, request.session_id, len(body)).encode() + body)
        assert connection.closed_by_server()
    assert_unchanged(store, pending)


def test_a_silent_phone_after_the_handshake_is_cut_at_the_step_deadline(server, store, pending):
    with CapfConnection(server.port) as connection:
        connection.receive()
        assert connection.closed_by_server()
    assert_unchanged(store, pending)


def test_a_silent_tcp_client_is_cut_at_the_handshake_deadline(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=4) as sock:
        started = time.monotonic()
        assert sock.recv(1) == b""
        assert time.monotonic() - started < 3.5


def test_a_phone_silent_during_key_generation_leaves_the_operation_pending(server, store, pending):
    with CapfConnection(server.port) as connection:
        connection.receive()
        connection.send(Command.AUTH_RESPONSE, **CapfPhone().auth_fields())
        connection.receive()
        connection.send(Command.REQUEST_IN_PROGRESS)
        started = time.monotonic()
        assert connection.closed_by_server()
        assert time.monotonic() - started > 1.5  # the key deadline (2 s), not the step deadline (1 s)
    assert_unchanged(store, pending)


def test_a_phone_that_leaves_mid_install_changes_nothing(server, store, pending):
    with CapfConnection(server.port) as connection:
        connection.receive()
        connection.send(Command.AUTH_RESPONSE, **CapfPhone().auth_fields())
        connection.receive()
    wait_for_results(server)
    assert_unchanged(store, pending)


def test_a_device_name_that_is_not_one_ends_the_session(server, store):
    with CapfConnection(server.port) as connection:
        connection.receive()
        connection.send(Command.AUTH_RESPONSE, reason=1, version=3, device_name="SEP' OR 1=1 --", password="")
        assert connection.closed_by_server()
    assert store.list() == []


def test_frames_split_into_single_bytes_are_read_whole(server, store, pending):
    with CapfConnection(server.port) as connection:
        connection.receive()
        frame = CapfMessage.build(Command.AUTH_RESPONSE, connection.session_id, **CapfPhone().auth_fields()).encode()
        for byte in frame:
            connection.send_raw(bytes([byte]))
        assert connection.receive().command is Command.KEY_GENERATE_REQUEST


def test_clients_over_the_cap_are_turned_away_and_the_rest_served(serve, store, pending):
    server = serve(max_clients=2)
    holders = [CapfConnection(server.port) for _ in range(2)]
    try:
        for holder in holders:
            holder.receive()
        with pytest.raises((ConnectionError, OSError)):
            with CapfConnection(server.port, timeout=2) as extra:
                if extra.receive() is None:
                    raise ConnectionResetError("turned away")
    finally:
        for holder in holders:
            holder.close()
    wait_for_results(server, 2)
    assert CapfPhone().run(server.port).end_reason == Reason.OK


def test_tls_1_0_phones_are_served_by_default(server, store, pending):
    with CapfConnection(server.port, versions=("1.0",)) as connection:
        assert connection.tls.version() == "TLSv1"
        assert connection.receive().command is Command.AUTH_REQUEST


def test_a_minimum_tls_version_turns_older_phones_away(serve):
    import ssl

    server = serve(min_tls="1.2")
    with pytest.raises((ssl.SSLError, ConnectionError)):
        CapfConnection(server.port, versions=("1.0",))


def test_an_ec_lsc_is_issued_over_tls_to_a_real_ec_key(server, store):
    put(store, device(key="ec256"))
    transcript = CapfPhone().run(server.port)
    assert isinstance(transcript.lsc.public_key(), ec.EllipticCurvePublicKey)


def test_a_mic_is_kept_when_capf_trust_also_holds_its_manufacturing_ca(serve, store):
    # CUCM keeps the Cisco Manufacturing CAs in CAPF-trust too; the MIC must still be known as one.
    server = serve()
    server.server.trusted_capf = lambda: [capf_identity().certificate, manufacturing_ca().certificate]
    put(store, device(auth="existing-lsc"))
    assert CapfPhone(certificate=mic()).run(server.port).end_reason == Reason.OK
    assert store.get(DEVICE).mic_der == mic().der


def test_a_lab_without_a_device_store_answers_unknown_device_and_makes_none(server, store):
    assert CapfPhone().run(server.port).end_reason == Reason.UNKNOWN_DEVICE
    assert not store.path.exists()
