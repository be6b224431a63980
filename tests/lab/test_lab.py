"""The lab at file level: the seed's four procedures, release differences, the TVS store, persistence."""

from __future__ import annotations

import datetime
import json

import pytest
from cryptography.hazmat.primitives import serialization
from lab_support import SEED_CTL_TIME, FakeClock, lab_factory

from phone.wire.config import PhoneConfig
from phone.errors import UsageError
from phone.lab import Lab, LabError, OperationRefused
from phone.lab.releases import parse_release
from phone.wire.signing import verify
from phone.wire.tlv import Role, RecordTag, TrustList
from phone.firmware.trust import is_rollback_itl
from phone.lab.tvs_store import TvsStore

SAST, CCM_TFTP, CAPF, TVS = Role.SAST, Role.CCM_TFTP, Role.CAPF, Role.TVS


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def lab(tmp_path, clock) -> Lab:
    return lab_factory()(tmp_path, clock=clock)


@pytest.fixture
def lab125(tmp_path, clock) -> Lab:
    return lab_factory()(tmp_path, release="12.5", clock=clock)


def roles(trust_list: TrustList) -> list[int]:
    return [record.function for record in trust_list.records]


def serial(lab: Lab, service: str, node=None) -> bytes:
    return lab.identity(service, node).serial


def tvs_roles(lab: Lab) -> dict[bytes, tuple[int, ...]]:
    with TvsStore(lab.tvs_db) as store:
        return {entry.certificate: entry.roles for entry in store.list()}


# -- non-secure -> tokenless mixed mode (seed, first procedure) ----------------------------------

def test_new_lab_has_no_ctl_and_show_ctl_says_so_as_cucm(lab):
    assert lab.ctl() is None
    assert lab.state.security_mode == 0
    assert lab.show("ctl").splitlines() == [
        "Length of CTL file: 0",
        "CTL File not found . Please run CTLClient plugin or run the CLI - utils ctl.. to generate the CTL file.",
        "Error parsing the CTL File.",
    ]


def test_mixed_mode_creates_ctl_signed_by_publisher_callmanager_with_seed_layout(lab, clock):
    lines = lab.set_cluster_mixed_mode()
    assert lines == ("Moving Cluster to Mixed Mode", "Cluster set to Mixed Mode",
                     "Please Restart the TFTP and Cisco CallManager services on all nodes in the cluster that run "
                     "these services")
    ctl = lab.ctl()
    assert lab.state.security_mode == 1
    assert ctl.header.signer_serial == serial(lab, "CallManager")
    assert roles(ctl) == [SAST, CCM_TFTP, CAPF, CCM_TFTP]
    assert ctl.records[0].certificate == ctl.records[1].certificate == lab.identity("CallManager").der
    assert ctl.records[3].dns_name == "cucm-1051-a-sub1"
    assert verify(ctl).valid and verify(ctl).signed_by == 0
    # 1024-bit keys and the seed's names give the seed's sizes byte for byte (SPEC 2.4).
    assert (ctl.length, ctl.header.header_length) == (4947, 336)
    assert [record.length for record in ctl.records] == [1156, 1156, 1138, 1161]
    assert ctl.header.timestamp == int(clock.now.timestamp())
    assert ctl.header.digest_name == "sha1"
    assert lab.ctl_bytes("cucm-1051-a-sub1") == ctl.data  # the same CTL on every node


def test_show_ctl_marks_the_signing_sast_record(lab):
    lab.set_cluster_mixed_mode()
    text = lab.show("ctl")
    assert "Length of CTL file: 4947" in text
    assert "The CTL File was last modified on Fri Mar 06 18:45:13 UTC 2015" in text
    assert text.count("This etoken was used to sign the CTL file.") == 1
    assert "System Administrator Security Token" in text
    assert text.rstrip().endswith("The CTL file was verified successfully.")


