"""The phone's own identity: its Manufacturing Installed Certificate (MIC), kept in flash.

Cisco TAC note 200860 ("LSC and MIC" Q&A): every phone leaves the factory with a
MIC, a certificate and key pair issued by a Cisco Manufacturing CA, with the
subject ``CN=CP-<model>-SEP<MAC>, OU=CTG, O=Cisco Systems Inc.``; it is permanent:
it survives a factory reset, which erases only a Locally Significant Certificate
(LSC). The emulated phone gets its MIC the first time it boots with an identity
store: an RSA 2048 key and a SHA-256 certificate with a random serial, issued by
an emulated "Cisco Manufacturing CA SHA2" (``default_mic_ca``) or one the user gives.

Layout, next to the flash generations of ``phone.device.flash`` (which
``FlashStore.wipe`` and a factory reset never touch)::

    STATE/
      identity/
        mic.pem          the certificate (PEM)
        mic.key          its private key (PKCS#8 PEM)
        identity.json    {"files": {name: SHA-256 hex}}
        lsc.json         once CAPF issued one: {"certificate": PEM, "key": PKCS#8 PEM, "sha256": …}

The folder is written once, whole: its files go into a hidden temporary folder
(each fsync'ed), which is then renamed to ``identity``. A rename onto an
existing folder fails, so a crash leaves either no identity or a complete one,
and two boots racing never replace each other's MIC. Reading follows the flash
store's rules (no symbolic links, regular files only, bounded reads) and checks
the SHA-256 of every file: a damaged identity is a ``FlashStoreError``, never a
reason to issue a new MIC silently.

The LSC (Cisco TAC note 200860: issued by CAPF, replaced by the next install,
removed by a CAPF delete or a factory reset) is one file, so that certificate
and key always change together: the new ``lsc.json`` is written beside the old
one under a hidden name, fsync'ed, and renamed over it (``os.replace`` is
atomic), so a crash leaves the old LSC or the new one, never a mix. A
certificate whose key is not its own is never written.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import secrets
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import attrs
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from phone.device.flash import (
    FlashStoreError,
    create_file,
    fsync_dir,
    is_real_folder,
    read_regular_file,
)
from phone.errors import CertificateError, UsageError
from phone.firmware.capf_session import key_label
from phone.wire.certs import (
    Identity,
    Profile,
    check_key_matches,
    generate_rsa_key,
    make_certificate,
    simple_subject,
)
from phone.wire.names import serial_hex

#: The emulated issuer of MICs, named as Cisco's SHA-2 manufacturing CA (Cisco TAC note 200860).
MIC_CA_SUBJECT = {"O": "Cisco", "CN": "Cisco Manufacturing CA SHA2"}
#: A MIC's organisation and unit (Cisco TAC note 200860); its CN is CP-<model>-SEP<MAC>.
MIC_ORGANIZATION = "Cisco Systems Inc."
MIC_UNIT = "CTG"
MIC_KEY_BITS = 2048
#: A MIC is valid as long as the phone lives; twenty years stands in for "permanent".
MIC_LIFETIME_DAYS = 7300
CA_LIFETIME_DAYS = 7300
#: The CA is valid from here on, so that phones made in rehearsals set in the past (the scenarios
#: replay Cisco TAC note 118893's 2015 at a virtual clock) hold MICs that chain to a CA valid then.
CA_VALID_FROM = datetime.datetime(2005, 1, 1, tzinfo=datetime.UTC)
#: The folders and files this module writes.
IDENTITY_FOLDER = "identity"
MIC_CERTIFICATE = "mic.pem"
MIC_KEY = "mic.key"
LSC_FILE = "lsc.json"
_META = "identity.json"
CA_CERTIFICATE = "ca.pem"
CA_KEY = "ca.key"
#: A PEM certificate or key of the sizes a phone holds is a few KB.
_MAX_BYTES = 64 * 1024

NewKey = Callable[[int], rsa.RSAPrivateKey]
Clock = Callable[[], datetime.datetime]


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _random_serial() -> int:
    """A random positive 16-byte serial (RFC 5280 allows up to 20 octets)."""
    raw = bytearray(secrets.token_bytes(16))
    raw[0] = (raw[0] & 0x7F) | 0x10
    return int.from_bytes(raw, "big")


@attrs.frozen
class PhoneIdentity:
    """What the phone's flash holds about itself: its MIC (and, once CAPF issued one, an LSC)."""

    mic: Identity
    lsc: Identity | None = None


