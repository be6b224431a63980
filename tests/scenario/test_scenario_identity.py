"""The phone's identity in scenarios: device pages per step, authentication strings, MICs and LSCs
kept across steps, and the expectations lsc, capf, config_encrypted, registration(_code)."""

from __future__ import annotations

import datetime
import re

import pytest
from cryptography import x509

from phone.catalogue import load_catalogue
from phone.cli import main
from phone.device.identity import default_mic_ca
from phone.firmware.machine import BootReport, CapfReport
from phone.firmware.registration import Registration
from phone.lab.devices import DeviceStore
from phone.scenario import ScenarioError, load_scenario
from phone.scenario.definition import DeviceSettings, Expectation
from phone.scenario.report import to_json
from phone.scenario.runner import ScenarioRun, check_identity
from phone.scenario.steps import expand
from phone.wire.certs import Profile, generate_rsa_key, make_certificate, simple_subject

ENROL = """
name = "enrol-by-string"
[labs.a]
release = "12.5"
nodes = 1
[phones]
CP-8861 = 1
CP-7965 = 1
[[steps]]
name = "enrol"
auth_string = {CP-8861 = "1234"}
[steps.devices."*"]
capf_operation = "install"
capf_auth = "auth-string:1234"
capf_key = "rsa1024"
[steps.devices.CP-8861]
encrypted_config = true
capf_operation = "install"
capf_auth = "auth-string:1234"
capf_key = "rsa1024"
[steps.expect.CP-8861]
capf = "installed"
lsc = "present"
[steps.expect."*"]
capf = "failed"
lsc = "absent"
[[steps]]
name = "every-identity-check-wrong"
[steps.expect.CP-8861]
lsc = "absent"
capf = "refused"
config_encrypted = false
registration = "failed"
registration_code = "client-untrusted"
"""


@pytest.fixture(scope="module")
def enrolled(tmp_path_factory):
    """One run of ENROL: the 8861 types the string and enrols, the 7965 does not; then a step whose
    identity expectations are all wrong for the 8861."""
    folder = tmp_path_factory.mktemp("identity")
    path = folder / "enrol.toml"
    path.write_text(ENROL)
    work = folder / "work"
    run = ScenarioRun(load_scenario(path), work, key_size=1024)
    return run, run.run()


def _phone(step, model: str):
    return next(phone for phone in step.phones if phone.spec.model.name == model)


def test_device_tables_set_the_selected_phones_pages_before_the_boots(enrolled):
    run, result = enrolled
    store = DeviceStore.for_lab(run.lab_dir("a"))
    page_8861, page_7965 = store.get("SEP02C15C000000"), store.get("SEP02C15C000001")
    assert (page_8861.model, page_8861.encrypted_config, page_8861.capf.auth, page_8861.capf.key) == (
        "CP-8861", True, "auth-string", "rsa1024")
    assert (page_7965.model, page_7965.encrypted_config, page_7965.capf.operation) == ("CP-7965", False, "install")
    assert "admin: device set SEP02C15C000000 --model CP-8861 --capf-operation install --capf-auth " \
           "auth-string:1234 --capf-key rsa1024 --encrypted-config on" in result.steps[0].lab_output


def test_the_authentication_string_is_typed_only_on_the_selected_phones(enrolled):
    _, result = enrolled
    first = result.steps[0]
    assert first.passed, [phone.mismatches for phone in first.phones]
    assert _phone(first, "CP-8861").report.capf.result == "installed"
    waiting = _phone(first, "CP-7965").report.capf
    assert (waiting.result, "waiting for the authentication string" in waiting.reason) == ("failed", True)


