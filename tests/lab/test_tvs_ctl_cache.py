"""The TVS CTL cache: certificates of CTLFile.tlv, re-read when the file changes (SPEC 3.3, S2, S3)."""

from __future__ import annotations

import datetime
import functools
import os
import time

import pytest
from tvs_support import DEVICE, identity

from phone.wire.certs import Identity, Profile, generate_rsa_key, make_certificate, simple_subject
from phone.wire.names import ctl_client_name, cucm_name, serial_to_bytes
from phone.wire.signing import NameStyle, build_trust_list, make_record
from phone.wire.tlv import Role
from phone.wire.tvs import Status, TvsMessage
from phone.device.tvs import ConnectionOutcome, TvsClientSettings, TvsMember, ask_tvs
from phone.lab.servers.tvs import TvsServerSettings, running_tvs_server
from phone.lab.tvs_store import CtlCache, TvsStore

NOW = datetime.datetime(2015, 3, 6, 19, 45, 13, tzinfo=datetime.timezone.utc)


def node(name: str) -> Identity:
    made = identity(name)
    return Identity(made.certificate, made.key)


@functools.lru_cache(maxsize=None)
def etoken() -> Identity:
    """An eToken SAST certificate issued by an emulated Cisco Manufacturing CA (SPEC 1, S2)."""
    ca = make_certificate(simple_subject(O="Cisco Systems", CN="Cisco Manufacturing CA"), generate_rsa_key(1024),
                          not_before=NOW, serial=0x1234, profile=Profile.CA, lifetime_days=7300)
    return make_certificate(simple_subject(O="Cisco Systems", OU="IPCBU", CN="SAST-ADN008580ef "),
                            generate_rsa_key(1024), not_before=NOW, serial=0x83E9080000005545AF31,
                            profile=Profile.ETOKEN, issuer=ca)


def tokenless_ctl(publisher: Identity, *others: tuple[Identity, int]) -> bytes:
    """A tokenless CTL: the publisher as SAST and as CCM+TFTP, then ``others`` (SPEC 2.6)."""
    records = [make_record(publisher.certificate, Role.SAST), make_record(publisher.certificate, Role.CCM_TFTP)]
    records += [make_record(ident.certificate, role) for ident, role in others]
    return build_trust_list(records, publisher, filename="CTLFile.tlv", timestamp=int(NOW.timestamp())).encode()


def etoken_ctl(publisher: Identity) -> bytes:
    """A CTL signed by an eToken, whose record carries CTL-client names and no SIGNATURE (S4.c)."""
    token = etoken()
    records = [make_record(token.certificate, Role.SAST, name_style=NameStyle.CTL_CLIENT, include_signature=False),
               make_record(publisher.certificate, Role.CCM_TFTP)]
    return build_trust_list(records, token, filename="CTLFile.tlv", timestamp=int(NOW.timestamp())).encode()


def query(certificate) -> tuple[bytes, str]:
    return serial_to_bytes(certificate.serial_number), cucm_name(certificate.issuer)


def test_tokenless_ctl_gives_the_publisher_roles_sast_and_ccm_tftp(tmp_path):
    pub, capf = node("cucm-1051-a-pub"), node("CAPF-e41e7d87")
    path = tmp_path / "CTLFile.tlv"
    path.write_bytes(tokenless_ctl(pub, (capf, Role.CAPF)))
    log: list[str] = []
    cache = CtlCache(path, log=log.append)
    entry = cache.find(*query(pub.certificate))
    assert (entry.roles, entry.ttl, entry.certificate) == ((0, 2), 86400, pub.der)
    assert cache.find(*query(capf.certificate)).roles == (4,)
    assert cache.find_certificate(capf.der).roles == (4,)
    key = f"{pub.serial.hex().upper()}{cucm_name(pub.certificate.issuer)}"
    # S3.a: the publisher is cached once per record, so its key is written twice.
    assert log.count(f"tvs_sql_get_all_CTL_certificate - Unique Key used for Caching :: {key}, "
                     f"length : {len(key)}") == 2
    assert log[0] == "updateLocalCTLCache : Refreshing the local CTL certificate cache"


