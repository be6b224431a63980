"""The LSC in the phone's flash: kept only after a successful CAPF install, replaced whole,
dropped by a CAPF delete or a factory reset, never touched by a failed or refused operation."""

from __future__ import annotations

import json
import os

import pytest
from capf_scripted_server import CapfScript, capf_server
from conftest import SEED_TIME, rsa_key
from minicluster import MAC, MiniCluster, TvsDouble, serve_files

from phone.catalogue import get_model
from phone.device.capf import CapfTransport
from phone.device.flash import FlashStore, FlashStoreError
from phone.device.identity import LSC_FILE, IdentityStore
from phone.device.phone import Phone, boot_json
from phone.errors import CertificateError
from phone.firmware.capf_session import KeySpec
from phone.wire.capf import Command
from phone.wire.certs import make_certificate, simple_subject
from phone.wire.config import TvsMember, render_config
from phone.wire.signing import build_signed_file

DEVICE = f"SEP{MAC}"
SGN = f"{DEVICE}.cnf.xml.sgn"


def lsc(label: str = "stored-lsc", name: str = DEVICE):
    return make_certificate(simple_subject(CN=name), rsa_key(1024, label), not_before=SEED_TIME, serial=0x15C)


def fast_keys(spec: KeySpec):
    return rsa_key(spec.size, f"phone-lsc-{spec.size}-{os.urandom(4).hex()}")


def phone_with_mic(state) -> Phone:
    cluster = MiniCluster()
    return Phone(get_model("CP-8861"), MAC, fetch=serve_files(cluster.files()), ask_tvs=TvsDouble(cluster),
                 store=FlashStore(state), identity=IdentityStore(state))


# -- the store -----------------------------------------------------------------------------


def test_an_lsc_saved_is_loaded_with_its_key_beside_the_mic(tmp_path):
    phone = phone_with_mic(tmp_path)
    store = IdentityStore(tmp_path)
    store.save_lsc(lsc())
    loaded = store.load()
    assert loaded.lsc.der == lsc().der
    assert loaded.lsc.private_key_pem() == lsc().private_key_pem()
    assert loaded.mic.der == phone.identity.mic.der
    assert oct((tmp_path / "identity" / LSC_FILE).stat().st_mode & 0o777) == "0o600"


def test_a_new_lsc_replaces_the_old_one_whole_and_leaves_no_temporary_file(tmp_path):
    phone_with_mic(tmp_path)
    store = IdentityStore(tmp_path)
    store.save_lsc(lsc("first"))
    store.save_lsc(lsc("second"))
    assert store.load().lsc.private_key_pem() == lsc("second").private_key_pem()
    assert sorted(p.name for p in (tmp_path / "identity").iterdir() if p.name.startswith(".")) == []


def test_a_certificate_with_another_key_is_never_written(tmp_path):
    phone_with_mic(tmp_path)
    store = IdentityStore(tmp_path)
    store.save_lsc(lsc("kept"))
    mismatched = type(lsc())(lsc("a").certificate, lsc("b").private_key)
    with pytest.raises(CertificateError, match="^its key is not the private key of the new LSC"):
        store.save_lsc(mismatched)
    assert store.load().lsc.der == lsc("kept").der


def test_a_damaged_lsc_file_is_reported_not_ignored(tmp_path):
    phone_with_mic(tmp_path)
    store = IdentityStore(tmp_path)
    store.save_lsc(lsc())
    path = tmp_path / "identity" / LSC_FILE
    document = json.loads(path.read_text())
    document["key"] = lsc("other").private_key_pem().decode()
    path.write_text(json.dumps(document))
    with pytest.raises(FlashStoreError, match="SHA-256 is not the one saved"):
        store.load()


def test_delete_removes_the_lsc_and_says_whether_there_was_one(tmp_path):
    phone_with_mic(tmp_path)
    store = IdentityStore(tmp_path)
    store.save_lsc(lsc())
    assert store.delete_lsc() is True
    assert store.load().lsc is None
    assert store.delete_lsc() is False


def test_a_factory_reset_drops_the_lsc_and_keeps_the_mic(tmp_path):
    phone = phone_with_mic(tmp_path)
    IdentityStore(tmp_path).save_lsc(lsc())
    phone = phone_with_mic(tmp_path)
    mic = phone.identity.mic.der
    phone.factory_reset()
    reloaded = IdentityStore(tmp_path).load()
    assert (reloaded.lsc, reloaded.mic.der) == (None, mic)


