"""Downloads per second of CTL-sized (5 KB) files from the lab's TFTP server (``phone.lab.servers.tftp``).

    .venv/bin/python benchmarks/bench_tftp.py [--seconds 2] [--concurrency 1,10,50]

Each server runs in a child process (its own interpreter and GIL, as the lab
would beside a fleet); the clients are threads of this process, each looping
TftpFetcher.fetch. The baseline, measured in the same run with the same
threads, is a raw UDP echo of a 5 KB datagram on loopback: one round trip, the
least a download can cost. A download at the loopback block size costs two
round trips (request/OACK, ACK/DATA) plus the final ACK and a socket per fetch.

For each row: operations per second, the ratio to the echo baseline, and the
CPU seconds per operation spent by the server process and by the client
process; the busiest side is what limits throughput. The last lines compare
the result with what the "fleets" issue needs: 150 phone boots per second,
each fetching 4 files (CTLSEP<MAC>.tlv, ITLSEP<MAC>.tlv -> not found,
ITLFile.tlv, SEP<MAC>.cnf.xml.sgn; docs/phone.md).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

FILE_SIZE = 5 * 1024
BOOTS_NEEDED = 150
FILES_PER_BOOT = 4


def _boot_server() -> Any:
    """A TftpFileServer answering every name with 5 KB but ITLSEP<MAC>.tlv (not found, docs/phone.md)."""
    from phone.lab.servers.tftp import TftpFileServer

    payload = os.urandom(FILE_SIZE)
    return TftpFileServer(None, lambda name, client: None if name.startswith("ITLSEP") else payload)


def _tftp_child(conn: Any) -> None:
    """The server process."""
    server = _boot_server()
    conn.send(server.start_in_thread())
    _answer_until_stopped(conn, lambda: server.stats())
    server.stop()


def _echo_child(conn: Any) -> None:
    """The baseline process: a UDP echo on loopback."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)  # 50 clients x 5 KB in flight
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(0.2)
    stopping = threading.Event()

    def echo() -> None:
        while not stopping.is_set():
            try:
                datagram, peer = sock.recvfrom(65536)
            except TimeoutError:
                continue
            sock.sendto(datagram, peer)

    thread = threading.Thread(target=echo, daemon=True)
    thread.start()
    conn.send(sock.getsockname()[1])
    _answer_until_stopped(conn, lambda: None)
    stopping.set()
    thread.join()


def _answer_until_stopped(conn: Any, stats: Callable[[], object]) -> None:
    while conn.recv() == "cpu":
        conn.send((time.process_time(), stats()))


class Child:
    """A server in its own process; cpu() reads its CPU seconds and counters."""

    shares_process = False

    def __init__(self, target: Callable[[Any], None]) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child_conn = context.Pipe()
        self.process = context.Process(target=target, args=(child_conn,), daemon=True)
        self.process.start()
        self.port: int = self.conn.recv()

    def cpu(self) -> tuple[float, Any]:
        self.conn.send("cpu")
        return self.conn.recv()

    def close(self) -> None:
        self.conn.send("stop")
        self.process.join(10)


class InProcess:
    """The TFTP server as a thread of this process, as when a fleet and the lab share one."""

    shares_process = True

    def __init__(self) -> None:
        self.server = _boot_server()
        self.port = self.server.start_in_thread()
        self._clock = time.pthread_getcpuclockid(self.server._thread.ident)

    def cpu(self) -> tuple[float, Any]:
        return time.clock_gettime(self._clock), self.server.stats()

    def close(self) -> None:
        self.server.stop()


def measure(
    concurrency: int, seconds: float, make_op: Callable[[], Callable[[], bool]], child: Child | InProcess
) -> dict:
    """Run ``concurrency`` threads doing ``op`` for ``seconds``; rates and CPU per operation."""
    ops = [make_op() for _ in range(concurrency)]
    done = [0] * concurrency
    failed = [0] * concurrency
    start_line = threading.Barrier(concurrency + 1)
    stop_at = 0.0

    def worker(index: int) -> None:
        op = ops[index]
        start_line.wait()
        while time.monotonic() < stop_at:
            if op():
                done[index] += 1
            else:
                failed[index] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    server_cpu_before, _ = child.cpu()
    client_cpu_before = time.process_time()
    started = time.monotonic()
    stop_at = started + seconds
    start_line.wait()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    server_cpu_after, stats = child.cpu()
    client_cpu = time.process_time() - client_cpu_before
    server_cpu = server_cpu_after - server_cpu_before
    if child.shares_process:
        client_cpu -= server_cpu
    total = sum(done)
    return {
        "rate": total / elapsed,
        "failed": sum(failed),
        "server_cpu": server_cpu / max(total, 1),
        "client_cpu": client_cpu / max(total, 1),
        "stats": stats,
    }


