"""The phone's signalling client against the lab's CallManager and against hostile servers (real sockets).

Every outcome the connection can produce, seen through real TLS: a MIC the
cluster trusts registers, one it does not is refused with OpenSSL's "unknown CA"
alert, a certificate naming another device is dropped after the handshake, a
server outside the CTL is refused by the phone. Hostile servers (garbage,
silence, an endless line) end the registration with one reason, within the timeout.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import attrs
import pytest
from registration_support import DEVICE, Pki, callmanager, make_pki, server_identity

from phone.device.identity import PhoneIdentity
from phone.device.registration import SignallingTransport, identity_files
from phone.firmware.registration import Register, TransportOutcome


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def register(port: int, *, tls: bool = True, protocol: str = "SIP", pinned: tuple[bytes, ...] = (),
             versions: tuple[str, ...] = ("1.2", "1.3"), timeout: float = 5.0, fips: bool = False,
             device: str = DEVICE) -> Register:
    return Register(device, protocol, 2 if tls else 1, "127.0.0.1", port, tls, pinned, versions, timeout,
                    "mic" if tls else None, fips=fips)


def test_a_trusted_mic_registers_over_tls(pki) -> None:
    with callmanager(pki) as cm:
        done = SignallingTransport(pki.mic())(register(cm.ports["sip-tls"], pinned=(pki.callmanager.der,)))
    assert (done.outcome, done.reason, done.server_certificate_trusted) == (
        TransportOutcome.ANSWERED_OK, "200 OK", True)


@pytest.mark.parametrize("versions", [("1.2",), ("1.2", "1.3")])
def test_a_mic_from_a_ca_the_cluster_does_not_trust_meets_the_unknown_ca_alert(pki, versions) -> None:
    trace: list[str] = []
    with callmanager(pki, trace=trace) as cm:
        done = SignallingTransport(pki.mic(ca=pki.foreign_ca))(
            register(cm.ports["sip-tls"], pinned=(pki.callmanager.der,), versions=versions))
    assert done.outcome is TransportOutcome.UNKNOWN_CA and "UNKNOWN_CA" in done.reason
    assert any("|AlarmErr |AuthenticationFailed" in line for line in trace)


def test_a_certificate_naming_another_device_is_dropped_after_the_handshake(pki) -> None:
    trace: list[str] = []
    with callmanager(pki, trace=trace) as cm:
        done = SignallingTransport(pki.mic("SEP000000000001"))(
            register(cm.ports["sip-tls"], pinned=(pki.callmanager.der,)))
    assert done.outcome is TransportOutcome.CLOSED and done.server_certificate_trusted
    assert any("|AppInfo  |SIPStationD(0) - validTLSConnection:TLS InvalidX509NameInCertificate, "
               f"Rcvd=CP-8861-SEP000000000001 , Expected={DEVICE}. Will check SAN the next" in line for line in trace)
    assert any("|AlarmErr |AlarmClass: CallManager, AlarmName: ConnectionFailure" in line and "Reason:2" in line
               and f"DeviceName:{DEVICE}" in line for line in trace)


def test_a_secure_device_registering_over_tcp_is_refused(pki) -> None:
    with callmanager(pki, secure_devices=[DEVICE], sccp=True) as cm:
        sip = SignallingTransport()(register(cm.ports["sip"], tls=False))
        sccp = SignallingTransport()(register(cm.ports["sccp"], tls=False, protocol="SCCP"))
    assert sip.outcome is TransportOutcome.ANSWERED_REFUSED and "403 Forbidden" in sip.reason
    assert sccp.outcome is TransportOutcome.ANSWERED_REFUSED and "RegisterRejectMessage" in sccp.reason


def test_sccp_registers_over_tls_443_above_sccp(pki) -> None:
    with callmanager(pki, sccp=True) as cm:
        assert cm.ports["sccp-tls"] == cm.ports["sccp"] + 443
        done = SignallingTransport(pki.mic())(register(cm.ports["sccp-tls"], protocol="SCCP",
                                                       pinned=(pki.callmanager.der,)))
    assert (done.outcome, done.reason) == (TransportOutcome.ANSWERED_OK, "RegisterAckMessage")


def test_a_callmanager_outside_the_ctl_is_refused_by_the_phone(pki) -> None:
    with callmanager(pki) as cm:
        done = SignallingTransport(pki.mic())(register(cm.ports["sip-tls"], pinned=(server_identity("x").der,)))
    assert done.outcome is TransportOutcome.SERVER_UNTRUSTED and not done.server_certificate_trusted


def test_no_common_tls_version_is_a_handshake_failure(pki) -> None:
    with callmanager(pki, min_tls="1.2") as cm:
        done = SignallingTransport(pki.mic())(register(cm.ports["sip-tls"], pinned=(pki.callmanager.der,),
                                                       versions=("1.0",)))
    assert done.outcome is TransportOutcome.HANDSHAKE_FAILED


def test_the_transport_presents_the_certificate_the_register_effect_names(pki) -> None:
    presented = {"mic": pki.mic(), "lsc": pki.mic(ca=pki.foreign_ca, stem="lsc")}
    transport = SignallingTransport(identities=presented.get)
    with callmanager(pki) as cm:
        effect = register(cm.ports["sip-tls"], pinned=(pki.callmanager.der,))
        as_mic = transport(effect)
        as_lsc = transport(attrs.evolve(effect, client_certificate="lsc"))
    assert as_mic.outcome is TransportOutcome.ANSWERED_OK
    assert as_lsc.outcome is TransportOutcome.UNKNOWN_CA


def test_identity_files_are_the_named_certificate_of_the_identity_as_it_is_now(tmp_path) -> None:
    mic, lsc = server_identity("mic"), server_identity("lsc", bits=1024)
    assert identity_files(PhoneIdentity(mic), "lsc", tmp_path) is None  # no LSC yet
    files = identity_files(PhoneIdentity(mic, lsc), "lsc", tmp_path)
    assert files.certificate.read_bytes() == lsc.certificate_pem()
    assert files.key.read_bytes() == lsc.private_key_pem()
    assert files.key.stat().st_mode & 0o777 == 0o600
    assert identity_files(PhoneIdentity(mic, lsc), "mic", tmp_path).certificate.read_bytes() == mic.certificate_pem()
    assert identity_files(PhoneIdentity(mic, lsc), None, tmp_path) is None
    assert identity_files(None, "mic", tmp_path) is None


def test_nobody_listening_is_unreachable() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = SignallingTransport()(register(port, tls=False))
    assert done.outcome is TransportOutcome.UNREACHABLE


# -- hostile servers -------------------------------------------------------------------------


@contextmanager
def hostile_server(behave: Callable[[socket.socket], None]) -> Iterator[int]:
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with connection:
                try:
                    behave(connection)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()
        thread.join(5)


def _read_a_little(connection: socket.socket) -> None:
    connection.settimeout(2)
    connection.recv(4096)


def _garbage(connection: socket.socket) -> None:
    _read_a_little(connection)
    connection.sendall(b"\x16\x03\x01 this is not SIP\r\n\r\n")


def _endless_line(connection: socket.socket) -> None:
    _read_a_little(connection)
    connection.sendall(b"SIP/2.0 200 OK\r\nX-Junk: " + b"a" * 200_000)
    time.sleep(1)


def _silence(connection: socket.socket) -> None:
    _read_a_little(connection)
    time.sleep(2)


def _a_request_instead_of_an_answer(connection: socket.socket) -> None:
    _read_a_little(connection)
    connection.sendall(b"OPTIONS sip:x SIP/2.0\r\nContent-Length: 0\r\n\r\n")


def _huge_skinny_frame(connection: socket.socket) -> None:
    _read_a_little(connection)
    connection.sendall((10**9).to_bytes(4, "little") + b"\0" * 8)


@pytest.mark.parametrize("behave, protocol, outcome, words", [
    (_garbage, "SIP", TransportOutcome.MALFORMED, "not a SIP start line"),
    (_endless_line, "SIP", TransportOutcome.MALFORMED, "no end of the SIP header"),
    (_silence, "SIP", TransportOutcome.NO_ANSWER, "no answer within 0.5 s"),
    (_a_request_instead_of_an_answer, "SIP", TransportOutcome.MALFORMED, "a SIP request"),
    (_huge_skinny_frame, "SCCP", TransportOutcome.MALFORMED, "Skinny frame length"),
    (_read_a_little, "SIP", TransportOutcome.CLOSED, "closed the connection"),
], ids=["garbage", "endless-line", "silence", "request", "huge-frame", "closes"])
def test_a_hostile_server_ends_the_registration_with_one_reason(behave, protocol, outcome, words) -> None:
    with hostile_server(behave) as port:
        started = time.monotonic()
        done = SignallingTransport()(register(port, tls=False, protocol=protocol, timeout=0.5))
        assert time.monotonic() - started < 3
    assert done.outcome is outcome and words in done.reason


def test_a_server_closing_during_the_tls_handshake_is_no_name_mismatch(pki) -> None:
    with hostile_server(_read_a_little) as port:
        done = SignallingTransport(pki.mic())(register(port, pinned=(pki.callmanager.der,), timeout=2.0))
    assert done.outcome is TransportOutcome.HANDSHAKE_FAILED and done.reason.startswith("TLS handshake")


def test_a_server_silent_during_the_tls_handshake_times_out(pki) -> None:
    with hostile_server(_silence) as port:
        started = time.monotonic()
        done = SignallingTransport(pki.mic())(register(port, pinned=(pki.callmanager.der,), timeout=0.5))
        assert time.monotonic() - started < 3
    assert done.outcome is TransportOutcome.NO_ANSWER
