"""TLS contexts for TVS, client and server side (docs/tvs.md).

Phones of the 7900/9900 series speak only TLS 1.0 (some 1.1) and CUCM 10.x
used 1024-bit RSA keys. OpenSSL 3 refuses both at its default security level,
so every context here lowers it (``@SECLEVEL=0``, a setting) whenever a legacy
version or key may be in play: this is an emulator of old devices, and the
phone's own trust decision is the pin on the server certificate, not the CA.

Certificates and keys are read from PEM or DER files; ``ssl`` wants PEM
files, so they are converted through a private temporary folder.
"""

from __future__ import annotations

import asyncio
import functools
import os
import ssl
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from phone.wire.certs import Identity, check_key_matches, load_certificate, load_private_key
from phone.errors import CertificateError, UsageError

#: TLS versions by the names phone models and CUCM settings use.
TLS_VERSIONS = {
    "1.0": ssl.TLSVersion.TLSv1,
    "1.1": ssl.TLSVersion.TLSv1_1,
    "1.2": ssl.TLSVersion.TLSv1_2,
    "1.3": ssl.TLSVersion.TLSv1_3,
}
#: OpenSSL security level of every TVS context (0: TLS 1.0, SHA-1 and RSA 1024 allowed).
DEFAULT_SECLEVEL = 0


def tls_version(name: str) -> ssl.TLSVersion:
    try:
        return TLS_VERSIONS[name]
    except KeyError:
        raise UsageError(f"unknown TLS version {name!r}: expected one of {', '.join(TLS_VERSIONS)}") from None


def read_certificate(path: str | os.PathLike[str]) -> bytes:
    """The DER bytes of the certificate in a PEM or DER file."""
    certificate = load_certificate(Path(path).read_bytes(), source=str(path))
    return certificate.public_bytes(serialization.Encoding.DER)


def _load_identity(context: ssl.SSLContext, certificate: str | os.PathLike[str],
                   key: str | os.PathLike[str]) -> None:
    loaded = load_certificate(Path(certificate).read_bytes(), source=str(certificate))
    private_key = load_private_key(Path(key).read_bytes(), source=str(key))
    check_key_matches(loaded, private_key, certificate_source=str(certificate), key_source=str(key))
    try:
        _load_pem_pair(context, loaded.public_bytes(serialization.Encoding.PEM),
                       private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
    except ssl.SSLError as error:
        raise CertificateError(f"{certificate} with {key}: {error.reason or error}") from None


def _load_pem_pair(context: ssl.SSLContext, certificate_pem: bytes, key_pem: bytes) -> None:
    """Load a certificate and its key held in memory into ``context``; ``ssl.SSLError`` if OpenSSL refuses.

    OpenSSL reads them only from files: these live in a private temporary folder,
    the key with mode 0600, only while it reads them.
    """
    with tempfile.TemporaryDirectory(prefix="phonetrust-tls-") as folder:
        cert_file, key_file = Path(folder, "cert.pem"), Path(folder, "key.pem")
        cert_file.write_bytes(certificate_pem)
        descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(key_pem)
        context.load_cert_chain(cert_file, key_file)


def _versions_between(min_version: str, max_version: str) -> list[str]:
    """The TLS versions from ``min_version`` to ``max_version``; ``UsageError`` when there are none."""
    versions = [name for name, version in TLS_VERSIONS.items()
                if tls_version(min_version) <= version <= tls_version(max_version)]
    if not versions:
        raise UsageError(f"TLS minimum {min_version} is above maximum {max_version}")
    return versions


def _bounded(context: ssl.SSLContext, versions: Sequence[str], seclevel: int) -> ssl.SSLContext:
    chosen = sorted(tls_version(name) for name in versions)
    if not chosen:
        raise UsageError("at least one TLS version is needed")
    context.set_ciphers(f"DEFAULT:@SECLEVEL={seclevel}")
    with warnings.catch_warnings():
        # Python deprecates TLS 1.0/1.1; emulating phones that speak only them is the point.
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = chosen[0]
        context.maximum_version = chosen[-1]
    return context


def error_reason(error: BaseException) -> str:
    """A short reason for a TLS or socket error: OpenSSL's reason, else the OS message."""
    if isinstance(error, ssl.SSLError) and error.reason:
        return error.reason
    if isinstance(error, TimeoutError):
        return "timed out"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


async def close_stream(writer: asyncio.StreamWriter, timeout: float) -> None:
    """Close a (TLS) stream, waiting at most ``timeout`` for the peer; abort after that."""
    writer.close()
    try:
        await asyncio.wait_for(writer.wait_closed(), timeout)
    except (Exception, asyncio.CancelledError):  # noqa: BLE001 - a peer that never closes is cut
        writer.transport.abort()


@attrs.frozen
class ClientIdentity:
    """A phone's certificate and key (its MIC or LSC) presented to the TVS server (docs/tvs.md)."""

    certificate: Path = attrs.field(converter=Path)
    key: Path = attrs.field(converter=Path)


@functools.lru_cache(maxsize=64)
def client_context(versions: tuple[str, ...], identity: ClientIdentity | None = None,
                   seclevel: int = DEFAULT_SECLEVEL) -> ssl.SSLContext:
    """A client context that verifies nothing by itself: the caller pins the server certificate.

    Cached: a fleet of thousands of phones shares a handful of contexts.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    _bounded(context, versions, seclevel)
    if identity is not None:
        _load_identity(context, identity.certificate, identity.key)
    return context


def server_context(certificate: str | os.PathLike[str], key: str | os.PathLike[str], *,
                   min_version: str = "1.0", max_version: str = "1.3",
                   seclevel: int = DEFAULT_SECLEVEL) -> ssl.SSLContext:
    """A server context that does not ask for a client certificate (docs/tvs.md: servers may ignore it).

    Python's ``ssl`` cannot request a certificate without verifying it against
    a CA, and a phone's MIC or LSC chains to Cisco's or the cluster's CAPF.
    """
    context = _bounded(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), _versions_between(min_version, max_version),
                       seclevel)
    _load_identity(context, certificate, key)
    return context


def identity_server_context(identity: Identity, *, client_trust: Sequence[x509.Certificate] | None = None,
                            min_version: str = "1.0", max_version: str = "1.3",
                            seclevel: int = DEFAULT_SECLEVEL) -> ssl.SSLContext:
    """A server context presenting ``identity``; with ``client_trust``, a client must present a
    certificate that chains to one of those certificates (docs/http.md, HTTPS port 6972).

    The identity is already a parsed pair, so its key is not read back and checked as
    ``server_context`` checks a key file (re-reading an RSA key costs a fifth of a second);
    OpenSSL still refuses a key that does not match the certificate (``CertificateError``).
    """
    context = _bounded(ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER), _versions_between(min_version, max_version),
                       seclevel)
    try:
        _load_pem_pair(context, identity.certificate_pem(), identity.private_key_pem())
    except ssl.SSLError as error:
        subject = identity.certificate.subject.rfc4514_string()
        raise CertificateError(f"the certificate {subject} cannot serve TLS: {error.reason or error}") from None
    if client_trust is not None:
        context.verify_mode = ssl.CERT_REQUIRED
        pems = "".join(c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in client_trust)
        if pems:
            context.load_verify_locations(cadata=pems)
    return context
