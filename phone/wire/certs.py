"""Keys and X.509 certificates as a CUCM cluster and its phones have them.

The emulated lab and the tests need certificates that look like CUCM's: the
self-signed CallManager/TVS/ITLRecovery certificates of a node, the CAPF
certificate, eToken certificates issued by an emulated "Cisco Manufacturing
CA". Profiles reproduce what Cisco TAC 118893 shows: a CUCM 10.5 CallManager
certificate has three extensions (key usage, extended key usage with
serverAuth, clientAuth and IPsec end system, subject key identifier); with a
1024-bit key and Cisco TAC 118893's names it is 694 bytes of DER, exactly as the
Cisco TAC 118893's `show ctl` prints (docs/trust-lists.md).

Time is an argument (``not_before``): nothing here reads the clock.
"""

from __future__ import annotations

import datetime
import functools
import warnings
from enum import Enum

import attrs
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, NameOID, ObjectIdentifier

from phone.errors import CertificateError, CertificateRequestError
from phone.wire.names import serial_to_bytes

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey

_IPSEC_END_SYSTEM = ObjectIdentifier("1.3.6.1.5.5.7.3.5")
_DIGESTS = {"sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}


class Profile(Enum):
    """Extension sets of the certificates a cluster holds."""

    #: CallManager, TVS, ITLRecovery, Tomcat: a self-signed server/client certificate.
    SERVER = "server"
    #: CAPF before CUCM 14SU2: the shape of Cisco TAC 118893's 680-byte CAPF certificate (key usage with
    #: certificate signing, extended key usage, key identifier; no basic constraints).
    CAPF = "capf"
    #: CAPF from CUCM 14SU2: a CA that issues phones' LSCs. Cisco "Security Guide for Cisco Unified
    #: Communications Manager, Release 14SU2", chapter "Certificate Authority Proxy Function": CA:TRUE,
    #: path length 0, key usage certificate signing and digital signature, or phones' TLS to CAPF fails.
    CAPF_CA = "capf-ca"
    #: An issuing CA such as the emulated "Cisco Manufacturing CA".
    CA = "ca"
    #: An eToken (SAST) certificate issued by the manufacturing CA.
    ETOKEN = "etoken"
    #: A phone's MIC or LSC (TLS client certificate towards TVS).
    DEVICE = "device"


def generate_rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    """A new RSA key (CUCM uses 1024 before 10.x, 2048 by default, up to 4096)."""
    if bits not in (1024, 2048, 3072, 4096):
        raise CertificateRequestError(f"RSA key size {bits} is not one CUCM uses (1024, 2048, 3072, 4096)")
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def generate_ec_key(curve: str = "secp256r1") -> ec.EllipticCurvePrivateKey:
    """A new EC key (CUCM 11.0+ CallManager-ECDSA certificates)."""
    curves = {"secp256r1": ec.SECP256R1, "secp384r1": ec.SECP384R1, "secp521r1": ec.SECP521R1}
    if curve not in curves:
        raise CertificateRequestError(f"EC curve {curve!r} is not supported (choose from {', '.join(curves)})")
    return ec.generate_private_key(curves[curve]())


def cucm_subject(
    common_name: str,
    *,
    organizational_unit: str = "TAC",
    organization: str = "Cisco",
    locality: str = "Krakow",
    state: str = "Malopolska",
    country: str = "PL",
) -> x509.Name:
    """A node certificate's name, in the attribute order CUCM puts inside the certificate.

    Cisco TAC 118893's CallManager.pem shows ``L=Krakow, ST=Malopolska, CN=cucm-1051-a-pub,
    OU=TAC, O=Cisco, C=PL`` (RFC 2253 order), so the DER order is C, O, OU, CN, ST, L.
    """
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, country),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, organizational_unit),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, state),
            x509.NameAttribute(NameOID.LOCALITY_NAME, locality),
        ]
    )


def simple_subject(**attributes: str) -> x509.Name:
    """A name from keyword attributes in the given order: ``simple_subject(O="Cisco Systems", CN="…")``."""
    oids = {
        "C": NameOID.COUNTRY_NAME,
        "O": NameOID.ORGANIZATION_NAME,
        "OU": NameOID.ORGANIZATIONAL_UNIT_NAME,
        "CN": NameOID.COMMON_NAME,
        "ST": NameOID.STATE_OR_PROVINCE_NAME,
        "L": NameOID.LOCALITY_NAME,
        "serialNumber": NameOID.SERIAL_NUMBER,
    }
    return x509.Name([x509.NameAttribute(oids[key], value) for key, value in attributes.items()])


@attrs.frozen
class Identity:
    """A certificate with its private key: a signer of trust lists, a TLS server or client."""

    certificate: x509.Certificate
    private_key: PrivateKey = attrs.field(repr=False)

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    @property
    def serial(self) -> bytes:
        """The serial number as raw bytes (docs/trust-lists.md)."""
        return serial_to_bytes(self.certificate.serial_number)

    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def private_key_pem(self) -> bytes:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    @classmethod
    def from_pem(cls, certificate: bytes, key: bytes, *, certificate_source: str = "certificate",
                 key_source: str = "key") -> Identity:
        """The identity of a certificate and its private key, read from PEM (or DER) bytes;
        the sources name them in errors (the lab passes its file names)."""
        return cls(load_certificate(certificate, source=certificate_source),
                   load_private_key(key, source=key_source))


