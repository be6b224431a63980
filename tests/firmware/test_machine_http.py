"""The machine's transport rules (docs/http.md): HTTP first per model, one TFTP try, HTTPS with ITL 1.1.

Driven without a network: a fetch double answers each transport from its own table
and keeps what was asked, so every branch of the rules is pinned here; the sockets
are tests/device/test_http_client.py's and tests/device/test_phone_http.py's.
"""

from __future__ import annotations

import attrs
import pytest
from minicluster import MAC, MiniCluster, TvsDouble

from phone.catalogue import get_model
from phone.device.boot import run_boot
from phone.device.phone import boot_json
from phone.firmware.outcome import PhoneOutcome, classify
from phone.firmware.machine import (
    HTTP,
    HTTPS,
    TFTP,
    BootStep,
    Fetch,
    FileFailed,
    FileFetched,
    FileMissing,
    Flash,
    Log,
    PhoneMachine,
)
from phone.wire.signing import Layout, build_trust_list
from phone.wire.tlv import TrustList

NOW = 1_700_000_000.0
CONFIG = f"SEP{MAC}.cnf.xml"
SIGNED = f"SEP{MAC}.cnf.xml.sgn"


@attrs.define
class Transports:
    """Files per transport; a transport without a table fails as a refused connection would."""

    tables: dict[str, dict[str, bytes] | str]
    asked: list[tuple[str, str]] = attrs.field(factory=list)
    pinned: list[tuple[bytes, ...]] = attrs.field(factory=list)

    def __call__(self, request: Fetch):
        self.asked.append((request.transport, request.name))
        if request.transport == HTTPS:
            self.pinned.append(request.pinned)
        table = self.tables.get(request.transport, "refused: connection refused")
        if isinstance(table, str):
            return FileFailed(request.name, table, transport=request.transport)
        data = table.get(request.name)
        if data is None:
            return FileMissing(request.name, transport=request.transport)
        return FileFetched(request.name, data, server="10.0.0.1", transport=request.transport)


def boot(machine: PhoneMachine, transports: Transports, cluster: MiniCluster):
    logs: list[Log] = []
    machine, report = run_boot(machine, fetch=transports, ask_tvs=TvsDouble(cluster), clock=lambda: NOW,
                               observe=lambda effect: logs.append(effect) if isinstance(effect, Log) else None)
    return machine, report, logs


def phone(model: str, *, http: bool = True, https: bool = True, flash: Flash = Flash()) -> PhoneMachine:
    return PhoneMachine(get_model(model), MAC, flash, http_service=http, https_service=https)


@pytest.fixture(scope="module")
def cluster() -> MiniCluster:
    return MiniCluster(mixed_mode=True)


@pytest.mark.parametrize("model", ["CP-7821", "CP-8861", "CP-8945", "CP-9971", "CP-DX80"])
def test_http_first_models_get_every_file_over_http_when_the_server_has_it(cluster, model) -> None:
    transports = Transports({HTTP: cluster.files()})
    machine, report, _ = boot(phone(model), transports, cluster)
    assert {transport for transport, _ in transports.asked} == {HTTP}
    assert [(f.result, f.transport) for f in report.files] == [("installed", HTTP)] * 2 + [("applied", HTTP)]
    assert boot_json(machine, report)["config"]["transport"] == HTTP


@pytest.mark.parametrize("model", ["CP-7965", "CP-7940", "CP-6921"])
def test_tftp_only_models_never_ask_over_http(cluster, model) -> None:
    transports = Transports({HTTP: cluster.files(), TFTP: cluster.files()})
    _, report, _ = boot(phone(model), transports, cluster)
    assert transports.asked and {transport for transport, _ in transports.asked} == {TFTP}
    assert {f.transport for f in report.files} == {TFTP}


def test_a_phone_told_of_no_http_service_uses_tftp_whatever_its_model(cluster) -> None:
    transports = Transports({HTTP: cluster.files(), TFTP: cluster.files()})
    boot(phone("CP-8861", http=False), transports, cluster)
    assert {transport for transport, _ in transports.asked} == {TFTP}


@pytest.mark.parametrize("http_answer", [
    "status: HTTP 503 Service Unavailable", "refused: connection refused", "timed_out: connection timed out", {},
], ids=["503", "refused", "timeout", "404"])
def test_anything_but_the_file_over_http_gets_one_tftp_try_of_the_same_name(cluster, http_answer) -> None:
    transports = Transports({HTTP: http_answer, TFTP: cluster.files()})
    _, report, logs = boot(phone("CP-8861"), transports, cluster)
    names = [name for _, name in transports.asked]
    assert transports.asked == [(transport, name) for name in dict.fromkeys(names) for transport in (HTTP, TFTP)]
    assert [(f.result, f.transport) for f in report.files] == [("installed", TFTP)] * 2 + [("applied", TFTP)]
    assert [log.fields["name"] for log in logs if log.event == "download.http_fallback"] == list(dict.fromkeys(names))
    # The TFTP try is part of the same download: one "download.start" per file.
    assert sum(log.event == "download.start" for log in logs) == 3


