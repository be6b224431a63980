"""A phone against the project's own TFTP and TVS servers over loopback: real UDP, real TLS.

The cluster's files come from tests/minicluster.py; the servers are the real
ones (tftpy-based TFTP, asyncio TLS TVS with its SQLite store and CTL cache).
"""

from __future__ import annotations

import contextlib
import json

import pytest
from minicluster import MAC, MiniCluster

from phone.cli import main
from phone.device.phone import Phone
from phone.device.flash import FlashStore
from phone.catalogue import get_model
from phone.lab.servers.tftp import TftpFileServer
from phone.device.transports import TftpTransport, TvsTransport
from phone.lab.servers.tvs import running_tvs_server
from phone.lab.tvs_store import TvsStore


@contextlib.contextmanager
def serving(cluster: MiniCluster, tmp_path, *, tvs: bool = True, trust_callmanager: bool = True):
    """TFTP serving the cluster's current files; TVS with the cluster's store and CTL."""
    (tmp_path / "tvs.pem").write_bytes(cluster.tvs.certificate_pem())
    (tmp_path / "tvs.key").write_bytes(cluster.tvs.private_key_pem())
    store = TvsStore(tmp_path / "tvs.sqlite", create=True)
    if trust_callmanager:
        store.add(cluster.callmanager.der, (0, 2))
    ctl_path = tmp_path / "CTLFile.tlv"

    def dynamic(name, _client):
        files = cluster.files()
        ctl = cluster.ctl()
        if ctl is not None:
            ctl_path.write_bytes(ctl)
        return files.get(name)

    with TftpFileServer(None, dynamic) as tftp_port:
        if not tvs:
            cluster.tvs_port = 9  # nothing listens there
            yield tftp_port, store
            return
        with running_tvs_server(tmp_path / "tvs.pem", tmp_path / "tvs.key", db=tmp_path / "tvs.sqlite",
                                ctl=ctl_path) as server:
            cluster.tvs_port = server.port
            yield tftp_port, store


def network_phone(model, tftp_port, state):
    model = get_model(model)
    return Phone(model, MAC, fetch=TftpTransport("127.0.0.1", tftp_port, model),
                 ask_tvs=TvsTransport(model, timeout=3.0), store=FlashStore(state))


def results(report):
    return {entry.name: entry.result for entry in report.files}


def test_first_boot_takes_the_itl_then_tvs_vouches_for_a_regenerated_callmanager(tmp_path):
    cluster = MiniCluster(mixed_mode=True)
    with serving(cluster, tmp_path) as (tftp_port, store):
        phone = network_phone("CP-8861", tftp_port, tmp_path / "phone")
        first = phone.boot()
        assert results(first)[f"ITLSEP{MAC}.tlv"] == "installed"
        assert results(first)[f"CTLSEP{MAC}.tlv"] == "installed"
        cluster.regenerate_callmanager()
        store.add(cluster.callmanager.der, (0, 2))
        second = phone.boot()
    assert results(second)[f"CTLSEP{MAC}.tlv"] == "installed"
    assert second.tvs_requests[0].status == 0 and set(second.tvs_requests[0].roles) == {0, 2}
    assert phone.machine.flash.ctl.data == cluster.ctl()


def test_a_signer_the_tvs_does_not_know_is_rejected_and_the_old_itl_kept(tmp_path):
    cluster = MiniCluster()
    with serving(cluster, tmp_path, trust_callmanager=False) as (tftp_port, _store):
        phone = network_phone("CP-7975", tftp_port, tmp_path / "phone")
        phone.boot()
        old_itl = phone.machine.flash.itl
        cluster.regenerate_callmanager()
        report = phone.boot()
    assert results(report)[f"ITLSEP{MAC}.tlv"] == "rejected"
    assert report.tvs_requests[0].status == 1
    assert FlashStore(tmp_path / "phone").load().itl == old_itl