def _extensions(profile: Profile, public_key: PublicKey, issuer: Identity | None) -> list[tuple[x509.ExtensionType, bool]]:
    key_id = x509.SubjectKeyIdentifier.from_public_key(public_key)
    server_usage = x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=True, data_encipherment=True,
        key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
    )
    if profile is Profile.SERVER:
        purposes = [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH, _IPSEC_END_SYSTEM]
        return [(server_usage, False), (x509.ExtendedKeyUsage(purposes), False), (key_id, False)]
    if profile in (Profile.CAPF, Profile.CAPF_CA):
        # Certificate signing in both: the CAPF certificate issues every LSC. The bit keeps the DER
        # length of the key usage, so the pre-14SU2 shape stays Cisco TAC 118893's size.
        capf_usage = x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=True,
            data_encipherment=profile is Profile.CAPF, key_agreement=False, key_cert_sign=True, crl_sign=False,
            encipher_only=False, decipher_only=False,
        )
        purposes = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH])
        if profile is Profile.CAPF:
            return [(capf_usage, False), (purposes, False), (key_id, False)]
        return [(capf_usage, True), (x509.BasicConstraints(ca=True, path_length=0), True), (purposes, False),
                (key_id, False)]
    if profile is Profile.CA:
        ca_usage = x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False,
        )
        return [(ca_usage, True), (x509.BasicConstraints(ca=True, path_length=None), True), (key_id, False)]
    authority = []
    if issuer is not None:
        authority = [(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.certificate.public_key()), False)]
    if profile is Profile.ETOKEN:
        signing = x509.KeyUsage(
            digital_signature=True, content_commitment=True, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=False, crl_sign=False, encipher_only=False, decipher_only=False,
        )
        crl = x509.CRLDistributionPoints([
            x509.DistributionPoint(
                full_name=[x509.UniformResourceIdentifier("http://www.cisco.com/security/pki/crl/cmca.crl")],
                relative_name=None, reasons=None, crl_issuer=None,
            )
        ])
        issuer_info = x509.AuthorityInformationAccess([
            x509.AccessDescription(
                AuthorityInformationAccessOID.CA_ISSUERS,
                x509.UniformResourceIdentifier("http://www.cisco.com/security/pki/certs/cmca.cer"),
            )
        ])
        mailbox = x509.SubjectAlternativeName([x509.RFC822Name("sast@cisco.com")])
        # With a 1024-bit key, a 10-byte serial and a 2048-bit issuer this set
        # gives the 902-byte certificate of Cisco TAC 118893's eToken records (docs/trust-lists.md).
        return [(signing, True), (key_id, False), *authority, (crl, False), (issuer_info, False), (mailbox, False)]
    device_usage = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH])
    return [(server_usage, True), (device_usage, False), (key_id, False), *authority]


def _validity(not_before: datetime.datetime, lifetime_days: int) -> tuple[datetime.datetime, datetime.datetime]:
    if not_before.tzinfo is None:
        not_before = not_before.replace(tzinfo=datetime.timezone.utc)
    # CUCM certificates end one second before the anniversary ("From: Thu Jun 05
    # 18:31:39 CEST 2014 To: Tue Jun 04 18:31:38 CEST 2019").
    return not_before, not_before + datetime.timedelta(days=lifetime_days, seconds=-1)


def make_certificate(
    subject: x509.Name,
    private_key: PrivateKey,
    *,
    not_before: datetime.datetime,
    serial: int,
    profile: Profile = Profile.SERVER,
    issuer: Identity | None = None,
    lifetime_days: int = 1825,
    digest: str = "sha256",
) -> Identity:
    """Create a certificate for ``private_key``; self-signed unless ``issuer`` is given.

    ``digest`` is the certificate's own signature hash. The cryptography library
    no longer signs certificates with SHA-1; phones do not check the certificate's
    own signature algorithm on trust-list records, so SHA-256 stands in for the
    SHA1withRSA of CUCM 10.x (same DER length).
    """
    if digest not in _DIGESTS or digest == "sha1":
        raise CertificateRequestError(f"certificate digest {digest!r} is not supported (sha256, sha384, sha512)")
    if serial <= 0:
        raise CertificateRequestError("certificate serial numbers must be positive")
    start, end = _validity(not_before, lifetime_days)
    signer_name = issuer.certificate.subject if issuer else subject
    signer_key = issuer.private_key if issuer else private_key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(signer_name)
        .public_key(private_key.public_key())
        .serial_number(serial)
        .not_valid_before(start)
        .not_valid_after(end)
    )
    for extension, critical in _extensions(profile, private_key.public_key(), issuer):
        builder = builder.add_extension(extension, critical)
    return Identity(builder.sign(signer_key, _DIGESTS[digest]()), private_key)


