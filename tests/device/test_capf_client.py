"""The phone's CAPF client against a small CAPF server on loopback TLS (tests/capf_scripted_server.py).

Every mode of authentication, every operation, the server's refusals, and rogue
servers: whatever a server does wrong, the phone keeps the identity it had.
"""

from __future__ import annotations

import functools
import itertools
import socket

import pytest
from capf_scripted_server import SESSION_ID, CapfScript, capf_server
from conftest import SEED_TIME, manufacturing_ca, rsa_key
from cryptography.hazmat.primitives import serialization

from phone.device.capf import (
    CapfClientSettings,
    CapfTransport,
    CapfUnreachable,
    connect,
    enrol,
)
from phone.device.identity import issue_mic
from phone.firmware.capf_plan import EnrolCapf
from phone.firmware.capf_session import CapfCredentials, KeySpec
from phone.firmware.machine import TvsAnswered, TvsFailed, TvsFailure
from phone.wire.capf import CertificateType, Command
from phone.wire.certs import Identity, Profile, generate_ec_key, make_certificate, simple_subject
from phone.wire.config import CapfServer, TvsMember

DEVICE = "SEPB000B4BA0AEE"
_labels = itertools.count()


def capf_identity(label: str = "capf") -> Identity:
    """A CAPF certificate as CUCM's: self-signed, CA:TRUE (the LSCs' issuer)."""
    return make_certificate(simple_subject(CN=f"CAPF-{label}", O="Lab", C="NZ"), rsa_key(2048, label),
                            not_before=SEED_TIME, serial=0x4CAF, profile=Profile.CA, lifetime_days=20000)


@functools.cache
def mic() -> Identity:
    return issue_mic("CP-8861", DEVICE, manufacturing_ca(), now=SEED_TIME,
                     new_key=lambda bits: rsa_key(bits, "mic"))


def fresh_key(spec: KeySpec):
    """A new key per session, as the phone makes (RSA from the test session's cache of labels)."""
    if spec.kind == "ec":
        return generate_ec_key()
    return rsa_key(spec.size, f"lsc-{next(_labels)}")


def an_lsc(issuer: Identity) -> Identity:
    return make_certificate(simple_subject(CN=DEVICE), rsa_key(1024, "old-lsc"), not_before=SEED_TIME,
                            serial=0x1CC, issuer=issuer)


def plan(port: int, *, mode: int = 2, pinned: tuple[bytes, ...] = (), servers=None, **fields) -> EnrolCapf:
    values = dict(device_name=DEVICE, auth_mode=mode,
                  servers=servers or (CapfServer("127.0.0.1", port),), pinned=pinned,
                  tls_versions=("1.0", "1.2"), timeout=2.0, phone_version=3, ec_capable=False)
    values.update(fields)
    return EnrolCapf(**values)


def run(tmp_path, script: CapfScript, credentials=CapfCredentials(), *, server: Identity | None = None,
        pin: bool = True, **plan_fields):
    capf = capf_identity()
    script.issuer = script.issuer or capf
    with capf_server(tmp_path, script, server or capf) as peer:
        pinned = (capf.der,) if pin else ()
        return enrol(plan(peer.port, pinned=pinned, **plan_fields), credentials, keys=fresh_key)


def public_der(key) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


# -- install by each mode -----------------------------------------------------------------


def test_null_string_install_keeps_an_lsc_for_the_key_the_phone_sent(tmp_path):
    script = CapfScript(key_size=1024)
    finished = run(tmp_path, script, mode=2)
    outcome = finished.outcome
    assert (outcome.result, outcome.operation, outcome.key, outcome.reason) == ("installed", "install", "rsa1024", None)
    assert finished.server.startswith("127.0.0.1:")
    sent = script.message(Command.KEY_GENERATE_RESPONSE).public_key
    assert public_der(outcome.lsc.private_key.public_key()) == sent
    assert outcome.lsc.certificate == script.issued[0]
    auth = script.message(Command.AUTH_RESPONSE)
    assert (auth.password, auth.device_name, auth.reason, auth.version) == ("", DEVICE, 1, 3)
    assert all(message.session_id == SESSION_ID for message in script.seen)


