"""Every certificate of a lab: ECDSA and Tomcat ones, trust stores, regeneration side effects, older labs."""

from __future__ import annotations

import json
import shutil

import pytest
from cryptography import x509
from conftest import node_identity
from cryptography.hazmat.primitives.asymmetric import ec
from lab_support import FakeClock, lab_factory

from phone.device.identity import default_mic_ca
from phone.errors import UsageError
from phone.lab import Lab, OperationRefused, texts
from phone.lab.state import SERVICES
from phone.pytest_plugin import assert_accepted, assert_rejected
from phone.scenario.rehearsal import Rehearsal
from phone.wire.certs import Profile, load_certificate
from phone.wire.signing import verify
from phone.wire.tlv import Role

SAST, CCM_TFTP, CAPF, TVS = Role.SAST, Role.CCM_TFTP, Role.CAPF, Role.TVS


@pytest.fixture
def lab(tmp_path) -> Lab:
    return lab_factory()(tmp_path, release="12.5")


@pytest.fixture
def lab14(tmp_path) -> Lab:
    return lab_factory()(tmp_path, release="14")


def common_names(certificates) -> list[str]:
    return [c.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value for c in certificates]


def roles(trust_list) -> list[int]:
    return [record.function for record in trust_list.records]


# -- ECDSA and Tomcat certificates ---------------------------------------------------------------

def test_callmanager_ecdsa_is_an_ec_p256_certificate_named_host_ec_in_each_itl_as_ccm_tftp(lab):
    for node in lab.nodes:
        ecdsa = lab.identity("CallManager-ECDSA", node.name)
        assert isinstance(ecdsa.certificate.public_key(), ec.EllipticCurvePublicKey)
        assert ecdsa.certificate.public_key().curve.name == "secp256r1"
        assert common_names([ecdsa.certificate]) == [f"{node.name}-EC"]
        itl = lab.itl(node.name)
        assert roles(itl) == [SAST, SAST, CCM_TFTP, CCM_TFTP, TVS, TVS, CAPF]
        assert itl.records[3].certificate == ecdsa.der and verify(itl).valid


def test_releases_before_11_have_no_ecdsa_certificate(tmp_path):
    old = lab_factory()(tmp_path, release="10.5")
    assert roles(old.itl()) == [SAST, SAST, CCM_TFTP, TVS, TVS, CAPF]
    with pytest.raises(UsageError, match="CUCM 10.5 has no CallManager-ECDSA certificate"):
        old.identity("CallManager-ECDSA")
    with pytest.raises(OperationRefused, match="no tomcat-ECDSA certificate"):
        old.run("cert regenerate tomcat-ECDSA")
    assert common_names([old.identity("tomcat").certificate]) == [old.nodes[0].name]


def test_tomcat_is_made_on_first_need_and_then_kept(lab, tmp_path):
    assert not (lab.path / "certs" / lab.nodes[1].name / "tomcat.pem").exists()
    result = lab.run(f"cert export tomcat --node 1 --out {tmp_path / 'tomcat.pem'}")
    assert result.written == (tmp_path / "tomcat.pem",)
    exported = load_certificate((tmp_path / "tomcat.pem").read_bytes())
    assert exported == lab.identity("tomcat", 1).certificate
    assert common_names([exported]) == [lab.nodes[1].name]
    assert Lab.open(lab.path).identity("tomcat", 1).der == lab.identity("tomcat", 1).der
    paths = lab.certificate_paths("tomcat")  # what a server presenting it asks for
    assert paths[0].read_bytes() == lab.identity("tomcat").certificate_pem()
    ecdsa = lab.identity("tomcat-ECDSA")
    assert isinstance(ecdsa.certificate.public_key(), ec.EllipticCurvePublicKey)
    assert common_names([ecdsa.certificate]) == [f"{lab.nodes[0].name}-EC"]


def test_cert_export_writes_each_certificate_as_pem(lab, tmp_path):
    for service in SERVICES:
        out = tmp_path / f"{service}.pem"
        lab.run(["cert", "export", service, "--out", str(out)])
        assert out.read_bytes().startswith(b"-----BEGIN CERTIFICATE-----")
        assert load_certificate(out.read_bytes()) == lab.identity(service).certificate


def test_cert_export_needs_out_and_a_known_certificate(lab, tmp_path):
    with pytest.raises(UsageError, match="needs --out FILE"):
        lab.run("cert export CAPF")
    with pytest.raises(UsageError, match="unknown certificate 'IPsec'"):
        lab.run(f"cert export IPsec --out {tmp_path / 'x.pem'}")


# -- the CAPF certificate ------------------------------------------------------------------------

def test_from_cucm_14_the_capf_certificate_is_a_ca_with_path_length_0(lab14):
    certificate = lab14.identity("CAPF").certificate
    constraints = certificate.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca and constraints.value.path_length == 0
    usage = certificate.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.digital_signature


def test_before_cucm_14_the_capf_certificate_signs_certificates_without_basic_constraints(lab):
    certificate = lab.identity("CAPF").certificate
    assert certificate.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    with pytest.raises(x509.ExtensionNotFound):
        certificate.extensions.get_extension_for_class(x509.BasicConstraints)


