"""``lab serve`` with CAPF: the publisher's CAPF certificate, the lab's devices, the address in configurations."""

from __future__ import annotations

import datetime

import pytest
from capf_support import MODEL, NOW, CapfConnection, CapfPhone, device
from lab_support import FakeClock, lab_factory
from serve_support import free_tcp_ports, lab_serve_process

from phone.device.identity import default_mic_ca, issue_mic
from phone.device.tftp import TftpFetcher
from phone.errors import UsageError
from phone.lab.devices import DeviceStore
from phone.wire.capf import Reason
from phone.wire.certs import Identity
from phone.wire.config import PhoneConfig

MAC_DEVICE = "SEPB000B4BA0AEE"


@pytest.fixture
def lab(tmp_path):
    return lab_factory()(tmp_path, clock=FakeClock(NOW))


def configuration(servers) -> PhoneConfig:
    fetched = TftpFetcher("127.0.0.1", port=servers.tftp_port, timeout=1.0, deadline=10.0)
    return PhoneConfig.from_bytes(fetched.fetch(f"{MAC_DEVICE}.cnf.xml").data)


def test_configurations_list_the_capf_server_where_it_listens(lab):
    with lab.serving() as servers:
        assert servers.capf_port
        assert [(c.address, c.port) for c in configuration(servers).capf_list] == [("127.0.0.1", servers.capf_port)]


def test_without_capf_configurations_keep_the_publisher_on_3804_at_the_advertised_address(lab):
    with lab.serving(capf_port=None, advertise="127.0.0.2") as servers:
        assert servers.capf_port == 0 and servers.capf_address is None
        assert [(c.address, c.port) for c in configuration(servers).capf_list] == [("127.0.0.2", 3804)]


def test_the_lab_capf_presents_the_publishers_certificate_and_installs_for_its_devices(lab):
    DeviceStore.for_lab(lab.path).put(device(MAC_DEVICE))
    with lab.serving() as servers:
        with CapfConnection(servers.capf_port) as connection:
            assert connection.server_certificate == lab.identity("CAPF").der
        transcript = CapfPhone(device=MAC_DEVICE).run(servers.capf_port)
    assert transcript.end_reason == Reason.OK
    transcript.lsc.verify_directly_issued_by(lab.identity("CAPF").certificate)
    record = DeviceStore.for_lab(lab.path).get(MAC_DEVICE)
    assert record.capf.status == "successful" and record.lsc_der is not None


def test_a_mic_from_the_installations_manufacturing_ca_authenticates(lab):
    DeviceStore.for_lab(lab.path).put(device(MAC_DEVICE, auth="existing-mic"))
    phone_mic = issue_mic(MODEL, MAC_DEVICE, default_mic_ca(), now=NOW - datetime.timedelta(days=1))
    with lab.serving() as servers:
        assert CapfPhone(device=MAC_DEVICE, certificate=phone_mic).run(servers.capf_port).end_reason == Reason.OK
    assert DeviceStore.for_lab(lab.path).get(MAC_DEVICE).mic_der == phone_mic.der


def test_an_lsc_issued_by_the_lab_authenticates_the_next_upgrade(tmp_path):
    lab = lab_factory()(tmp_path)  # the lab's clock in its certificates' lifetime, as the CAPF one must be valid
    store = DeviceStore.for_lab(lab.path)
    store.put(device(MAC_DEVICE))
    with lab.serving() as servers:
        first = CapfPhone(device=MAC_DEVICE).run(servers.capf_port)
        store.put(device(MAC_DEVICE, operation="upgrade", auth="existing-lsc", lsc_der=store.get(MAC_DEVICE).lsc_der))
        upgraded = CapfPhone(device=MAC_DEVICE, certificate=Identity(first.lsc, first.key)).run(servers.capf_port)
    assert upgraded.end_reason == Reason.OK


def test_a_regenerated_capf_certificate_is_presented_on_the_same_port(lab):
    with lab.serving() as servers:
        port = servers.capf_port
        lab.regenerate_certificate("CAPF")
        servers.sync()
        assert servers.capf_port == port
        with CapfConnection(port) as connection:
            assert connection.server_certificate == lab.identity("CAPF").der


def test_a_capf_port_outside_tcp_is_refused(lab):
    with pytest.raises(UsageError, match="CAPF port 70000"):
        with lab.serving(capf_port=70000):
            pass


#: Every other service off: their well-known ports may be taken by a test running beside this one.
OTHERS_OFF = ("--http-port", "0", "--https-port", "0", "--sip-port", "0", "--sip-tls-port", "0", "--sccp-port", "0")


def serve(lab, *options: str) -> dict:
    with lab_serve_process(str(lab.path), *OTHERS_OFF, *options) as (announced, _):
        return announced


def test_lab_serve_announces_capf_on_the_port_asked_for_and_none_with_port_0(lab):
    [port] = free_tcp_ports(1)
    assert serve(lab, "--capf-port", str(port))["capf"] == {"node": lab.nodes[0].name, "host": "127.0.0.1",
                                                            "port": port}
    assert serve(lab, "--capf-port", "0")["capf"] is None


def test_lab_serve_refuses_a_capf_port_outside_tcp(lab, capsys):
    from phone.cli import main

    assert main(["lab", "serve", "--lab", str(lab.path), "--capf-port", "70000"]) == 2
    assert capsys.readouterr().err.startswith("phonetrust: --capf-port 70000 is not a port")


class _LabWithTrustStores:
    """A lab that lists its trust stores (what ``Lab.trusted_certificates`` gives)."""

    def __init__(self, certificates):
        self.certificates = certificates
        self.asked = []

    def trusted_certificates(self, store):
        self.asked.append(store)
        return self.certificates


def test_capf_trust_reads_capf_trust_and_finds_the_manufacturing_cas_in_it():
    from capf_support import capf_identity, manufacturing_ca

    from phone.lab.servers.serving import capf_trust

    capf, ca = capf_identity().certificate, manufacturing_ca().certificate
    lab = _LabWithTrustStores([capf, ca])
    trusted, manufacturing = capf_trust(lab)
    assert trusted() == [capf, ca] and manufacturing() == [ca]
    assert set(lab.asked) == {"CAPF-trust"}
