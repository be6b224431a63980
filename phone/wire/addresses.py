"""``HOST[:PORT]`` as users type server addresses on the command line."""

from __future__ import annotations

from phone.errors import UsageError


def parse_host_port(text: str, default_port: int, *, what: str = "server") -> tuple[str, int]:
    """``HOST``, ``HOST:PORT`` or ``[V6]:PORT``; a bad port is a one-line UsageError."""
    host, port = text, default_port
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise UsageError(f"bad {what} address {text!r}: expected [ADDRESS]:PORT")
            port = _port(rest[1:], text, what)
    elif text.count(":") == 1:
        host, _, number = text.partition(":")
        port = _port(number, text, what)
    if not host:
        raise UsageError(f"no host in {what} address {text!r}")
    return host, port


def _port(text: str, whole: str, what: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise UsageError(f"bad port in {what} address {whole!r}: expected 1-65535")
    return int(text)