def test_mixed_mode_twice_and_update_in_non_secure_mode_are_refused(lab):
    with pytest.raises(OperationRefused, match="not in Mixed Mode"):
        lab.ctl_update()
    lab.set_cluster_mixed_mode()
    with pytest.raises(OperationRefused, match="already in Mixed Mode"):
        lab.set_cluster_mixed_mode()


def test_mixed_mode_leaves_the_itl_bytes_unchanged(lab, clock):
    before = lab.itl_bytes()
    clock.advance(hours=1)
    lab.set_cluster_mixed_mode()
    assert lab.itl_bytes() == before  # "Tftp Itl hash not changed"


# -- certificate regeneration under a tokenless CTL (seed, fourth procedure) ---------------------

def test_regenerated_callmanager_signs_the_ctl_only_after_ctl_update(lab, clock):
    lab.set_cluster_mixed_mode()
    old = serial(lab, "CallManager")
    clock.advance(days=3)
    lines = lab.regenerate_certificate("CallManager", key_bits=2048)
    assert lines[0] == "Successfully Regenerated Certificate for CallManager."
    assert any("utils ctl update CTLFile" in line for line in lines)
    new = serial(lab, "CallManager")
    assert new != old and len(new) == 16
    assert lab.ctl().header.signer_serial == old  # CUCM does not touch the CTL by itself
    # ...but the ITL (signed by CallManager on 10.5) follows at once.
    assert lab.itl().header.signer_serial == new
    assert lab.ctl_update() == ("Updating CTL file", "CTL file Updated",
                                "Please Restart the TFTP and Cisco CallManager services on all nodes in the "
                                "cluster that run these services")
    ctl = lab.ctl()
    assert ctl.header.signer_serial == new
    # Seed: PUBLICKEY 270 / SIGNATURE 256 once CallManager.pem has a 2048-bit key.
    first = ctl.records[0]
    assert (len(first.public_key), len(first.signature), len(ctl.header.signature)) == (270, 256, 256)
    assert verify(ctl).valid


def test_regenerated_callmanager_replaces_the_old_one_in_the_tvs_store(lab):
    old = lab.identity("CallManager").der
    lab.regenerate_certificate("CallManager")
    store = tvs_roles(lab)
    assert old not in store
    assert store[lab.identity("CallManager").der] == (0, 2)


def test_regenerated_tvs_certificate_changes_every_node_itl(lab):
    before = {node.name: lab.itl(node.name) for node in lab.nodes}
    lab.regenerate_certificate("TVS", node=1)
    for node in lab.nodes:
        itl = lab.itl(node.name)
        assert itl.data != before[node.name].data
        tvs_records = [record.certificate for _, record in itl.records_with_role(TVS)]
        assert lab.identity("TVS", 1).der in tvs_records


def test_regenerate_refuses_what_cucm_does_not_have(lab, lab125):
    with pytest.raises(OperationRefused, match="publisher"):
        lab.regenerate_certificate("CAPF", node=1)
    with pytest.raises(UsageError, match="unknown certificate"):
        lab.regenerate_certificate("Tomcat")
    with pytest.raises(OperationRefused, match="from CUCM 12.0 the ITLRecovery"):
        lab125.regenerate_certificate("ITLRecovery", node="cucm-1251-a-sub1")


# -- eTokens and the CTL client (seed, second and third procedures) ----------------------------

def test_ctl_client_is_refused_when_the_token_is_not_in_the_tokenless_ctl(lab):
    lab.new_etoken("token1")
    lab.new_etoken("token2")
    lab.set_cluster_mixed_mode()
    before = lab.ctl_bytes()
    with pytest.raises(OperationRefused, match="^The Security Token you have inserted does not exist in the CTL File"):
        lab.ctl_client(["token1", "token2"])
    assert lab.ctl_bytes() == before