def test_scenario_phones_hold_a_mic_from_the_installation_ca_and_keep_their_lsc(enrolled):
    run, result = enrolled
    ca = default_mic_ca().certificate
    for spec in result.phones:
        mic = x509.load_pem_x509_certificate((run.phone_dir(spec) / "identity" / "mic.pem").read_bytes())
        mic.verify_directly_issued_by(ca)
    kept = run.phone_dir(result.phones[0]) / "identity" / "lsc.json"
    assert kept.is_file()
    # The LSC the first step installed opened the second step's encrypted configuration.
    assert _phone(result.steps[1], "CP-8861").report.config_encrypted is True


def test_phones_registering_without_tls_write_out_no_certificate_or_key(enrolled):
    run, result = enrolled
    for spec in result.phones:  # non-secure pages: nothing is presented, so no key leaves the identity store
        assert not list((run.phone_dir(spec) / "presented").iterdir())


def test_identity_expectations_that_do_not_hold_are_reported(enrolled):
    _, result = enrolled
    mismatches = _phone(result.steps[1], "CP-8861").mismatches
    assert mismatches == (
        "lsc: expected absent, got present",
        "capf: expected refused, got no CAPF operation",
        "config_encrypted: expected False, got True",
        "registration: expected failed, got registered (registered-nonsecure: 200 OK)",
        "registration_code: expected client-untrusted, got registered-nonsecure",
    )


def test_json_counts_lsc_installed_and_registrations_per_model(enrolled):
    _, result = enrolled
    first, second = (step["models"] for step in to_json(result, load_catalogue())["steps"])
    assert (first["CP-8861"]["lsc_installed"], first["CP-7965"]["lsc_installed"]) == (1, 0)
    # The 8861's first boot applied no configuration (the stub named no certificate): nothing to register with.
    assert (first["CP-8861"]["registered"], second["CP-8861"]["registered"]) == (0, 1)
    assert second["CP-8861"]["registration_failed"] == 0


def test_registration_none_is_a_boot_that_did_not_register():
    registered = Registration("127.0.0.1:5060", "SIP", "non-secure", "registered", "registered-nonsecure")
    assert check_identity(Expectation(registration="none"), BootReport(), None) == []
    assert check_identity(Expectation(registration="none"), BootReport(registration=registered), None) == [
        "registration: expected none, got registered (registered-nonsecure)"]
    assert check_identity(Expectation(registration_code="registered-nonsecure"), BootReport(), None) == [
        "registration_code: expected registered-nonsecure, got none"]


def test_capf_expectation_names_the_reason_of_another_result():
    report = BootReport(capf=CapfReport("127.0.0.1:3804", "install", "refused", "Invalid LSC"))
    assert check_identity(Expectation(capf="installed"), report, True) == [
        "capf: expected installed, got refused (Invalid LSC)"]
    assert check_identity(Expectation(capf="refused", lsc="present"), report, True) == []


def test_device_settings_say_what_lab_device_set_takes():
    settings = DeviceSettings(security_profile="encrypted", encrypted_config=False, capf_operation="install",
                              capf_auth="existing-mic", capf_key="ec256")
    assert settings.words() == ("--security-profile", "encrypted", "--capf-operation", "install", "--capf-auth",
                                "existing-mic", "--capf-key", "ec256", "--encrypted-config", "off")


STEP = "[[steps]]\nname = 'x'\n"