# -- trust stores --------------------------------------------------------------------------------

def test_cucm_puts_the_capf_certificate_and_the_manufacturing_ca_in_capf_trust_and_callmanager_trust(lab):
    capf, mic_ca = lab.identity("CAPF").certificate, default_mic_ca().certificate
    for store in ("CAPF-trust", "CallManager-trust"):
        assert lab.trusted_certificates(store) == [capf, mic_ca]
    assert lab.trusted_certificates("Phone-SAST-trust") == []
    with pytest.raises(UsageError, match="unknown trust store 'Tomcat-trust'"):
        lab.trusted_certificates("Tomcat-trust")


def test_an_upload_to_capf_trust_is_trusted_by_capf_but_not_answered_by_tvs(lab, tmp_path):
    foreign = node_identity("CAPF-0badcafe", profile=Profile.CAPF)
    (tmp_path / "foreign.pem").write_bytes(foreign.certificate_pem())
    before = tvs_entries(lab)
    lab.run(f"cert upload CAPF-trust {tmp_path / 'foreign.pem'}")
    assert lab.trusted_certificates("CAPF-trust")[-1] == foreign.certificate
    assert foreign.certificate not in lab.trusted_certificates("CallManager-trust")
    assert tvs_entries(lab) == before


def tvs_entries(lab: Lab) -> set[bytes]:
    from phone.lab.tvs_store import TvsStore

    with TvsStore(lab.tvs_db) as store:
        return {entry.certificate for entry in store.list()}


def test_cert_delete_removes_by_subject_cn_even_cucm_own_entries(lab):
    mic_ca = default_mic_ca().certificate
    lines = lab.run(["cert", "delete", "CallManager-trust", "Cisco Manufacturing CA SHA2"]).lines
    assert lines == (texts.trust_deleted("CallManager-trust", "Cisco Manufacturing CA SHA2", 1),)
    assert mic_ca not in lab.trusted_certificates("CallManager-trust")
    assert mic_ca in lab.trusted_certificates("CAPF-trust")
    with pytest.raises(UsageError, match="CallManager-trust holds no certificate with CN 'nobody'"):
        lab.run("cert delete CallManager-trust nobody")


def test_an_upload_deleted_from_callmanager_trust_leaves_the_tvs_store(lab, tmp_path):
    foreign = node_identity("cucm-elsewhere-pub")
    (tmp_path / "cm.pem").write_bytes(foreign.certificate_pem())
    lab.run(f"cert upload CallManager-trust {tmp_path / 'cm.pem'}")
    assert foreign.der in tvs_entries(lab)
    lab.run(["cert", "delete", "CallManager-trust", common_names([foreign.certificate])[0]])
    assert foreign.der not in tvs_entries(lab) and lab.state.uploads == ()


# -- regeneration side effects -------------------------------------------------------------------

def test_capf_regeneration_adds_the_new_certificate_to_both_stores_and_keeps_the_old(lab):
    old = lab.identity("CAPF")
    result = lab.run("cert regenerate CAPF")
    new = lab.identity("CAPF")
    for store in ("CAPF-trust", "CallManager-trust"):
        assert {old.certificate, new.certificate} <= set(lab.trusted_certificates(store))
    assert lab.itl().records[-1].certificate == new.der
    old_name, new_name = common_names([old.certificate, new.certificate])
    assert texts.capf_trust_added(new_name, old_name) in result.lines
    assert result.lines[-2:] == ("Restart Cisco Trust Verification Service and Cisco Tftp", texts.RESET_PHONES)


def test_in_mixed_mode_the_ctl_names_the_old_capf_until_ctl_update(lab):
    lab.run("ctl set-cluster mixed-mode")
    old = lab.identity("CAPF")
    lines = lab.run("cert regenerate CAPF").lines
    assert texts.CTL_UPDATE_FIRST in lines
    capf_in_ctl = [record.certificate for _, record in lab.ctl().records_with_role(CAPF)]
    assert capf_in_ctl == [old.der]
    lab.run("ctl update")
    assert [record.certificate for _, record in lab.ctl().records_with_role(CAPF)] == [lab.identity("CAPF").der]


def test_deleting_the_current_capf_before_lsc_reinstalls_is_allowed_with_a_warning(lab):
    name = common_names([lab.identity("CAPF").certificate])[0]
    lines = lab.run(["cert", "delete", "CAPF-trust", name]).lines
    assert lines[1].startswith("Warning: that is the current CAPF certificate")
    assert lab.identity("CAPF").certificate not in lab.trusted_certificates("CAPF-trust")
    assert lab.identity("CAPF").certificate in lab.trusted_certificates("CallManager-trust")


def test_callmanager_ecdsa_regeneration_changes_the_itl_and_says_what_is_owed(lab):
    before = lab.itl().records[3].certificate
    lines = lab.run("cert regenerate CallManager-ECDSA").lines
    assert lab.itl().records[3].certificate == lab.identity("CallManager-ECDSA").der != before
    restart = "Restart Cisco CallManager, Cisco CTIManager, Cisco Trust Verification Service and Cisco Tftp"
    assert lines[-2:] == (restart, texts.RESET_PHONES)
    with pytest.raises(UsageError, match="EC P-256 key"):
        lab.run("cert regenerate CallManager-ECDSA --key-size 2048")


