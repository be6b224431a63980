"""The Locally Significant Certificate (LSC) the lab's CAPF issues to a phone.

CUCM's CAPF signs the phone's new public key with the CAPF certificate
(Cisco TAC note 215014, "Configure headsets and LSC": issuer ``CN=CAPF-<8 hex>``
with the cluster's O/OU/L/ST/C). The subject reads
``serialNumber=PID:CP-<model> SN:<serial>``, then the CAPF certificate's C, O
and OU, then ``CN=CP-<model>-SEP<MAC>``. The validity is the service parameter
"Duration Of Certificate Validity" (1 to 1825 days) and the signature SHA-256
from CUCM 11.5(1)SU1 on (CUCM System Configuration Guide 12.5(1)SU2,
"Configure CAPF"); key usage digitalSignature + keyEncipherment is required
there too.

What CUCM does not document is a setting of ``LscProfile`` with the
usecallmanager.nz CAPF server's choice as the default: a 16-byte random serial,
basic constraints CA:FALSE, key usage critical, extended key usage serverAuth,
clientAuth and IPsec end system, and the device name as a subject alternative
name (URI). docs/capf.md lists them.

Pure: time, randomness and every key are arguments.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from phone.errors import UsageError
from phone.wire.certs import Identity

RandomBytes = Callable[[int], bytes]

#: "Duration Of Certificate Validity": 1 to 1825 days (System Configuration Guide, "Configure CAPF").
MAX_VALIDITY_DAYS = 1825
_IPSEC_END_SYSTEM = ObjectIdentifier("1.3.6.1.5.5.7.3.5")
_DIGESTS = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}
#: The CAPF certificate's attributes an LSC subject copies, in the order the subject lists them.
_COPIED = (NameOID.COUNTRY_NAME, NameOID.ORGANIZATION_NAME, NameOID.ORGANIZATIONAL_UNIT_NAME)


def _validity_days(_instance: object, _attribute: object, value: int) -> None:
    if not 1 <= value <= MAX_VALIDITY_DAYS:
        raise UsageError(f"an LSC is valid 1 to {MAX_VALIDITY_DAYS} days, not {value}")


def _serial_bytes(_instance: object, _attribute: object, value: int) -> None:
    if not 8 <= value <= 20:  # RFC 5280: at most 20 octets; fewer than 8 would not be unpredictable
        raise UsageError(f"an LSC serial number is 8 to 20 bytes, not {value}")


@attrs.frozen
class LscProfile:
    """How the lab's CAPF writes an LSC (``lsc.profile``; defaults: CUCM's names, capfd's extensions)."""

    #: "Duration Of Certificate Validity" (CUCM's maximum, 1825 days, is the default).
    validity_days: int = attrs.field(default=MAX_VALIDITY_DAYS, validator=_validity_days)
    #: Length of the random serial number.
    serial_bytes: int = attrs.field(default=16, validator=_serial_bytes)
    digest: str = attrs.field(default="sha256", validator=attrs.validators.in_(tuple(_DIGESTS)))
    #: Put the device name in a subject alternative name (URI), as capfd does.
    device_name_san: bool = True


def product_id(model: str) -> str:
    """``CP-<model>``: device records name the model either way (``8861`` or ``CP-8861``)."""
    return model if model.upper().startswith("CP-") else f"CP-{model}"


def lsc_subject(capf_certificate: x509.Certificate, *, device_name: str, model: str,
                phone_serial: str) -> x509.Name:
    """``serialNumber=PID:CP-<model> SN:<serial>``, the CAPF's C/O/OU, ``CN=CP-<model>-<device>``."""
    pid = product_id(model)
    attributes = [x509.NameAttribute(NameOID.SERIAL_NUMBER, f"PID:{pid} SN:{phone_serial}")]
    for oid in _COPIED:
        attributes += capf_certificate.subject.get_attributes_for_oid(oid)
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, f"{pid}-{device_name}"))
    return x509.Name(attributes)


def _random_serial(random_bytes: RandomBytes, size: int) -> int:
    raw = bytearray(random_bytes(size))
    raw[0] = (raw[0] & 0x7F) | 0x10  # positive, and exactly ``size`` bytes long
    return int.from_bytes(raw, "big")


def issue_lsc(public_key: rsa.RSAPublicKey | ec.EllipticCurvePublicKey, *, capf: Identity, device_name: str,
              model: str, phone_serial: str, now: datetime.datetime, random_bytes: RandomBytes,
              profile: LscProfile = LscProfile()) -> x509.Certificate:
    """The LSC for ``public_key``, issued by the CAPF certificate and signed with its key.

    ``phone_serial`` is the SN of the product identifier; the CAPF server takes
    it from the phone's MIC when it has one (docs/capf.md).
    """
    if not isinstance(public_key, rsa.RSAPublicKey | ec.EllipticCurvePublicKey):
        raise UsageError(f"an LSC certifies an RSA or EC key, not {type(public_key).__name__}")
    builder = (
        x509.CertificateBuilder()
        .subject_name(lsc_subject(capf.certificate, device_name=device_name, model=model,
                                  phone_serial=phone_serial))
        .issuer_name(capf.certificate.subject)
        .public_key(public_key)
        .serial_number(_random_serial(random_bytes, profile.serial_bytes))
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=profile.validity_days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, content_commitment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH,
                                              _IPSEC_END_SYSTEM]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(capf.certificate.public_key()),
                       critical=False)
    )
    if profile.device_name_san:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(device_name)]), critical=False)
    return builder.sign(capf.private_key, _DIGESTS[profile.digest]())