def certificate_summary(identity: Identity) -> dict[str, str]:
    """``{"serial", "issuer"}``: upper-case hex without colons, the issuer as RFC 4514 text."""
    return {"serial": serial_hex(identity.serial).replace(":", "").upper(),
            "issuer": identity.certificate.issuer.rfc4514_string()}


def lsc_summary(lsc: Identity) -> dict[str, str | None]:
    """``{"serial", "issuer", "key"}`` of an LSC; ``key`` as "rsa2048", "ec256", … (docs/capf.md)."""
    return {**certificate_summary(lsc), "key": key_label(lsc.private_key)}


def identity_json(identity: PhoneIdentity | None) -> dict[str, Any] | None:
    """The ``"identity"`` object of `phone boot --json` (docs/phone.md, docs/capf.md)."""
    if identity is None:
        return None
    return {"mic": certificate_summary(identity.mic),
            "lsc": lsc_summary(identity.lsc) if identity.lsc is not None else None}


# -- writing a folder once, whole --------------------------------------------------------


def _publish_folder(target: Path, files: Mapping[str, bytes], *, durable: bool, secret: frozenset[str]) -> bool:
    """Create folder ``target`` holding ``files``, all or nothing; False when one already exists.

    The files are written into a hidden sibling folder first and that folder is renamed:
    ``os.rename`` of a folder onto an existing one fails, so the first writer wins and
    nobody ever sees a half-written folder.
    """
    parent = target.parent
    parent.mkdir(parents=True, exist_ok=True)
    staging = parent / f".{target.name}.tmp-{secrets.token_hex(6)}"
    staging.mkdir(mode=0o700)
    try:
        for name, data in files.items():
            create_file(staging / name, data, durable=durable)
            if name in secret:
                os.chmod(staging / name, 0o600)
        if durable:
            fsync_dir(staging)
        try:
            os.rename(staging, target)
        except OSError:
            if os.path.lexists(target):
                return False
            raise
        if durable:
            fsync_dir(parent)
        return True
    finally:
        if os.path.lexists(staging):
            shutil.rmtree(staging, ignore_errors=True)


def _read_file(path: Path) -> bytes:
    try:
        return read_regular_file(path, _MAX_BYTES)
    except FileNotFoundError:
        raise FlashStoreError(f"{path}: missing") from None


# -- the phone's identity in its state folder --------------------------------------------