def test_ctl_client_after_ctl_delete_writes_etoken_ctl_signed_by_last_token(lab):
    first, second = lab.new_etoken("token1"), lab.new_etoken("SAST-ADN008580ef")
    lab.set_cluster_mixed_mode()
    assert lab.ctl_delete() == ("files: found = 1, deleted = 1",)
    assert lab.ctl() is None and lab.state.security_mode == 1  # still mixed mode
    lines = lab.ctl_client(["token1", "SAST-ADN008580ef"])
    assert lines[0].startswith("No CTL File exists on the server but the Call Manager Cluster Security Mode")
    ctl = lab.ctl()
    assert roles(ctl) == [SAST, SAST, CCM_TFTP, CAPF, CCM_TFTP]
    etokens = ctl.records[:2]
    assert [record.certificate for record in etokens] == [first.der, second.der]
    for record in etokens:
        assert RecordTag.SIGNATURE not in [element.tag for element in record.elements]
        assert record.dns_name == "" and len(record.serial) == 10
        assert record.issuer == "cn=Cisco Manufacturing CA;o=Cisco Systems"
    # 1024-bit eToken, 10-byte serial, 2048-bit manufacturing CA: the seed's 1186-byte record.
    assert etokens[1].length == 1186
    assert etokens[1].subject.startswith('cn="SAST-ADN008580ef ";ou=IPCBU;o="Cisco Systems')
    assert ctl.header.signer_serial == second.serial
    assert verify(ctl).signed_by == 1
    text = lab.show("ctl")
    assert text.count("This etoken was not used to sign the CTL file.") == 1
    assert text.count("This etoken was used to sign the CTL file.") == 1


def test_ctl_client_signs_with_the_chosen_token_and_accepts_a_token_of_the_current_ctl(lab):
    first, _ = lab.new_etoken("token1"), lab.new_etoken("token2")
    lab.set_cluster_mixed_mode()
    lab.ctl_delete()
    lab.ctl_client(["token1", "token2"], sign_with="token1")
    assert lab.ctl().header.signer_serial == first.serial
    lab.new_etoken("token3")
    lab.ctl_client(["token2", "token3"])  # token2 is in the current CTL: it authenticates
    assert len(lab.ctl().records_with_role(SAST)) == 2
    with pytest.raises(OperationRefused, match="does not exist in the CTL File"):
        lab.ctl_client(["token1", "token3"])  # token1 was dropped by the previous run
    with pytest.raises(UsageError, match="not one of the inserted tokens"):
        lab.ctl_client(["token2"], sign_with="token3")
    with pytest.raises(UsageError, match="no eToken 'nope'"):
        lab.ctl_client(["nope"])


def test_ctl_client_on_a_non_secure_cluster_without_ctl_sets_mixed_mode(lab):
    lab.new_etoken("token1")
    lines = lab.ctl_client(["token1"])
    assert "Cluster set to Mixed Mode" in lines
    assert lab.state.security_mode == 1 and lab.ctl() is not None


def test_ctl_update_turns_an_etoken_ctl_back_to_tokenless(lab):
    lab.new_etoken("token1")
    lab.new_etoken("token2")
    lab.ctl_client(["token1", "token2"])
    lab.ctl_update()
    ctl = lab.ctl()
    assert roles(ctl) == [SAST, CCM_TFTP, CAPF, CCM_TFTP]
    assert ctl.header.signer_serial == serial(lab, "CallManager")
    assert lab.state.ctl.kind == "tokenless"


def test_etoken_names_and_duplicates(lab):
    token = lab.new_etoken("SAST-ADN0054f509")
    assert token.certificate.subject.rfc4514_string().startswith("CN=SAST-ADN0054f509\\ ")
    with pytest.raises(UsageError, match="already has an eToken"):
        lab.new_etoken("SAST-ADN0054f509")
    with pytest.raises(UsageError, match="eToken name"):
        lab.new_etoken("../evil")


# -- non-secure mode and CTL deletion ------------------------------------------------------------

