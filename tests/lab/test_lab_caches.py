"""What the lab keeps between requests (identities, signed configurations) never outlives a change."""

from __future__ import annotations

import os

import pytest
from lab_support import FakeClock, lab_factory

from phone.lab import Lab, LabError, build
from phone.wire.config import PhoneConfig
from phone.wire.signing import verify
from phone.wire.tlv import TrustList

DEVICE = "SEPB000B4BA0AEE"
SIGNED = f"{DEVICE}.cnf.xml.sgn"


@pytest.fixture
def lab(tmp_path) -> Lab:
    return lab_factory()(tmp_path, clock=FakeClock())


def signer_serial(data: bytes) -> bytes:
    return TrustList.from_bytes(data).header.signer_serial


def test_a_signed_configuration_is_signed_once_per_lab_state(lab, monkeypatch):
    signed = []
    original = build.signed_config
    monkeypatch.setattr(build, "signed_config", lambda *args: signed.append(args[3]) or original(*args))
    first = lab.device_file(SIGNED)
    assert lab.device_file(SIGNED) == first
    lab.device_file("SEP001122334455.cnf.xml.sgn")
    assert signed == [f"{DEVICE}.cnf.xml", "SEP001122334455.cnf.xml"]


def test_a_regenerated_callmanager_signs_the_configuration_served_next(lab):
    before = lab.device_file(SIGNED)
    lab.regenerate_certificate("CallManager")
    after = lab.device_file(SIGNED)
    new_signer = lab.identity("CallManager")
    assert signer_serial(before) != signer_serial(after) == new_signer.serial
    assert verify(TrustList.from_bytes(after), certificate=new_signer.certificate).valid


def test_a_change_made_by_another_process_is_served_next(lab):
    before = lab.device_file(SIGNED)
    other = Lab.open(lab.path, clock=FakeClock())  # as `phonetrust lab …` run beside `lab serve`
    other.regenerate_certificate("CallManager")
    after = lab.device_file(SIGNED)
    assert signer_serial(after) == other.identity("CallManager").serial != signer_serial(before)


def test_a_device_page_saved_without_a_lab_change_is_served_next(lab):
    lab.set_device(DEVICE, model="CP-8861", security_profile="non-secure")
    before = lab.device_file(SIGNED)
    lab.set_device(DEVICE, security_profile="authenticated")
    after = lab.device_file(SIGNED)
    assert PhoneConfig.from_bytes(TrustList.from_bytes(before).payload).device_security_mode == 1
    assert PhoneConfig.from_bytes(TrustList.from_bytes(after).payload).device_security_mode == 2


def test_each_node_signs_its_own_configuration(lab):
    assert signer_serial(lab.device_file(SIGNED, node=0)) == lab.identity("CallManager", 0).serial
    assert signer_serial(lab.device_file(SIGNED, node=1)) == lab.identity("CallManager", 1).serial


def test_a_lab_change_reloads_only_the_identities_whose_files_changed(lab):
    tvs, callmanager = lab.identity("TVS"), lab.identity("CallManager")
    other = Lab.open(lab.path, clock=FakeClock())
    other.regenerate_certificate("CallManager")
    assert lab.identity("TVS") is tvs
    assert lab.identity("CallManager").serial == other.identity("CallManager").serial != callmanager.serial


def test_a_damaged_key_file_is_refused_in_one_line_after_a_change(lab):
    lab.identity("CallManager")
    key = lab.path / "certs" / lab.node().name / "CallManager.key"
    key.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
    state = lab.path / "lab.json"
    state.write_bytes(state.read_bytes())  # a change of the lab: it is read again
    os.utime(state, ns=(1, 1))
    with pytest.raises(LabError, match=r"the CallManager certificate of .* cannot be loaded") as error:
        lab.identity("CallManager")
    assert "\n" not in str(error.value)
