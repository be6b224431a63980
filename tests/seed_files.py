"""The seed document's tokenless CTL, rebuilt from certificates with the seed's sizes (Cisco TAC 118893)."""

from __future__ import annotations

from conftest import node_identity

from phone.wire.certs import Profile
from phone.wire.signing import build_trust_list, make_record
from phone.wire.tlv import Role

PUB_SERIAL = 0x70CAF64E090751B9DF22F49F754FC5BB


def seed_ctl():
    pub = node_identity("cucm-1051-a-pub", serial=PUB_SERIAL)
    capf = node_identity("CAPF-e41e7d87", serial=0x744B4999770496E799E91E81D3C8109B, profile=Profile.CAPF)
    sub = node_identity("cucm-1051-a-sub1", serial=0x6BEBFDCDCD8CA277CB2FD1D183A60E72)
    records = [
        make_record(pub.certificate, Role.SAST, dns_name="cucm-1051-a-pub", ip_address="10.48.47.155"),
        make_record(pub.certificate, Role.CCM_TFTP, dns_name="cucm-1051-a-pub", ip_address="10.48.47.155"),
        make_record(capf.certificate, Role.CAPF, dns_name="cucm-1051-a-pub", ip_address="10.48.47.155"),
        make_record(sub.certificate, Role.CCM_TFTP, dns_name="cucm-1051-a-sub1", ip_address="10.48.47.156"),
    ]
    return build_trust_list(records, pub, filename="CTLFile.tlv", timestamp=1425667513)