def echo_op(port: int) -> Callable[[], Callable[[], bool]]:
    payload = os.urandom(FILE_SIZE)

    def make() -> Callable[[], bool]:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.settimeout(1.0)

        def op() -> bool:
            sock.sendto(payload, ("127.0.0.1", port))
            try:
                return sock.recvfrom(65536)[0] == payload
            except TimeoutError:
                return False

        return op

    return make


def fetch_op(port: int, names: list[str], **settings: Any) -> Callable[[], Callable[[], bool]]:
    from phone.device.tftp import FetchStatus, TftpFetcher

    fetcher = TftpFetcher("127.0.0.1", port, timeout=1.0, retries=3, **settings)
    expected = {name: FetchStatus.NOT_FOUND if name.startswith("ITLSEP") else FetchStatus.FOUND for name in names}

    def make() -> Callable[[], bool]:
        turn = iter(range(1 << 62))

        def op() -> bool:
            name = names[next(turn) % len(names)]
            return fetcher.fetch(name).status is expected[name]

        return op

    return make


def row(label: str, result: dict, baseline: float | None) -> str:
    ratio = f"{result['rate'] / baseline:6.3f}" if baseline else "     -"
    failed = f"  failed {result['failed']}" if result["failed"] else ""
    return (
        f"{label:<46} {result['rate']:9.0f}/s  ratio {ratio}  "
        f"server {result['server_cpu'] * 1e6:6.0f} us/op  client {result['client_cpu'] * 1e6:6.0f} us/op{failed}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="length of each measurement")
    parser.add_argument("--concurrency", default="1,10,50", help="client thread counts")
    parser.add_argument(
        "--in-process", action="store_true", help="run the TFTP server as a thread of this process (one GIL)"
    )
    args = parser.parse_args()
    levels = [int(level) for level in args.concurrency.split(",")]
    boot = ["CTLSEP001122334455.tlv", "ITLSEP001122334455.tlv", "ITLFile.tlv", "SEP001122334455.cnf.xml.sgn"]

    print(f"TFTP benchmark: {FILE_SIZE}-byte files, {args.seconds:g} s per row, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    echo = Child(_echo_child)
    tftp = InProcess() if args.in_process else Child(_tftp_child)
    print(f"TFTP server {'in this process' if args.in_process else 'in a child process'}, clients are threads")
    results: dict[tuple[str, int], dict] = {}
    try:
        for level in levels:
            baseline = measure(level, args.seconds, echo_op(echo.port), echo)
            print(row(f"{level:3} clients: UDP echo round trip", baseline, None))
            for label, op in (
                ("blksize 65464 (loopback default)", fetch_op(tftp.port, ["CTLSEP001122334455.tlv"])),
                ("blksize 1428 (LAN default)", fetch_op(tftp.port, ["CTLSEP001122334455.tlv"], blksize=1428)),
                ("boot mix, 4 names, 1 not found", fetch_op(tftp.port, boot)),
            ):
                result = measure(level, args.seconds, op, tftp)
                results[label, level] = result
                print(row(f"{level:3} clients: TFTP {label}", result, baseline["rate"]))
        stats = tftp.cpu()[1]
    finally:
        echo.close()
        tftp.close()
    print(f"server counters: {stats}")
    summarize(results, max(levels))


def summarize(results: dict[tuple[str, int], dict], level: int) -> None:
    """What limits throughput, from CPU per download at the highest concurrency."""
    needed = BOOTS_NEEDED * FILES_PER_BOOT
    print(f"\nWhat limits throughput ({level} clients; fleets need {BOOTS_NEEDED} boots/s x "
          f"{FILES_PER_BOOT} files = {needed} downloads/s on 2 cores):")
    for label in dict.fromkeys(label for label, _ in results):
        result = results[label, level]
        best = max(r["rate"] for (other, _), r in results.items() if other == label)
        server_us, client_us = result["server_cpu"] * 1e6, result["client_cpu"] * 1e6
        ceiling = 1e6 / server_us
        cores = needed * (server_us + client_us) / 1e6
        verdict = "keeps up" if ceiling >= needed else f"cannot keep up ({needed / ceiling:.1f}x short)"
        print(f"  {label}: measured best {best:.0f}/s = {best / FILES_PER_BOOT:.0f} boots/s")
        print(f"    server {server_us:.0f} us CPU per download on its one thread -> ceiling {ceiling:.0f}/s = "
              f"{ceiling / FILES_PER_BOOT:.0f} boots/s: {verdict}; "
              f"{needed}/s costs {cores:.2f} of the 2 cores (server {server_us:.0f} + client {client_us:.0f} us)")
    print("  The cost is Python per packet on both sides (the client is tftpy's: its decoders and states, "
          "about 100 disabled-but-called log statements and one new socket per download), not the kernel: "
          "compare the UDP echo rows. See docs/tftp.md.")


if __name__ == "__main__":
    main()
