"""TVS certificate store (DB cache) and role names (SPEC 1, 3.3)."""

from __future__ import annotations

import pytest
from tvs_support import identity

from phone.errors import CertificateError, UsageError
from phone.wire.names import ctl_client_name, cucm_name, rfc4514_joined_name, serial_to_bytes
from phone.lab.tvs_store import TvsStore, parse_tvs_role, role_name


@pytest.fixture
def store(tmp_path):
    with TvsStore(tmp_path / "tvs.sqlite3") as opened:
        yield opened


@pytest.mark.parametrize(("text", "code"), [
    ("SAST", 0), ("ccm", 1), ("CCM+TFTP", 2), ("CCM_TFTP", 2), ("TFTP", 3), ("CAPF", 4),
    ("APP-SERVER", 7), ("app_server", 7), ("TVS", 21), ("21", 21), ("99", 99),
])
def test_roles_are_accepted_by_spec_name_or_number(text, code):
    assert parse_tvs_role(text) == code


@pytest.mark.parametrize("text", ["PHONE", "-1", ""])
def test_unknown_role_names_are_usage_errors(text):
    with pytest.raises(UsageError, match="unknown role"):
        parse_tvs_role(text)


def test_role_codes_beyond_one_byte_are_refused_for_tvs():
    with pytest.raises(UsageError, match="one byte"):
        parse_tvs_role("256")


def test_unknown_role_codes_print_as_numbers():
    assert (role_name(2), role_name(21), role_name(9)) == ("CCM+TFTP", "TVS", "9")


def test_added_certificate_is_found_by_serial_and_issuer_in_every_producers_rendering(tmp_path):
    store = TvsStore(tmp_path / "any.sqlite3", issuer_match="any")
    pub = identity("cucm-1051-a-pub")
    entry = store.add(pub.der, [3, 0])
    assert entry.roles == (0, 3) and entry.ttl == 86400
    assert entry.subject == "CN=cucm-1051-a-pub;OU=TAC;O=Cisco;C=PL"
    serial = serial_to_bytes(pub.certificate.serial_number)
    issuer = pub.certificate.issuer
    for text in (cucm_name(issuer), ctl_client_name(issuer), rfc4514_joined_name(issuer),
                 "cn=CUCM-1051-A-PUB; ou=TAC; o=Cisco; c=PL;"):
        assert store.find(serial, text) == entry, text


def test_cucm_matching_finds_only_the_issuer_as_cucm_writes_it(store):
    """CUCM's DB cache keys on serial + issuer as CUCM renders it (SPEC 3.3, reference-logs S2)."""
    pub = identity("cucm-1051-a-pub")
    entry = store.add(pub.der, [0, 2])
    serial = serial_to_bytes(pub.certificate.serial_number)
    issuer = pub.certificate.issuer
    assert store.issuer_match == "cucm"
    assert store.find(serial, cucm_name(issuer)) == entry
    assert store.find(serial, ctl_client_name(issuer)) is None
    assert store.find(serial, rfc4514_joined_name(issuer)) is None


def test_unknown_issuer_matching_is_refused(tmp_path):
    with pytest.raises(UsageError, match="issuer matching 'fuzzy'"):
        TvsStore(tmp_path / "x.sqlite3", issuer_match="fuzzy")


def test_serial_must_match_byte_for_byte(store):
    pub = identity("cucm-1051-a-pub")
    store.add(pub.der, [0])
    serial = serial_to_bytes(pub.certificate.serial_number)
    issuer = cucm_name(pub.certificate.issuer)
    assert store.find(b"\0" + serial, issuer) is None
    assert store.find(serial[:-1], issuer) is None
    assert store.find(serial, "CN=someone-else") is None


def test_adding_again_replaces_roles_and_ttl(store):
    pub = identity("cucm-1051-a-pub")
    store.add(pub.der, [0])
    again = store.add(pub.der, [0, 3], ttl=600)
    assert len(store.list()) == 1
    assert (again.roles, again.ttl) == ((0, 3), 600)
    assert store.find_certificate(pub.der) == again


def test_delete_by_id_and_by_serial_with_or_without_issuer(store):
    one, two = identity("one"), identity("two")
    first, second = store.add(one.der, [0]), store.add(two.der, [3])
    assert store.delete(serial=second.serial, issuer="CN=nobody") == ()
    assert store.delete(serial=second.serial, issuer="cn=two,ou=TAC,o=Cisco,c=PL") == (second,)
    assert store.delete(id=first.id) == (first,)
    assert store.list() == ()
    with pytest.raises(UsageError):
        store.delete()


def test_bad_input_is_refused(store):
    with pytest.raises(CertificateError, match="not a usable PEM or DER X.509 certificate"):
        store.add(b"\x30\x03\x02\x01\x01", [0])
    with pytest.raises(UsageError, match="at least one role"):
        store.add(identity("one").der, [])
    with pytest.raises(UsageError, match="0-255"):
        store.add(identity("one").der, [300])


def test_missing_database_is_refused_unless_creating(tmp_path):
    with pytest.raises(UsageError, match="no TVS database"):
        TvsStore(tmp_path / "missing.sqlite3", create=False)


def test_a_file_that_is_not_sqlite_is_a_usage_error(tmp_path):
    path = tmp_path / "garbage.sqlite3"
    path.write_bytes(b"not a database at all" * 100)
    with pytest.raises(UsageError, match="not a usable TVS database"):
        TvsStore(path)


def test_store_written_by_one_connection_is_seen_by_another(tmp_path):
    path = tmp_path / "tvs.sqlite3"
    with TvsStore(path) as reader, TvsStore(path) as writer:
        entry = writer.add(identity("one").der, [0])
        assert reader.find_certificate(identity("one").der) == entry