def test_the_phone_says_request_in_progress_before_its_key_unless_the_setting_is_off(tmp_path):
    script = CapfScript(key_size=1024)
    run(tmp_path, script)
    commands = [message.command for message in script.seen]
    assert commands.index(Command.REQUEST_IN_PROGRESS) == commands.index(Command.KEY_GENERATE_RESPONSE) - 1
    quiet = CapfScript(key_size=1024)
    assert run(tmp_path, quiet, request_in_progress=False).outcome.result == "installed"
    assert Command.REQUEST_IN_PROGRESS not in [message.command for message in quiet.seen]


def test_authentication_string_mode_sends_the_digits_the_user_typed(tmp_path):
    script = CapfScript(key_size=1024, password="123456")
    finished = run(tmp_path, script, CapfCredentials(auth_string="123456"), mode=1)
    assert finished.outcome.result == "installed"
    assert script.message(Command.AUTH_RESPONSE).password == "123456"


def test_a_wrong_authentication_string_is_refused_and_nothing_changes(tmp_path):
    script = CapfScript(key_size=1024, password="123456")
    finished = run(tmp_path, script, CapfCredentials(auth_string="654321"), mode=1)
    assert (finished.outcome.result, finished.outcome.lsc) == ("refused", None)
    assert "refused the authentication" in finished.outcome.reason


def test_authentication_string_mode_without_a_string_waits_and_never_calls(tmp_path):
    script = CapfScript(key_size=1024)
    finished = run(tmp_path, script, CapfCredentials(mic=mic()), mode=1)
    assert finished.outcome.result == "failed"
    assert "waiting for the authentication string" in finished.outcome.reason
    assert script.seen == [] and finished.server is None


def test_precedence_to_lsc_signs_with_the_lsc_when_the_phone_has_one(tmp_path):
    capf = capf_identity()
    old = an_lsc(capf)
    script = CapfScript(key_size=1024, issuer=capf)
    finished = run(tmp_path, script, CapfCredentials(mic=mic(), lsc=old), mode=3)
    certificate_type, der = script.message(Command.AUTH_RESPONSE).certificate
    assert (certificate_type, der) == (CertificateType.LSC, old.der)
    assert script.auth_verified == [True]
    assert (finished.outcome.result, finished.outcome.operation) == ("installed", "upgrade")
    assert finished.outcome.lsc.der != old.der


def test_precedence_to_lsc_falls_back_to_the_mic(tmp_path):
    script = CapfScript(key_size=1024)
    run(tmp_path, script, CapfCredentials(mic=mic()), mode=3)
    certificate_type, der = script.message(Command.AUTH_RESPONSE).certificate
    assert (certificate_type, der) == (CertificateType.MIC, mic().der)
    assert script.auth_verified == [True]


def test_precedence_to_mic_presents_the_mic_even_with_an_lsc(tmp_path):
    capf = capf_identity()
    script = CapfScript(key_size=1024, issuer=capf)
    run(tmp_path, script, CapfCredentials(mic=mic(), lsc=an_lsc(capf)), mode=4)
    assert script.message(Command.AUTH_RESPONSE).certificate == (CertificateType.MIC, mic().der)
    assert script.auth_verified == [True]


def test_certificate_mode_without_any_certificate_never_calls(tmp_path):
    script = CapfScript()
    finished = run(tmp_path, script, CapfCredentials(), mode=4)
    assert finished.outcome.result == "failed" and "neither an LSC nor a MIC" in finished.outcome.reason
    assert script.seen == []


# -- the other operations and the server's answers ----------------------------------------


def test_fetch_sends_the_lsc_and_delete_drops_it(tmp_path):
    capf = capf_identity()
    old = an_lsc(capf)
    fetch = CapfScript(operation="fetch", issuer=capf)
    fetched = run(tmp_path, fetch, CapfCredentials(mic=mic(), lsc=old), mode=2)
    assert (fetched.outcome.result, fetched.outcome.operation) == ("fetched", "fetch")
    assert fetch.message(Command.FETCH_CERTIFICATE_RESPONSE).certificate == (CertificateType.LSC, old.der)
    delete = CapfScript(operation="delete", issuer=capf)
    deleted = run(tmp_path, delete, CapfCredentials(mic=mic(), lsc=old), mode=2)
    assert (deleted.outcome.result, deleted.outcome.operation, deleted.outcome.lsc) == ("deleted", "delete", None)
    assert delete.message(Command.DELETE_CERTIFICATE_RESPONSE).reason == 1


