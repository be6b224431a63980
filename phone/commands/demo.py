"""`phonetrust demo`: the main job on the embedded default, no arguments needed.

For now it builds the seed document's tokenless CTL (four records, 4947 bytes)
from freshly made certificates and shows it as CUCM's `show ctl` would; the
lab and fleet work turns this into the full rehearsal.
"""

from __future__ import annotations

import argparse
import datetime

from phone.certs import Profile, cucm_subject, generate_rsa_key, make_certificate
from phone.showctl import render_show_ctl
from phone.signing import build_trust_list, make_record, verify
from phone.tlv import Role

_SEED_DAY = datetime.datetime(2015, 3, 6, 19, 45, 13, tzinfo=datetime.timezone.utc)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="run the built-in demonstration (no arguments needed)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    def node(name: str, serial: int, profile: Profile = Profile.SERVER):
        return make_certificate(cucm_subject(name), generate_rsa_key(1024), not_before=_SEED_DAY, serial=serial,
                                profile=profile)

    pub = node("cucm-1051-a-pub", 0x70CAF64E090751B9DF22F49F754FC5BB)
    capf = node("CAPF-e41e7d87", 0x744B4999770496E799E91E81D3C8109B, Profile.CAPF)
    sub = node("cucm-1051-a-sub1", 0x6BEBFDCDCD8CA277CB2FD1D183A60E72)
    records = [
        make_record(pub.certificate, Role.SAST, dns_name="cucm-1051-a-pub", ip_address="10.48.47.155"),
        make_record(pub.certificate, Role.CCM_TFTP, dns_name="cucm-1051-a-pub", ip_address="10.48.47.155"),
        make_record(capf.certificate, Role.CAPF, dns_name="cucm-1051-a-pub", ip_address="10.48.47.155"),
        make_record(sub.certificate, Role.CCM_TFTP, dns_name="cucm-1051-a-sub1", ip_address="10.48.47.156"),
    ]
    ctl = build_trust_list(records, pub, filename="CTLFile.tlv", timestamp=int(_SEED_DAY.timestamp()))
    print("admin: utils ctl set-cluster mixed-mode   (tokenless CTL signed by the publisher's CallManager key)\n")
    print("admin: show ctl")
    print(render_show_ctl(ctl, verify(ctl), modified=_SEED_DAY), end="")
    return 0
