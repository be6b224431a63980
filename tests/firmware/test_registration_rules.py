"""Registration rules of the sans-I/O phone: every outcome of docs/registration.md the machine decides.

The machine is driven through ``run_boot`` with a real one-node lab's files
(``MiniCluster``) and a recording double for the CallManager: what it is asked
(port, TLS, pinned certificates) and what it answers decide the JSON
``registration`` object.
"""

from __future__ import annotations

import attrs
import pytest
from minicluster import MAC, MiniCluster, TvsDouble, serve_files

from phone.catalogue import get_model
from phone.device.boot import run_boot
from phone.firmware.capf_session import CapfOutcome
from phone.firmware.encrypted import PhoneKeys
from phone.firmware.machine import CapfFinished, Fetch, Flash, PhoneMachine, RegistrationDone
from phone.firmware.registration import (
    Register,
    TransportOutcome,
    check_server_certificate,
    outcome_of,
    signalling_protocol,
)
from phone.wire.config import CallManager, render_config
from phone.wire.signing import build_signed_file
from conftest import node_identity
from registration_support import server_identity

NOW = 1_700_000_000.0
SIP_PHONE = get_model("CP-8861")
SCCP_PHONE = get_model("CP-7940")
MANAGER = CallManager("10.48.47.155")
DEVICE = f"SEP{MAC}"


def files_with_config(cluster: MiniCluster, **config) -> dict[str, bytes]:
    """The cluster's files with a configuration naming one CallManager, signed by the node's CallManager."""
    files = cluster.files()
    xml = render_config([], device_name=DEVICE, call_managers=config.pop("call_managers", (MANAGER,)), **config)
    files[f"{DEVICE}.cnf.xml"] = xml
    files[f"{DEVICE}.cnf.xml.sgn"] = build_signed_file(xml, cluster.callmanager, filename=f"{DEVICE}.cnf.xml",
                                                       timestamp=int(NOW)).data
    return files


@attrs.define
class CallManagerDouble:
    """Answers Register effects with a chosen outcome; remembers what it was asked."""

    outcome: TransportOutcome = TransportOutcome.ANSWERED_OK
    asked: list[Register] = attrs.field(factory=list)

    def __call__(self, register: Register) -> RegistrationDone:
        self.asked.append(register)
        trusted = register.tls and self.outcome not in (TransportOutcome.SERVER_UNTRUSTED,
                                                        TransportOutcome.FIPS_KEY_TOO_SMALL)
        return RegistrationDone(self.outcome, "as asked", trusted)


def boot(files: dict[str, bytes], callmanager, *, model=SIP_PHONE, client: str | None = "mic",
         fetched: list[str] | None = None, flash: Flash | None = None):
    fetch = serve_files(files)

    def counting(request: Fetch):
        if fetched is not None:
            fetched.append(request.name)
        return fetch(request)

    _, report = run_boot(PhoneMachine(model, MAC, flash or Flash()), fetch=counting, ask_tvs=TvsDouble(MiniCluster()),
                         clock=lambda: NOW, register=callmanager, client_certificate=client)
    return report


@pytest.fixture(scope="module")
def mixed() -> MiniCluster:
    return MiniCluster(mixed_mode=True)


@pytest.mark.parametrize("mode, code", [(2, "registered-authenticated"), (3, "registered-encrypted")])
def test_secure_profile_registers_over_tls_to_5061_trusting_the_ctl_callmanager(mixed, mode, code) -> None:
    callmanager = CallManagerDouble()
    report = boot(files_with_config(mixed, device_security_mode=mode), callmanager)
    (asked,) = callmanager.asked
    assert (asked.port, asked.tls, asked.protocol) == (5061, True, "SIP")
    assert asked.pinned == (mixed.callmanager.der,)
    assert attrs.asdict(report.registration) == {
        "server": "10.48.47.155:5061", "protocol": "SIP", "mode": MODES_BY_NUMBER[mode], "result": "registered",
        "code": code, "client_certificate": "mic", "server_certificate_trusted": True, "reason": "as asked"}


MODES_BY_NUMBER = {1: "non-secure", 2: "authenticated", 3: "encrypted"}


def test_non_secure_profile_registers_over_tcp_to_5060_presenting_nothing(mixed) -> None:
    callmanager = CallManagerDouble()
    report = boot(files_with_config(mixed, device_security_mode=1), callmanager)
    (asked,) = callmanager.asked
    assert (asked.port, asked.tls, asked.pinned, asked.client_certificate) == (5060, False, (), None)
    assert (report.registration.result, report.registration.code) == ("registered", "registered-nonsecure")