def test_etoken_in_the_ctl_is_found_with_the_ctl_clients_issuer_text(tmp_path):
    path = tmp_path / "CTLFile.tlv"
    path.write_bytes(etoken_ctl(node("cucm-1051-a-pub")))
    token = etoken().certificate
    cache = CtlCache(path)
    issuer = "cn=Cisco Manufacturing CA;o=Cisco Systems"
    assert ctl_client_name(token.issuer) == issuer
    entry = cache.find(bytes.fromhex("83E9080000005545AF31"), issuer)
    assert entry.roles == (0,)
    # CUCM keys the CTL cache on the issuer as the CTL record writes it ...
    assert cache.find(bytes.fromhex("83E9080000005545AF31"), cucm_name(token.issuer)) is None
    # ... "any" matching also finds another producer's rendering.
    loose = CtlCache(path, issuer_match="any")
    assert loose.find(bytes.fromhex("83E9080000005545AF31"), cucm_name(token.issuer)) == entry


def test_changed_file_is_recached_with_cucms_trace_line(tmp_path):
    old_pub, new_pub = node("cucm-1051-a-pub"), node("cucm-1051-a-pub-regenerated")
    path = tmp_path / "CTLFile.tlv"
    path.write_bytes(tokenless_ctl(old_pub))
    log: list[str] = []
    cache = CtlCache(path, log=log.append)
    assert not cache.refresh_if_changed()
    staged = tmp_path / "CTLFile.new"
    staged.write_bytes(tokenless_ctl(new_pub))
    os.replace(staged, path)
    assert cache.refresh_if_changed()
    assert ("CertificateCache::localCTLCacheMonitor - CTLFile.tlv has been modified . Recaching CTL "
            "Certificate Cache") in log
    assert cache.find(*query(old_pub.certificate)) is None
    assert cache.find(*query(new_pub.certificate)).roles == (0, 2)


def test_deleted_or_broken_ctl_vouches_for_nothing(tmp_path):
    pub = node("cucm-1051-a-pub")
    path = tmp_path / "CTLFile.tlv"
    path.write_bytes(tokenless_ctl(pub))
    log: list[str] = []
    cache = CtlCache(path, log=log.append)
    path.unlink()
    assert cache.refresh_if_changed() and cache.entries == ()
    path.write_bytes(b"\x01\x00\x02\x01\x02" + bytes(40))
    assert cache.refresh_if_changed() and cache.entries == ()
    assert any(line.startswith("ERROR:updateLocalCTLCache : cannot read CTLFile.tlv") for line in log)


@pytest.fixture
def tvs_files(tmp_path):
    return identity("tvs-cucm-pub").write(tmp_path, "tvs")


def ask(port: int, request: TvsMessage) -> TvsMessage:
    result = ask_tvs([TvsMember("127.0.0.1", port)], request, [identity("tvs-cucm-pub").der],
                     TvsClientSettings(response_timeout=2))
    assert result.outcome is ConnectionOutcome.ANSWERED, result.attempts
    return result.response


def query_request(certificate, issuer_text: str | None = None) -> TvsMessage:
    return TvsMessage.query_request(1001, DEVICE, cucm_name(certificate.subject),
                                    issuer_text or cucm_name(certificate.issuer),
                                    serial_to_bytes(certificate.serial_number))


