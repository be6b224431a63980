"""atheris fuzz target for the TVS codec (docs/tvs.md).

Any input must decode to a TvsMessage that re-encodes to a frame decoding to
the same message, or raise TvsProtocolError with a one-line message; anything
else is a bug. Seed corpus: fuzz/corpus/tvs (requests and answers of each
type, the real S1 query among them).

    .venv/bin/python fuzz/fuzz_tvs.py fuzz/corpus/tvs -max_total_time=60
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["phone"]):
    from phone.errors import TvsProtocolError
    from phone.wire.tvs import TvsMessage


def test_one_input(data: bytes) -> None:
    try:
        message = TvsMessage.decode(data)
    except TvsProtocolError as error:
        if "\n" in str(error):
            raise AssertionError(f"a TvsProtocolError of more than one line: {error!r}") from None
        return
    again = TvsMessage.decode(message.encode())
    if again != message:
        raise AssertionError(f"{message!r} re-encoded decodes to {again!r}")


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
