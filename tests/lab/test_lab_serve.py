"""Serving a lab over loopback: TFTP per-device files, a TVS per node, TVS down and back."""

from __future__ import annotations

import pytest
from lab_support import lab_factory

from phone.wire.config import PhoneConfig
from phone.errors import UsageError
from phone.wire.names import ctl_client_name, cucm_name
from phone.device.tftp import TftpFetcher
from phone.wire.tlv import Role, TrustList
from phone.wire.tvs import TvsMessage
from phone.wire.config import TvsMember
from phone.device.tvs import ConnectionOutcome, TvsClientSettings, ask_tvs

DEVICE = "CP-7975-SEPB000B4BA0AEE"
FAST = TvsClientSettings(tls_versions=("1.0", "1.2"), connect_timeout=2, handshake_timeout=3, response_timeout=3)


@pytest.fixture
def lab(tmp_path):
    return lab_factory()(tmp_path)


def fetch(servers, name: str) -> bytes | None:
    return TftpFetcher("127.0.0.1", port=servers.tftp_port, timeout=1.0, deadline=10.0).fetch(name).data


def members(config: bytes) -> list[TvsMember]:
    return list(PhoneConfig.from_bytes(config).tvs_members)


def pins(itl: bytes) -> list[bytes]:
    return [record.certificate for _, record in TrustList.from_bytes(itl).records_with_role(Role.TVS)]


def query(identity, render=cucm_name) -> TvsMessage:
    """The QUERY a phone sends: signer names as the file's header writes them (CUCM's form by default)."""
    certificate = identity.certificate
    return TvsMessage.query_request(1001, DEVICE, render(certificate.subject), render(certificate.issuer),
                                    identity.serial)


def test_a_phone_gets_its_files_and_tvs_vouches_for_the_new_ctl_signer(lab):
    lab.set_cluster_mixed_mode()
    with lab.serving() as servers:
        assert fetch(servers, "CTLSEPB000B4BA0AEE.tlv") == lab.ctl_bytes()
        itl = fetch(servers, "ITLSEPB000B4BA0AEE.tlv")
        assert itl == lab.itl_bytes() == fetch(servers, "ITLFile.tlv")
        config = fetch(servers, "SEPB000B4BA0AEE.cnf.xml")
        signed = TrustList.from_bytes(fetch(servers, "SEPB000B4BA0AEE.cnf.xml.sgn"))
        assert signed.payload == config
        tvs = members(config)
        assert [(m.address, m.port) for m in tvs] == [("127.0.0.1", port) for port in servers.tvs_ports.values()]
        assert tvs[0].port == servers.tvs_port
        assert fetch(servers, "SEPB000B4BA0AEE.cnf.xml.enc.sgn") is None

        # Seed, fourth procedure: the publisher's CallManager is regenerated and the CTL updated;
        # the phone asks TVS about the new signer, found in the DB cache with roles {0, 2} (S3).
        lab.regenerate_certificate("CallManager")
        lab.ctl_update()
        result = ask_tvs(tvs, query(lab.identity("CallManager")), pins(itl), FAST)
        assert result.outcome is ConnectionOutcome.ANSWERED
        assert (result.response.status, result.response.roles) == (0, (0, 2))
        assert result.response.certificate == lab.identity("CallManager").der


def test_tvs_finds_an_etoken_signer_in_the_ctl_cache(lab):
    lab.new_etoken("token1")
    token = lab.new_etoken("token2")
    with lab.serving() as servers:
        itl = fetch(servers, "ITLSEPB000B4BA0AEE.tlv")
        tvs = members(fetch(servers, "SEPB000B4BA0AEE.cnf.xml"))
        # An eToken-signed CTL names its signer as the CTL client writes names (SPEC 2.1).
        assert ask_tvs(tvs, query(token, ctl_client_name), pins(itl), FAST).response.status == 1  # nowhere yet
        lab.ctl_client(["token1", "token2"])
        answer = ask_tvs(tvs, query(token, ctl_client_name), pins(itl), FAST).response
        assert (answer.status, answer.roles) == (0, (0,))  # S2: CTL cache, role SAST


def test_tvs_down_and_back_on_the_same_ports(lab):
    with lab.serving(tvs=False) as servers:
        itl = fetch(servers, "ITLSEPB000B4BA0AEE.tlv")
        tvs = members(fetch(servers, "SEPB000B4BA0AEE.cnf.xml"))
        assert all(m.port > 0 for m in tvs) and not servers.tvs_running()
        result = ask_tvs(tvs, query(lab.identity("CallManager")), pins(itl), FAST)
        assert [attempt.outcome for attempt in result.attempts] == [ConnectionOutcome.REFUSED, ConnectionOutcome.REFUSED]
        servers.start_tvs()
        assert ask_tvs(tvs, query(lab.identity("CallManager")), pins(itl), FAST).response.status == 0
        servers.stop_tvs(node=0)  # the publisher's TVS only: the phone fails over to the subscriber
        result = ask_tvs(tvs, query(lab.identity("CallManager")), pins(itl), FAST)
        assert [attempt.outcome for attempt in result.attempts] == [ConnectionOutcome.REFUSED, ConnectionOutcome.ANSWERED]
        assert servers.tvs_running(1) and not servers.tvs_running(0)
        servers.stop_tvs()
        assert ask_tvs(tvs, query(lab.identity("CallManager")), pins(itl), FAST).response is None