def test_server_finds_an_etoken_in_the_ctl_cache_after_a_db_miss(tmp_path, tvs_files):
    """Reference-logs S2: DB cache miss, CTL cache hit with one role, SAST."""
    ctl = tmp_path / "CTLFile.tlv"
    ctl.write_bytes(etoken_ctl(node("cucm-1051-a-pub")))
    lines: list[str] = []
    with running_tvs_server(*tvs_files, db=tmp_path / "tvs.sqlite3", ctl=ctl, trace=lines.append) as server:
        response = ask(server.port, query_request(etoken().certificate, "cn=Cisco Manufacturing CA;o=Cisco Systems"))
        verified = ask(server.port, TvsMessage.verification_request(2, DEVICE, etoken().der))
    assert (response.status, response.roles, response.certificate) == (Status.TRUSTED, (0,), etoken().der)
    assert (verified.status, verified.roles) == (Status.TRUSTED, (0,))
    texts = [line.split(" | debug ", 1)[-1] for line in lines]
    map_id = "83E9080000005545AF31cn=Cisco Manufacturing CA;o=Cisco Systems"
    expected = [
        f"CertificateDBCache::getCertificateInformation - Looking up the certificate cache using Unique MAP ID : {map_id}",
        "ERROR:CertificateDBCache::getCertificateInformation - Cannot find the certificate in the cache",
        "CertificateCTLCache::getCertificateInformation - Looking up the certificate cache using Unique MAP ID : "
        f"{map_id}, len : 61",
        "CertificateCTLCache::getCertificateInformation - Found entry {rolecount : 1}",
        "CertificateCTLCache::getCertificateInformation - {role : 0}",
    ]
    start = texts.index(expected[0])
    assert texts[start:start + len(expected)] == expected


def test_db_cache_answers_before_the_ctl_cache(tmp_path, tvs_files):
    pub = node("cucm-1051-a-pub")
    ctl = tmp_path / "CTLFile.tlv"
    ctl.write_bytes(tokenless_ctl(pub))
    with TvsStore(tmp_path / "tvs.sqlite3") as store:
        store.add(pub.der, [0, 3], ttl=60)
    with running_tvs_server(*tvs_files, db=tmp_path / "tvs.sqlite3", ctl=ctl) as server:
        response = ask(server.port, query_request(pub.certificate))
    assert (response.roles, response.ttl) == ((0, 3), 60)


def test_server_rereads_the_ctl_when_the_file_changes(tmp_path, tvs_files):
    """Reference-logs S3: CallManager regenerated, `utils ctl update CTLFile`, TVS recaches."""
    old_pub, new_pub = node("cucm-1051-a-pub"), node("cucm-1051-a-pub-regenerated")
    ctl = tmp_path / "CTLFile.tlv"
    ctl.write_bytes(tokenless_ctl(old_pub))
    lines: list[str] = []
    no_timer = TvsServerSettings(port=0, ctl_poll_interval=None)
    with running_tvs_server(*tvs_files, ctl=ctl, settings=no_timer, trace=lines.append) as server:
        assert ask(server.port, query_request(new_pub.certificate)).status == Status.NOT_TRUSTED
        staged = tmp_path / "CTLFile.new"
        staged.write_bytes(tokenless_ctl(new_pub))
        os.replace(staged, ctl)
        response = ask(server.port, query_request(new_pub.certificate))
        assert (response.status, response.roles) == (Status.TRUSTED, (0, 2))
        assert ask(server.port, query_request(old_pub.certificate)).status == Status.NOT_TRUSTED
    assert sum("CTLFile.tlv has been modified . Recaching CTL Certificate Cache" in line for line in lines) == 1


def test_server_timer_notices_a_changed_ctl_without_any_request(tmp_path, tvs_files):
    ctl = tmp_path / "CTLFile.tlv"
    ctl.write_bytes(tokenless_ctl(node("cucm-1051-a-pub")))
    lines: list[str] = []
    quick = TvsServerSettings(port=0, ctl_poll_interval=0.05)
    with running_tvs_server(*tvs_files, ctl=ctl, settings=quick, trace=lines.append):
        staged = tmp_path / "CTLFile.new"
        staged.write_bytes(tokenless_ctl(node("cucm-1051-a-pub-regenerated")))
        os.replace(staged, ctl)
        deadline = time.monotonic() + 3
        while not any("has been modified" in line for line in lines) and time.monotonic() < deadline:
            time.sleep(0.02)
    assert any("has been modified" in line for line in lines)
