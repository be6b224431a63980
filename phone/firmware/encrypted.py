"""The phone's side of encrypted configurations: whose file it is, and opening it (docs/encrypted-config.md).

Cisco, "Security Guide for Cisco Unified Communications Manager", chapter
"Encrypted Phone Configuration File Setup": CUCM encrypts a phone's
configuration to the certificate it holds for the phone (its LSC, else its
MIC) and serves beside it a stub whose ``certHash`` names that certificate.
The phone

- reads the stub's ``certHash`` and compares it with the MD5 of its own LSC,
  else its MIC (``stub_problem``);
- when they match, fetches ``SEP<MAC>.cnf.xml.enc.sgn``, checks its signature
  against its trust lists like any signed configuration (the machine's part),
  then unwraps the AES key with its private key, decrypts and checks the
  padding and CONTENTHASH (``open_encrypted``);
- when they differ, or the stub names no certificate, or the file does not
  open, keeps the configuration it had and needs a CAPF session before it can
  read its configuration (``CapfNeeded``; the CAPF client acts on it).

Pure: certificates and keys in, bytes or reasons out.
"""

from __future__ import annotations

import attrs

from phone.errors import EncryptedConfigError
from phone.wire.certs import Identity
from phone.wire.config import CapfServer, PhoneConfig
from phone.wire.encconfig import EncryptedConfig, cert_hash, decrypt

#: The suffix of an encrypted configuration's name.
ENCRYPTED_SUFFIX = ".cnf.xml.enc.sgn"


@attrs.frozen
class PhoneKeys:
    """The phone's own certificates with their private keys: the MIC (factory) and the LSC (CAPF)."""

    mic: Identity | None = attrs.field(default=None, repr=lambda i: "None" if i is None else "<MIC>")
    lsc: Identity | None = attrs.field(default=None, repr=lambda i: "None" if i is None else "<LSC>")

    @property
    def current(self) -> Identity | None:
        """The certificate CUCM encrypts to: the LSC when the phone has one, else the MIC."""
        return self.lsc if self.lsc is not None else self.mic

    @property
    def label(self) -> str:
        """"LSC", "MIC" or "no certificate", for console lines and reasons."""
        return "LSC" if self.lsc is not None else "MIC" if self.mic is not None else "no certificate"


@attrs.frozen
class CapfNeeded:
    """The phone cannot read its encrypted configuration until CAPF gives it the certificate CUCM holds.

    ``capf_list`` and ``capf_auth_mode`` are the stub's (or, when the phone
    went to the encrypted file first, the stored configuration's): where to
    enrol and how (``capfAuthMode`` 1: the user types the authentication string).
    """

    reason: str
    capf_list: tuple[CapfServer, ...] = ()
    capf_auth_mode: int | None = None

    @classmethod
    def from_config(cls, reason: str, config: PhoneConfig) -> CapfNeeded:
        return cls(reason, config.capf_list, config.capf_auth_mode)


def is_stub(config: PhoneConfig) -> bool:
    """An encrypted configuration's stub: ``encrConfig`` true and ``fullConfig`` false."""
    return config.encrypted_config and not config.full_config


def stub_problem(stub: PhoneConfig, keys: PhoneKeys) -> str | None:
    """Why the stub does not send this phone to its encrypted file; None when its certHash names the phone."""
    own = keys.current
    if not stub.cert_hash:
        return "the stub names no certificate (empty certHash): CUCM holds none of this phone's"
    if own is None:
        return "the phone has no certificate (no LSC, no MIC) to open an encrypted configuration"
    if cert_hash(own.der) != stub.cert_hash:
        return f"the stub's certHash {stub.cert_hash[:40]} is not the phone's {keys.label} ({cert_hash(own.der)})"
    return None


def open_encrypted(data: bytes, keys: PhoneKeys) -> bytes:
    """The configuration XML of an ``.enc.sgn`` whose signature the caller has already checked.

    ``EncryptedConfigError`` (or ``TrustListFormatError`` for a damaged file)
    says why it does not open.
    """
    own = keys.current
    if own is None:
        raise EncryptedConfigError("the phone has no certificate (no LSC, no MIC) to open an encrypted configuration")
    return decrypt(EncryptedConfig.from_bytes(data), own.private_key)

