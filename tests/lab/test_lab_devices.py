"""Phones' pages in a lab (`lab device set|show|list`) and the configuration each device gets."""

from __future__ import annotations

import json

import pytest
from lab_support import lab_factory

from phone.errors import UnknownModelError, UsageError
from phone.lab import Lab
from phone.lab.build import ServiceAddresses
from phone.lab.devices import updated_record
from phone.lab.servers.serving import LabServers
from phone.wire.certs import Profile, cucm_subject, generate_rsa_key, make_certificate
from phone.wire.config import CallManager, CapfServer, PhoneConfig, TvsMember
from phone.wire.tlv import TrustList

NAME = "SEP001122334455"


@pytest.fixture
def lab(tmp_path) -> Lab:
    return lab_factory()(tmp_path)


def config_of(lab: Lab, name: str = NAME, **kwargs) -> PhoneConfig:
    return PhoneConfig.from_bytes(lab.device_file(f"{name}.cnf.xml", **kwargs))


# -- lab device set ------------------------------------------------------------------------------

def test_setting_an_operation_makes_it_pending_and_none_clears_it(lab):
    lab.run(f"device set {NAME} --model 8861 --capf-operation install --capf-auth null-string")
    record = lab.device(NAME)
    assert (record.model, record.capf.operation, record.capf.status) == ("CP-8861", "install", "pending")
    assert record.capf.pending and record.capf.auth_mode_number == 2
    lab.run(f"device set {NAME} --capf-operation none")
    record = lab.device(NAME)
    assert (record.capf.operation, record.capf.status, record.capf.auth_mode_number) == ("none", None, 0)


def test_saving_the_same_operation_again_makes_a_failed_one_pending_again(lab):
    lab.run(f"device set {NAME} --model CP-8861 --capf-operation upgrade")
    lab.devices().record_capf_result(NAME, status="failed", lsc_der=None, keep_lsc=True)
    assert lab.device(NAME).capf.status == "failed"
    lab.run(f"device set {NAME} --capf-operation upgrade")
    assert lab.device(NAME).capf.status == "pending"


def test_options_left_out_keep_their_value(lab):
    lab.run(f"device set {NAME} --model CP-7965 --security-profile authenticated --encrypted-config on "
            "--capf-operation install --capf-auth auth-string:123456 --capf-key ec256")
    lab.run(f"device set {NAME} --security-profile encrypted")
    shown = json.loads(lab.run(f"device show {NAME} --json").lines[0])
    assert shown == {"name": NAME, "model": "CP-7965", "security_profile": "encrypted", "encrypted_config": True,
                     "capf": {"operation": "install", "status": "pending", "auth": "auth-string:123456",
                              "key": "ec256"},
                     "lsc": None}


def test_show_json_gives_the_lsc_serial_and_issuer(lab):
    lab.run(f"device set {NAME} --model CP-8861")
    capf = lab.identity("CAPF")
    key = generate_rsa_key(1024)
    lsc = make_certificate(cucm_subject(f"CP-8861-{NAME}"), key, not_before=lab.clock(), serial=0xABCDEF,
                           profile=Profile.DEVICE, issuer=capf)
    lab.devices().record_capf_result(NAME, status="successful", lsc_der=lsc.der)
    shown = json.loads(lab.run(["device", "show", NAME, "--json"]).lines[0])
    assert shown["lsc"] == {"serial": "ABCDEF", "issuer": capf.certificate.subject.rfc4514_string()}
    assert shown["capf"]["status"] == "successful"


def test_an_unknown_device_shows_auto_registration_defaults_without_creating_the_store(lab):
    shown = json.loads(lab.run(f"device show {NAME} --json").lines[0])
    assert (shown["security_profile"], shown["capf"]["operation"], shown["capf"]["status"]) == (
        "non-secure", "none", None)
    assert "auto-registration" in lab.run(f"device show {NAME}").lines[0]
    assert not lab.devices().path.exists()
    assert lab.run("device list --json").lines == ("[]",)


def test_list_gives_every_configured_device_in_name_order(lab):
    for name in ("SEP00000000000B", "SEP00000000000A"):
        lab.run(f"device set {name} --model CP-8861")
    assert [d["name"] for d in json.loads(lab.run("device list --json").lines[0])] == [
        "SEP00000000000A", "SEP00000000000B"]
    assert [line.split()[0] for line in lab.run("device list").lines] == ["SEP00000000000A", "SEP00000000000B"]


def test_auth_string_with_a_secure_profile_is_saved_with_a_warning(lab):
    lines = lab.run(f"device set {NAME} --model CP-8861 --security-profile encrypted --capf-operation install "
                    "--capf-auth auth-string:1234").lines
    assert lines[0] == "Update Successful: SEP001122334455"
    assert lines[1].startswith("Warning: with a secure profile the phone does not register before it has an LSC")
    assert lab.device(NAME).capf.auth_string == "1234"


