"""What HTTP-first costs a phone's download: HTTP, TFTP, and a refused HTTP then TFTP (docs/http.md).

    .venv/bin/python benchmarks/bench_http.py [--seconds 2]

One client thread fetches a 5 KB file in a loop from the lab's servers
(``phone.lab.servers.http`` and ``phone.lab.servers.tftp``, each in its own
thread and event loop of this process) with the phone's clients
(``phone.device.http.HttpFetcher``, ``phone.device.tftp.TftpFetcher``). The
baseline, in the same run, is the TFTP download alone; the rows give the mean
time of one download and its ratio to that baseline:

- ``http``: the file over HTTP (a new TCP connection per file, as a phone's dgetfile);
- ``tftp``: the baseline;
- ``refused + tftp``: HTTP refused (nothing listens), then the TFTP try: what an
  HTTP-first model pays against a server without HTTP.
"""

from __future__ import annotations

import argparse
import os
import socket
import time
from collections.abc import Callable

FILE_SIZE = 5 * 1024
NAME = "CTLSEP001122334455.tlv"


def _rate(fetch: Callable[[], bool], seconds: float) -> tuple[float, int]:
    """Mean seconds per successful fetch over ``seconds``."""
    done, ends = 0, time.perf_counter() + seconds
    started = time.perf_counter()
    while time.perf_counter() < ends:
        if not fetch():
            raise SystemExit("a fetch failed: the benchmark measures successful downloads only")
        done += 1
    return (time.perf_counter() - started) / done, done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="seconds per row (default 2)")
    args = parser.parse_args()

    from phone.device.http import HttpFetcher
    from phone.device.tftp import TftpFetcher
    from phone.lab.servers.http import HttpFileServer
    from phone.lab.servers.tftp import TftpFileServer

    payload = os.urandom(FILE_SIZE)
    files = lambda name, client: payload if name == NAME else None  # noqa: E731
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    with TftpFileServer(None, files) as tftp_port, HttpFileServer(None, files) as http_port:
        tftp = TftpFetcher("127.0.0.1", tftp_port)
        http = HttpFetcher("127.0.0.1", http_port)
        refused = HttpFetcher("127.0.0.1", closed_port)

        def fallback() -> bool:
            return not refused.fetch(NAME).found and tftp.fetch(NAME).found

        rows = {
            "tftp": _rate(lambda: tftp.fetch(NAME).found, args.seconds),
            "http": _rate(lambda: http.fetch(NAME).found, args.seconds),
            "refused + tftp": _rate(fallback, args.seconds),
        }
    baseline = rows["tftp"][0]
    print(f"{'download of 5 KB':<18} {'ms each':>8} {'count':>7} {'x tftp':>7}")
    for label, (seconds, count) in rows.items():
        print(f"{label:<18} {seconds * 1000:8.2f} {count:7d} {seconds / baseline:7.2f}")


if __name__ == "__main__":
    main()