def test_non_secure_mode_leaves_a_ctl_without_node_certificates_until_deleted(lab):
    lab.set_cluster_mixed_mode()
    assert lab.set_cluster_non_secure_mode()[1] == "Cluster set to Non-Secure Mode"
    ctl = lab.ctl()
    assert lab.state.security_mode == 0
    assert roles(ctl) == [SAST, CCM_TFTP, CCM_TFTP]
    bare = ctl.records[1]
    assert bare.certificate is None and bare.dns_name == "cucm-1051-a-pub"
    assert bare.length == 5 + (3 + len("cucm-1051-a-pub") + 1) + 5 + 7
    assert verify(ctl).valid
    with pytest.raises(OperationRefused, match="already in Non-Secure Mode"):
        lab.set_cluster_non_secure_mode()
    assert lab.ctl_delete() == ("files: found = 1, deleted = 1",)
    assert lab.ctl() is None and lab.state.ctl is None
    assert lab.ctl_delete() == ("files: found = 0, deleted = 0",)


def test_ctl_delete_on_one_node_leaves_the_others(lab):
    lab.set_cluster_mixed_mode()
    lab.ctl_delete(node=0)
    assert lab.ctl(0) is None and lab.ctl(1) is not None
    assert lab.state.ctl is not None


# -- releases ---------------------------------------------------------------------------------

def test_itl_content_follows_spec_2_6(lab):
    itl = lab.itl()
    assert roles(itl) == [SAST, SAST, CCM_TFTP, TVS, TVS, CAPF]
    assert itl.records[0].certificate == lab.identity("ITLRecovery").der
    assert itl.records[0].subject.startswith("CN=ITLRECOVERY_cucm-1051-a-pub;OU=TAC")
    assert [r.certificate for _, r in itl.records_with_role(TVS)] == [lab.identity("TVS", n.name).der
                                                                      for n in lab.nodes]
    assert itl.records[-1].subject.startswith("CN=CAPF-")
    assert itl.header.filename == "ITLFile.tlv" and verify(itl).valid


def test_release_10_5_itl_is_signed_by_each_node_callmanager(lab):
    for node in lab.nodes:
        itl = lab.itl(node.name)
        assert itl.header.signer_serial == serial(lab, "CallManager", node.name)
        assert itl.records[0].certificate == lab.identity("ITLRecovery", node.name).der


def test_release_12_5_itl_is_signed_by_the_cluster_itlrecovery(lab125):
    recovery = lab125.identity("ITLRecovery")
    for node in lab125.nodes:
        itl = lab125.itl(node.name)
        assert itl.header.signer_serial == recovery.serial
        assert verify(itl).valid and verify(itl).signed_by == 0
    lab125.set_cluster_mixed_mode()
    ctl = lab125.ctl()
    assert roles(ctl) == [SAST, SAST, CCM_TFTP, CAPF, CCM_TFTP]
    assert ctl.records[1].certificate == recovery.der
    assert ctl.header.signer_serial == serial(lab125, "CallManager")


def test_release_12_5_regenerated_itlrecovery_changes_the_itl_signer(lab125):
    old = lab125.itl().header.signer_serial
    lab125.regenerate_certificate("ITLRecovery")
    assert lab125.itl(1).header.signer_serial == serial(lab125, "ITLRecovery") != old


def test_release_8_6_has_no_itlrecovery_and_no_tokenless_ctl(tmp_path):
    lab = lab_factory()(tmp_path, release="8.6", nodes=1)
    assert roles(lab.itl()) == [SAST, CCM_TFTP, TVS, CAPF]
    assert lab.nodes[0].name == "cucm-861-a-pub"
    with pytest.raises(OperationRefused, match="does not exist in CUCM 8.6"):
        lab.set_cluster_mixed_mode()
    with pytest.raises(OperationRefused, match="from CUCM 10.0"):
        lab.itl_reset_localkey()
    lab.new_etoken("token1")
    lab.ctl_client(["token1"])  # the CTL client is how 8.6 goes to mixed mode
    assert lab.state.security_mode == 1


def test_release_names():
    assert parse_release("14.0").name == "14" and parse_release("10.5").version == (10, 5)
    with pytest.raises(UsageError, match="unknown CUCM release"):
        parse_release("10.6")


