"""TFTP: fetching files as a phone does, serving them as the lab's CUCM does (SPEC 4.1).

Both sides go through tftpy (its packet codec, download states and server loop)
behind this small interface; the rest of phonetrust imports only these names.

Client (``phone.tftp.client``)::

    fetcher = TftpFetcher(host, port=69, *, timeout=2.0, retries=3, deadline=30.0,
                          blksize=None, max_bytes=1 << 20)
    result = fetcher.fetch("CTLSEP0011223344AA.tlv", max_bytes=None)  # -> FetchResult
    result.status  # FetchStatus: "found" | "not_found" | "timed_out" | "failed"
    result.data    # bytes when found, else None
    result.reason, result.elapsed, result.server, result.blksize, result.found

Server (``phone.tftp.server``)::

    def dynamic(name: str, client: tuple[str, int]) -> bytes | None: ...
    with TftpFileServer(root, dynamic, host="127.0.0.1", port=0) as port:
        ...                      # serving in a background thread on `port`
    server.stats()               # -> ServerStats counters

User documentation, measured limits and benchmark figures: docs/tftp.md.
"""

from phone.tftp.client import FetchResult, FetchStatus, TftpFetcher
from phone.tftp.files import Dynamic
from phone.tftp.server import ServerStats, TftpFileServer

__all__ = ["Dynamic", "FetchResult", "FetchStatus", "ServerStats", "TftpFetcher", "TftpFileServer"]