@pytest.mark.parametrize(("text", "message"), [
    (STEP + "[steps.devices.CP-8861]\nsecurity_profile = 'paranoid'", "devices.CP-8861.security_profile: expected one of"),
    (STEP + "[steps.devices.sbd]\nencrypted_config = 'yes'", "steps[0].devices.sbd.encrypted_config: expected bool"),
    (STEP + "[steps.devices.sbd]\ncapf_operation = 'renew'", "steps[0].devices.sbd.capf_operation: expected one of"),
    (STEP + "[steps.devices.sbd]\ncapf_auth = 'by-password'", "devices.sbd.capf_auth: CAPF authentication mode"),
    (STEP + "[steps.devices.sbd]\ncapf_auth = 'auth-string:12'", "devices.sbd.capf_auth: an authentication string"),
    (STEP + "[steps.devices.sbd]\ncapf_key = 'rsa9999'", "steps[0].devices.sbd.capf_key: expected one of"),
    (STEP + "[steps.devices.sbd]\nmodel = 'CP-7965'", "steps[0].devices.sbd.model: unknown field"),
    (STEP + "auth_string = {sbd = 123456}", "steps[0].auth_string.sbd: expected 4 to 10 digits as a string"),
    (STEP + "auth_string = {sbd = '12a4'}", "steps[0].auth_string.sbd: expected 4 to 10 digits as a string"),
    (STEP + "[steps.expect.sbd]\nlsc = 'maybe'", "steps[0].expect.sbd.lsc: expected one of present, absent"),
    (STEP + "[steps.expect.sbd]\ncapf = 'issued'", "steps[0].expect.sbd.capf: expected one of installed"),
    (STEP + "[steps.expect.sbd]\nconfig_encrypted = 'yes'", "steps[0].expect.sbd.config_encrypted: expected bool"),
    (STEP + "[steps.expect.sbd]\nregistration = 'ok'", "expect.sbd.registration: expected one of registered"),
    (STEP + "[steps.expect.sbd]\nregistration_code = 7", "steps[0].expect.sbd.registration_code: expected str"),
])
def test_bad_identity_fields_name_the_file_and_the_field(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ScenarioError, match=re.escape(message)) as caught:
        load_scenario(path)
    assert str(path) in str(caught.value)


def test_cn_placeholder_names_the_certificate_an_earlier_export_kept(tmp_path):
    identity = make_certificate(simple_subject(CN="CAPF-0a1b2c3d"), generate_rsa_key(1024),
                                not_before=datetime.datetime(2015, 1, 1), serial=7,
                                profile=Profile.DEVICE)
    (tmp_path / "old-capf.pem").write_bytes(identity.certificate_pem())
    assert expand("cert delete CAPF-trust {cn:{work}/old-capf.pem}", tmp_path, lambda key: tmp_path) == (
        "cert delete CAPF-trust CAPF-0a1b2c3d")
    with pytest.raises(ScenarioError, match="cannot read the certificate"):
        expand("{cn:{work}/missing.pem}", tmp_path, lambda key: tmp_path)


def test_scenario_show_lists_device_pages_and_typed_strings(capsys):
    assert main(["scenario", "show", "lsc-by-authentication-string"]) == 0
    shown = capsys.readouterr().out
    assert "phonetrust lab device set <each * phone> --capf-operation install --capf-auth auth-string:123456" in shown
    assert "authentication string typed on each * phone: 654321" in shown


def test_fleet_runs_refuse_scenarios_with_device_pages_in_one_line(capsys):
    assert main(["fleet", "run", "lsc-by-authentication-string", "--phones", "CP-8861=1"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "fleet runs do not replay: use `phonetrust scenario run`" in err


SAME_BOOT = """
name = "lsc-then-register"
[labs.a]
release = "12.5"
nodes = 1
[phones]
CP-8861 = 1
[[steps]]
name = "secure-page"
lab = ["ctl set-cluster mixed-mode"]
[steps.devices."*"]
security_profile = "encrypted"
capf_operation = "install"
capf_auth = "null-string"
[steps.expect."*"]
capf = "installed"
lsc = "present"
registration = "registered"
"""


def test_a_phone_presents_the_lsc_its_capf_session_installed_earlier_in_the_same_boot(tmp_path):
    path = tmp_path / "same-boot.toml"
    path.write_text(SAME_BOOT)
    run = ScenarioRun(load_scenario(path), tmp_path / "work", key_size=1024)
    result = run.run()
    assert result.steps[0].passed, [phone.mismatches for phone in result.steps[0].phones]
    presented = sorted(p.name.split("-")[0] for p in (run.phone_dir(result.phones[0]) / "presented").glob("*.pem"))
    assert presented == ["lsc"]  # chosen when the registration starts, after CAPF: never the MIC