# -- TVS store (SPEC 3.3) ------------------------------------------------------------------------

def test_tvs_store_holds_the_cluster_callmanagers_and_uploads_with_their_roles(lab, tmp_path):
    token1, token2 = lab.new_etoken("token1"), lab.new_etoken("token2")
    other = lab_factory()(tmp_path / "other", release="11.5", nodes=1).identity("CallManager")
    assert lab.upload_certificate("Phone-SAST-trust", token1.certificate_pem()) == ("Success: Certificate Uploaded",)
    lab.upload_certificate("CallManager-trust", token2.der)
    lab.upload_certificate("CallManager-trust", other.certificate)
    lab.upload_certificate("Phone-SAST-trust", other.certificate_pem())
    lab.upload_certificate("Phone-SAST-trust", other.certificate_pem())  # again: no duplicate
    store = tvs_roles(lab)
    assert store == {
        lab.identity("CallManager", 0).der: (0, 2),
        lab.identity("CallManager", 1).der: (0, 2),
        token1.der: (0,),
        token2.der: (3,),
        other.der: (0, 3),
    }
    assert len(lab.state.uploads) == 4


def test_upload_refuses_what_is_not_a_certificate(lab):
    with pytest.raises(UsageError, match="unknown trust store"):
        lab.upload_certificate("tomcat-trust", b"x")
    with pytest.raises(Exception, match="not a usable PEM or DER"):
        lab.upload_certificate("Phone-SAST-trust", b"not a certificate")


# -- rollback, ITL reset, parameters ---------------------------------------------------------------

def test_rollback_itl_has_no_tvs_or_tftp_entries_until_turned_off(lab):
    normal = lab.itl_bytes()
    lab.set_rollback(True)
    itl = lab.itl()
    assert roles(itl) == [SAST, SAST, CAPF]
    assert is_rollback_itl(itl) and verify(itl).valid
    lab.set_rollback(False)
    assert lab.itl_bytes() == normal


def test_itl_reset_localkey_serves_the_publisher_itl_signed_by_itlrecovery_on_10_5(lab):
    lines = lab.itl_reset_localkey()
    assert lines[0] == "Generating the reset ITL file....."
    assert "Successfully transferred reset ITL to node cucm-1051-a-sub1" in lines
    assert "Number of Active TFTP servers in the cluster : 2" in lines
    recovery = serial(lab, "ITLRecovery")
    for node in lab.nodes:
        itl = lab.itl(node.name)
        assert itl.header.signer_serial == recovery
        assert itl.records[1].certificate == lab.identity("CallManager").der  # the publisher's ITL
        assert verify(itl).valid
    lab.restart_tftp()
    assert lab.itl(1).header.signer_serial == serial(lab, "CallManager", 1)


def test_itl_reset_localkey_signs_with_callmanager_on_12_5(lab125):
    lab125.itl_reset_localkey()
    assert lab125.itl(1).header.signer_serial == serial(lab125, "CallManager")


def test_sha512_parameter_signs_itl_configs_and_next_ctl_with_sha512(lab125):
    lab125.set_cluster_mixed_mode()
    lines = lab125.set_parameter("tftp-file-signature-algorithm", "SHA-512")
    assert lines[0] == "TFTP File Signature Algorithm = SHA-512"
    assert lab125.itl().header.digest_name == "sha512"
    sgn = TrustList.from_bytes(lab125.device_file("SEP001122334455.cnf.xml.sgn"))
    assert sgn.header.digest_name == "sha512"
    assert lab125.ctl().header.digest_name == "sha1"  # until the next update
    lab125.ctl_update()
    assert lab125.ctl().header.digest_name == "sha512" and verify(lab125.ctl()).valid


def test_parameters_cucm_10_5_does_not_have_are_refused(lab):
    with pytest.raises(OperationRefused, match="SHA-1 only"):
        lab.set_parameter("tftp-file-signature-algorithm", "sha512")
    with pytest.raises(OperationRefused, match="min-version"):
        lab.set_parameter("tls-min-version", "1.2")
    with pytest.raises(UsageError, match="unknown parameter"):
        lab.set_parameter("cluster-security-mode", "1")


