"""Two trust lists compared record by record: matched by serial and issuer, then by role."""

from __future__ import annotations

from conftest import node_identity
from seed_files import PUB_SERIAL, seed_ctl

from phone.wire.certs import Profile
from phone.wire.signing import build_trust_list, make_record
from phone.wire.tldiff import Change, diff_trust_lists
from phone.wire.tlv import Role, TrustList

PUB = node_identity("cucm-1051-a-pub", serial=PUB_SERIAL)
CAPF = node_identity("CAPF-e41e7d87", serial=0x744B4999770496E799E91E81D3C8109B, profile=Profile.CAPF)
SUB = node_identity("cucm-1051-a-sub1", serial=0x6BEBFDCDCD8CA277CB2FD1D183A60E72)


def ctl(records, signer=PUB, timestamp=1425667513) -> TrustList:
    return TrustList.from_bytes(build_trust_list(records, signer, filename="CTLFile.tlv", timestamp=timestamp).data)


def seed_records():
    return [
        make_record(PUB.certificate, Role.SAST, dns_name="cucm-1051-a-pub", ip_address="10.48.47.155"),
        make_record(PUB.certificate, Role.CCM_TFTP, dns_name="cucm-1051-a-pub", ip_address="10.48.47.155"),
        make_record(CAPF.certificate, Role.CAPF, dns_name="cucm-1051-a-pub", ip_address="10.48.47.155"),
        make_record(SUB.certificate, Role.CCM_TFTP, dns_name="cucm-1051-a-sub1", ip_address="10.48.47.156"),
    ]


def test_a_file_compared_with_itself_has_no_differences():
    same = TrustList.from_bytes(seed_ctl().data)
    diff = diff_trust_lists(same, same)
    assert diff.same and diff.unchanged == 4


def test_a_certificate_listed_under_two_roles_is_paired_by_role_not_reported_as_changed():
    records = seed_records()
    diff = diff_trust_lists(ctl(records), ctl([records[1], records[0], *records[2:]]))
    assert diff.same and diff.unchanged == 4


def test_added_removed_and_changed_records_are_told_apart():
    records = seed_records()
    newcomer = node_identity("cucm-1051-a-sub2", serial=0x1234)
    new = [*records[:2], make_record(SUB.certificate, Role.TFTP, dns_name="sub1", ip_address="10.48.47.99"),
           make_record(newcomer.certificate, Role.CCM_TFTP, dns_name="cucm-1051-a-sub2")]
    diff = diff_trust_lists(ctl(records), ctl(new))
    assert [record.subject for record in diff.removed] == [records[2].subject]
    assert [record.dns_name for record in diff.added] == ["cucm-1051-a-sub2"]
    [changed] = diff.changed
    assert changed.changes == (Change("role", "CCM+TFTP", "TFTP"), Change("dns_name", "cucm-1051-a-sub1", "sub1"),
                               Change("ip_address", "10.48.47.156", "10.48.47.99"))
    assert diff.unchanged == 2 and diff.header == ()


def test_a_new_signer_and_timestamp_are_header_changes():
    other = node_identity("cucm-1051-a-pub", serial=0x51AB)
    diff = diff_trust_lists(ctl(seed_records()), ctl(seed_records(), signer=other, timestamp=1425667600))
    fields = {change.field: (change.old, change.new) for change in diff.header}
    assert fields["signer.serial"] == (f"{PUB_SERIAL:X}", "51AB")
    assert fields["timestamp"] == (1425667513, 1425667600)
    assert not diff.same and not diff.added and not diff.removed and not diff.changed
