"""TVS server throughput next to plain TLS handshakes, same machine, same run.

Each TVS query is what a phone does: a new TCP connection, a TLS handshake, one
QUERY_CERT_REQ, the answer (with the 2048-bit CallManager certificate), close.
The baseline is a TLS server that completes the handshake and closes: the
floor cost of any TVS exchange. Both servers run in their own process (one
core each on a 2-core machine); the clients are threads in this process using
the phone's own blocking client (``ask_tvs``), as a fleet's boot threads do.

    .venv/bin/python benchmarks/bench_tvs.py [--seconds 3] [--clients 1,10,100] [--tls 1.2]

Prints queries/s and handshakes/s per concurrency level and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import multiprocessing
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

from cryptography import x509

from phone.wire.certs import generate_rsa_key, make_certificate, simple_subject
from phone.wire.names import cucm_name
from phone.wire.tvs import TvsMessage
from phone.device.tvs import ConnectionOutcome, TvsClientSettings, TvsMember, ask_tvs
from phone.lab.servers.tvs import TvsServer, TvsServerSettings
from phone.lab.tvs_store import TvsStore
from phone.tls import client_context, server_context

DEVICE = "CP-8861-SEPB000B4BA0AEE"


def _identity(folder: Path, name: str, bits: int = 2048):
    made = make_certificate(simple_subject(CN=name, OU="TAC", O="Cisco", C="PL"), generate_rsa_key(bits),
                            not_before=datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=1),
                            serial=x509.random_serial_number())
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    cert.write_bytes(made.certificate_pem())
    key.touch(mode=0o600, exist_ok=True)
    key.write_bytes(made.private_key_pem())
    return made, cert, key


def _serve(kind: str, cert: Path, key: Path, db: Path, ports, stop) -> None:
    async def main() -> None:
        if kind == "tvs":
            server = TvsServer(cert, key, db=db, settings=TvsServerSettings(port=0, trace_messages=False))
            port = await server.start()
        else:
            context = server_context(cert, key)

            async def handshake_only(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                try:
                    await writer.start_tls(context)
                finally:
                    writer.close()

            server = await asyncio.start_server(handshake_only, "127.0.0.1", 0, backlog=1024)
            port = server.sockets[0].getsockname()[1]
        ports.put(port)
        while not stop.is_set():
            await asyncio.sleep(0.05)
        closing = server.close()
        if closing is not None:
            await closing

    asyncio.run(main())


def _load(clients: int, seconds: float, operation) -> tuple[int, int, float]:
    counts = {True: 0, False: 0}
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def worker() -> None:
        while time.perf_counter() < deadline:
            succeeded = operation()
            with lock:
                counts[succeeded] += 1

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return counts[True], counts[False], time.perf_counter() - started


def _measure(kind: str, port: int, clients: int, seconds: float, request: TvsMessage, pinned: bytes,
             tls: str) -> tuple[float, int]:
    settings = TvsClientSettings(tls_versions=(tls,), connect_timeout=10, handshake_timeout=10,
                                 response_timeout=10)
    context = client_context((tls,))
    member = [TvsMember("127.0.0.1", port)]

    def query() -> bool:
        result = ask_tvs(member, request, [pinned], settings)
        return result.outcome is ConnectionOutcome.ANSWERED and result.response.status == 0

    def handshake() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
                with context.wrap_socket(raw) as tls:
                    tls.recv(1)  # the server closes after the handshake
            return True
        except OSError:
            return False

    done, failed, elapsed = _load(clients, seconds, query if kind == "tvs" else handshake)
    return done / elapsed, failed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement (default 3)")
    parser.add_argument("--clients", default="1,10,100", help="concurrency levels (default 1,10,100)")
    parser.add_argument("--tls", default="1.2", choices=["1.0", "1.1", "1.2", "1.3"])
    parser.add_argument("--repeat", type=int, default=2, help="runs per level, best kept (default 2)")
    args = parser.parse_args()
    levels = [int(text) for text in args.clients.split(",")]

    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        tvs, tvs_cert, tvs_key = _identity(folder, "tvs-bench")
        pub, _, _ = _identity(folder, "cucm-bench-pub")
        db = folder / "tvs.sqlite3"
        with TvsStore(db) as store:
            store.add(pub.der, [0, 2])
        request = TvsMessage.query_request(1001, DEVICE, cucm_name(pub.certificate.subject),
                                           cucm_name(pub.certificate.issuer), pub.serial)
        spawn = multiprocessing.get_context("spawn")
        stop = spawn.Event()
        ports: dict[str, int] = {}
        processes = []
        for kind in ("tls", "tvs"):
            queue = spawn.Queue()
            process = spawn.Process(target=_serve, args=(kind, tvs_cert, tvs_key, db, queue, stop))
            process.start()
            processes.append(process)
            ports[kind] = queue.get(timeout=30)
        results: dict[str, dict[int, tuple[float, int]]] = {"tls": {}, "tvs": {}}
        try:
            for kind in ("tls", "tvs"):
                _measure(kind, ports[kind], 1, 0.3, request, tvs.der, args.tls)  # warm-up
            # Interleaved and repeated, best of each kept: the machine is shared, so
            # both figures of a ratio are taken under the same load.
            for n in levels:
                for _ in range(args.repeat):
                    for kind in ("tls", "tvs"):
                        rate, failed = _measure(kind, ports[kind], n, args.seconds, request, tvs.der, args.tls)
                        best, failures = results[kind].get(n, (0.0, 0))
                        results[kind][n] = (max(best, rate), failures + failed)
        finally:
            stop.set()
            for process in processes:
                process.join(10)

    print(f"TVS server on this machine (TLS {args.tls}, RSA 2048, best of {args.repeat} x {args.seconds:g} s"
          f" per level, Python {sys.version.split()[0]})")
    print(f"{'clients':>8} {'TLS handshakes/s':>17} {'TVS queries/s':>14} {'ratio':>6} {'failures':>9}")
    for n in levels:
        handshakes, hs_failed = results["tls"][n]
        queries, q_failed = results["tvs"][n]
        print(f"{n:>8} {handshakes:>17.0f} {queries:>14.0f} {queries / handshakes:>6.2f} "
              f"{hs_failed + q_failed:>9}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
