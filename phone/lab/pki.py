"""The lab's certificates: node certificates, the emulated manufacturing CA, eTokens.

Names follow CUCM (docs/trust-lists.md, Cisco TAC 118893): CallManager, TVS and Tomcat certificates are
self-signed for ``CN=<host name>``; the ECDSA ones (CallManager-ECDSA, tomcat-ECDSA: EC P-256) for
``CN=<host name>-EC``; ITLRecovery for ``CN=ITLRECOVERY_<host
name>``; CAPF for ``CN=CAPF-<8 hex>``; every one with the lab's OU/O/L/ST/C. The CAPF certificate
is a CA (CA:TRUE, path length 0) from CUCM 14SU2 (``Profile.CAPF_CA``), as the Security Guide 14SU2
requires; before, it has the shape of Cisco TAC 118893's.
Serial numbers are 16 random bytes as CUCM's (``70:CA:F6:4E:…``), eTokens 10
(``83:E9:08:00:00:00:55:45:AF:31``), so that records have Cisco TAC 118893's sizes.

Time and randomness are arguments: ``now`` for validity, ``random_bytes`` for
serial numbers and CAPF names, ``new_key`` for keys (tests pass cheap ones).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric import rsa

from phone.wire.certs import (
    Identity,
    Profile,
    cucm_subject,
    generate_ec_key,
    generate_rsa_key,
    make_certificate,
    simple_subject,
)
from phone.lab.state import EC_SERVICES, Names

RandomBytes = Callable[[int], bytes]
NewKey = Callable[[int], rsa.RSAPrivateKey]

#: CUCM certificates are valid five years (seed: 2014-06-05 to 2019-06-04).
NODE_LIFETIME_DAYS = 1825
ETOKEN_LIFETIME_DAYS = 3650
CA_LIFETIME_DAYS = 7300
ETOKEN_KEY_BITS = 1024  # Cisco TAC 118893's eToken records have a 140-byte PUBLICKEY
CA_KEY_BITS = 2048
ETOKEN_SUBJECT = {"O": "Cisco Systems, Inc.", "OU": "IPCBU"}
MANUFACTURING_CA_SUBJECT = {"O": "Cisco Systems", "CN": "Cisco Manufacturing CA"}
_ETOKEN_NAME = re.compile(r"^SAST-ADN[0-9a-fA-F]{8}$")


def default_new_key(bits: int) -> rsa.RSAPrivateKey:
    return generate_rsa_key(bits)


def random_serial(random_bytes: RandomBytes, size: int) -> int:
    """A positive serial of exactly ``size`` bytes (top bit clear, top byte non-zero)."""
    raw = bytearray(random_bytes(size))
    raw[0] = (raw[0] & 0x7F) | 0x10
    return int.from_bytes(raw, "big")


def common_name(service: str, host: str, random_bytes: RandomBytes) -> str:
    if service == "ITLRecovery":
        return f"ITLRECOVERY_{host}"
    if service == "CAPF":
        return f"CAPF-{random_bytes(4).hex()}"
    if service in EC_SERVICES:
        return f"{host}-EC"
    return host


def node_identity(service: str, host: str, names: Names, *, bits: int, now: datetime.datetime,
                  random_bytes: RandomBytes, new_key: NewKey = default_new_key,
                  capf_ca: bool = False) -> Identity:
    """A new self-signed certificate of ``service`` for node ``host``.

    ``bits`` sizes RSA keys; the ECDSA services always get an EC P-256 key. ``capf_ca`` gives the
    CAPF certificate the CUCM 14SU2 CA profile.
    """
    subject = cucm_subject(
        common_name(service, host, random_bytes),
        organizational_unit=names.organizational_unit, organization=names.organization,
        locality=names.locality, state=names.state, country=names.country,
    )
    profile = Profile.SERVER
    if service == "CAPF":
        profile = Profile.CAPF_CA if capf_ca else Profile.CAPF
    key = generate_ec_key("secp256r1") if service in EC_SERVICES else new_key(bits)
    return make_certificate(subject, key, not_before=now, serial=random_serial(random_bytes, 16),
                            profile=profile, lifetime_days=NODE_LIFETIME_DAYS)


def manufacturing_ca(*, now: datetime.datetime, random_bytes: RandomBytes,
                     new_key: NewKey = default_new_key) -> Identity:
    """The emulated "Cisco Manufacturing CA" that issues the lab's eTokens (docs/trust-lists.md)."""
    # Its validity starts a year before the lab's clock so that tokens made now are well inside it.
    start = now - datetime.timedelta(days=365)
    return make_certificate(simple_subject(**MANUFACTURING_CA_SUBJECT), new_key(CA_KEY_BITS), not_before=start,
                            serial=random_serial(random_bytes, 10), profile=Profile.CA,
                            lifetime_days=CA_LIFETIME_DAYS)


def etoken_common_name(label: str, random_bytes: RandomBytes) -> str:
    """``SAST-ADN<8 hex> `` (with the trailing blank of real tokens); the label itself when it is one."""
    if _ETOKEN_NAME.match(label):
        return f"{label} "
    return f"SAST-ADN{random_bytes(4).hex()} "


def etoken_identity(common: str, ca: Identity, *, now: datetime.datetime, random_bytes: RandomBytes,
                    new_key: NewKey = default_new_key) -> Identity:
    """An eToken's SAST certificate issued by the manufacturing CA (docs/trust-lists.md: 10-byte serial)."""
    raw = bytearray(random_bytes(10))
    # All ten bytes with the top bit set (83:E9:…): the DER integer gets a leading zero and the
    # certificate is 902 bytes as in Cisco TAC 118893, whatever the random draw.
    raw[0] |= 0x80
    serial = int.from_bytes(raw, "big")
    return make_certificate(simple_subject(**ETOKEN_SUBJECT, CN=common), new_key(ETOKEN_KEY_BITS),
                            not_before=now, serial=serial, profile=Profile.ETOKEN, issuer=ca,
                            lifetime_days=ETOKEN_LIFETIME_DAYS)