def test_tls_min_version_is_kept(lab125):
    assert lab125.set_parameter("tls-min-version", "1.2") == ("Successfully set the minimum TLS version to 1.2",)
    assert lab125.state.params.tls_min_version == "1.2"


# -- per-device files (SPEC 4.1, 4.4) ---------------------------------------------------------------

def test_per_device_trust_lists_are_the_node_files(lab):
    assert lab.device_file("CTLSEP001122334455.tlv") is None  # "File not found" in non-secure mode
    lab.set_cluster_mixed_mode()
    assert lab.device_file("CTLSEP001122334455.tlv") == lab.ctl_bytes()
    assert lab.device_file("ITLSEPB000B4BA0AEE.tlv", node=1) == lab.itl_bytes(1)
    assert lab.device_file("ITLSEPB000B4BA0AEE.tlv") == lab.itl_bytes(0)
    assert lab.device_file("CTLFile.tlv") is None  # plain files come from the TFTP folder
    assert lab.device_file("SEP0011.cnf.xml") is None
    assert lab.device_file("../lab.json") is None


def test_device_config_lists_every_node_tvs_and_is_signed_by_the_tftp_node(lab):
    config = lab.device_file("SEPB000B4BA0AEE.cnf.xml", tvs_addresses=[("127.0.0.1", 4000), ("127.0.0.1", 4001)])
    members = PhoneConfig.from_bytes(config).tvs_members
    assert [(m.priority, m.address, m.port) for m in members] == [(0, "127.0.0.1", 4000), (1, "127.0.0.1", 4001)]
    default = PhoneConfig.from_bytes(lab.device_file("SEPB000B4BA0AEE.cnf.xml")).tvs_members
    assert [(m.address, m.port) for m in default] == [("192.0.2.11", 2445), ("192.0.2.12", 2445)]
    for node in (0, 1):
        signed = TrustList.from_bytes(lab.device_file("SEPB000B4BA0AEE.cnf.xml.sgn", node=node))
        assert signed.header.filename == "SEPB000B4BA0AEE.cnf.xml.sgn"
        assert signed.payload == lab.device_file("SEPB000B4BA0AEE.cnf.xml")
        assert verify(signed, certificate=lab.identity("CallManager", node).certificate).valid
    # The same lab state gives the same bytes: a phone sees an unchanged configuration.
    assert lab.device_file("SEPB000B4BA0AEE.cnf.xml.sgn") == lab.device_file("SEPB000B4BA0AEE.cnf.xml.sgn")
    assert TrustList.from_bytes(lab.device_file("XMLDefault.cnf.xml.sgn")).payload.startswith(b"<device")


def test_export_writes_what_a_plain_tftp_server_needs(lab, tmp_path):
    out = tmp_path / "tftproot"
    (out).mkdir()
    (out / "CTLFile.tlv").write_bytes(b"stale")
    written = lab.export(out, macs=["b0:00:b4:ba:0a:ee"])
    assert "CTLFile.tlv" not in written and not (out / "CTLFile.tlv").exists()
    assert set(written) == {"ITLFile.tlv", "XMLDefault.cnf.xml", "XMLDefault.cnf.xml.sgn", "SEPB000B4BA0AEE.cnf.xml",
                            "SEPB000B4BA0AEE.cnf.xml.sgn", "ITLSEPB000B4BA0AEE.tlv"}
    lab.set_cluster_mixed_mode()
    written = lab.export(out, tvs_addresses=[("10.0.0.5", 2445), ("10.0.0.5", 2446)])
    assert (out / "CTLFile.tlv").read_bytes() == lab.ctl_bytes()
    assert (out / "ITLFile.tlv").read_bytes() == lab.itl_bytes()
    with pytest.raises(UsageError, match="not a MAC"):
        lab.export(out, macs=["nope"])