def load_certificate(data: bytes, *, source: str = "certificate") -> x509.Certificate:
    """A certificate from PEM or DER bytes; ``CertificateError`` naming ``source`` otherwise.

    Parsed certificates are immutable, so a fleet whose phones hold the same
    trust lists parses each certificate once (failures are not cached).
    """
    try:
        load = _load_certificate if len(data) <= 16 * 1024 else _load_certificate.__wrapped__
        return load(bytes(data))
    except CertificateError as error:
        raise CertificateError(f"{source}: {error}") from None


@functools.lru_cache(maxsize=2048)
def _load_certificate(data: bytes) -> x509.Certificate:
    try:
        with warnings.catch_warnings():
            # cryptography warns about oddities (zero or negative serials, short
            # country codes); a hostile file must not print anything beyond our
            # one line, and a non-positive serial is refused outright below.
            warnings.simplefilter("ignore")
            if data.lstrip().startswith(b"-----BEGIN"):
                certificate = x509.load_pem_x509_certificate(data)
            else:
                certificate = x509.load_der_x509_certificate(data)
            # Parsing is lazy: touch what every caller uses so a broken certificate fails here.
            certificate.public_key()
            certificate.subject, certificate.issuer  # noqa: B018
            if certificate.serial_number <= 0:
                raise CertificateError("serial number is not positive (RFC 5280)")
    except Exception as error:  # noqa: BLE001
        # cryptography's lazy DER parsing raises ValueError, InvalidVersion,
        # UnsupportedAlgorithm or even TypeError on hostile bytes; for untrusted
        # input each means the same thing: not a usable certificate.
        raise CertificateError(f"not a usable PEM or DER X.509 certificate ({_plain_reason(error)})") from None
    return certificate


def _plain_reason(error: Exception) -> str:
    """What cryptography's error means, in words (its texts name Rust parser internals)."""
    text = str(error)
    if "serial number is not positive" in text:
        return text
    if type(error).__name__ == "InvalidVersion":
        return "an X.509 version other than 1, 2 or 3"
    if type(error).__name__ == "UnsupportedAlgorithm":
        return "a public key or signature algorithm that is not supported"
    if "PEM" in text:
        return "the PEM block is damaged or holds something other than a certificate"
    return "the DER encoding is damaged or is not a certificate"


def load_private_key(data: bytes, *, source: str = "key") -> PrivateKey:
    """An unencrypted RSA or EC private key from PEM or DER bytes."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            key = serialization.load_pem_private_key(data, password=None)
        else:
            key = serialization.load_der_private_key(data, password=None)
    except TypeError:  # cryptography's way of saying the key needs a password
        raise CertificateError(f"{source}: the private key is encrypted; give an unencrypted one") from None
    except ValueError:
        raise CertificateError(f"{source}: not an unencrypted PEM or DER private key "
                               "(damaged, encrypted, or of an unsupported type)") from None
    except UnsupportedAlgorithm:
        raise CertificateError(f"{source}: only RSA and EC keys are supported") from None
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise CertificateError(f"{source}: only RSA and EC keys are supported")
    return key


def check_key_matches(certificate: x509.Certificate, key: PrivateKey, *, certificate_source: str,
                      key_source: str) -> None:
    """Refuse a key that is not the certificate's, in words (OpenSSL says "KEY_VALUES_MISMATCH")."""
    def public(value: PublicKey) -> bytes:
        return value.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

    if public(certificate.public_key()) != public(key.public_key()):  # type: ignore[arg-type]
        raise CertificateError(f"{key_source} is not the private key of {certificate_source} "
                               "(the certificate holds a different public key)")


def record_public_key(public_key: PublicKey) -> bytes:
    """The PUBLICKEY value of a trust-list record (docs/trust-lists.md).

    RSA: DER PKCS#1 RSAPublicKey (140 bytes for 1024-bit, 270 for 2048-bit);
    EC: the uncompressed X9.62 point.
    """
    if isinstance(public_key, rsa.RSAPublicKey):
        return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return public_key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    raise CertificateError(f"unsupported public key type {type(public_key).__name__}")


def names_device(certificate: x509.Certificate, device: str, *, sip_uri: bool = False) -> bool:
    """Whether ``certificate`` is the phone ``device``'s, as the lab's CAPF and CallManager check it.

    Its CN is the device name or ends in ``-<device>`` (CUCM's ``CP-8861-SEP…``, Cisco TAC notes
    200860 and 211304), else a subject alternative name (DNS name or URI) is the device name;
    with ``sip_uri`` a URI ``sip:<device>@host`` names it too, as SIP names a phone
    (docs/registration.md). A subject alternative name extension that cannot be read names nothing.
    """
    for attribute in certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME):
        common_name = str(attribute.value)
        if common_name == device or common_name.endswith(f"-{device}"):
            return True
    try:
        names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except (x509.ExtensionNotFound, ValueError):
        return False
    values = names.get_values_for_type(x509.DNSName) + names.get_values_for_type(x509.UniformResourceIdentifier)
    return any(value == device or (sip_uri and value.removeprefix("sip:").split("@")[0] == device)
               for value in values)
