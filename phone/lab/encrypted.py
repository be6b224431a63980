"""What a TFTP node serves a phone whose security profile has "TFTP Encrypted Config" ticked.

Cisco, "Security Guide for Cisco Unified Communications Manager", chapter
"Encrypted Phone Configuration File Setup" (docs/encrypted-config.md):

- ``SEP<MAC>.cnf.xml.enc.sgn``: the device's full configuration, encrypted to
  the phone certificate CUCM holds for the device — the LSC its CAPF issued,
  else the MIC the phone presented to CAPF — and signed by the TFTP node's
  CallManager key, as every file that node signs;
- ``SEP<MAC>.cnf.xml.sgn``: the stub, "minimal" settings telling the phone the
  file is encrypted, to which certificate (``certHash``), and where CAPF is;
- ``SEP<MAC>.cnf.xml``: a phone asking for its configuration unencrypted gets
  the same minimal settings, the stub, never its full configuration.

When CUCM knows no certificate of the phone the stub's ``certHash`` is empty
and no ``.enc.sgn`` exists: the phone has to enrol with CAPF first. An EC
certificate cannot wrap an AES key with RSAES-PKCS1-v1_5, so a phone whose
LSC is EC gets the stub only.

Pure functions, as ``phone.lab.build``: the device, its full configuration and
the signer in, bytes out; the AES key and IV are fresh for every file built
(CUCM makes new ones at every configuration change).
"""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from phone.errors import UsageError
from phone.lab.devices import DeviceRecord
from phone.wire.certs import Identity
from phone.wire.config import PhoneConfig
from phone.wire.encconfig import build_encrypted_config, build_stub, cert_hash
from phone.wire.signing import build_signed_file

PLAIN = ".cnf.xml"
SIGNED = ".cnf.xml.sgn"
ENCRYPTED = ".cnf.xml.enc.sgn"


def phone_certificate(device: DeviceRecord) -> bytes | None:
    """The DER certificate the device's configuration is encrypted to: its LSC, else its MIC, else None."""
    return device.lsc_der if device.lsc_der is not None else device.mic_der


def can_wrap_to(certificate_der: bytes) -> bool:
    """Whether an AES key can be wrapped to this certificate (RSA only; docs/encrypted-config.md)."""
    return isinstance(x509.load_der_x509_certificate(certificate_der).public_key(), rsa.RSAPublicKey)


def mark_encrypted(full_config: bytes, certificate_der: bytes) -> bytes:
    """The full configuration as the encrypted file carries it: ``encrConfig`` true and the ``certHash``.

    With them in its stored configuration, the phone asks for the ``.enc.sgn``
    first at its next boot. ``full_config`` is the lab's own rendering, whose
    last line is ``</device>``.
    """
    text = full_config.decode("utf-8")
    end = text.rindex("</device>")
    added = f"<certHash>{cert_hash(certificate_der)}</certHash>\n<encrConfig>true</encrConfig>\n"
    return (text[:end] + added + text[end:]).encode("utf-8")


def stub(device: DeviceRecord, full_config: bytes) -> bytes:
    """The stub's XML: the CAPF servers and load of the full configuration, the device's CAPF mode.

    ``capfAuthMode`` is the pending CAPF operation's (0 when none is pending),
    so a phone without the certificate the stub names knows how to enrol.
    """
    config = PhoneConfig.from_bytes(full_config, source=f"{device.name}{PLAIN}")
    return build_stub(device.name[len("SEP"):], phone_certificate(device),
                      capf_auth_mode=device.capf.auth_mode_number, capf_servers=config.capf_list,
                      load_information=config.load_information or "")


def encrypted_device_file(
    suffix: str,
    device: DeviceRecord,
    full_config: bytes,
    signer: Identity,
    *,
    timestamp: int,
    digest: str,
) -> bytes | None:
    """``device.name + suffix`` for a device with an encrypted configuration; None when not served.

    ``suffix`` is ``PLAIN`` (the stub, unsigned), ``SIGNED`` (the stub signed by
    ``signer``) or ``ENCRYPTED`` (the full configuration; None when the lab
    knows no certificate of the phone, or only an EC one).
    """
    filename = device.name + suffix
    if suffix == PLAIN:
        return stub(device, full_config)
    if suffix == SIGNED:
        return build_signed_file(stub(device, full_config), signer, filename=filename, timestamp=timestamp,
                                 digest=digest).data
    if suffix != ENCRYPTED:
        raise UsageError(f"not a configuration suffix: {suffix!r}")  # a caller bug
    certificate = phone_certificate(device)
    if certificate is None or not can_wrap_to(certificate):
        return None
    return build_encrypted_config(mark_encrypted(full_config, certificate), signer,
                                  x509.load_der_x509_certificate(certificate), filename=filename,
                                  timestamp=timestamp, digest=digest)
