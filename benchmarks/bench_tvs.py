"""TVS server throughput next to a bare threaded TLS server, same machine, same run.

Each TVS query is what a phone does: a new TCP connection, a TLS handshake, one
QUERY_CERT_REQ, the answer (with the 2048-bit CallManager certificate), close.
The baseline is the plainest server that can do the same exchange: a thread per
connection around a blocking stdlib ``ssl`` socket that reads one request and
sends fixed bytes (the very answer the TVS server gives), with no lookup, no
trace, no limits: the floor cost of a TVS exchange in Python. Both servers run
in their own process (one core each on a 2-core machine); the clients are
threads in this process using the phone's own blocking client (``ask_tvs``), as
a fleet's boot threads do, the same for both servers.

    .venv/bin/python benchmarks/bench_tvs.py [--seconds 3] [--clients 1,8,100] [--tls 1.2] [--tvsd FOLDER]

``--tvsd FOLDER`` also measures usecallmanager.nz's ``tvsd`` in the same rounds: FOLDER holds
their ``tvsd`` and ``tvsctl`` programs (GPL, from github.com/usecallmanagernz/daemons), which
are run as separate programs with this Python, given the same certificates (nothing of them is
in this repository). tvsd answers CERT_VERIFICATION_REQ only, so with ``--tvsd`` every server
is asked that request (the whole certificate; the answer carries roles and TTL, no certificate),
as ``--request verification`` does.

Prints queries/s of each server per concurrency level, their ratio, and each server's CPU per query.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import multiprocessing
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from cryptography import x509

from closed_loop import run_clients
from phone.device.tvs import ConnectionOutcome, TvsClientSettings, TvsMember, ask_tvs
from phone.lab.servers.tvs import TvsServer, TvsServerSettings
from phone.lab.tvs_store import TvsStore
from phone.tls import server_context
from phone.wire.certs import generate_rsa_key, make_certificate, simple_subject
from phone.wire.names import cucm_name
from phone.wire.tvs import HEADER_SIZE, Status, TvsMessage

DEVICE = "CP-8861-SEPB000B4BA0AEE"
#: The plain threaded TLS server answering fixed bytes, then ours.
KINDS = ("bare", "tvs")


def _identity(folder: Path, name: str, bits: int = 2048):
    made = make_certificate(simple_subject(CN=name, OU="TAC", O="Cisco", C="PL"), generate_rsa_key(bits),
                            not_before=datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1),
                            serial=x509.random_serial_number())
    cert, key = folder / f"{name}.pem", folder / f"{name}.key"
    cert.write_bytes(made.certificate_pem())
    key.touch(mode=0o600, exist_ok=True)
    key.write_bytes(made.private_key_pem())
    return made, cert, key


def _serve(kind: str, cert: Path, key: Path, db: Path, answer: bytes, ports, stop) -> None:
    if kind == "bare":
        _serve_bare(cert, key, answer, ports, stop)
        return

    async def main() -> None:
        server = TvsServer(cert, key, db=db, settings=TvsServerSettings(port=0, trace_messages=False))
        ports.put(await server.start())
        while not stop.is_set():
            await asyncio.sleep(0.05)
        await server.close()

    asyncio.run(main())


def _serve_bare(cert: Path, key: Path, answer: bytes, ports, stop) -> None:
    """A thread per connection, blocking ``ssl``: read a header and its payload, send ``answer``, close."""
    context = server_context(cert, key)
    listener = socket.create_server(("127.0.0.1", 0), backlog=1024)
    listener.settimeout(0.05)
    ports.put(listener.getsockname()[1])

    def exchange(connection: socket.socket) -> None:
        try:
            connection.settimeout(10)
            with context.wrap_socket(connection, server_side=True) as tls:
                head = _read_exactly(tls, HEADER_SIZE)
                _read_exactly(tls, int.from_bytes(head[-2:], "big"))
                tls.sendall(answer)
        except OSError:
            pass
        finally:
            connection.close()

    while not stop.is_set():
        try:
            connection, _ = listener.accept()
        except TimeoutError:
            continue
        threading.Thread(target=exchange, args=(connection,), daemon=True).start()
    listener.close()


def _read_exactly(tls, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = tls.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed before the whole request")
        data += chunk
    return data


def _start_tvsd(folder: Path, scratch: Path, cert: Path, key: Path, callmanager: Path) -> tuple[subprocess.Popen, int]:
    """usecallmanager.nz's tvsd on a free port, its database holding ``callmanager`` as SAST and CCM+TFTP."""
    combined = scratch / "tvsd-combined.pem"
    combined.write_bytes(cert.read_bytes() + key.read_bytes())
    database = scratch / "tvsd.sqlite3"
    subprocess.run([sys.executable, str(folder / "tvsctl"), str(database), "-a", str(callmanager), "-s", "-C"],
                   check=True, stdout=subprocess.DEVNULL)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, str(folder / "tvsd"), "-p", str(port), "-T", str(combined),
                                str(database)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return process, port
        time.sleep(0.1)
    process.kill()
    raise SystemExit("tvsd did not start listening within 30 s")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux ``/proc``; 0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _measure(port: int, clients: int, seconds: float, request: TvsMessage, pinned: bytes,
             tls: str) -> tuple[float, int, int]:
    settings = TvsClientSettings(tls_versions=(tls,), connect_timeout=10, handshake_timeout=10,
                                 response_timeout=10)
    member = [TvsMember("127.0.0.1", port)]

    def query() -> bool:
        result = ask_tvs(member, request, [pinned], settings)
        return result.outcome is ConnectionOutcome.ANSWERED and result.response.status == 0

    done, failed, elapsed = run_clients(clients, seconds, query)
    return done / elapsed, failed, done


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement (default 3)")
    parser.add_argument("--clients", default="1,8,100", help="concurrency levels (default 1,8,100)")
    parser.add_argument("--tls", default="1.2", choices=["1.0", "1.1", "1.2", "1.3"])
    parser.add_argument("--repeat", type=int, default=2, help="runs per level, best kept (default 2)")
    parser.add_argument("--request", choices=["query", "verification"], default="query",
                        help="QUERY_CERT_REQ (serial and issuer, the default) or CERT_VERIFICATION_REQ")
    parser.add_argument("--tvsd", type=Path, default=None,
                        help="a folder with usecallmanager.nz's tvsd and tvsctl, measured too")
    args = parser.parse_args()
    levels = [int(text) for text in args.clients.split(",")]

    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        tvs, tvs_cert, tvs_key = _identity(folder, "tvs-bench")
        pub, pub_cert, _ = _identity(folder, "cucm-bench-pub")
        db = folder / "tvs.sqlite3"
        with TvsStore(db) as store:
            store.add(pub.der, [0, 2])
            entry = store.find(pub.serial, cucm_name(pub.certificate.issuer))
        if args.request == "verification" or args.tvsd is not None:
            request = TvsMessage.verification_request(1001, DEVICE, pub.der)
            answer = TvsMessage.answer(request, Status.TRUSTED, roles=entry.roles, ttl=entry.ttl).encode()
        else:
            request = TvsMessage.query_request(1001, DEVICE, cucm_name(pub.certificate.subject),
                                               cucm_name(pub.certificate.issuer), pub.serial)
            answer = TvsMessage.answer(request, Status.TRUSTED, certificate=entry.certificate, roles=entry.roles,
                                       ttl=entry.ttl).encode()
        spawn = multiprocessing.get_context("spawn")
        stop = spawn.Event()
        ports: dict[str, int] = {}
        processes = []
        for kind in KINDS:
            queue = spawn.Queue()
            process = spawn.Process(target=_serve, args=(kind, tvs_cert, tvs_key, db, answer, queue, stop))
            process.start()
            processes.append(process)
            ports[kind] = queue.get(timeout=30)
        kinds = KINDS
        pids = dict(zip(KINDS, (process.pid for process in processes), strict=True))
        tvsd = None
        if args.tvsd is not None:
            tvsd, ports["tvsd"] = _start_tvsd(args.tvsd, folder, tvs_cert, tvs_key, pub_cert)
            kinds, pids["tvsd"] = (*KINDS, "tvsd"), tvsd.pid
        results: dict[str, dict[int, tuple[float, int]]] = {kind: {} for kind in kinds}
        cpu: dict[str, dict[int, list[float]]] = {kind: {} for kind in kinds}  # [server CPU s, queries]
        try:
            for kind in kinds:
                _measure(ports[kind], 1, 0.3, request, tvs.der, args.tls)  # warm-up
            # Interleaved and repeated, best of each kept: the machine is shared, so
            # both figures of a ratio are taken under the same load. The servers' CPU per
            # query moves less with the load than their rates do.
            for n in levels:
                for _ in range(args.repeat):
                    for kind in kinds:
                        before = _cpu_seconds(pids[kind])
                        rate, failed, done = _measure(ports[kind], n, args.seconds, request, tvs.der, args.tls)
                        spent = cpu[kind].setdefault(n, [0.0, 0])
                        spent[0] += _cpu_seconds(pids[kind]) - before
                        spent[1] += done
                        best, failures = results[kind].get(n, (0.0, 0))
                        results[kind][n] = (max(best, rate), failures + failed)
        finally:
            stop.set()
            for process in processes:
                process.join(10)
            if tvsd is not None:
                tvsd.terminate()
                tvsd.wait(10)

    print(f"TVS server on this machine ({request.type.name}, TLS {args.tls}, RSA 2048, best of {args.repeat} x"
          f" {args.seconds:g} s"
          f" per level, Python {sys.version.split()[0]}, load {os.getloadavg()[0]:.1f} at the end)")
    print(f"{'clients':>8} {'bare TLS server q/s':>20} {'TVS server q/s':>15} {'ratio':>6} {'failures':>9}"
          f" {'CPU ms/query bare':>18} {'TVS':>6}")
    for n in levels:
        bare, bare_failed = results["bare"][n]
        queries, q_failed = results["tvs"][n]
        per_query = {kind: 1000 * cpu[kind][n][0] / max(1, cpu[kind][n][1]) for kind in KINDS}
        print(f"{n:>8} {bare:>20.0f} {queries:>15.0f} {queries / bare:>6.2f} {bare_failed + q_failed:>9}"
              f" {per_query['bare']:>18.2f} {per_query['tvs']:>6.2f}")
    if "tvsd" in results:
        print(f"{'clients':>8} {'tvsd q/s':>20} {'TVS server / tvsd':>18} {'failures':>9} {'tvsd CPU ms/query':>18}")
        for n in levels:
            theirs, failed = results["tvsd"][n]
            per_query = 1000 * cpu["tvsd"][n][0] / max(1, cpu["tvsd"][n][1])
            ratio = results["tvs"][n][0] / theirs if theirs else float("inf")
            print(f"{n:>8} {theirs:>20.0f} {ratio:>18.2f} {failed:>9} {per_query:>18.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