class IdentityStore:
    """The identity part of a phone's flash in state folder ``directory``."""

    def __init__(self, directory: Path, *, durable: bool = True) -> None:
        self.directory = Path(directory)
        self.folder = self.directory / IDENTITY_FOLDER
        self.durable = durable

    def _damaged(self, path: Path, what: str) -> FlashStoreError:
        return FlashStoreError(f"{path}: {what}; the phone's identity is damaged and no new MIC is issued "
                               "in its place (a MIC is permanent: restore the folder from a copy)")

    def load(self) -> PhoneIdentity | None:
        """The identity in flash; None when the phone has none yet."""
        if not os.path.lexists(self.folder):
            return None
        if not is_real_folder(self.folder):
            raise self._damaged(self.folder, "not a folder the store wrote (a file or a symbolic link)")
        try:
            meta = json.loads(_read_file(self.folder / _META))
        except (ValueError, RecursionError):
            raise self._damaged(self.folder / _META, "not JSON") from None
        files = meta.get("files") if isinstance(meta, dict) else None
        if not isinstance(files, dict):
            raise self._damaged(self.folder / _META, "without the list of the files saved")
        contents = {}
        for name in (MIC_CERTIFICATE, MIC_KEY):
            data = _read_file(self.folder / name)
            if files.get(name) != hashlib.sha256(data).hexdigest():
                raise self._damaged(self.folder / name, f"{len(data)} bytes whose SHA-256 is not the one saved")
            contents[name] = data
        try:
            mic = Identity.from_pem(contents[MIC_CERTIFICATE], contents[MIC_KEY],
                                    certificate_source=str(self.folder / MIC_CERTIFICATE),
                                    key_source=str(self.folder / MIC_KEY))
            check_key_matches(mic.certificate, mic.private_key, certificate_source=str(self.folder / MIC_CERTIFICATE),
                              key_source=str(self.folder / MIC_KEY))
        except CertificateError as error:
            raise self._damaged(self.folder, str(error)) from None
        return PhoneIdentity(mic=mic, lsc=self.load_lsc())

    # -- the LSC -------------------------------------------------------------------------

    def load_lsc(self) -> Identity | None:
        """The LSC in flash, None when CAPF has issued none (or deleted it)."""
        path = self.folder / LSC_FILE
        if not os.path.lexists(path):
            return None
        data = _read_file(path)
        try:
            saved = json.loads(data)
            certificate, key = saved["certificate"].encode("ascii"), saved["key"].encode("ascii")
            digest = saved["sha256"]
        except (ValueError, RecursionError, KeyError, TypeError, AttributeError):
            raise self._damaged(path, "not the LSC file the store writes") from None
        if digest != hashlib.sha256(certificate + key).hexdigest():
            raise self._damaged(path, "an LSC whose SHA-256 is not the one saved")
        try:
            lsc = Identity.from_pem(certificate, key, certificate_source=f"{path} (certificate)",
                                    key_source=f"{path} (key)")
            check_key_matches(lsc.certificate, lsc.private_key, certificate_source=f"{path} (certificate)",
                              key_source=f"{path} (key)")
        except CertificateError as error:
            raise self._damaged(path, str(error)) from None
        return lsc

    def save_lsc(self, lsc: Identity) -> None:
        """Keep ``lsc`` as the phone's LSC, replacing any older one in one atomic step."""
        check_key_matches(lsc.certificate, lsc.private_key, certificate_source="the new LSC", key_source="its key")
        if not is_real_folder(self.folder):
            raise self._damaged(self.folder, "missing, or not a folder the store wrote: no MIC, no LSC")
        certificate, key = lsc.certificate_pem(), lsc.private_key_pem()
        document = {"certificate": certificate.decode("ascii"), "key": key.decode("ascii"),
                    "sha256": hashlib.sha256(certificate + key).hexdigest()}
        staging = self.folder / f".{LSC_FILE}.tmp-{secrets.token_hex(6)}"
        try:
            create_file(staging, json.dumps(document, indent=2).encode(), durable=self.durable)
            os.chmod(staging, 0o600)
            os.replace(staging, self.folder / LSC_FILE)
        finally:
            if os.path.lexists(staging):
                os.unlink(staging)
        if self.durable:
            fsync_dir(self.folder)

    def delete_lsc(self) -> bool:
        """Remove the LSC (a CAPF delete, a factory reset); False when there was none."""
        try:
            os.unlink(self.folder / LSC_FILE)
        except FileNotFoundError:
            return False
        if self.durable:
            fsync_dir(self.folder)
        return True

    def save_mic(self, mic: Identity) -> bool:
        """Keep ``mic`` as the phone's MIC; False (and nothing written) when it already has one."""
        files = {MIC_CERTIFICATE: mic.certificate_pem(), MIC_KEY: mic.private_key_pem()}
        meta = {"files": {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}}
        files[_META] = json.dumps(meta, indent=2).encode()
        return _publish_folder(self.folder, files, durable=self.durable, secret=frozenset({MIC_KEY}))

    def ensure_mic(self, model_name: str, device_name: str, authority: Callable[[], Identity], *,
                   clock: Clock = _utc_now, new_key: NewKey = generate_rsa_key) -> PhoneIdentity:
        """The phone's identity, issuing its MIC from ``authority()`` on first use only."""
        existing = self.load()
        if existing is not None:
            expected = mic_common_name(model_name, device_name)
            names = existing.mic.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
            held = str(names[0].value) if names else ""
            if held != expected:
                # The MIC is the hardware's own: one phone never speaks with another's.
                raise UsageError(f"{self.directory} holds the identity of {held or 'another phone'}, "
                                 f"not of {expected}: give this phone its own state folder")
            return existing
        self.save_mic(issue_mic(model_name, device_name, authority(), now=clock(), new_key=new_key))
        loaded = self.load()  # whichever MIC won a race is the one the phone keeps
        assert loaded is not None
        return loaded