# -- a phone booting against a CAPF server ------------------------------------------------


def capf_cluster_files(cluster: MiniCluster, port: int, mode: int = 2) -> dict[str, bytes]:
    config = render_config([TvsMember("127.0.0.1", cluster.tvs_port)], device_name=DEVICE,
                           capf_servers=("127.0.0.1",), capf_port=port, capf_auth_mode=mode)
    files = cluster.files()
    files[SGN] = build_signed_file(config, cluster.callmanager, filename=SGN, timestamp=1_700_000_000).data
    return files


def boot_against(tmp_path, cluster: MiniCluster, script: CapfScript, *, mode: int = 2, auth_string=None):
    script.issuer = cluster.capf
    with capf_server(tmp_path / "server", script, cluster.capf) as peer:
        phone = Phone(get_model("CP-8861"), MAC, fetch=serve_files(capf_cluster_files(cluster, peer.port, mode)),
                      ask_tvs=TvsDouble(cluster), store=FlashStore(tmp_path / "state"),
                      identity=IdentityStore(tmp_path / "state"),
                      enrol_capf=CapfTransport(auth_string=auth_string, keys=fast_keys))
        report = phone.boot()
    return phone, report


@pytest.fixture
def cluster() -> MiniCluster:
    return MiniCluster()


def test_a_phone_enrols_keeps_its_lsc_in_flash_and_reports_it(tmp_path, cluster):
    (tmp_path / "server").mkdir()
    phone, report = boot_against(tmp_path, cluster, CapfScript(key_size=1024))
    document = boot_json(phone.machine, report, phone.identity)
    capf = document["capf"]
    assert (capf["operation"], capf["result"], capf["reason"]) == ("install", "installed", None)
    assert capf["server"].startswith("127.0.0.1:")
    stored = IdentityStore(tmp_path / "state").load().lsc
    assert stored is not None and stored.der == phone.identity.lsc.der
    shown = document["identity"]["lsc"]
    assert (shown["issuer"], shown["key"]) == (cluster.capf.certificate.subject.rfc4514_string(), "rsa1024")
    assert int(shown["serial"], 16) == stored.certificate.serial_number and shown["serial"] == shown["serial"].upper()


@pytest.mark.parametrize("rogue", [
    CapfScript(key_size=1024, lsc_name="SEP000000000001"),
    CapfScript(key_size=1024, lsc_other_key=True),
    CapfScript(key_size=1024, rogue="garbage"),
    CapfScript(key_size=1024, rogue="drop"),
    CapfScript(operation="refuse"),
])
def test_a_failed_or_refused_operation_keeps_the_lsc_the_phone_had(tmp_path, cluster, rogue):
    (tmp_path / "server").mkdir()
    phone, _ = boot_against(tmp_path, cluster, CapfScript(key_size=1024))
    before = IdentityStore(tmp_path / "state").load()
    phone, report = boot_against(tmp_path, cluster, rogue)
    after = IdentityStore(tmp_path / "state").load()
    assert report.capf.result in ("failed", "refused")
    assert after.lsc.der == before.lsc.der and after.lsc.private_key_pem() == before.lsc.private_key_pem()
    assert after.mic.der == before.mic.der


def test_a_capf_delete_sends_the_phone_back_to_its_mic(tmp_path, cluster):
    (tmp_path / "server").mkdir()
    boot_against(tmp_path, cluster, CapfScript(key_size=1024))
    phone, report = boot_against(tmp_path, cluster, CapfScript(operation="delete"), mode=3)
    assert report.capf.result == "deleted"
    assert IdentityStore(tmp_path / "state").load().lsc is None and phone.identity.lsc is None


def test_an_upgrade_authenticates_with_the_old_lsc_and_replaces_it(tmp_path, cluster):
    (tmp_path / "server").mkdir()
    first, _ = boot_against(tmp_path, cluster, CapfScript(key_size=1024))
    script = CapfScript(key_size=1024)
    second, report = boot_against(tmp_path, cluster, script, mode=3)
    assert (report.capf.operation, report.capf.result) == ("upgrade", "installed")
    assert script.message(Command.AUTH_RESPONSE).certificate[1] == first.identity.lsc.der
    assert IdentityStore(tmp_path / "state").load().lsc.der == second.identity.lsc.der != first.identity.lsc.der
