"""Certificates and helpers for the TVS tests (self-signed RSA, made with cryptography)."""

from __future__ import annotations

import datetime
import functools
from pathlib import Path

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

DEVICE = "CP-8861-SEPB000B4BA0AEE"


@attrs.frozen
class Identity:
    certificate: x509.Certificate
    key: rsa.RSAPrivateKey

    @property
    def der(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.DER)

    def write(self, folder: Path, name: str, *, der: bool = False) -> tuple[Path, Path]:
        encoding = serialization.Encoding.DER if der else serialization.Encoding.PEM
        cert_path = folder / f"{name}.{'der' if der else 'pem'}"
        key_path = folder / f"{name}.key"
        cert_path.write_bytes(self.certificate.public_bytes(encoding))
        key_path.write_bytes(self.key.private_bytes(serialization.Encoding.PEM,
                                                    serialization.PrivateFormat.TraditionalOpenSSL,
                                                    serialization.NoEncryption()))
        return cert_path, key_path


def _name(common_name: str, organisation: str | None) -> x509.Name:
    attributes = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organisation:
        attributes += [x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "TAC"),
                       x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
                       x509.NameAttribute(NameOID.COUNTRY_NAME, "PL")]
    return x509.Name(attributes)


@functools.lru_cache(maxsize=None)
def identity(common_name: str, *, bits: int = 1024, serial: int | None = None,
             issuer: str | None = None, organisation: str | None = "Cisco") -> Identity:
    """A certificate for ``common_name``; self-signed unless ``issuer`` names another identity."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    signer = identity(issuer) if issuer else None
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name, organisation))
        .issuer_name(signer.certificate.subject if signer else _name(common_name, organisation))
        .public_key(key.public_key())
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .sign(signer.key if signer else key, hashes.SHA256())
    )
    return Identity(certificate, key)