def test_regenerated_tvs_certificate_is_presented_after_the_next_request(lab):
    with lab.serving() as servers:
        tvs = members(fetch(servers, "SEPB000B4BA0AEE.cnf.xml"))
        old_pins = pins(fetch(servers, "ITLSEPB000B4BA0AEE.tlv"))
        port = servers.tvs_port
        lab.regenerate_certificate("TVS")
        new_pins = pins(fetch(servers, "ITLSEPB000B4BA0AEE.tlv"))  # this request restarts the TVS
        assert servers.tvs_port == port
        request = query(lab.identity("CallManager"))
        only_publisher = tvs[:1]
        assert ask_tvs(only_publisher, request, [old_pins[0]], FAST).outcome is ConnectionOutcome.UNTRUSTED_SERVER
        assert ask_tvs(only_publisher, request, new_pins, FAST).response.status == 0


def test_tls_min_version_turns_tls_1_0_phones_away(tmp_path):
    lab = lab_factory()(tmp_path, release="12.5", nodes=1)
    lab.set_parameter("tls-min-version", "1.2")
    with lab.serving() as servers:
        tvs = members(fetch(servers, "SEPB000B4BA0AEE.cnf.xml"))
        itl = pins(fetch(servers, "ITLFile.tlv"))
        old_phone = TvsClientSettings(tls_versions=("1.0",), connect_timeout=2, handshake_timeout=3)
        assert ask_tvs(tvs, query(lab.identity("CallManager")), itl, old_phone).outcome is ConnectionOutcome.TLS_FAILED
        assert ask_tvs(tvs, query(lab.identity("CallManager")), itl, FAST).response.status == 0


def test_serving_options(lab):
    with pytest.raises(UsageError, match="advertise"):
        with lab.serving(host="0.0.0.0"):
            pass
    with lab.serving(tftp_node=1, trace=(lines := []).append) as servers:
        assert servers.tftp_node.name == "cucm-1051-a-sub1"
        assert fetch(servers, "ITLSEPB000B4BA0AEE.tlv") == lab.itl_bytes(1)
        tvs = members(fetch(servers, "SEPB000B4BA0AEE.cnf.xml"))
        ask_tvs(tvs, query(lab.identity("CallManager")), pins(lab.itl_bytes(1)), FAST)
    assert any(line.startswith("[cucm-1051-a-pub] ") and "tvsHandleQueryCertReq" in line for line in lines)


@pytest.mark.slow
def test_idle_connections_to_tvs_at_the_usual_descriptor_limit_starve_neither_tftp_nor_the_server(tmp_path):
    # 1,010 idle TCP connections to `lab serve`'s TVS ports used to take the process to 1,024
    # descriptors: TFTP then dropped every request and the server died with ~800 tracebacks.
    import json
    import os
    import resource
    import socket
    import subprocess
    import sys
    import time

    lab_dir = lab_factory()(tmp_path).path

    def limit_descriptors():
        resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))

    serve = subprocess.Popen([sys.executable, "-m", "phone", "lab", "serve", "--lab", str(lab_dir), "--json",
                              "--tftp-port", "0", "--tvs-port", "0", "--capf-port", "0", "--http-port", "0",
                              "--https-port", "0", "--sip-port", "0", "--sip-tls-port", "0", "--sccp-port", "0"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=limit_descriptors, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    idle: list[socket.socket] = []
    try:
        announced = json.loads(serve.stdout.readline())
        tvs_ports = [entry["port"] for entry in announced["tvs"]]
        for number in range(1010):
            sock = socket.socket()
            sock.settimeout(2.0)
            try:
                sock.connect(("127.0.0.1", tvs_ports[number % len(tvs_ports)]))
            except OSError:
                sock.close()
                continue
            idle.append(sock)
        time.sleep(1.0)
        data = TftpFetcher("127.0.0.1", port=announced["tftp"]["port"], timeout=1.0,
                           deadline=15.0).fetch("ITLFile.tlv").data
        assert data is not None and TrustList.from_bytes(data).records
        assert serve.poll() is None, "the lab server died"
    finally:
        for sock in idle:
            sock.close()
        serve.terminate()
        _, err = serve.communicate(timeout=30)
    assert "Traceback" not in err
