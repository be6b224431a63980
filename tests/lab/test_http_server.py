"""The lab's HTTP(S) provisioning servers over loopback (docs/http.md): what CUCM's TFTP service
answers on 6970/6971, from the same files as TFTP."""

from __future__ import annotations

import datetime
import os
import ssl
from pathlib import Path

import pytest
import urllib3
from lab_support import lab_factory

from phone.device.tftp import TftpFetcher
from phone.errors import TransportError
from phone.lab.pki import node_identity
from phone.lab.state import Names
from phone.lab.servers.http import HttpFileServer
from phone.tls import identity_server_context
from phone.wire.certs import Identity

MAC = "B000B4BA0AEE"
# The test client checks nothing on purpose: what the server presents is what these tests look at.
pytestmark = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")


@pytest.fixture
def lab(tmp_path):
    return lab_factory()(tmp_path)


def get(port: int, name: str, *, https: bool = False) -> urllib3.BaseHTTPResponse:
    pool = (urllib3.HTTPSConnectionPool("127.0.0.1", port, cert_reqs="CERT_NONE", assert_hostname=False)
            if https else urllib3.HTTPConnectionPool("127.0.0.1", port))
    with pool:
        return pool.request("GET", f"/{name}", retries=False, timeout=5)


def presented(port: int) -> bytes:
    """The DER certificate an HTTPS port presents."""
    pem = ssl.get_server_certificate(("127.0.0.1", port), timeout=5)
    return ssl.PEM_cert_to_DER_cert(pem)


def test_http_serves_the_tftp_files_with_cucms_headers(lab) -> None:
    lab.set_cluster_mixed_mode()
    with lab.serving(http_port=0) as servers:
        tftp = TftpFetcher("127.0.0.1", servers.tftp_port, timeout=1.0)
        for name in (f"CTLSEP{MAC}.tlv", f"ITLSEP{MAC}.tlv", "ITLFile.tlv", f"SEP{MAC}.cnf.xml.sgn"):
            answer = get(servers.http_port, name)
            assert answer.status == 200 and answer.data == tftp.fetch(name).data
            assert answer.headers["Cache-Control"] == "no-store"
            assert answer.headers["Content-Type"] == "*/*"
            assert answer.headers["Content-Length"] == str(len(answer.data))


def test_a_missing_ctl_gets_503_as_from_cucm_and_other_missing_files_the_setting(lab) -> None:
    with lab.serving(http_port=0) as servers:  # non-secure: no CTL
        assert get(servers.http_port, f"CTLSEP{MAC}.tlv").status == 503
        assert get(servers.http_port, "nothing-here.bin").status == 503
    server = HttpFileServer(lab.tftp_folder(), lambda name, client: None, missing_status=404)
    with server as port:
        assert get(port, f"CTLSEP{MAC}.tlv").status == 503
        assert get(port, "nothing-here.bin").status == 404


def test_names_that_lead_out_of_the_folder_are_forbidden(lab) -> None:
    with HttpFileServer(lab.tftp_folder(), None) as port:
        assert get(port, "a/../../lab.json").status == 403
        assert get(port, "%2e%2e/lab.json").status == 403


def test_https_presents_the_nodes_callmanager_and_gives_the_configuration_unsigned(lab) -> None:
    with lab.serving(https_port=0) as servers:
        assert servers.http_port is None
        assert presented(servers.https_port) == lab.identity("CallManager").der
        plain = get(servers.https_port, f"SEP{MAC}.cnf.xml", https=True)
        asked_signed = get(servers.https_port, f"SEP{MAC}.cnf.xml.sgn", https=True)
        assert plain.status == asked_signed.status == 200
        assert asked_signed.data == plain.data and plain.data.startswith(b"<")


def test_https_presents_a_regenerated_callmanager_from_the_next_connection(lab) -> None:
    with lab.serving(https_port=0) as servers:
        before = presented(servers.https_port)
        lab.run(("cert", "regenerate", "CallManager"))
        after = presented(servers.https_port)
    assert before != after == lab.identity("CallManager").der


def test_a_port_in_use_is_one_clear_error(lab) -> None:
    with HttpFileServer(None, None) as port:
        with pytest.raises(TransportError, match=f"cannot serve HTTP on 127.0.0.1:{port}: "):
            HttpFileServer(None, None, port=port).start_in_thread()


def test_the_6972_style_server_refuses_a_client_whose_certificate_it_does_not_trust(tmp_path) -> None:
    tomcat, trusted_client, stranger = (fresh_identity(name) for name in ("tomcat", "SEP" + MAC, "SEP" + MAC))
    context = identity_server_context(tomcat, client_trust=[trusted_client.certificate])
    server = HttpFileServer(None, lambda name, client: b"file", ssl_context=context)
    with server as port:
        for identity, expected in ((trusted_client, 200), (stranger, None)):
            client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            client.check_hostname, client.verify_mode = False, ssl.CERT_NONE
            client.set_ciphers("DEFAULT:@SECLEVEL=0")  # 1024-bit test keys
            client.load_cert_chain(*_pem_files(tmp_path, identity))
            pool = urllib3.HTTPSConnectionPool("127.0.0.1", port, ssl_context=client, assert_hostname=False,
                                               cert_reqs="CERT_NONE")
            try:
                status = pool.request("GET", "/x", retries=False, timeout=5).status
            except urllib3.exceptions.HTTPError:
                status = None
            assert status == expected
    assert server.counts["requests"] == 1


def fresh_identity(host: str) -> Identity:
    """A certificate valid now (the lab templates' are dated 2015 and have expired)."""
    return node_identity("CallManager", host, Names(), bits=1024, now=datetime.datetime.now(datetime.UTC),
                         random_bytes=os.urandom)


def _pem_files(folder: Path, identity: Identity) -> tuple[str, str]:
    serial = identity.certificate.serial_number
    cert, key = folder / f"{serial}.pem", folder / f"{serial}.key"
    cert.write_bytes(identity.certificate_pem())
    key.write_bytes(identity.private_key_pem())
    return str(cert), str(key)


def test_the_labs_6972_presents_tomcat_and_takes_only_clients_callmanager_trust_vouches_for(lab, tmp_path) -> None:
    from phone.device.identity import default_mic_ca, issue_mic

    mic_ca = default_mic_ca()
    now = datetime.datetime.now(datetime.UTC)
    phone_mic = issue_mic("CP-8861", "SEP" + MAC, mic_ca, now=now)
    stranger = fresh_identity("SEP" + MAC)
    with lab.serving(tomcat_port=0, capf_port=None) as servers:
        assert servers.tomcat_port and presented(servers.tomcat_port) == lab.identity("tomcat").der
        for identity, expected in ((phone_mic, 200), (stranger, None), (None, None)):
            client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            client.check_hostname, client.verify_mode = False, ssl.CERT_NONE
            client.set_ciphers("DEFAULT:@SECLEVEL=0")
            if identity is not None:
                client.load_cert_chain(*_pem_files(tmp_path, identity))
            pool = urllib3.HTTPSConnectionPool("127.0.0.1", servers.tomcat_port, ssl_context=client,
                                               assert_hostname=False, cert_reqs="CERT_NONE")
            try:
                status = pool.request("GET", "/ITLFile.tlv", retries=False, timeout=5).status
            except urllib3.exceptions.HTTPError:
                status = None
            assert status == expected, identity


def test_the_labs_6972_is_off_unless_asked(lab) -> None:
    with lab.serving(capf_port=None) as servers:
        assert servers.tomcat_port is None
