"""The lab's CallManager: the name rule, the trace, and hostile clients that cost one connection each."""

from __future__ import annotations

import re
import socket
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from registration_support import DEVICE, NOW, Pki, callmanager, make_pki, server_identity, write_identity

from phone.device.registration import SignallingTransport
from phone.firmware.registration import Register, TransportOutcome
from phone.lab.servers.signalling import SignallingSettings, running_callmanager
from phone.wire.certs import names_device
from phone.wire.certs import Identity, Profile, generate_rsa_key, make_certificate, simple_subject
from phone.wire.sip import SipMessage

SDL_LINE = re.compile(r"[0-9]{8}\.[0-9]{3} \|[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3} \|(AppInfo  |AlarmErr )\|.+")


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def _certificate(common_name: str, san: list[x509.GeneralName] | None = None) -> x509.Certificate:
    identity = make_certificate(simple_subject(CN=common_name), generate_rsa_key(1024), not_before=NOW, serial=7,
                                profile=Profile.DEVICE)
    if san is None:
        return identity.certificate
    builder = (x509.CertificateBuilder().subject_name(identity.certificate.subject)
               .issuer_name(identity.certificate.issuer).public_key(identity.certificate.public_key())
               .serial_number(8).not_valid_before(NOW).not_valid_after(NOW.replace(year=NOW.year + 1))
               .add_extension(x509.SubjectAlternativeName(san), critical=False))
    return builder.sign(identity.private_key, hashes.SHA256())


@pytest.mark.parametrize("common_name, san, matches", [
    (DEVICE, None, True),
    (f"CP-8861-{DEVICE}", None, True),
    (f"X{DEVICE}", None, False),
    ("CP-8861-SEP000000000001", None, False),
    ("phone.example.com", [x509.UniformResourceIdentifier(DEVICE)], True),
    ("phone.example.com", [x509.DNSName(DEVICE)], True),
    ("phone.example.com", [x509.DNSName("other")], False),
])
def test_the_certificate_names_the_device_by_cn_then_by_san(common_name, san, matches) -> None:
    assert names_device(_certificate(common_name, san), DEVICE, sip_uri=True) is matches


def test_a_sip_uri_names_the_device_for_registration_only() -> None:
    certificate = _certificate("phone.example.com", [x509.UniformResourceIdentifier(f"sip:{DEVICE}@cucm.example.com")])
    assert names_device(certificate, DEVICE, sip_uri=True)
    assert not names_device(certificate, DEVICE)  # CAPF's rule: the name itself, nothing around it