def test_tomcat_regeneration_changes_no_trust_list(lab):
    itls = [lab.itl_bytes(node.name) for node in lab.nodes]
    old = lab.identity("tomcat").der
    lines = lab.run("cert regenerate tomcat").lines
    assert lab.identity("tomcat").der != old
    assert [lab.itl_bytes(node.name) for node in lab.nodes] == itls
    assert lines[-1].startswith("Restart Cisco Tomcat") and texts.RESET_PHONES not in lines


def test_itlrecovery_regeneration_names_the_reset_steps_for_the_cluster_mode(lab):
    lines = lab.run("cert regenerate ITLRecovery").lines
    assert "utils itl reset localkey" in lines[-1]
    assert texts.ITL_RECOVERY_1024 in lines  # the lab's keys are 1024 bits
    lab.run("ctl set-cluster mixed-mode")
    lines = lab.run("cert regenerate ITLRecovery --key-size 2048").lines
    assert "utils ctl reset localkey" in lines[-1] and texts.ITL_RECOVERY_1024 not in lines


def test_cucm_14_resets_phones_itself_after_a_regeneration(lab14):
    assert lab14.run("cert regenerate TVS").lines[-1] == texts.RESET_AUTOMATIC


def test_wrong_orders_are_allowed_where_cucm_allows_them(lab):
    """CallManager and TVS together, ITLRecovery without a reset: CUCM warns in its guides, never refuses."""
    lab.run("cert regenerate CallManager")
    lab.run("cert regenerate TVS")
    lab.run("cert regenerate ITLRecovery")
    lab.run("itl reset localkey")
    lab.run("cert regenerate CAPF")
    assert lab.itl().records[-1].certificate == lab.identity("CAPF").der
    assert verify(lab.itl()).valid


# -- labs made before these certificates existed ------------------------------------------------

def make_old(lab: Lab) -> None:
    """Turn ``lab``'s folder into what an older phonetrust made: no ECDSA files, no CUCM trust entries."""
    for node in lab.nodes:
        for service in ("CallManager-ECDSA", "tomcat-ECDSA"):
            for suffix in (".pem", ".key"):
                (lab.path / "certs" / node.name / f"{service}{suffix}").unlink()
    shutil.rmtree(lab.path / "trust", ignore_errors=True)
    description = json.loads((lab.path / "lab.json").read_text())
    del description["system_trust"], description["trust_seeded"]
    (lab.path / "lab.json").write_text(json.dumps(description))


def test_opening_an_older_lab_adds_ecdsa_certificates_itl_records_and_trust_entries(lab):
    make_old(lab)
    upgraded = Lab.open(lab.path, clock=FakeClock())
    for node in upgraded.nodes:
        for service in ("CallManager-ECDSA", "tomcat-ECDSA"):
            assert (lab.path / "certs" / node.name / f"{service}.pem").exists()
        assert upgraded.itl(node.name).records[3].certificate == upgraded.identity("CallManager-ECDSA", node.name).der
    assert common_names(upgraded.trusted_certificates("CAPF-trust")) == [
        common_names([upgraded.identity("CAPF").certificate])[0], "Cisco Manufacturing CA SHA2"]
    assert json.loads((lab.path / "lab.json").read_text())["trust_seeded"] is True
    stamp = (lab.path / "lab.json").stat().st_mtime_ns
    Lab.open(lab.path)
    assert (lab.path / "lab.json").stat().st_mtime_ns == stamp  # upgraded once


def test_an_older_lab_keeps_what_was_deleted_deleted(lab):
    lab.run(["cert", "delete", "CAPF-trust", "Cisco Manufacturing CA SHA2"])
    again = Lab.open(lab.path)
    assert "Cisco Manufacturing CA SHA2" not in common_names(again.trusted_certificates("CAPF-trust"))


# -- what phones make of it ----------------------------------------------------------------------

def test_itlrecovery_regenerated_without_the_reset_itl_is_refused_and_the_reset_itl_repairs_it(tmp_path):
    """Security Guide "Certificate Regeneration", ITLRecovery: regenerate, ``utils itl reset localkey``,
    reset, restart TFTP. Skipping the reset leaves an ITL signed by a key no phone knows."""
    with Rehearsal.create(tmp_path / "lab", release="12.5", key_size=1024) as cluster:
        phone = cluster.phone("CP-8861")
        assert cluster.boot([phone])[0].result("ITL") == "installed"
        cluster.run("cert regenerate ITLRecovery")
        skipped, = cluster.boot([phone])
        cluster.run("itl reset localkey")
        reset, = cluster.boot([phone])
        cluster.run("tftp restart")
        rebuilt, = cluster.boot([phone])
    assert_rejected(skipped)
    assert skipped.result("ITL") == "rejected"
    assert_accepted(reset)
    assert_accepted(rebuilt)
