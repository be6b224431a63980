"""Fleet phones enrol with CAPF: each its own key (from the worker's key pool), counted as lsc_installed."""

from __future__ import annotations

import time

from capf_scripted_server import CapfScript, capf_server
from cryptography.hazmat.primitives import serialization
from minicluster import MiniCluster

from phone.device.capf_keys import KeyPool
from phone.firmware.capf_session import KeySpec
from phone.fleet.summary import count
from phone.fleet.worker import StepOrder, Worker, WorkerSetup
from phone.lab.servers.tftp import TftpFileServer
from phone.wire.config import TvsMember, render_config
from phone.wire.signing import build_signed_file

PHONES = tuple((i, "CP-8861", f"02C15C{i:06X}") for i in range(3))


def public_der(key) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def files_for(cluster: MiniCluster, mac: str, port: int) -> dict[str, bytes]:
    device = f"SEP{mac}"
    config = render_config([TvsMember("127.0.0.1", cluster.tvs_port)], device_name=device,
                           capf_servers=("127.0.0.1",), capf_port=port, capf_auth_mode=2)
    itl = cluster.itl()
    name = f"{device}.cnf.xml.sgn"
    return {f"ITL{device}.tlv": itl,
            name: build_signed_file(config, cluster.callmanager, filename=name, timestamp=1_700_000_000).data}


def test_each_fleet_phone_gets_its_own_lsc_and_the_count_says_so(tmp_path):
    cluster = MiniCluster()
    script = CapfScript(key_size=1024, issuer=cluster.capf)
    with capf_server(tmp_path, script, cluster.capf) as peer:
        files = {}
        for _, _, mac in PHONES:
            files.update(files_for(cluster, mac, peer.port))
        with TftpFileServer(None, lambda name, client: files.get(name)) as port:
            worker = Worker(WorkerSetup(0, PHONES, concurrency=3))
            rows = []
            worker.run_step(StepOrder(0, "enrol", "127.0.0.1", port, start_at=time.time()), rows.extend)
    assert sorted(row.lsc_installed for row in rows) == [True, True, True]
    keys = {public_der(phone.lsc.private_key) for phone in worker.phones}
    assert len(keys) == 3  # never one key for two phones
    assert count((row.model, row.outcome, row.erase_needed, row.through_tvs, row.lsc_installed) for row in rows)[
        "CP-8861"]["lsc_installed"] == 3
    worker.act("factory-reset", frozenset({"CP-8861"}))
    assert [phone.lsc for phone in worker.phones] == [None, None, None]


def test_a_key_pool_hands_each_key_out_once_and_reuses_earlier_runs_keys(tmp_path):
    spec = KeySpec("rsa", 1024)
    first = KeyPool(tmp_path)
    made = [public_der(first(spec)) for _ in range(2)]
    assert len(set(made)) == 2 and (first.generated, first.reused) == (2, 0)
    second = KeyPool(tmp_path)
    again = [public_der(second(spec)) for _ in range(3)]
    assert set(again[:2]) == set(made) and again[2] not in made
    assert (second.generated, second.reused) == (1, 2)
    assert oct((tmp_path / "rsa1024").stat().st_mode & 0o777) == "0o700"
    assert all(oct(path.stat().st_mode & 0o777) == "0o600" for path in (tmp_path / "rsa1024").iterdir())


def test_a_key_pool_skips_files_that_are_not_keys_of_the_size_asked(tmp_path):
    folder = tmp_path / "rsa1024"
    folder.mkdir()
    (folder / "0-garbage.pem").write_bytes(b"not a key")
    pool = KeyPool(tmp_path)
    key = pool(KeySpec("rsa", 1024))
    assert key.key_size == 1024 and (pool.generated, pool.reused) == (1, 0)


def test_without_a_folder_every_key_is_generated():
    pool = KeyPool()
    spec = KeySpec("ec", 256)
    assert public_der(pool(spec)) != public_der(pool(spec)) and pool.generated == 2