@pytest.mark.parametrize("words, error, message", [
    ("device set SEP0011 --model CP-8861", UsageError, "is not SEP followed by 12 upper-case hex digits"),
    ("device set sep001122334455 --model CP-8861", UsageError, "is not SEP followed by 12"),
    (f"device set {NAME}", UsageError, "is a new device: give its --model"),
    (f"device set {NAME} --model CP-0000", UnknownModelError, "unknown phone model 'CP-0000'"),
    (f"device set {NAME} --model CP-8861 --security-profile paranoid", UsageError, "security profile 'paranoid'"),
    (f"device set {NAME} --model CP-8861 --encrypted-config yes", UsageError, "--encrypted-config is 'on' or"),
    (f"device set {NAME} --model CP-8861 --capf-operation renew", UsageError, "CAPF operation 'renew'"),
    (f"device set {NAME} --model CP-8861 --capf-auth auth-string", UsageError, "needs its digits"),
    (f"device set {NAME} --model CP-8861 --capf-auth auth-string:12", UsageError, "4 to 10 digits"),
    (f"device set {NAME} --model CP-8861 --capf-auth existing-lsc:1", UsageError, "is not one of null-string"),
    (f"device set {NAME} --model CP-8861 --capf-key rsa512", UsageError, "CAPF key 'rsa512'"),
    ("device show SEP0011", UsageError, "is not SEP followed by"),
    ("device show", UsageError, "takes 1 argument"),
])
def test_bad_device_settings_are_one_line_and_change_nothing(lab, words, error, message):
    with pytest.raises(error, match=message):
        lab.run(words)
    assert lab.device(NAME).configured is False


def test_a_new_record_needs_a_model_and_keeps_the_name_rule():
    with pytest.raises(UsageError, match="give its --model"):
        updated_record(None, NAME)
    assert updated_record(None, NAME, model="CP-8861", encrypted_config=True).encrypted_config is True


# -- the device's configuration ------------------------------------------------------------------

def test_an_unknown_device_gets_a_non_secure_configuration_with_nothing_pending(lab):
    config = config_of(lab)
    assert (config.device_security_mode, config.capf_auth_mode, config.transport_layer_protocol) == (1, 0, 1)
    assert config.capf_list == (CapfServer(lab.nodes[0].name, 3804),)
    assert config.call_managers == tuple(CallManager(node.name) for node in lab.nodes)
    assert [m.port for m in config.tvs_members] == [2445, 2445]


def test_the_configuration_follows_the_device_page(lab):
    lab.run(f"device set {NAME} --model CP-8861 --security-profile encrypted --capf-operation install "
            "--capf-auth existing-mic")
    config = config_of(lab)
    assert (config.device_security_mode, config.capf_auth_mode, config.transport_layer_protocol) == (3, 4, 3)
    lab.run(f"device set {NAME} --security-profile authenticated --capf-operation none")
    config = config_of(lab)
    assert (config.device_security_mode, config.capf_auth_mode) == (2, 0)
    signed = TrustList.from_bytes(lab.device_file(f"{NAME}.cnf.xml.sgn"))
    assert signed.payload == lab.device_file(f"{NAME}.cnf.xml")


def test_a_lower_case_mac_in_the_file_name_finds_the_device(lab):
    lab.run("device set SEP00112233AABB --model CP-8861 --security-profile encrypted")
    assert config_of(lab, "SEP00112233aabb").device_security_mode == 3


def test_the_configuration_lists_the_services_at_the_addresses_given(lab):
    lab.run(f"device set {NAME} --model CP-8861 --capf-operation install")
    addresses = ServiceAddresses(tvs=(("127.0.0.1", 4000),), capf=("127.0.0.1", 3900),
                                 call_managers=(CallManager("127.0.0.1", 2100, 5160, 5161),))
    config = config_of(lab, addresses=addresses)
    assert config.tvs_members == (TvsMember("127.0.0.1", 4000, 0),)
    assert config.capf_list == (CapfServer("127.0.0.1", 3900),)
    assert config.call_managers == (CallManager("127.0.0.1", 2100, 5160, 5161),)
    assert config_of(lab, addresses=ServiceAddresses(tvs=(("127.0.0.1", 4000),))).capf_list == ()


def test_lab_serve_configurations_carry_the_served_ports_and_leave_out_what_is_off(lab):
    servers = LabServers(lab, host="127.0.0.1", tftp_node=lab.nodes[0], advertise="192.0.2.99",
                         tvs_ports=[4100, 4101], trace=None)
    config = PhoneConfig.from_bytes(servers.file(f"{NAME}.cnf.xml", ("127.0.0.1", 1)))
    assert [m.server for m in config.tvs_members] == ["192.0.2.99:4100", "192.0.2.99:4101"]
    # No CAPF server runs in this process: the publisher's, on CUCM's 3804, at the advertised address
    # (the served port when one runs: tests/lab/test_lab_serve_capf.py).
    assert config.capf_list == (CapfServer("192.0.2.99", 3804),)


def test_export_writes_the_files_of_every_configured_device(lab, tmp_path):
    lab.run(f"device set {NAME} --model CP-8861 --security-profile encrypted")
    written = lab.export(tmp_path / "out", macs=["AA:BB:CC:DD:EE:FF"])
    assert {f"{NAME}.cnf.xml.sgn", "SEPAABBCCDDEEFF.cnf.xml.sgn", f"ITL{NAME}.tlv"} <= set(written)
    exported = PhoneConfig.from_bytes((tmp_path / "out" / f"{NAME}.cnf.xml").read_bytes())
    assert exported.device_security_mode == 3
