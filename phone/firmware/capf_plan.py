"""When and how the phone enrols with CAPF, sans I/O (docs/capf.md).

After its configuration, a phone whose configuration names CAPF servers
(``<capfList>``) with a ``capfAuthMode`` above 0 has a certificate operation
pending (CUCM System Configuration Guide, "Configure CAPF"). ``enrolment``
turns the stored configuration, the installed trust lists and the model into
the ``EnrolCapf`` effect: the servers in order, how to trust them and what the
phone may answer. ``phone.device.capf`` carries it out.

The CAPF server's certificate is trusted as any TLS server's is (Cisco TAC
note 118893, "Security by Default"): byte for byte a CAPF record (role 4) of
the installed CTL or ITL, or else vouched for by TVS (``tvs_question`` is the
TVS request, ``vouch_problem`` reads the answer: status 0 and role CAPF).
"""

from __future__ import annotations

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from phone.errors import CertificateError
from phone.firmware.models import PhoneModel
from phone.firmware.trust import Trusted
from phone.wire.certs import load_certificate
from phone.wire.config import CapfServer, PhoneConfig, TvsMember
from phone.wire.names import cucm_name, serial_to_bytes
from phone.wire.tlv import Role

#: The CAPF version of an EC-capable phone, and of one that is not (docs/capf.md).
EC_CAPF_VERSION = 3
RSA_CAPF_VERSION = 2
#: TLS versions a phone without TVS/TLS in its model file still speaks to CAPF (6901/6911: 1.0).
FALLBACK_TLS_VERSIONS = ("1.0",)


@attrs.frozen
class EnrolCapf:
    """Effect: run one CAPF operation against ``servers``, in order (connect failure or timeout: next)."""

    device_name: str
    auth_mode: int
    servers: tuple[CapfServer, ...]
    #: The CAPF certificates (role 4) of the installed CTL and ITL: trusted as they are.
    pinned: tuple[bytes, ...] = attrs.field(repr=lambda p: f"<{len(p)} certificates>")
    tls_versions: tuple[str, ...]
    timeout: float
    phone_version: int
    ec_capable: bool
    request_in_progress: bool = True
    #: For a server certificate that is not pinned: the TVS servers and their pins.
    tvs_members: tuple[TvsMember, ...] = ()
    tvs_pinned: tuple[bytes, ...] = attrs.field(default=(), repr=lambda p: f"<{len(p)} certificates>")
    tvs_tls_versions: tuple[str, ...] = ()
    tvs_timeout: float = 10.0
    #: The name the phone gives TVS (``CSF…`` for Jabber, else the device name).
    tvs_device_name: str = ""


def pending(config: PhoneConfig) -> bool:
    """Whether the configuration asks for a CAPF operation: a non-empty ``<capfList>`` and mode > 0."""
    return bool(config.capf_list) and (config.capf_auth_mode or 0) > 0


def phone_version(model: PhoneModel) -> int:
    """The highest CAPF version the model speaks (setting ``capf_phone_version``; 0 = by EC support)."""
    configured = model.settings.capf_phone_version
    if configured:
        return configured
    return EC_CAPF_VERSION if model.ec_certificates else RSA_CAPF_VERSION


def ec_capable(model: PhoneModel, trusted: Trusted) -> bool:
    """Whether the phone may generate an EC key: an EC-capable model, and (setting
    ``capf_ec_needs_itl_1_1``) an ITL of version 1.1."""
    if not model.ec_certificates:
        return False
    if not model.settings.capf_ec_needs_itl_1_1:
        return True
    itl = trusted.itl
    return itl is not None and (itl.header.signer_version or (0, 0)) >= (1, 1)


def capf_certificates(trusted: Trusted) -> tuple[bytes, ...]:
    """The CAPF (role 4) certificates of the installed CTL and ITL."""
    found: list[bytes] = []
    for listing in (trusted.ctl, trusted.itl):
        if listing is None:
            continue
        for _, record in listing.records_with_role(Role.CAPF):
            if record.certificate and record.certificate not in found:
                found.append(record.certificate)
    return tuple(found)


def enrolment(model: PhoneModel, device_name: str, config: PhoneConfig, trusted: Trusted,
              tvs_device_name: str) -> EnrolCapf:
    """The ``EnrolCapf`` effect for a configuration that asks for CAPF (``pending``)."""
    settings = model.settings
    return EnrolCapf(
        device_name=device_name,
        auth_mode=config.capf_auth_mode or 0,
        servers=config.capf_list,
        pinned=capf_certificates(trusted),
        tls_versions=model.tls_versions or FALLBACK_TLS_VERSIONS,
        timeout=settings.capf_timeout_seconds,
        phone_version=phone_version(model),
        ec_capable=ec_capable(model, trusted),
        request_in_progress=settings.capf_request_in_progress,
        tvs_members=config.tvs_members if model.supports_tvs else (),
        tvs_pinned=trusted.tvs_certificates() if model.supports_tvs else (),
        tvs_tls_versions=model.tls_versions,
        tvs_timeout=settings.tvs_timeout_seconds,
        tvs_device_name=tvs_device_name,
    )


@attrs.frozen
class TvsQuestion:
    """What to ask TVS about a CAPF certificate that is not pinned (QUERY_CERT_REQ's fields)."""

    subject: str
    issuer: str
    serial: bytes
    certificate: bytes


def tvs_question(plan: EnrolCapf, certificate_der: bytes) -> TvsQuestion | None:
    """The TVS query about ``certificate_der``, or None when TVS cannot be asked (no TVS
    server in the configuration, no TVS record in the ITL, or not a certificate)."""
    if not plan.tvs_members or not plan.tvs_pinned:
        return None
    try:
        certificate = load_certificate(certificate_der, source="the CAPF server's certificate")
    except CertificateError:
        return None
    return TvsQuestion(_name(certificate.subject), _name(certificate.issuer),
                       serial_to_bytes(certificate.serial_number),
                       certificate.public_bytes(serialization.Encoding.DER))


def _name(name: x509.Name) -> str:
    """Names as CUCM writes them, which its TVS matches on (docs/tvs.md)."""
    return cucm_name(name)


def vouch_problem(status: int | None, roles: tuple[int, ...]) -> str | None:
    """Why a TVS answer does not vouch for a CAPF certificate, or None when it does:
    trusted (status 0) with role CAPF."""
    if status != 0:
        return f"TVS does not trust the CAPF certificate (status {status})"
    if Role.CAPF not in roles:
        shown = ",".join(str(r) for r in roles) or "none"
        return f"TVS vouched for the certificate without role CAPF (roles {shown})"
    return None
