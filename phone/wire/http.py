"""HTTP provisioning's request shape, pure: the ports and the URL path of a TFTP file name (docs/http.md).

CUCM's TFTP service answers HTTP on 6970 and HTTPS on 6971 and 6972 (Cisco "TCP and UDP Port
Usage" guide); a phone asks ``GET /<TFTP file name>``, sub-folders kept (Cisco TAC 214535).
"""

from __future__ import annotations

import urllib.parse

from phone.errors import UsageError

HTTP_PORT = 6970
HTTPS_PORT = 6971


def url_path(name: str) -> str:
    """``/<name>``: the TFTP file name as the URL path, sub-folders kept, percent-encoded."""
    if not name or not name.isascii() or not name.isprintable() or name.startswith("/"):
        raise UsageError(f"HTTP file name must be a non-empty relative ASCII name, not {name!r}")
    return "/" + urllib.parse.quote(name, safe="/")
