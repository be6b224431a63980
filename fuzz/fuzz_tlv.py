"""atheris fuzz target for the trust-list parser and verifier.

Any input must either parse (and then re-encode to itself and never verify
unless it is a genuine signed file) or raise TrustListFormatError; anything
else is a bug. Seed corpus: fuzz/corpus/tlv (real-format files).

    .venv/bin/python fuzz/fuzz_tlv.py fuzz/corpus/tlv -max_total_time=60
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["phone"]):
    from phone.errors import TrustListFormatError
    from phone.wire.signing import verify
    from phone.wire.tlv import TrustList


def test_one_input(data: bytes) -> None:
    try:
        parsed = TrustList.from_bytes(data)
    except TrustListFormatError:
        return
    if parsed.encode() != data:
        raise AssertionError("a parsed file did not re-encode to its own bytes")
    verify(parsed)


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
