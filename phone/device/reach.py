"""Where a host is: is anything listening at HOST:PORT, and is HOST this machine's loopback?

Client sockets and name lookups live in this room (the phone's clients are here). The
fleet's Ray engine asks before it joins a cluster, because ``ray.init`` retries an
address where nothing listens for minutes (docs/fleet.md, "On a Ray cluster"); the
fleet command asks whether a TFTP server or a lab is on loopback.
"""

from __future__ import annotations

import ipaddress
import socket


def unreachable(host: str, port: int, timeout: float) -> str | None:
    """Why a TCP connection to ``host``:``port`` failed within ``timeout`` seconds, or None if it opened."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except (OSError, UnicodeError, ValueError) as error:
        return getattr(error, "strerror", None) or str(error) or type(error).__name__
    return None


def is_loopback(host: str) -> bool:
    """True if ``host`` (an address or a name) is on the loopback range: only this machine reaches it."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        return ipaddress.ip_address(socket.gethostbyname(host)).is_loopback
    except (OSError, UnicodeError, ValueError):
        return False
