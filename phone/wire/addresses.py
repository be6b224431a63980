"""``HOST[:PORT]`` as users type server addresses on the command line, and the checks
every server address passes before a socket is asked to resolve it.

A host is an IP address (IPv4, or IPv6 with an optional ``%zone``) or a name the IDNA
codec can encode (RFC 5890: labels of 1 to 63 characters; what ``socket`` does with a
name before resolving it, raising ``UnicodeError``, which is not an ``OSError``, when it
cannot). A port is 1 to 5 ASCII digits naming 1-65535: ``str.isdigit`` also accepts "²",
which ``int`` refuses, and ``int`` refuses more than 4,300 digits outright.
"""

from __future__ import annotations

import ipaddress

from phone.errors import UsageError

#: DNS: a name of at most 253 characters (RFC 1035 section 2.3.4, without the final dot).
MAX_HOST_NAME = 253


def parse_host_port(text: str, default_port: int, *, what: str = "server") -> tuple[str, int]:
    """``HOST``, ``HOST:PORT`` or ``[V6]:PORT``; a bad host or port is a one-line UsageError."""
    host, port = text, default_port
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":"):
                raise UsageError(f"bad {what} address {_shown(text)}: expected [ADDRESS]:PORT")
            port = _port(rest[1:], text, what)
    elif text.count(":") == 1:
        host, _, number = text.partition(":")
        port = _port(number, text, what)
    if not host:
        raise UsageError(f"no host in {what} address {_shown(text)}")
    problem = host_problem(host)
    if problem is not None:
        raise UsageError(f"bad host in {what} address {_shown(text)}: {problem}")
    return host, port


def host_problem(host: str) -> str | None:
    """Why ``host`` cannot name a server (one line), or None when it can be resolved."""
    try:
        ipaddress.ip_address(host.partition("%")[0] if ":" in host else host)
        return None
    except ValueError:
        pass
    if not host or len(host) > MAX_HOST_NAME:
        return f"a host name has 1 to {MAX_HOST_NAME} characters"
    if any(not char.isprintable() or char.isspace() for char in host):
        return "a host name holds no spaces or control characters"
    try:
        host.encode("idna")
    except UnicodeError:
        return "not a host name (empty label, label over 63 characters or characters IDNA cannot encode)"
    return None


def port_number(text: str) -> int | None:
    """``text`` as a TCP/UDP port (1-65535, ASCII digits only), or None."""
    if not 0 < len(text) <= 5 or not text.isascii() or not text.isdigit():
        return None
    number = int(text)
    return number if 0 < number < 65536 else None


def _port(text: str, whole: str, what: str) -> int:
    number = port_number(text)
    if number is None:
        raise UsageError(f"bad port in {what} address {_shown(whole)}: expected 1-65535")
    return number


def _shown(text: str) -> str:
    """The address as the user typed it, cut short: an error line stays one short line."""
    return repr(text if len(text) <= 80 else text[:77] + "...")
