"""Is anything listening at HOST:PORT? One plain TCP connection, closed at once.

Client sockets live in this room (the phone's clients are here); the fleet's
Ray engine asks before it joins a cluster, because ``ray.init`` retries an
address where nothing listens for minutes (docs/fleet.md, "On a Ray cluster").
"""

from __future__ import annotations

import socket


def unreachable(host: str, port: int, timeout: float) -> str | None:
    """Why a TCP connection to ``host``:``port`` failed within ``timeout`` seconds, or None if it opened."""
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except (OSError, UnicodeError, ValueError) as error:
        return getattr(error, "strerror", None) or str(error) or type(error).__name__
    return None
