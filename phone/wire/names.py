"""Certificate names and serial numbers as trust-list files and TVS write them.

docs/trust-lists.md: names in CUCM files are ``attr=value`` pairs joined by ``;`` in the
fixed order CN, OU, O, L, ST, C (``CN=cucm-1051-a-pub;OU=TAC;O=Cisco;L=Krakow;
ST=Malopolska;C=PL``) whatever the order inside the certificate. eToken records
written by the Windows CTL client use lower-case attribute names, RFC 2253 order
and quotes (``cn="SAST-ADN008580ef ";ou=IPCBU;o="Cisco Systems, Inc."``).
usecallmanager's tool joins the RFC 4514 form of each attribute with ``,`` in
certificate order. Serial numbers are raw bytes compared byte for byte.

Trust decisions never rest on name text alone (docs/trust-lists.md); ``name_key`` only
lets the TVS store match an issuer written by another producer.
"""

from __future__ import annotations

import functools
import re

from cryptography import x509
from cryptography.x509.oid import NameOID

from phone.errors import CertificateError

_CUCM_ORDER = (
    NameOID.COMMON_NAME,
    NameOID.ORGANIZATIONAL_UNIT_NAME,
    NameOID.ORGANIZATION_NAME,
    NameOID.LOCALITY_NAME,
    NameOID.STATE_OR_PROVINCE_NAME,
    NameOID.COUNTRY_NAME,
)
_SHORT_NAMES = {
    NameOID.COMMON_NAME: "CN",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.LOCALITY_NAME: "L",
    NameOID.STATE_OR_PROVINCE_NAME: "ST",
    NameOID.COUNTRY_NAME: "C",
    NameOID.SERIAL_NUMBER: "serialNumber",
    NameOID.EMAIL_ADDRESS: "emailAddress",
    NameOID.DOMAIN_COMPONENT: "DC",
}
_NEEDS_QUOTES = re.compile(r'[,;+"\\<>#=]|^\s|\s$')


def _short(oid: x509.ObjectIdentifier) -> str:
    return _SHORT_NAMES.get(oid, oid.dotted_string)


def _value(attribute: x509.NameAttribute) -> str:
    value = attribute.value
    return value if isinstance(value, str) else value.hex()


def cucm_name(name: x509.Name) -> str:
    """The name as CUCM writes it in CTL/ITL files and `show ctl` (docs/trust-lists.md)."""
    attributes = list(name)
    ordered = [a for oid in _CUCM_ORDER for a in attributes if a.oid == oid]
    ordered += [a for a in attributes if a.oid not in _CUCM_ORDER]
    return ";".join(f"{_short(a.oid)}={_value(a)}" for a in ordered)


def ctl_client_name(name: x509.Name) -> str:
    """The name as the Windows CTL client wrote it for eToken records (docs/trust-lists.md)."""
    parts = []
    for attribute in reversed(list(name)):
        value = _value(attribute)
        if _NEEDS_QUOTES.search(value):
            value = '"' + value.replace('"', '\\"') + '"'
        parts.append(f"{_short(attribute.oid).lower()}={value}")
    return ";".join(parts)


def rfc4514_joined_name(name: x509.Name) -> str:
    """The name as usecallmanager's tool writes it: each attribute's RFC 4514 text, comma-joined."""
    return ",".join(attribute.rfc4514_string() for attribute in name)


_PAIR = re.compile(r'\s*([A-Za-z0-9.]+)\s*=\s*("(?:[^"\\]|\\.)*"?|(?:[^,;\\]|\\.)*)')


@functools.lru_cache(maxsize=4096)
def name_key(text: str) -> tuple[tuple[str, str], ...]:
    """A producer-independent key for a name written as text.

    ``CN=a;OU=b``, ``cn=a, ou=b`` and ``OU=b,CN=a`` give the same key: attribute
    types lower-cased, quotes and surrounding blanks dropped, values compared
    without case, order ignored. Text that is not ``attr=value`` pairs keys on
    itself so that it still matches exactly.
    """
    pairs = []
    position = 0
    while position < len(text):
        match = _PAIR.match(text, position)
        if not match or match.end() == position:
            return (("", " ".join(text.split()).lower()),)
        key, value = match.group(1).lower(), match.group(2).strip()
        if value.startswith('"'):
            value = value[1:-1] if value.endswith('"') and len(value) > 1 else value[1:]
        pairs.append((key, " ".join(value.replace('\\', '').split()).lower()))
        position = match.end()
        while position < len(text) and text[position] in ",; ":
            position += 1
    return tuple(sorted(pairs))


def serial_to_bytes(serial: int) -> bytes:
    """A certificate serial number as the raw bytes a file stores (shortest big-endian)."""
    if serial < 0:
        raise CertificateError("certificate serial numbers are positive (RFC 5280)")
    return serial.to_bytes(max(1, (serial.bit_length() + 7) // 8), "big")


def serial_hex(serial: bytes) -> str:
    """Upper-case hex without separators, as TVS traces and the JSON output show it."""
    return serial.hex().upper()


def serial_colon_hex(serial: bytes) -> str:
    """Upper-case colon-separated hex, as `show ctl` prints SERIALNUMBER (docs/trust-lists.md)."""
    return ":".join(f"{byte:02X}" for byte in serial)
