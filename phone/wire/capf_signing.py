"""The signatures a phone sends to CAPF when it authenticates with a certificate.

In the modes "By Existing Certificate" (precedence to LSC or to MIC), the
phone's AUTH_RESPONSE carries its certificate and two signatures over the
*auth data* = device name, a NUL byte, the DER of the presented certificate:
SIGNED_DATA with SHA-1 and SHA2_SIGNED_DATA with SHA-512 (CUCM System
Configuration Guide, "Configure CAPF"; the layout is what the usecallmanager.nz
CAPF server checks and its client writes, docs/capf.md).

For RSA keys the signature is *not* PKCS#1 v1.5 with a DigestInfo: it is the
raw private-key operation on a type-1 block that holds the bare digest. The
``cryptography`` package verifies such blocks (``recover_data_from_signature``
with no algorithm) but cannot make them, so ``sign_bare_digest`` does the RSA
operation itself, with the CRT parameters of the key. EC keys sign the auth data
with ECDSA (DER), the same digests.
"""

from __future__ import annotations

import hashlib

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from phone.errors import UsageError

#: Digest of SIGNED_DATA and of SHA2_SIGNED_DATA.
DIGESTS = {"sha1": hashlib.sha1, "sha512": hashlib.sha512}
_EC_HASHES = {"sha1": hashes.SHA1, "sha512": hashes.SHA512}


def auth_data(device_name: str, certificate_der: bytes) -> bytes:
    """What the phone signs: device name, NUL, certificate DER."""
    return device_name.encode("ascii") + b"\x00" + certificate_der


def _type1_block(digest: bytes, size: int) -> bytes:
    """PKCS#1 v1.5 type-1 padding of ``digest`` to ``size`` bytes: 00 01 FF… 00 digest."""
    if len(digest) > size - 11:
        raise UsageError(f"a {len(digest)}-byte digest does not fit a {size * 8}-bit RSA block")
    return b"\x00\x01" + b"\xff" * (size - 3 - len(digest)) + b"\x00" + digest


def sign_bare_digest(key: rsa.RSAPrivateKey, digest: bytes) -> bytes:
    """The raw RSA private-key operation on a type-1 block holding ``digest``."""
    numbers = key.private_numbers()
    size = (key.key_size + 7) // 8
    message = int.from_bytes(_type1_block(digest, size), "big")
    # Chinese remainder theorem: two half-size exponentiations instead of one.
    m1 = pow(message, numbers.dmp1, numbers.p)
    m2 = pow(message, numbers.dmq1, numbers.q)
    h = (numbers.iqmp * (m1 - m2)) % numbers.p
    return (m2 + h * numbers.q).to_bytes(size, "big")


def sign_auth_data(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, data: bytes, digest: str) -> bytes:
    """SIGNED_DATA (``digest="sha1"``) or the signature of SHA2_SIGNED_DATA (``"sha512"``)."""
    if isinstance(key, rsa.RSAPrivateKey):
        return sign_bare_digest(key, DIGESTS[digest](data).digest())
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(_EC_HASHES[digest]()))
    raise UsageError(f"CAPF authentication needs an RSA or EC key, not {type(key).__name__}")


def verify_auth_data(public_key: object, signature: bytes, data: bytes, digest: str) -> bool:
    """Whether ``signature`` is the phone's signature of ``data`` with ``digest``."""
    expected = DIGESTS[digest](data).digest()
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            if len(signature) != (public_key.key_size + 7) // 8:
                return False
            return public_key.recover_data_from_signature(signature, padding.PKCS1v15(), None) == expected
        if isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, data, ec.ECDSA(_EC_HASHES[digest]()))
            return True
    except (InvalidSignature, ValueError):
        return False
    return False