def test_delete_without_an_lsc_answers_seven_and_fails(tmp_path):
    script = CapfScript(operation="delete")
    finished = run(tmp_path, script, CapfCredentials(mic=mic()), mode=2)
    assert script.message(Command.DELETE_CERTIFICATE_RESPONSE).reason == 7
    assert finished.outcome.result == "failed" and "no LSC to delete" in finished.outcome.reason


@pytest.mark.parametrize(("operation", "result", "words"), [
    ("nothing", "nothing_pending", "END_SESSION reason 0"),
    ("unknown", "refused", "does not know this device"),
    ("refuse", "refused", "refused the authentication"),
])
def test_the_servers_end_before_any_operation(tmp_path, operation, result, words):
    finished = run(tmp_path, CapfScript(operation=operation), mode=2)
    assert (finished.outcome.result, finished.outcome.operation, finished.outcome.lsc) == (result, None, None)
    assert words in finished.outcome.reason


def test_an_install_the_server_ends_with_a_failure_is_not_kept(tmp_path):
    finished = run(tmp_path, CapfScript(key_size=1024, end_reason=7), mode=2)
    assert (finished.outcome.result, finished.outcome.lsc) == ("failed", None)


# -- keys and versions --------------------------------------------------------------------


def test_the_phone_announces_the_lower_version_and_makes_no_ec_key_below_version_3(tmp_path):
    script = CapfScript(key_type=1, curve=0, key_size=None)
    finished = run(tmp_path, script, mode=2, phone_version=2, ec_capable=True)
    assert script.message(Command.AUTH_RESPONSE).version == 2
    assert script.message(Command.KEY_GENERATE_RESPONSE).public_key is None
    assert finished.outcome.result == "failed" and "EC key" in finished.outcome.reason


def test_an_ec_capable_phone_at_version_3_installs_an_ec_lsc(tmp_path):
    finished = run(tmp_path, CapfScript(key_type=1, curve=0, key_size=None), mode=2, ec_capable=True)
    assert (finished.outcome.result, finished.outcome.key) == ("installed", "ec256")


def test_an_rsa_size_no_phone_makes_gets_no_key(tmp_path):
    script = CapfScript(key_size=1000)
    finished = run(tmp_path, script, mode=2)
    assert script.message(Command.KEY_GENERATE_RESPONSE).public_key is None
    assert finished.outcome.result == "failed" and "1000 bits" in finished.outcome.reason


# -- servers in order, trust --------------------------------------------------------------


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_unreachable_server_is_skipped_for_the_next(tmp_path):
    capf = capf_identity()
    dead = closed_port()
    with capf_server(tmp_path, CapfScript(key_size=1024, issuer=capf), capf) as peer:
        servers = (CapfServer("127.0.0.1", dead), CapfServer("127.0.0.1", peer.port))
        finished = enrol(plan(0, servers=servers, pinned=(capf.der,)), CapfCredentials(), keys=fresh_key)
    assert finished.outcome.result == "installed"
    assert finished.server == f"127.0.0.1:{peer.port}"
    assert [server for server, _ in finished.failures] == [f"127.0.0.1:{dead}"]


def test_connect_refused_is_one_clear_remote_error():
    with pytest.raises(CapfUnreachable, match=r"^CAPF 127\.0\.0\.1:\d+: cannot connect: "):
        connect(CapfServer("127.0.0.1", closed_port()), CapfClientSettings(timeout=1.0))


def test_tvs_vouching_with_role_capf_trusts_a_server_the_lists_do_not_hold(tmp_path):
    asked = []

    def tvs(ask):
        asked.append(ask)
        return TvsAnswered("tvs:2445", status=0, roles=(4,))

    capf = capf_identity()
    with capf_server(tmp_path, CapfScript(key_size=1024, issuer=capf), capf) as peer:
        finished = enrol(plan(peer.port, tvs_members=(TvsMember("tvs", 2445),), tvs_pinned=(b"tvs-der",)),
                         CapfCredentials(), keys=fresh_key, ask_tvs=tvs)
    assert finished.outcome.result == "installed"
    assert asked[0].message_type == 3 and asked[0].serial == capf.serial


