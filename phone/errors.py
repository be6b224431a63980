"""The project's exceptions.

Every error a user can cause with bad input derives from PhonetrustError; the
command line turns one into a single line on stderr and a non-zero exit, never
a traceback. Errors are split as h11 splits them: *local* (our caller asked for
something impossible) and *remote* (a file, a server or a peer sent something
wrong); either way the message says what was expected and where.
"""

from __future__ import annotations


class PhonetrustError(Exception):
    """Base class: a failure with a message fit for one line of output."""

    exit_code = 2


class LocalProtocolError(PhonetrustError):
    """A local error: the caller fed an event the phone machine has no transition for (its bug)."""


class UsageError(PhonetrustError):
    """Wrong arguments or a request that cannot be carried out as asked."""


class TrustListFormatError(PhonetrustError):
    """A CTL, ITL or .sgn file that does not follow SPEC section 2.

    ``offset`` is the byte position where reading went wrong, so that a user
    can look at the file with a hex viewer.
    """

    def __init__(self, offset: int, expected: str) -> None:
        self.offset = offset
        self.expected = expected
        super().__init__(f"at byte {offset}: {expected}")


class CertificateError(PhonetrustError):
    """A certificate or key that cannot be loaded or used."""


class UnknownModelError(PhonetrustError):
    """A phone model name that is not in the catalogue."""


class ConfigFormatError(PhonetrustError):
    """A phone configuration file (SEP<MAC>.cnf.xml) that cannot be read safely."""


class TvsProtocolError(PhonetrustError):
    """A TVS message that does not follow SPEC section 3 (remote error)."""


class TransportError(PhonetrustError):
    """A network exchange (TFTP, TLS) that failed or timed out."""