def test_secure_profile_without_a_ctl_asks_for_it_four_times_then_waits() -> None:
    callmanager, fetched = CallManagerDouble(), []
    report = boot(files_with_config(MiniCluster(), device_security_mode=2), callmanager, fetched=fetched)
    assert callmanager.asked == []
    assert fetched.count(f"CTL{DEVICE}.tlv") == 4  # the boot's own download and three more
    assert (report.registration.result, report.registration.code) == ("waiting", "waiting-trust-list")
    assert report.registration.reason.startswith("no CTL after 4 tries")


def test_the_number_of_ctl_tries_is_the_models_setting() -> None:
    model = attrs.evolve(SIP_PHONE, settings=attrs.evolve(SIP_PHONE.settings, tls_trust_list_attempts=2))
    fetched: list[str] = []
    boot(files_with_config(MiniCluster(), device_security_mode=2), CallManagerDouble(), model=model,
         fetched=fetched)
    assert fetched.count(f"CTL{DEVICE}.tlv") == 2


def test_a_ctl_served_on_a_later_try_resets_the_phone_instead_of_registering(mixed) -> None:
    files = files_with_config(MiniCluster(), device_security_mode=2)
    ctl_name = f"CTL{DEVICE}.tlv"
    served = {"count": 0}
    fetch = serve_files(files)

    def ctl_appears(request: Fetch):
        if request.name == ctl_name:
            served["count"] += 1
            if served["count"] == 2:
                return serve_files({ctl_name: mixed.ctl()})(request)
        return fetch(request)

    callmanager = CallManagerDouble()
    _, report = run_boot(PhoneMachine(SIP_PHONE, MAC), fetch=ctl_appears, ask_tvs=TvsDouble(mixed),
                         clock=lambda: NOW, register=callmanager, client_certificate="mic")
    assert callmanager.asked == []
    assert report.registration.code == "waiting-trust-list"
    assert "resets to install it" in report.registration.reason


@pytest.mark.parametrize("client, code", [("mic", "waiting-capf"), ("lsc", "registered-authenticated")])
def test_pending_capf_on_a_secure_profile_waits_until_the_phone_has_an_lsc(mixed, client, code) -> None:
    report = boot(files_with_config(mixed, device_security_mode=2, capf_auth_mode=2), CallManagerDouble(),
                  client=client)
    assert report.registration.code == code


@pytest.mark.parametrize("client, outcome, presented, code", [
    ("mic", CapfOutcome("installed", operation="install", lsc=node_identity("CP-8861-" + DEVICE)), "lsc",
     "registered-authenticated"),
    ("lsc", CapfOutcome("deleted", operation="delete"), "mic", "waiting-capf"),
    ("mic", CapfOutcome("failed", "as asked", operation="install"), "mic", "waiting-capf"),
])
def test_registration_presents_what_capf_left_the_phone_in_the_same_boot(mixed, client, outcome, presented,
                                                                         code) -> None:
    callmanager = CallManagerDouble()
    files = files_with_config(mixed, device_security_mode=2, capf_auth_mode=2, capf_servers=("127.0.0.1",))
    _, report = run_boot(PhoneMachine(SIP_PHONE, MAC, keys=PhoneKeys(mic=node_identity("mic"))),
                         fetch=serve_files(files), ask_tvs=TvsDouble(mixed), clock=lambda: NOW,
                         enrol_capf=lambda plan: CapfFinished(outcome, "127.0.0.1:3804"),
                         register=callmanager, client_certificate=client)
    assert report.capf.result == outcome.result
    assert (report.registration.code, report.registration.client_certificate) == (code, presented)
    assert [asked.client_certificate for asked in callmanager.asked] == (["lsc"] if presented == "lsc" else [])


def test_a_phone_booted_presenting_nothing_still_presents_nothing_after_capf_installs_an_lsc(mixed) -> None:
    callmanager = CallManagerDouble()
    files = files_with_config(mixed, device_security_mode=2, capf_auth_mode=2, capf_servers=("127.0.0.1",))
    installed = CapfOutcome("installed", operation="install", lsc=node_identity("CP-8861-" + DEVICE))
    _, report = run_boot(PhoneMachine(SIP_PHONE, MAC), fetch=serve_files(files), ask_tvs=TvsDouble(mixed),
                         clock=lambda: NOW, enrol_capf=lambda plan: CapfFinished(installed, "127.0.0.1:3804"),
                         register=callmanager, client_certificate=None)
    assert report.registration.code == "registered-authenticated"  # it holds an LSC: no longer waiting
    assert callmanager.asked[0].client_certificate is None