def _raw(port: int, data: bytes, *, wait: float = 2.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as connection:
        connection.sendall(data)
        chunks = []
        try:
            while chunk := connection.recv(4096):
                chunks.append(chunk)
        except (TimeoutError, ConnectionResetError):
            pass
    return b"".join(chunks)


def _still_serves(pki: Pki, port: int) -> bool:
    register = Register(DEVICE, "SIP", 1, "127.0.0.1", port, False, (), ("1.2",), 5.0, None)
    return SignallingTransport()(register).outcome is TransportOutcome.ANSWERED_OK


@pytest.mark.parametrize("data", [
    b"\x00\xff garbage \r\n\r\n",
    b"REGISTER sip:x SIP/2.0\r\nX: " + b"y" * 100_000,
    b"REGISTER sip:x SIP/2.0\r\nContent-Length: 999999999\r\n\r\n",
    b"",
], ids=["garbage", "huge-line", "huge-body", "nothing"])
def test_a_hostile_client_gets_nothing_and_the_server_goes_on(pki, data) -> None:
    trace: list[str] = []
    with callmanager(pki, trace=trace, timeout=1.0) as cm:
        started = time.monotonic()
        assert _raw(cm.ports["sip"], data) == b""
        assert time.monotonic() - started < 3
        assert _still_serves(pki, cm.ports["sip"])
    assert trace and all(SDL_LINE.fullmatch(line) for line in trace)


def test_a_silent_client_is_cut_at_the_timeout_with_a_trace_line(pki) -> None:
    trace: list[str] = []
    with callmanager(pki, trace=trace, timeout=0.5) as cm:
        with socket.create_connection(("127.0.0.1", cm.ports["sip-tls"])) as silent:
            silent.settimeout(3)
            started = time.monotonic()
            assert silent.recv(10) == b""
            assert time.monotonic() - started < 2.5
        assert _still_serves(pki, cm.ports["sip"])
    assert any("closing connection" in line or "nothing whole received" in line for line in trace)


def test_a_register_naming_no_device_is_a_bad_request(pki) -> None:
    request = (b"REGISTER sip:cucm SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:5\r\nCall-ID: 1\r\nCSeq: 1 REGISTER\r\n"
               b"From: <sip:a@b>\r\nTo: <sip:a@b>\r\nContact: <sip:a@127.0.0.1>\r\nContent-Length: 0\r\n\r\n")
    with callmanager(pki) as cm:
        answer = SipMessage.from_bytes(_raw(cm.ports["sip"], request))
    assert answer.status == 400 and "names no device" in answer.header("warning")


def test_registrations_and_refusals_are_counted_and_traced_as_sdl_lines(pki) -> None:
    trace: list[str] = []
    with callmanager(pki, trace=trace, secure_devices=[DEVICE]) as cm:
        register = Register(DEVICE, "SIP", 2, "127.0.0.1", cm.ports["sip-tls"], True, (pki.callmanager.der,),
                            ("1.2",), 5.0, "mic")
        SignallingTransport(pki.mic())(register)
        SignallingTransport()(Register(DEVICE, "SIP", 1, "127.0.0.1", cm.ports["sip"], False, (), ("1.2",), 5.0,
                                       None))
        counts = dict(cm.server.counts)
    assert counts == {"registered": 1, "refused": 1}
    assert all(SDL_LINE.fullmatch(line) for line in trace)
    assert any(f"|AppInfo  |SIP device {DEVICE} registered over TLS" in line for line in trace)
    assert any("requires TLS, it came over TCP" in line for line in trace)


def test_callmanager_trust_is_read_again_after_the_refresh_interval(pki) -> None:
    trusted: list[x509.Certificate] = []
    certificate, key = pki.server_files
    settings = SignallingSettings(ports={"sip": None, "sip-tls": 0, "sccp": None}, trust_refresh_seconds=0.1)
    with running_callmanager(certificate, key, trusted=lambda: list(trusted), settings=settings) as cm:
        register = Register(DEVICE, "SIP", 2, "127.0.0.1", cm.ports["sip-tls"], True, (pki.callmanager.der,),
                            ("1.2",), 5.0, "mic")
        assert SignallingTransport(pki.mic())(register).outcome is TransportOutcome.UNKNOWN_CA
        trusted.append(pki.trusted_ca.certificate)  # `lab cert upload CallManager-trust`
        time.sleep(0.2)
        assert SignallingTransport(pki.mic())(register).outcome is TransportOutcome.ANSWERED_OK


def test_a_regenerated_certificate_is_presented_from_the_next_connection_after_refresh(pki, tmp_path) -> None:
    files = write_identity(pki.callmanager, tmp_path / "server", "callmanager")
    settings = SignallingSettings(ports={"sip": None, "sip-tls": 0, "sccp": None})
    with running_callmanager(files.certificate, files.key, trusted=lambda: [pki.trusted_ca.certificate],
                             settings=settings) as cm:
        def register(pinned: Identity) -> TransportOutcome:
            request = Register(DEVICE, "SIP", 2, "127.0.0.1", cm.ports["sip-tls"], True, (pinned.der,),
                               ("1.2",), 5.0, "mic")
            return SignallingTransport(pki.mic())(request).outcome

        assert register(pki.callmanager) is TransportOutcome.ANSWERED_OK
        regenerated = server_identity(bits=1024)  # `lab cert regenerate CallManager` rewrites both files
        write_identity(regenerated, tmp_path / "server", "callmanager")
        cm.server.refresh()
        assert register(pki.callmanager) is TransportOutcome.SERVER_UNTRUSTED
        assert register(regenerated) is TransportOutcome.ANSWERED_OK
