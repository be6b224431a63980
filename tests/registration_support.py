"""Certificates and a running CallManager for the registration tests (docs/registration.md)."""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Iterator, Sequence
from pathlib import Path

import attrs
from cryptography import x509

from phone.device.identity import issue_mic, new_mic_ca
from phone.lab.servers.signalling import (
    RunningCallManager,
    SignallingSettings,
    running_callmanager,
)
from phone.tls import ClientIdentity
from phone.wire.certs import (
    Identity,
    Profile,
    generate_rsa_key,
    make_certificate,
    simple_subject,
)

NOW = datetime.datetime.now(datetime.UTC)
DEVICE = "SEPB000B4BA0AEE"


def write_identity(identity: Identity, folder: Path, stem: str) -> ClientIdentity:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.pem").write_bytes(identity.certificate_pem())
    (folder / f"{stem}.key").write_bytes(identity.private_key_pem())
    return ClientIdentity(folder / f"{stem}.pem", folder / f"{stem}.key")


def server_identity(common_name: str = "cucm-pub", bits: int = 2048) -> Identity:
    return make_certificate(simple_subject(O="Lab", CN=common_name), generate_rsa_key(bits), not_before=NOW,
                            serial=0x1234 + bits, profile=Profile.SERVER)


@attrs.frozen
class Pki:
    """A CallManager certificate, a manufacturing CA the cluster trusts, one it does not, and MICs."""

    folder: Path
    callmanager: Identity
    trusted_ca: Identity
    foreign_ca: Identity

    def mic(self, device: str = DEVICE, *, ca: Identity | None = None, model: str = "CP-8861",
            stem: str = "mic") -> ClientIdentity:
        mic = issue_mic(model, device, ca or self.trusted_ca, now=NOW)
        return write_identity(mic, self.folder / f"{stem}-{device}-{(ca or self.trusted_ca).serial.hex()}", stem)

    @property
    def server_files(self) -> tuple[Path, Path]:
        files = write_identity(self.callmanager, self.folder / "server", "callmanager")
        return files.certificate, files.key


def make_pki(folder: Path) -> Pki:
    return Pki(folder, server_identity(), new_mic_ca(now=NOW), new_mic_ca(now=NOW))


@contextlib.contextmanager
def callmanager(pki: Pki, *, trusted: Sequence[x509.Certificate] | None = None, secure_devices: Sequence[str] = (),
                sccp: bool = False, min_tls: str = "1.0", trace: list[str] | None = None,
                timeout: float = 10.0) -> Iterator[RunningCallManager]:
    """A CallManager on loopback trusting ``trusted`` (default: the trusted CA) whose secure devices are named."""
    ports = {"sip": 0, "sip-tls": 0, "sccp": 0 if sccp else None}
    certificate, key = pki.server_files
    chain = [pki.trusted_ca.certificate] if trusted is None else list(trusted)
    with running_callmanager(certificate, key, trusted=lambda: chain,
                             security_mode=lambda device: 2 if device in secure_devices else 1,
                             settings=SignallingSettings(ports=ports, min_tls=min_tls, timeout=timeout),
                             trace=trace.append if trace is not None else None) as running:
        yield running
