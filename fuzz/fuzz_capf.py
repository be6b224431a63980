"""atheris fuzz target for the CAPF codec (docs/capf.md).

Any input must either decode to a CapfMessage that re-encodes to a frame decoding
to the same message, or raise CapfProtocolError with a one-line message; the
typed readings of a decoded message (certificate, SHA2_SIGNED_DATA) return or
raise CapfProtocolError. Fed to a FrameBuffer in two pieces (split where the
input's first byte says), it must give the same frames as whole, or refuse it
the same way. Anything else is a bug. Seed corpus: fuzz/corpus/capf (each
command of an install, fetch and delete, certificate credentials among them).

    .venv/bin/python fuzz/fuzz_capf.py fuzz/corpus/capf -max_total_time=60
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports(include=["phone"]):
    from phone.wire.capf import CapfMessage, CapfProtocolError, FrameBuffer


def _one_line(error: Exception) -> None:
    if "\n" in str(error):
        raise AssertionError(f"a CapfProtocolError of more than one line: {error!r}") from None


def _frames(pieces: list[bytes]) -> tuple[list[CapfMessage], str | None]:
    """The frames a stream reader gets from ``pieces``, and the error that stopped it (None: none)."""
    buffer, frames = FrameBuffer(), []
    try:
        for piece in pieces:
            buffer.feed(piece)
            while (frame := buffer.next_frame()) is not None:
                frames.append(frame)
    except CapfProtocolError as error:
        _one_line(error)
        return frames, type(error).__name__
    return frames, None


def test_one_input(data: bytes) -> None:
    try:
        message = CapfMessage.decode(data)
    except CapfProtocolError as error:
        _one_line(error)
    else:
        again = CapfMessage.decode(message.encode())
        if again != message:
            raise AssertionError(f"{message!r} re-encoded decodes to {again!r}")
        for reading in ("certificate", "sha2_signed_data", "device_name", "password", "reason_info"):
            try:
                getattr(message, reading)
            except CapfProtocolError as error:
                _one_line(error)
    split = data[0] % (len(data) + 1) if data else 0
    whole = _frames([data])
    pieces = _frames([data[:split], data[split:]])
    if whole != pieces:
        raise AssertionError(f"split at {split}: {pieces!r} where whole gives {whole!r}")


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
