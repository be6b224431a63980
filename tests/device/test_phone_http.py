"""A phone provisioning over HTTP against the lab's real servers over loopback (docs/http.md).

Real TCP and TLS (urllib3 on the phone, aiohttp in the lab), real UDP for the TFTP try.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from lab_support import lab_factory

from phone.catalogue import get_model
from phone.device.phone import Phone, boot_json
from phone.device.transports import FetchRouter, HttpTransport, TftpTransport, TvsTransport
from phone.lab.servers.http import HttpFileServer
from phone.lab.servers.tftp import TftpFileServer
from phone.tls import identity_server_context
from phone.wire.signing import Layout, build_trust_list
from phone.wire.tlv import TrustList

MAC = "B000B4BA0AEE"
CONFIG = f"SEP{MAC}.cnf.xml"


@pytest.fixture
def lab(tmp_path):
    lab = lab_factory()(tmp_path)
    lab.set_cluster_mixed_mode()
    return lab


def phone(model: str, tftp_port: int, http_port: int | None, https_port: int | None = None) -> Phone:
    model = get_model(model)
    http = HttpTransport("127.0.0.1", model, http_port=http_port, https_port=https_port, deadline=10.0)
    return Phone(model, MAC, fetch=FetchRouter(TftpTransport("127.0.0.1", tftp_port, model), http),
                 ask_tvs=TvsTransport(model, timeout=3.0), http_service=http_port is not None,
                 https_service=https_port is not None)


def transports(document: dict) -> list[tuple[str, str, str]]:
    return [(entry["name"], entry["result"], entry["transport"]) for entry in document["files"]]


def test_an_8861_gets_every_file_over_the_labs_http(lab) -> None:
    with lab.serving(http_port=0) as servers:
        device = phone("CP-8861", servers.tftp_port, servers.http_port)
        document = boot_json(device.machine, device.boot())
    assert transports(document) == [(f"CTLSEP{MAC}.tlv", "installed", "http"), (f"ITLSEP{MAC}.tlv", "installed", "http"),
                                    (f"SEP{MAC}.cnf.xml.sgn", "applied", "http")]
    assert document["config"]["transport"] == "http"


def test_the_http_fallback_against_a_server_answering_503(lab) -> None:
    always_503 = HttpFileServer(None, lambda name, client: None, missing_status=503)
    with lab.serving() as servers, always_503 as http_port:
        device = phone("CP-8861", servers.tftp_port, http_port)
        document = boot_json(device.machine, device.boot())
    assert always_503.counts["missing"] == 3  # each file asked once over HTTP ...
    assert transports(document) == [(f"CTLSEP{MAC}.tlv", "installed", "tftp"),  # ... then once over TFTP
                                    (f"ITLSEP{MAC}.tlv", "installed", "tftp"),
                                    (f"SEP{MAC}.cnf.xml.sgn", "applied", "tftp")]
    fallbacks = [line for line in device.console.lines if "trying TFTP" in line]
    assert len(fallbacks) == 3
    assert fallbacks[0].endswith(f"XXTP HTTP [CTLSEP{MAC}.tlv] failed: status: HTTP 503 Service Unavailable; "
                                 "trying TFTP")


def test_nothing_listening_for_http_falls_back_to_tftp(lab) -> None:
    with HttpFileServer(None, None) as closed_port:
        pass  # a port where nothing listens any more
    with lab.serving() as servers:
        device = phone("CP-7821", servers.tftp_port, closed_port)
        document = boot_json(device.machine, device.boot())
    assert {entry["transport"] for entry in document["files"]} == {"tftp"}
    assert document["config"]["applied"]


def test_a_tftp_only_model_never_touches_http(lab) -> None:
    with lab.serving(http_port=0) as servers:
        spy = HttpFileServer(None, lambda name, client: lab.device_file(name))
        with spy as spy_port:
            device = phone("CP-7965", servers.tftp_port, spy_port)
            document = boot_json(device.machine, device.boot())
    assert spy.counts["requests"] == 0
    assert {entry["transport"] for entry in document["files"]} == {"tftp"}


# -- HTTPS 6971 with an ITL version 1.1 ------------------------------------------------------------


@contextlib.contextmanager
def itl_1_1_services(lab, https_identity) -> Iterator[tuple[int, int, HttpFileServer]]:
    """TFTP and HTTP serving the lab's files but an ITL with the 1.1 marker; HTTPS presenting ``https_identity``."""
    itl = TrustList.from_bytes(lab.itl_bytes())
    marked = build_trust_list(itl.records, lab.identity("CallManager"), filename="ITLFile.tlv",
                              timestamp=itl.header.timestamp or 0, layout=Layout.USECALLMANAGER,
                              signer_version=(1, 1)).data

    def files(name: str, _client) -> bytes | None:
        return marked if name.startswith("ITL") else lab.device_file(name)

    https = HttpFileServer(None, files, ssl_context=identity_server_context(https_identity), unsigned_configs=True)
    with TftpFileServer(None, files) as tftp_port, HttpFileServer(None, files) as http_port, https:
        yield tftp_port, http_port, https


def test_an_itl_1_1_phone_takes_its_configuration_over_https_from_the_tftp_record(lab) -> None:
    with itl_1_1_services(lab, lab.identity("CallManager")) as (tftp_port, http_port, https):
        device = phone("CP-8861", tftp_port, http_port, https.port)
        document = boot_json(device.machine, device.boot())
    assert document["files"][-1] == {"name": CONFIG, "result": "applied", "reason": None, "transport": "https"}
    assert document["config"]["transport"] == "https" and https.counts["served"] == 1


def test_an_https_server_the_lists_do_not_name_is_not_asked_and_the_signed_configuration_follows(lab) -> None:
    with itl_1_1_services(lab, lab.identity("TVS")) as (tftp_port, http_port, https):
        device = phone("CP-8861", tftp_port, http_port, https.port)
        document = boot_json(device.machine, device.boot())
    assert https.counts["requests"] == 0
    # The HTTPS try is a console line; the signed configuration is the file the boot reports.
    assert [line for line in device.console.lines if f"[{CONFIG}]" in line][-1].endswith(
        "untrusted_server: the server's certificate is not a TFTP record of the installed trust lists")
    assert CONFIG not in [entry["name"] for entry in document["files"]]
    signed_entry = document["files"][-1]
    assert (signed_entry["name"], signed_entry["result"], signed_entry["transport"]) == (
        f"SEP{MAC}.cnf.xml.sgn", "applied", "http")
    assert device.machine.flash.config_name == f"SEP{MAC}.cnf.xml.sgn"
