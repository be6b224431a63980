"""atheris fuzz target for encrypted configuration files (SEP<MAC>.cnf.xml.enc.sgn, docs/encrypted-config.md).

Any input must either raise TrustListFormatError with a one-line message, or
parse into a file that re-encodes to itself, verifies against the TFTP
certificate only when it is a seed (the fuzzer holds no signing key), and
either decrypts to a plaintext that matches its CONTENTHASH and padding or
raises an EncryptedConfigError; anything else is a bug. Seed corpus:
fuzz/corpus/encconfig; the TFTP certificate and the phone's key are in
fuzz/encconfig_state (both written by fuzz/make_corpus.py).

    .venv/bin/python fuzz/fuzz_encconfig.py fuzz/corpus/encconfig -max_total_time=60
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["phone"]):
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    from phone.errors import EncryptedConfigError, TrustListFormatError
    from phone.wire.encconfig import EncryptedConfig, decrypt, verify_encrypted_config
    from phone.wire.tlv import DIGEST_NAMES

HERE = Path(__file__).parent
STATE = HERE / "encconfig_state"
TFTP = x509.load_der_x509_certificate((STATE / "tftp.der").read_bytes())
PHONE_KEY = serialization.load_pem_private_key((STATE / "phone-key.pem").read_bytes(), None)
SEEDS = frozenset(path.read_bytes() for path in (HERE / "corpus" / "encconfig").iterdir())


def test_one_input(data: bytes) -> None:
    try:
        parsed = EncryptedConfig.from_bytes(data)
    except TrustListFormatError as error:
        if "\n" in str(error):
            raise AssertionError(f"a TrustListFormatError of more than one line: {error!r}") from None
        return
    if parsed.signed.encode() != data:
        raise AssertionError("a parsed file did not re-encode to its own bytes")
    if verify_encrypted_config(parsed, TFTP) and data not in SEEDS:
        raise AssertionError("a file the fuzzer made verified against the TFTP certificate")
    try:
        plaintext = decrypt(parsed, PHONE_KEY)
    except EncryptedConfigError:
        return
    if hashlib.new(DIGEST_NAMES[parsed.content_digest], plaintext).digest() != parsed.content_hash:
        raise AssertionError("decrypt returned a plaintext that does not match CONTENTHASH")
    if len(plaintext) + parsed.padding_count != len(parsed.ciphertext):
        raise AssertionError("decrypt cut more or less than PADDINGCOUNT bytes")


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