@pytest.mark.parametrize("answer", [
    TvsAnswered("tvs:2445", status=0, roles=(0, 2)),
    TvsAnswered("tvs:2445", status=1),
    TvsFailed(TvsFailure.UNREACHABLE, "connection refused"),
])
def test_a_capf_server_tvs_does_not_vouch_for_as_capf_gets_nothing(tmp_path, answer):
    script = CapfScript(key_size=1024)
    capf = capf_identity()
    script.issuer = capf
    with capf_server(tmp_path, script, capf) as peer:
        finished = enrol(plan(peer.port, tvs_members=(TvsMember("tvs", 2445),), tvs_pinned=(b"tvs-der",)),
                         CapfCredentials(mic=mic()), keys=fresh_key, ask_tvs=lambda ask: answer)
    assert (finished.outcome.result, finished.outcome.lsc) == ("failed", None)
    assert script.seen == []  # not a byte for an untrusted server


# -- rogue servers: the identity never changes ---------------------------------------------


def test_a_server_with_another_certificate_gets_no_byte(tmp_path):
    script = CapfScript(key_size=1024)
    finished = run(tmp_path, script, CapfCredentials(mic=mic()), server=capf_identity("rogue"))
    assert (finished.outcome.result, finished.outcome.lsc) == ("failed", None)
    assert "not a CAPF record of the CTL or ITL" in finished.outcome.reason
    assert script.seen == []


@pytest.mark.parametrize(("rogue", "words"), [
    ("garbage", "protocol id 0x55"),
    ("short-frame", "closed the connection before END_SESSION (12 bytes of an unfinished frame)"),
    ("huge-length", "a body of at most 16384 bytes"),
    ("wrong-session", "session id"),
    ("wrong-command", "STORE_CERTIFICATE_RESPONSE while waiting for"),
    ("drop", "closed the connection before END_SESSION"),
])
def test_a_rogue_server_leaves_the_identity_as_it_was(tmp_path, rogue, words):
    finished = run(tmp_path, CapfScript(key_size=1024, rogue=rogue), CapfCredentials(mic=mic()))
    assert (finished.outcome.result, finished.outcome.lsc) == ("failed", None)
    assert words in finished.outcome.reason


def test_a_silent_server_is_given_up_after_the_timeout(tmp_path):
    finished = run(tmp_path, CapfScript(rogue="silent"), timeout=0.5)
    assert (finished.outcome.result, finished.outcome.lsc) == ("failed", None)
    assert "nothing from the server within 0.5 s (no AUTH_REQUEST)" in finished.outcome.reason
    assert len(finished.failures) == 1  # counted as a server that did not answer: the next one is tried


def test_split_reads_are_put_back_together(tmp_path):
    assert run(tmp_path, CapfScript(key_size=1024, rogue="split")).outcome.result == "installed"


@pytest.mark.parametrize(("script", "words"), [
    (CapfScript(key_size=1024, lsc_name="SEP000000000001"), "not for SEPB000B4BA0AEE"),
    (CapfScript(key_size=1024, lsc_other_key=True), "not for the key this phone generated"),
])
def test_an_lsc_for_another_device_or_key_is_refused_with_reason_7(tmp_path, script, words):
    finished = run(tmp_path, script, CapfCredentials(mic=mic()))
    assert script.message(Command.STORE_CERTIFICATE_RESPONSE).reason == 7
    assert (finished.outcome.result, finished.outcome.lsc) == ("failed", None)
    assert words in finished.outcome.reason


def test_an_lsc_named_as_cucm_names_it_is_kept(tmp_path):
    script = CapfScript(key_size=1024, lsc_name=f"CP-8861-{DEVICE}")
    assert run(tmp_path, script).outcome.result == "installed"


def test_the_transport_adds_what_the_user_typed(tmp_path):
    capf = capf_identity()
    script = CapfScript(key_size=1024, password="2468", issuer=capf)
    with capf_server(tmp_path, script, capf) as peer:
        transport = CapfTransport(auth_string="2468", keys=fresh_key)
        finished = transport(plan(peer.port, mode=1, pinned=(capf.der,)), CapfCredentials(mic=mic()))
    assert finished.outcome.result == "installed"