def test_a_ctl_without_a_callmanager_certificate_leaves_the_server_untrusted_without_connecting() -> None:
    cluster = MiniCluster(mixed_mode=True)
    cluster.run("ctl set-cluster non-secure-mode")  # its CTL: CCM+TFTP records without certificates
    callmanager = CallManagerDouble()
    flash = Flash(ctl=cluster.ctl(), itl=cluster.itl())  # the phone holds that CTL already
    report = boot(files_with_config(cluster, device_security_mode=2), callmanager, flash=flash)
    assert callmanager.asked == []
    assert (report.registration.result, report.registration.code) == ("failed", "server-untrusted")


@pytest.mark.parametrize("outcome, tls, result, code", [
    (TransportOutcome.SERVER_UNTRUSTED, True, "failed", "server-untrusted"),
    (TransportOutcome.UNKNOWN_CA, True, "failed", "client-untrusted"),
    (TransportOutcome.CLOSED, True, "failed", "name-mismatch"),
    (TransportOutcome.HANDSHAKE_FAILED, True, "failed", "tls-mismatch"),
    (TransportOutcome.FIPS_KEY_TOO_SMALL, True, "failed", "fips-key-too-small"),
    (TransportOutcome.ANSWERED_REFUSED, False, "rejected", "rejected-security"),
    (TransportOutcome.CLOSED, False, "failed", "connection-closed"),
    (TransportOutcome.UNREACHABLE, False, "failed", "unreachable"),
    (TransportOutcome.NO_ANSWER, True, "failed", "no-answer"),
    (TransportOutcome.MALFORMED, False, "failed", "malformed-answer"),
])
def test_what_the_connection_saw_becomes_the_documented_outcome(mixed, outcome, tls, result, code) -> None:
    report = boot(files_with_config(mixed, device_security_mode=2 if tls else 1), CallManagerDouble(outcome))
    assert (report.registration.result, report.registration.code) == (result, code)
    assert outcome_of(outcome, 2 if tls else 1, tls=tls).code == code


def test_sccp_phones_register_on_2000_or_443_above_it(mixed) -> None:
    assert signalling_protocol(SCCP_PHONE) == "SCCP" and signalling_protocol(SIP_PHONE) == "SIP"
    for mode, port, tls in ((1, 2000, False), (2, 2443, True)):
        callmanager = CallManagerDouble()
        report = boot(files_with_config(mixed, device_security_mode=mode), callmanager, model=SCCP_PHONE)
        assert (callmanager.asked[0].port, callmanager.asked[0].tls, report.registration.protocol) == (
            port, tls, "SCCP")


def test_the_signalling_protocol_setting_overrides_the_load_name() -> None:
    model = attrs.evolve(SCCP_PHONE, settings=attrs.evolve(SCCP_PHONE.settings, signalling_protocol="SIP"))
    assert signalling_protocol(model) == "SIP"


def test_a_configuration_without_callmanager_means_no_registration(mixed) -> None:
    callmanager = CallManagerDouble()
    report = boot(files_with_config(mixed, device_security_mode=2, call_managers=()), callmanager)
    assert callmanager.asked == [] and report.registration is None


def test_a_boot_not_asked_to_register_stops_after_the_configuration(mixed) -> None:
    _, report = run_boot(PhoneMachine(SIP_PHONE, MAC), fetch=serve_files(files_with_config(mixed)),
                         ask_tvs=TvsDouble(mixed), clock=lambda: NOW)
    assert report.config_applied and report.registration is None


def _register(pinned: tuple[bytes, ...], *, fips: bool) -> Register:
    return Register(DEVICE, "SIP", 2, "10.0.0.1", 5061, True, pinned, ("1.2",), 1.0, "mic", fips=fips)


def test_only_a_ctl_callmanager_certificate_passes_the_phones_check() -> None:
    server, other = server_identity(bits=2048), server_identity("other", bits=2048)
    assert check_server_certificate(server.der, _register((server.der,), fips=False)) is None
    outcome, reason = check_server_certificate(other.der, _register((server.der,), fips=False))
    assert outcome is TransportOutcome.SERVER_UNTRUSTED and "not a CCM record of the CTL" in reason


def test_a_fips_phone_refuses_a_callmanager_key_under_2048_bits() -> None:
    small = server_identity(bits=1024)
    assert check_server_certificate(small.der, _register((small.der,), fips=False)) is None
    outcome, reason = check_server_certificate(small.der, _register((small.der,), fips=True))
    assert outcome is TransportOutcome.FIPS_KEY_TOO_SMALL and "1024-bit RSA key is not FIPS compliant" in reason