def test_tvs_down_is_a_clean_rejection(tmp_path):
    cluster = MiniCluster()
    with serving(cluster, tmp_path, tvs=False) as (tftp_port, _store):
        phone = network_phone("CP-8861", tftp_port, tmp_path / "phone")
        phone.boot()
        old_itl = phone.machine.flash.itl
        cluster.regenerate_callmanager()
        report = phone.boot()
    assert results(report)[f"ITLSEP{MAC}.tlv"] == "rejected"
    assert "TVS failed: refused" in report.result_of(f"ITLSEP{MAC}.tlv").reason
    assert phone.machine.flash.itl == old_itl


def test_phone_boot_command_prints_the_documented_json(tmp_path, capsys):
    cluster = MiniCluster(mixed_mode=True)
    with serving(cluster, tmp_path) as (tftp_port, _store):
        code = main(["phone", "boot", "--model", "CP-8861", "--mac", MAC, "--tftp", f"127.0.0.1:{tftp_port}",
                     "--state", str(tmp_path / "phone"), "--json", "--log", str(tmp_path / "console.log")])
        document = json.loads(capsys.readouterr().out)
    assert code == 0
    assert set(document) >= {"device", "model", "files", "ctl", "itl", "config", "tvs_requests",
                             "status_messages", "device_tl_info"}
    assert document["device"] == f"SEP{MAC}" and document["model"] == "CP-8861"
    assert [f["result"] for f in document["files"]] == ["installed", "installed", "applied"]
    assert document["ctl"]["installed"] and document["ctl"]["signer_serial"] == "70CAF64E090751B9DF22F49F754FC5BB"
    assert document["config"]["applied"] and document["config"]["tvs"][0]["port"] == cluster.tvs_port
    assert document["device_tl_info"][0]["name"] == "TL_INITIAL_SUCCESS"
    assert "SECUREAPP-" in (tmp_path / "console.log").read_text()


def test_phone_erase_and_show_commands(tmp_path, capsys):
    cluster = MiniCluster(mixed_mode=True)
    with serving(cluster, tmp_path) as (tftp_port, _store):
        assert main(["phone", "boot", "--model", "CP-7975", "--mac", MAC, "--tftp", f"127.0.0.1:{tftp_port}",
                     "--state", str(tmp_path / "phone")]) == 0
    capsys.readouterr()
    assert main(["phone", "erase", "--state", str(tmp_path / "phone"), "--ctl"]) == 0
    assert main(["phone", "show", "--state", str(tmp_path / "phone"), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out.split("\n", 1)[1])
    assert not shown["ctl"]["installed"] and shown["itl"]["installed"]
    assert len(shown["itl"]["checksum"]) == 32  # the 7975's Trust List screen shows MD5


@pytest.mark.parametrize("argv", [
    ["phone", "boot", "--model", "CP-0000", "--mac", MAC, "--tftp", "127.0.0.1", "--state", "x"],
    ["phone", "boot", "--model", "CP-8861", "--mac", "nothex", "--tftp", "127.0.0.1", "--state", "x"],
    ["phone", "boot", "--model", "CP-8861", "--mac", MAC, "--tftp", "127.0.0.1:99999", "--state", "x"],
    ["phone", "erase", "--state", "/nonexistent/phone"],
])
def test_phone_commands_refuse_bad_arguments_in_one_line(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("phonetrust: ")


def test_factory_reset_recovers_a_damaged_state_folder(tmp_path, capsys):
    cluster = MiniCluster(mixed_mode=True)
    with serving(cluster, tmp_path) as (tftp_port, _store):
        argv = ["phone", "boot", "--model", "CP-7975", "--mac", MAC, "--tftp", f"127.0.0.1:{tftp_port}",
                "--state", str(tmp_path / "phone")]
        assert main(argv) == 0
        state = tmp_path / "phone"
        generation = state / (state / "CURRENT").read_text().strip()
        (generation / "CTLFile.tlv").write_bytes(b"truncated")
        (state / "notes.txt").write_text("mine")
        capsys.readouterr()
        assert main(["phone", "show", "--state", str(state)]) == 2  # damaged: refused, not trusted
        assert main(["phone", "factory-reset", "--state", str(state)]) == 0
        assert "factory reset: it is empty now" in capsys.readouterr().out
        assert (state / "notes.txt").read_text() == "mine"
        assert main(argv) == 0  # boots again from nothing
        assert FlashStore(state).load().ctl.data == cluster.ctl()