def test_tftp_not_found_after_http_is_final(cluster) -> None:
    files = {name: data for name, data in cluster.files().items() if not name.startswith("CTL")}
    transports = Transports({HTTP: "status: HTTP 503 Service Unavailable", TFTP: files})
    _, report, _ = boot(phone("CP-8861"), transports, cluster)
    ctl = f"CTLSEP{MAC}.tlv"
    assert transports.asked[:3] == [(HTTP, ctl), (TFTP, ctl), (HTTP, f"ITLSEP{MAC}.tlv")]
    assert (report.files[0].name, report.files[0].result, report.files[0].transport) == (ctl, "not_found", TFTP)


def test_a_file_that_came_over_http_is_judged_as_one_from_tftp(cluster) -> None:
    forged = dict(cluster.files())
    forged[SIGNED] = forged[SIGNED][:-10] + b"x" * 10  # the signature no longer matches
    _, report, _ = boot(phone("CP-8861"), Transports({HTTP: forged}), cluster)
    assert (report.files[-1].result, report.files[-1].transport) == ("rejected", HTTP)
    assert not report.config_applied


# -- HTTPS with an ITL version 1.1 -------------------------------------------------------------


def itl_1_1(cluster: MiniCluster) -> bytes:
    """The cluster's ITL rebuilt with the version 1.1 marker (tag 28 = 1.1), signed by CallManager."""
    itl = TrustList.from_bytes(cluster.itl())
    return build_trust_list(itl.records, cluster.callmanager, filename="ITLFile.tlv", timestamp=int(NOW),
                            layout=Layout.USECALLMANAGER, signer_version=(1, 1)).data


def flash_with(itl: bytes) -> Flash:
    return Flash(itl=itl)


def test_an_itl_1_1_sends_the_configuration_to_https_pinned_to_its_tftp_record(cluster) -> None:
    # No list is served: the phone keeps the ITL 1.1 it holds and goes on to its configuration.
    transports = Transports({HTTP: {}, TFTP: {}, HTTPS: {CONFIG: cluster.config()}})
    machine, report, _ = boot(phone("CP-8861", flash=flash_with(itl_1_1(cluster))), transports, cluster)
    assert (HTTPS, CONFIG) in transports.asked
    assert transports.pinned == [(cluster.callmanager.der,)]
    assert (report.config_name, report.config_applied, report.config_transport) == (CONFIG, True, HTTPS)
    assert boot_json(machine, report)["files"][-1] == {"name": CONFIG, "result": "applied", "reason": None,
                                                        "transport": HTTPS}


def test_an_itl_without_the_1_1_marker_keeps_the_signed_configuration(cluster) -> None:
    transports = Transports({HTTP: {}, TFTP: cluster.files(), HTTPS: {CONFIG: cluster.config()}})
    boot(phone("CP-8861", flash=flash_with(cluster.itl())), transports, cluster)
    assert HTTPS not in {transport for transport, _ in transports.asked}
    assert (TFTP, SIGNED) in transports.asked


@pytest.mark.parametrize("https_answer", ["untrusted_server: the server's certificate is not a TFTP record",
                                          "refused: connection refused", {}], ids=["untrusted", "refused", "503"])
def test_what_https_does_not_bring_is_asked_signed_over_http_then_tftp(cluster, https_answer) -> None:
    transports = Transports({HTTP: "status: HTTP 503 Service Unavailable", TFTP: {SIGNED: cluster.files()[SIGNED]},
                             HTTPS: https_answer})
    _, report, _ = boot(phone("CP-8861", flash=flash_with(itl_1_1(cluster))), transports, cluster)
    config_asks = [ask for ask in transports.asked if ask[1].startswith("SEP")]
    assert config_asks == [(HTTPS, CONFIG), (HTTP, SIGNED), (TFTP, SIGNED)]
    assert (report.config_name, report.config_transport) == (SIGNED, TFTP)
    # Like the HTTP try, the HTTPS try is no file result: the boot is not a failed one.
    assert CONFIG not in [entry.name for entry in report.files]
    assert classify(report).outcome is PhoneOutcome.UNCHANGED


def test_a_configuration_for_the_https_step_that_did_not_come_over_https_is_never_applied(cluster) -> None:
    machine = phone("CP-8861", flash=flash_with(itl_1_1(cluster)))
    machine = attrs.evolve(machine, step=BootStep.CONFIG_HTTPS, transport=HTTPS)
    after, effects = machine.handle(FileFetched(CONFIG, cluster.config(), transport=TFTP), NOW)
    assert after.flash.config is None and not after.report.config_applied
    assert after.report.files[-1].code == "https-unverified"
    assert after.step is BootStep.CONFIG_SIGNED


def test_a_phone_without_https_service_or_a_tftp_only_model_ignores_the_1_1_marker(cluster) -> None:
    for machine in (phone("CP-8861", https=False, flash=flash_with(itl_1_1(cluster))),
                    phone("CP-7965", flash=flash_with(itl_1_1(cluster)))):
        transports = Transports({HTTP: {}, TFTP: cluster.files(), HTTPS: {CONFIG: cluster.config()}})
        boot(machine, transports, cluster)
        assert HTTPS not in {transport for transport, _ in transports.asked}
