"""Encrypted configuration files (``SEP<MAC>.cnf.xml.enc.sgn``) and their stub (docs/encrypted-config.md).

With "TFTP Encrypted Config" ticked in the phone security profile, CUCM serves
a phone's configuration encrypted to that phone ("Security Guide for Cisco
Unified Communications Manager", chapter "Encrypted Phone Configuration File
Setup"). The file is a signed file with VERSION 2.0 whose header carries the
encryption data (ENCRYPTIONINFO, CONTENTDIGEST, CONTENTHASH) and whose body is
the ciphertext:

- AES-128-CBC with a fresh key and IV; the plaintext is padded with 0x0D bytes
  to the next 16-byte boundary (16 of them when it is already aligned) and the
  count is written as PADDINGCOUNT — not PKCS#7;
- the AES key wrapped with RSAES-PKCS1-v1_5 to the phone's certificate (LSC
  or MIC); EC keys cannot wrap, so the phone's key must be RSA;
- CONTENTHASH is the digest of the unpadded plaintext;
- the signature, by the TFTP (CallManager) key, covers the whole file but its
  SIGNATURE element, ciphertext included.

Randomness comes from ``secrets`` (no I/O module: this layer stays pure);
tests pin ``key`` and ``iv`` to get exact bytes. Checking the signature is the
caller's part (``verify_encrypted_config``) and comes before ``decrypt``.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from phone.errors import (
    ConfigDigestError,
    ConfigKeyUnwrapError,
    ConfigPaddingError,
    TrustListFormatError,
    UsageError,
)
from phone.wire.certs import Identity, PrivateKey
from phone.wire.config import CapfServer, first_text, parse_xml, xml_escape
from phone.wire.signing import (
    Layout,
    assemble,
    digest_code,
    signature_info_element,
    signer_id_element,
    verify,
)
from phone.wire.tlv import DIGEST_NAMES, Element, FileKind, HeaderTag, TrustList, element_bounds

VERSION = (2, 0)
AES_KEY_BYTES = 16
AES_BLOCK = 16
PAD_BYTE = 0x0D

# Header tags of an encrypted file (docs/encrypted-config.md).
ENCRYPTION_INFO = 16
IV_INFO = 17
IV_UNKNOWN = 18  # always 00 in files seen; meaning unknown
IV = 19
PADDING_COUNT = 20
KEY_INFO = 21
KEY_UNKNOWN = 22  # always 00 in files seen; meaning unknown
KEY_SIZE = 23
KEY_ALGORITHM = 24  # 01 in files seen: RSAES-PKCS1-v1_5
ENCRYPTED_KEY = 25
CONTENT_DIGEST = 26
CONTENT_HASH = 27

_HASHLIB = {"sha1": "sha1", "sha256": "sha256", "sha512": "sha512"}
#: Leaves with a fixed size: tag -> (bytes, name in errors).
_SIZES = {IV_UNKNOWN: (1, "tag 18"), IV: (16, "IV"), PADDING_COUNT: (2, "PADDINGCOUNT"),
          KEY_UNKNOWN: (1, "tag 22"), KEY_SIZE: (2, "KEYSIZE"), KEY_ALGORITHM: (1, "tag 24"),
          CONTENT_DIGEST: (1, "CONTENTDIGEST")}
_CONTAINER_TAGS = {ENCRYPTION_INFO: "ENCRYPTIONINFO", IV_INFO: "IVINFO", KEY_INFO: "KEYINFO"}
_MAC = re.compile(r"[0-9A-Fa-f]{12}")


def padding_count(length: int) -> int:
    """How many 0x0D bytes follow ``length`` plaintext bytes: 1..16, 16 when already aligned."""
    return AES_BLOCK - length % AES_BLOCK


def _content_hash(plaintext: bytes, code: int) -> bytes:
    return hashlib.new(_HASHLIB[DIGEST_NAMES[code]], plaintext).digest()  # type: ignore[index]


def build_encrypted_config(
    xml: bytes,
    signer: Identity,
    phone_certificate: x509.Certificate,
    *,
    filename: str,
    timestamp: int,
    digest: str | int = "sha1",
    key: bytes | None = None,
    iv: bytes | None = None,
) -> bytes:
    """``xml`` encrypted to ``phone_certificate`` and signed by ``signer`` (the TFTP/CallManager identity).

    ``digest`` is CUCM's "TFTP File Signature Algorithm": it names both the
    signature's digest and CONTENTDIGEST. ``key`` (16 bytes) and ``iv`` (16
    bytes) are random unless given.
    """
    key = secrets.token_bytes(AES_KEY_BYTES) if key is None else key
    iv = secrets.token_bytes(AES_BLOCK) if iv is None else iv
    if len(key) != AES_KEY_BYTES or len(iv) != AES_BLOCK:
        raise UsageError(f"AES-128-CBC takes a 16-byte key and IV, got {len(key)} and {len(iv)} bytes")
    phone_key = phone_certificate.public_key()
    if not isinstance(phone_key, rsa.RSAPublicKey):
        raise UsageError("the phone certificate's key is not RSA: an encrypted configuration's key is wrapped "
                         "with RSA, so a phone with an EC certificate gets the stub only")
    code = digest_code(digest)
    pad = padding_count(len(xml))
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    ciphertext = encryptor.update(xml + bytes([PAD_BYTE]) * pad) + encryptor.finalize()
    wrapped = phone_key.encrypt(key, padding.PKCS1v15())
    encryption_info = Element.container(ENCRYPTION_INFO, [
        Element.container(IV_INFO, [
            Element.uint(IV_UNKNOWN, 0, 1), Element(IV, iv), Element.uint(PADDING_COUNT, pad, 2),
        ]),
        Element.container(KEY_INFO, [
            Element.uint(KEY_UNKNOWN, 0, 1), Element.uint(KEY_SIZE, phone_key.key_size, 2),
            Element.uint(KEY_ALGORITHM, 1, 1), Element(ENCRYPTED_KEY, wrapped),
        ]),
    ])
    elements = [
        signer_id_element(signer, Layout.USECALLMANAGER),
        signature_info_element(signer, code),
        Element(HeaderTag.SIGNATURE),
        Element.text(HeaderTag.FILENAME, filename),
        Element.uint(HeaderTag.TIMESTAMP, timestamp, 4),
        encryption_info,
        Element.uint(CONTENT_DIGEST, code, 1),
        Element(CONTENT_HASH, _content_hash(xml, code)),
    ]
    signed = assemble(VERSION, elements, ciphertext, signer.private_key, digest=code,  # type: ignore[arg-type]
                      kind=FileKind.SGN)
    return signed.data


@attrs.frozen
class EncryptedConfig:
    """A parsed ``.enc.sgn``: the signed file and its encryption fields, checked for layout only."""

    signed: TrustList = attrs.field(repr=False)
    iv: bytes
    padding_count: int
    key_size: int
    encrypted_key: bytes = attrs.field(repr=False)
    content_digest: int
    content_hash: bytes
    ciphertext: bytes = attrs.field(repr=False)

    @classmethod
    def from_bytes(cls, data: bytes) -> EncryptedConfig:
        """Parse an encrypted configuration; ``TrustListFormatError`` naming the byte offset otherwise.

        Accepts the layouts usecallmanager's enccnf has written: CONTENTDIGEST and
        CONTENTHASH beside ENCRYPTIONINFO or inside it, elements in any order.
        """
        signed = TrustList.from_bytes(data, kind=FileKind.SGN)
        header = signed.header
        if header.version[0] != VERSION[0]:
            raise TrustListFormatError(3, f"VERSION 2.x for an encrypted file, found {header.version_text}")
        leaves: dict[int, tuple[int, bytes]] = {}
        info = [e for e in header.elements if e.tag == ENCRYPTION_INFO]
        if not info:
            raise TrustListFormatError(10, "an ENCRYPTIONINFO element (tag 16) in the header")
        _collect(signed.data, info[0].offset + 3, info[0].offset + 3 + len(info[0].value), "ENCRYPTIONINFO",
                 leaves, depth=1)
        for element in header.elements:
            if element.tag in (CONTENT_DIGEST, CONTENT_HASH):
                _note(leaves, element.tag, element.offset, element.value)
        end = header.header_length
        for tag, name in ((IV, "IV (tag 19)"), (PADDING_COUNT, "PADDINGCOUNT (tag 20)"),
                          (ENCRYPTED_KEY, "ENCRYPTEDKEY (tag 25)"), (CONTENT_DIGEST, "CONTENTDIGEST (tag 26)"),
                          (CONTENT_HASH, "CONTENTHASH (tag 27)")):
            if tag not in leaves:
                raise TrustListFormatError(info[0].offset, f"a {name} in the encryption header")
        for tag, (size, name) in _SIZES.items():
            if tag in leaves and len(leaves[tag][1]) != size:
                raise TrustListFormatError(leaves[tag][0], f"{name} of {size} byte(s), found {len(leaves[tag][1])}")
        count_at, count_bytes = leaves[PADDING_COUNT]
        count = int.from_bytes(count_bytes, "big")
        if not 1 <= count <= AES_BLOCK:
            raise TrustListFormatError(count_at, f"a PADDINGCOUNT between 1 and 16, found {count}")
        digest_at, digest_bytes = leaves[CONTENT_DIGEST]
        digest = digest_bytes[0]
        if digest not in DIGEST_NAMES:
            raise TrustListFormatError(digest_at, f"a CONTENTDIGEST of 1 (SHA-1), 2 (SHA-256) or 3 (SHA-512), found {digest}")
        hash_at, content_hash = leaves[CONTENT_HASH]
        wanted = hashlib.new(_HASHLIB[DIGEST_NAMES[digest]]).digest_size  # type: ignore[index]
        if len(content_hash) != wanted:
            raise TrustListFormatError(hash_at, f"a CONTENTHASH of {wanted} bytes, found {len(content_hash)}")
        key_at, encrypted_key = leaves[ENCRYPTED_KEY]
        if not encrypted_key:
            raise TrustListFormatError(key_at, "a non-empty ENCRYPTEDKEY")
        key_size = len(encrypted_key) * 8
        if KEY_SIZE in leaves:
            size_at, size_bytes = leaves[KEY_SIZE]
            key_size = int.from_bytes(size_bytes, "big")
            if key_size != len(encrypted_key) * 8:
                raise TrustListFormatError(
                    size_at, f"a KEYSIZE of {len(encrypted_key) * 8} bits for the {len(encrypted_key)}-byte "
                             f"ENCRYPTEDKEY, found {key_size}")
        ciphertext = signed.payload or b""
        if not ciphertext or len(ciphertext) % AES_BLOCK:
            raise TrustListFormatError(end, f"a ciphertext of a non-zero multiple of 16 bytes, found {len(ciphertext)}")
        return cls(signed, leaves[IV][1], count, key_size, encrypted_key, digest, content_hash, ciphertext)

    @property
    def filename(self) -> str | None:
        return self.signed.header.filename

    @property
    def timestamp(self) -> int | None:
        return self.signed.header.timestamp


def _note(leaves: dict[int, tuple[int, bytes]], tag: int, offset: int, value: bytes) -> None:
    if tag in leaves:
        raise TrustListFormatError(
            offset, f"at most one tag {tag} in the encryption header (another one is at byte {leaves[tag][0]})")
    leaves[tag] = (offset, value)


def _collect(data: bytes, start: int, end: int, where: str, leaves: dict[int, tuple[int, bytes]], depth: int) -> None:
    """Read the elements of ``data[start:end]``, descending IVINFO and KEYINFO; leaves go to ``leaves``.

    Unknown tags are skipped by their length, as in any header; each element
    must end inside its container.
    """
    position = start
    while position < end:
        tag, value_start, value_end = element_bounds(data, position, end, where)
        if tag in (IV_INFO, KEY_INFO):
            if depth >= 2:
                raise TrustListFormatError(position, f"{_CONTAINER_TAGS[tag]} only directly inside ENCRYPTIONINFO")
            if tag in leaves:
                raise TrustListFormatError(position, f"at most one {_CONTAINER_TAGS[tag]} "
                                                     f"(another one is at byte {leaves[tag][0]})")
            leaves[tag] = (position, b"")
            _collect(data, value_start, value_end, _CONTAINER_TAGS[tag], leaves, depth + 1)
        elif tag == ENCRYPTION_INFO:
            raise TrustListFormatError(position, "ENCRYPTIONINFO only at the header's top level")
        else:
            _note(leaves, tag, position, data[value_start:value_end])
        position = value_end


def verify_encrypted_config(parsed: EncryptedConfig, signer_certificate: x509.Certificate) -> bool:
    """Whether ``signer_certificate`` (the TFTP/CallManager record the phone trusts) signed the file."""
    return verify(parsed.signed, certificate=signer_certificate).valid


def decrypt(parsed: EncryptedConfig, private_key: PrivateKey) -> bytes:
    """The configuration XML: unwrap the key, decrypt, cut the 0x0D padding, check CONTENTHASH.

    Check the signature first (``verify_encrypted_config``): this proves the
    plaintext is the one that was hashed, not who wrote it.
    """
    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise ConfigKeyUnwrapError("the phone's key is not RSA, and an encrypted configuration's key is wrapped "
                                   "with RSA only")
    if private_key.key_size != parsed.key_size:
        raise ConfigKeyUnwrapError(f"the key is wrapped to a {parsed.key_size}-bit key; the phone's is "
                                   f"{private_key.key_size}-bit")
    try:
        key = private_key.decrypt(parsed.encrypted_key, padding.PKCS1v15())
    except ValueError:
        raise ConfigKeyUnwrapError("the phone's private key does not unwrap the file's AES key") from None
    if len(key) != AES_KEY_BYTES:
        # OpenSSL's implicit rejection answers a key wrapped to someone else with a random message of
        # random length, not an error; one of 16 bytes is caught by the padding or CONTENTHASH check.
        raise ConfigKeyUnwrapError(f"the unwrapped key is {len(key)} bytes, not an AES-128 key: wrapped to another phone")
    decryptor = Cipher(algorithms.AES(key), modes.CBC(parsed.iv)).decryptor()
    plaintext = decryptor.update(parsed.ciphertext) + decryptor.finalize()
    count = parsed.padding_count
    if plaintext[-count:] != bytes([PAD_BYTE]) * count:
        raise ConfigPaddingError(f"the decrypted file does not end with {count} padding bytes 0x0D: "
                                 "wrong key, or the file was altered")
    plaintext = plaintext[:-count]
    if _content_hash(plaintext, parsed.content_digest) != parsed.content_hash:
        raise ConfigDigestError("the decrypted configuration does not match CONTENTHASH")
    return plaintext


def cert_hash(certificate_der: bytes) -> str:
    """certHash: the lower-case hex MD5 of the phone certificate's DER (LSC, else MIC)."""
    return hashlib.md5(certificate_der).hexdigest()