def mic_common_name(model_name: str, device_name: str) -> str:
    """``CP-<model>-SEP<MAC>`` (Cisco TAC note 200860); catalogue names already start with ``CP-``."""
    model = model_name if model_name.upper().startswith("CP-") else f"CP-{model_name}"
    return f"{model}-{device_name}"


def issue_mic(model_name: str, device_name: str, ca: Identity, *, now: datetime.datetime,
              new_key: NewKey = generate_rsa_key) -> Identity:
    """A new MIC for the phone, signed by ``ca`` with SHA-256 (Cisco TAC note 200860)."""
    subject = simple_subject(O=MIC_ORGANIZATION, OU=MIC_UNIT, CN=mic_common_name(model_name, device_name))
    return make_certificate(subject, new_key(MIC_KEY_BITS), not_before=now, serial=_random_serial(),
                            profile=Profile.DEVICE, issuer=ca, lifetime_days=MIC_LIFETIME_DAYS)


# -- the manufacturing CA ----------------------------------------------------------------


def default_mic_ca_folder(environ: Mapping[str, str] = os.environ) -> Path:
    """``$XDG_DATA_HOME/phonetrust/mic-ca`` (``~/.local/share`` when unset), per the XDG base directories."""
    base = environ.get("XDG_DATA_HOME") or ""
    root = Path(base) if os.path.isabs(base) else Path.home() / ".local" / "share"
    return root / "phonetrust" / "mic-ca"


def load_mic_ca(certificate: Path, key: Path) -> Identity:
    """A manufacturing CA from PEM files (`phone boot --mic-ca CERT --mic-ca-key KEY`)."""
    try:
        ca = Identity.from_pem(read_regular_file(certificate, _MAX_BYTES), read_regular_file(key, _MAX_BYTES),
                               certificate_source=str(certificate), key_source=str(key))
    except FileNotFoundError as error:
        raise UsageError(f"{error.filename}: no such file") from None
    except FlashStoreError as error:
        raise UsageError(str(error)) from None
    check_key_matches(ca.certificate, ca.private_key, certificate_source=str(certificate), key_source=str(key))
    return ca


def new_mic_ca(*, now: datetime.datetime, new_key: NewKey = generate_rsa_key) -> Identity:
    """A fresh emulated "Cisco Manufacturing CA SHA2", valid from ``CA_VALID_FROM`` (or a year before
    ``now``, whichever is earlier) until ``CA_LIFETIME_DAYS`` after ``now``."""
    start = min(now - datetime.timedelta(days=365), CA_VALID_FROM)
    lifetime = (now - start).days + CA_LIFETIME_DAYS
    return make_certificate(simple_subject(**MIC_CA_SUBJECT), new_key(2048), not_before=start,
                            serial=_random_serial(), profile=Profile.CA, lifetime_days=lifetime)


def default_mic_ca(folder: Path | None = None, *, clock: Clock = _utc_now,
                   new_key: NewKey = generate_rsa_key) -> Identity:
    """The installation's manufacturing CA: created on first use in ``folder``, then always the same.

    A real random key, kept (key file mode 0600) rather than derived from a fixed
    seed, so nobody outside this installation can sign as it.
    """
    folder = folder or default_mic_ca_folder()
    if not os.path.lexists(folder):
        ca = new_mic_ca(now=clock(), new_key=new_key)
        _publish_folder(folder, {CA_CERTIFICATE: ca.certificate_pem(), CA_KEY: ca.private_key_pem()},
                        durable=True, secret=frozenset({CA_KEY}))
    return load_mic_ca(folder / CA_CERTIFICATE, folder / CA_KEY)
