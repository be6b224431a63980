"""The project's exceptions.

Every error a user can cause with bad input derives from PhonetrustError; the
command line turns one into a single line on stderr and a non-zero exit, never
a traceback. Errors are split as h11 splits them, by whose input was wrong:

* ``LocalError``: *our* side asked for something impossible. Our caller or
  user passed bad arguments, named an unknown model, wrote a scenario, model
  or settings file that breaks its schema, asked the lab for an operation CUCM
  would refuse, or fed the phone's state machine an event it does not accept.
  Fix the request and try again.
* ``RemoteError``: something *we did not write* is wrong. A trust list, a
  certificate or key read from a file or a peer, a configuration XML, a TVS or
  TFTP message, a lab or flash folder on disk, a console log given to the
  parser, a network exchange or a worker process. Whoever produced it is at
  fault; the message says what was expected and where (a byte offset, a file).

Where one name used to cover both kinds, it is split in two: a certificate or
key that cannot be loaded or used is a ``CertificateError`` (remote), while
asking to make one with parameters the project cannot produce (an RSA size or
curve CUCM never uses, an unknown digest) is a ``CertificateRequestError``
(local).
"""

from __future__ import annotations


class PhonetrustError(Exception):
    """Base class: a failure with a message fit for one line of output."""

    exit_code = 2


class LocalError(PhonetrustError):
    """Our caller or user asked for something impossible (see the module docstring)."""


class RemoteError(PhonetrustError):
    """A file, a server or a peer sent something wrong (see the module docstring)."""


# --- local: the request was wrong ---------------------------------------------------


class UsageError(LocalError):
    """Wrong arguments or a request that cannot be carried out as asked."""


class UnknownModelError(LocalError):
    """A phone model name that is not in the catalogue."""


class CertificateRequestError(LocalError):
    """A certificate, key or signature asked for with parameters the project cannot produce."""


class LocalProtocolError(LocalError):
    """An event the phone's state machine does not accept in its current step."""


# --- remote: what we were sent was wrong --------------------------------------------


class TrustListFormatError(RemoteError):
    """A CTL, ITL or .sgn file that does not follow the trust-list layout (docs/trust-lists.md).

    ``offset`` is the byte position where reading went wrong, so that a user
    can look at the file with a hex viewer.
    """

    def __init__(self, offset: int, expected: str) -> None:
        self.offset = offset
        self.expected = expected
        super().__init__(f"at byte {offset}: {expected}")


class CertificateError(RemoteError):
    """A certificate or key, from a file, a trust list or a peer, that cannot be loaded or used."""


class ConfigFormatError(RemoteError):
    """A phone configuration file (SEP<MAC>.cnf.xml) that cannot be read safely."""


class EncryptedConfigError(RemoteError):
    """An encrypted configuration file (SEP<MAC>.cnf.xml.enc.sgn) that cannot be opened (docs/encrypted-config.md).

    Layout faults are ``TrustListFormatError``s; these are the failures after a file reads well.
    """


class ConfigKeyUnwrapError(EncryptedConfigError):
    """The file's AES key cannot be unwrapped with the phone's private key (wrong key, or not RSA)."""


class ConfigPaddingError(EncryptedConfigError):
    """The decrypted configuration does not end with PADDINGCOUNT bytes of 0x0D."""


class ConfigDigestError(EncryptedConfigError):
    """The decrypted configuration's digest is not the file's CONTENTHASH."""


class TvsProtocolError(RemoteError):
    """A TVS message that does not follow the TVS wire format (docs/tvs.md)."""


class TransportError(RemoteError):
    """A network exchange (TFTP, TLS) that failed or timed out."""


class SignallingFormatError(RemoteError):
    """A SIP or Skinny (SCCP) message that does not follow its framing (docs/registration.md)."""