def build_stub(
    mac: str,
    phone_certificate_der: bytes | None,
    *,
    capf_auth_mode: int,
    capf_servers: Sequence[str | CapfServer],
    load_information: str = "",
) -> bytes:
    """The stub ``SEP<MAC>.cnf.xml`` served beside an encrypted configuration (sign it as a ``.sgn``).

    Only what a phone needs to fetch and open its encrypted file, or to enrol
    with CAPF first: ``fullConfig`` false, ``encrConfig`` true, ``certHash`` of
    the certificate the file is encrypted to, the CAPF servers (names, or
    ``CapfServer`` records for another port than 3804) and mode.
    ``phone_certificate_der`` None (CUCM knows no certificate of the phone yet)
    gives an empty ``certHash``: the phone must enrol with CAPF first.
    """
    if not _MAC.fullmatch(mac):
        raise UsageError(f"a MAC address is 12 hex digits, got {mac[:40]!r}")
    servers = [server if isinstance(server, CapfServer) else CapfServer(server) for server in capf_servers]
    capf = "".join(
        f"<capf><phonePort>{server.port}</phonePort><processNodeName>{xml_escape(server.address)}</processNodeName></capf>"
        for server in servers
    )
    text = (
        "<device>\n"
        "<fullConfig>false</fullConfig>\n"
        "<ipAddressMode>0</ipAddressMode>\n"
        f"<loadInformation>{xml_escape(load_information)}</loadInformation>\n"
        f"<capfAuthMode>{int(capf_auth_mode)}</capfAuthMode>\n"
        f"<capfList>{capf}</capfList>\n"
        f"<certHash>{'' if phone_certificate_der is None else cert_hash(phone_certificate_der)}</certHash>\n"
        "<encrConfig>true</encrConfig>\n"
        "</device>\n"
    )
    return text.encode("utf-8")


def stub_cert_hash(xml: bytes) -> str | None:
    """The ``certHash`` of a configuration, lower-cased; None when absent or empty.

    ``ConfigFormatError`` when the XML is unsafe or not well-formed.
    """
    value = first_text(parse_xml(xml), "certHash")
    return value.lower() if value else None


def stub_hash_matches(xml: bytes, certificate: x509.Certificate) -> bool:
    """Whether the stub's certHash names ``certificate``: a phone fetches the ``.enc.sgn`` only then."""
    return stub_cert_hash(xml) == cert_hash(certificate.public_bytes(serialization.Encoding.DER))
