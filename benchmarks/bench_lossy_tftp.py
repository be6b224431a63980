"""TFTP downloads through a lossy network: success rate and time per loss level (docs/reliability.md).

    .venv/bin/python benchmarks/bench_lossy_tftp.py [--downloads 100] [--seed 8] [--size 4912]
        [--client-retries 3] [--server-retries 3]

The fetcher (``TftpFetcher``) downloads one file, over and over, from the
lab's TFTP server (``phone.lab.servers.tftp.TftpFileServer``) through
``phone.testing.lossy.LossyUdpProxy`` on loopback, at 512-byte blocks (a
4.9 KB ITL is 10 blocks: 23 datagrams without loss). Retry policy as the
phones' and the lab's defaults unless told otherwise: the client resends 3
times (a phone's ``tftp_retries``); the server's ``retries=3`` (each block
is resent at most 3 times after the first). The waits are
scaled down from 5 s (phone) and 2 s (server) to 0.1 s and 0.04 s so that
the run is short. Success rates depend on the resend counts, not on the
waits; times scale with the waits.

For each row: downloads that completed (every one is compared byte for byte
with the file), failures by kind, the mean and 95th percentile time, and the
ratio of the mean to the loss-free mean measured in the same run. Rows with
"+dup+reorder" also duplicate 10% of the datagrams and hold back 10% (sent
after the next one, or after 0.12 s).
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import sys
import time

from phone.testing.lossy import Impairment, LossyUdpProxy
from phone.device.tftp import TftpFetcher
from phone.lab.servers.tftp import TftpFileServer

CLIENT_WAIT = 0.1
SERVER_WAIT = 0.04
DEADLINE = 10.0
LOSSES = (0.0, 0.01, 0.05, 0.10, 0.20, 0.30, 0.50)


def run_row(server_port: int, impairment: Impairment, payload: bytes, downloads: int, seed: int, retries: int):
    outcomes: collections.Counter[str] = collections.Counter()
    times = []
    proxy = LossyUdpProxy(("127.0.0.1", server_port), impairment, seed=seed)
    with proxy as port:
        fetcher = TftpFetcher("127.0.0.1", port, timeout=CLIENT_WAIT, retries=retries, deadline=DEADLINE,
                              blksize=512)
        for _ in range(downloads):
            result = fetcher.fetch("file")
            times.append(result.elapsed)
            if result.found:
                outcomes["ok" if result.data == payload else "WRONG DATA"] += 1
            else:
                outcomes["half-written" if result.data is not None else result.status.value] += 1
    return outcomes, times, proxy.stats


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--downloads", type=int, default=100)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--size", type=int, default=4912, help="file size in bytes (default: an ITL's)")
    parser.add_argument("--client-retries", type=int, default=3, help="TftpFetcher retries (a phone's: 3)")
    parser.add_argument("--server-retries", type=int, default=3, help="TftpFileServer retries (default: 3)")
    args = parser.parse_args()
    payload = os.urandom(args.size)
    print(f"{args.downloads} downloads of {args.size} bytes per row; client waits {CLIENT_WAIT} s, "
          f"{args.client_retries} resends; server waits {SERVER_WAIT} s, retries={args.server_retries}; "
          f"seed {args.seed}")
    print(f"{'loss':>5} {'variant':<15} {'ok':>5} {'timed out':>9} {'failed':>6} {'bad':>4} "
          f"{'mean s':>7} {'p95 s':>6} {'x base':>7} {'datagrams':>9}")
    baseline = None
    bad_total = 0
    with TftpFileServer(None, lambda name, _client: payload, timeout=SERVER_WAIT,
                        retries=args.server_retries) as server:
        for loss in LOSSES:
            for variant, extra in (("drop only", {}), ("+dup+reorder", {"duplicate": 0.1, "reorder": 0.1})):
                impairment = Impairment(drop=loss, hold=0.12, **extra)
                outcomes, times, stats = run_row(server, impairment, payload, args.downloads, args.seed,
                                                 args.client_retries)
                mean = statistics.fmean(times)
                baseline = baseline or mean
                bad = outcomes["WRONG DATA"] + outcomes["half-written"]
                bad_total += bad
                p95 = sorted(times)[int(0.95 * (len(times) - 1))]
                print(f"{loss:>5.0%} {variant:<15} {outcomes['ok']:>5} {outcomes['timed_out']:>9} "
                      f"{outcomes['failed']:>6} {bad:>4} {mean:>7.3f} {p95:>6.3f} {mean / baseline:>7.1f} "
                      f"{stats['datagrams']:>9}", flush=True)
    print(f"wrong or half-written files: {bad_total}")
    return 1 if bad_total else 0


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    print(f"({time.monotonic() - started:.0f} s)", file=sys.stderr)
    raise SystemExit(code)