# -- persistence and the folder ----------------------------------------------------------------------

def test_reopened_lab_has_the_same_state_and_files(lab):
    lab.new_etoken("token1")
    lab.set_cluster_mixed_mode()
    lab.upload_certificate("Phone-SAST-trust", lab.etoken("token1").certificate_pem())
    again = Lab.open(lab.path)
    assert again.state == lab.state
    assert again.ctl_bytes() == lab.ctl_bytes() and again.itl_bytes(1) == lab.itl_bytes(1)
    assert again.identity("CallManager").der == lab.identity("CallManager").der
    assert again.etoken("token1").der == lab.etoken("token1").der
    description = json.loads((lab.path / "lab.json").read_text())
    assert description["cluster_security_mode"] == 1 and description["release"] == "10.5"
    assert oct((lab.path / "certs" / "cucm-1051-a-pub" / "CallManager.key").stat().st_mode & 0o777) == "0o600"


def test_a_second_lab_object_sees_changes_made_through_another(lab):
    other = Lab.open(lab.path)
    assert other.ctl() is None
    lab.set_cluster_mixed_mode()
    assert other.ctl() is not None and other.state.security_mode == 1
    other.regenerate_certificate("CallManager")
    assert lab.identity("CallManager").der == other.identity("CallManager").der


def test_create_uses_the_clock_and_the_options(tmp_path):
    moment = datetime.datetime(2020, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc)
    from phone.lab import Names

    lab = Lab.create(tmp_path / "x", nodes=3, release="14", clock=lambda: moment, key_bits=1024,
                     names=Names("Voice", "Example", "Sydney", "NSW", "AU"), first_ip="10.1.1.10")
    assert [(n.name, n.ip) for n in lab.nodes] == [("cucm-1401-a-pub", "10.1.1.10"), ("cucm-1401-a-sub1", "10.1.1.11"),
                                                   ("cucm-1401-a-sub2", "10.1.1.12")]
    certificate = lab.identity("CallManager", 2).certificate
    assert certificate.not_valid_before_utc == moment
    assert certificate.not_valid_after_utc == moment + datetime.timedelta(days=1825, seconds=-1)
    assert lab.itl(2).records[1].subject == "CN=cucm-1401-a-sub2;OU=Voice;O=Example;L=Sydney;ST=NSW;C=AU"
    assert lab.itl().header.timestamp == int(moment.timestamp())
    assert certificate.public_key().key_size == 1024


def test_create_and_open_refuse_what_is_not_a_lab(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(UsageError, match="not an empty folder"):
        Lab.create(tmp_path / "full", key_bits=1024)
    with pytest.raises(LabError, match="not a lab folder"):
        Lab.open(tmp_path / "full")
    with pytest.raises(UsageError, match="1 to 8 nodes"):
        Lab.create(tmp_path / "new", nodes=9)
    with pytest.raises(UsageError, match="unknown CUCM release"):
        Lab.create(tmp_path / "new", release="7.1")
    assert not (tmp_path / "new").exists()


def test_damaged_description_is_one_clear_error(lab):
    (lab.path / "lab.json").write_text('{"format": 1, "release": "10.5"}')
    with pytest.raises(LabError, match="not a usable lab description"):
        Lab.open(lab.path)
    (lab.path / "lab.json").write_text("{")
    with pytest.raises(LabError, match="cannot be read"):
        Lab.open(lab.path)


def test_unknown_node_is_named(lab):
    with pytest.raises(UsageError, match=r"no node '5' in this lab: nodes are 0 \(cucm-1051-a-pub\)"):
        lab.itl(5)


def test_seed_time_is_the_default_clock_of_the_tests(lab):
    lab.set_cluster_mixed_mode()
    assert lab.ctl().header.timestamp == int(SEED_CTL_TIME.timestamp())
    der = lab.identity("CallManager").certificate.public_bytes(serialization.Encoding.DER)
    assert lab.ctl().records[0].certificate == der
