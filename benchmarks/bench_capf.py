"""CAPF enrolments per second served by the lab, next to plain TLS handshakes, same machine, same run.

Each enrolment is what a phone does for "Install/Upgrade" with a null string: a
new TCP connection, a TLS handshake, AUTH_REQUEST/AUTH_RESPONSE,
KEY_GENERATE_REQUEST, REQUEST_IN_PROGRESS and the phone's RSA-2048 public key,
STORE_CERTIFICATE_REQUEST with the LSC the server signed, the phone's answer,
END_SESSION, close; the server reads the device from and records the LSC in its
SQLite device store. Phones' keys are made before the run (one RSA-2048 key for
every phone), so the server is what is measured: signing the LSC, the store and
the protocol. The baseline is a TLS server with the same CAPF certificate that
completes the handshake and closes: the floor of any CAPF session. Both servers
run in their own process; clients are threads of this process.

    .venv/bin/python benchmarks/bench_capf.py [--seconds 3] [--clients 1,10] [--tls 1.2]

Prints enrolments/s and handshakes/s per concurrency level and their ratio.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import itertools
import multiprocessing
import socket
import sys
import tempfile
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from closed_loop import run_clients
from phone.lab.devices import CapfSettings, DeviceRecord, DeviceStore
from phone.lab.servers.capf import CapfServer, CapfServerSettings, _context_for
from phone.tls import client_context
from phone.wire.capf import CapfMessage, Command, FrameBuffer, KeyType, Reason
from phone.wire.certs import Identity, Profile, cucm_subject, generate_rsa_key, make_certificate

#: Devices made pending before the run: more than the fastest server enrols in the run.
DEVICES = 40_000


def _capf_identity() -> Identity:
    return make_certificate(cucm_subject("CAPF-0bench00"), generate_rsa_key(2048),
                            not_before=datetime.datetime.now(datetime.UTC) - datetime.timedelta(days=1),
                            serial=x509.random_serial_number(), profile=Profile.CAPF)


def _devices(count: int) -> list[DeviceRecord]:
    pending = CapfSettings(operation="install", auth="null-string", key="rsa2048", status="pending")
    return [DeviceRecord(name=f"SEP{index:012X}", model="CP-8861", capf=pending) for index in range(count)]


def _serve(kind: str, certificate: bytes, key: bytes, db: Path, ports, stop) -> None:
    identity = Identity.from_pem(certificate, key)

    async def main() -> None:
        if kind == "capf":
            server = CapfServer(identity, DeviceStore(db), trusted_capf=list, trusted_manufacturing=list,
                                settings=CapfServerSettings(port=0, max_clients=1024))
            port = await server.start()
        else:
            context = _context_for(identity, CapfServerSettings())

            async def handshake_only(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                writer.close()

            server = await asyncio.start_server(handshake_only, "127.0.0.1", 0, ssl=context, backlog=1024)
            port = server.sockets[0].getsockname()[1]
        ports.put(port)
        while not stop.is_set():
            await asyncio.sleep(0.05)
        closing = server.close()
        if closing is not None:
            await closing

    asyncio.run(main())


class _Phone:
    """A phone's side of one enrolment, from the wire codec; the key is made beforehand."""

    def __init__(self, public_key_der: bytes, tls: str) -> None:
        self.public_key = public_key_der
        self.context = client_context((tls,))

    def enrol(self, port: int, device: str) -> bool:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
                self.context.wrap_socket(raw) as connection:
            frames = FrameBuffer()

            def receive() -> CapfMessage | None:
                while (frame := frames.next_frame()) is None:
                    data = connection.recv(65536)
                    if not data:
                        return None
                    frames.feed(data)
                return frame

            def send(command: Command, session: int, **fields: object) -> None:
                connection.sendall(CapfMessage.build(command, session, **fields).encode())

            while (message := receive()) is not None:
                session = message.session_id
                if message.command is Command.AUTH_REQUEST:
                    send(Command.AUTH_RESPONSE, session, reason=1, version=3, device_name=device, password="")
                elif message.command is Command.KEY_GENERATE_REQUEST:
                    if message.key_type not in (None, KeyType.RSA) or message.key_size != 2048:
                        return False
                    send(Command.REQUEST_IN_PROGRESS, session)
                    send(Command.KEY_GENERATE_RESPONSE, session, public_key=self.public_key)
                elif message.command is Command.STORE_CERTIFICATE_REQUEST:
                    send(Command.STORE_CERTIFICATE_RESPONSE, session, reason=Reason.OK)
                elif message.command is Command.END_SESSION:
                    return message.reason == Reason.OK
            return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement (default 3)")
    parser.add_argument("--clients", default="1,10", help="concurrency levels (default 1,10)")
    parser.add_argument("--tls", default="1.2", choices=["1.0", "1.1", "1.2", "1.3"])
    parser.add_argument("--repeat", type=int, default=2, help="runs per level, best kept (default 2)")
    args = parser.parse_args()
    levels = [int(text) for text in args.clients.split(",")]

    capf = _capf_identity()
    phone_key = rsa.generate_private_key(65537, 2048)
    phone = _Phone(phone_key.public_key().public_bytes(serialization.Encoding.DER,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo), args.tls)
    names = (f"SEP{index:012X}" for index in itertools.count())
    names_lock = threading.Lock()

    def next_device() -> str:
        with names_lock:
            return next(names)

    with tempfile.TemporaryDirectory() as folder_name:
        db = Path(folder_name) / "devices.sqlite"
        DeviceStore(db).put_many(_devices(DEVICES))
        spawn = multiprocessing.get_context("spawn")
        stop = spawn.Event()
        ports: dict[str, int] = {}
        processes = []
        for kind in ("tls", "capf"):
            queue = spawn.Queue()
            process = spawn.Process(target=_serve, args=(kind, capf.certificate_pem(), capf.private_key_pem(), db,
                                                         queue, stop))
            process.start()
            processes.append(process)
            ports[kind] = queue.get(timeout=60)
        context = client_context((args.tls,))

        def handshake() -> bool:
            with socket.create_connection(("127.0.0.1", ports["tls"]), timeout=10) as raw, \
                    context.wrap_socket(raw) as tls:
                tls.recv(1)  # the server closes after the handshake
            return True

        operations = {"tls": handshake, "capf": lambda: phone.enrol(ports["capf"], next_device())}
        results: dict[str, dict[int, tuple[float, int]]] = {"tls": {}, "capf": {}}
        try:
            for kind in ("tls", "capf"):
                run_clients(1, 0.3, operations[kind])  # warm-up
            # Interleaved and repeated, best of each kept: the machine is shared, so
            # both figures of a ratio are taken under the same load.
            for n in levels:
                for _ in range(args.repeat):
                    for kind in ("tls", "capf"):
                        done, failed, elapsed = run_clients(n, args.seconds, operations[kind])
                        best, failures = results[kind].get(n, (0.0, 0))
                        results[kind][n] = (max(best, done / elapsed), failures + failed)
            enrolled = sum(1 for record in DeviceStore(db).list() if record.capf.status == "successful")
        finally:
            stop.set()
            for process in processes:
                process.join(10)

    print(f"CAPF server on this machine (TLS {args.tls}, CAPF RSA 2048, phones RSA 2048, best of "
          f"{args.repeat} x {args.seconds:g} s per level, Python {sys.version.split()[0]})")
    print(f"{'clients':>8} {'TLS handshakes/s':>17} {'enrolments/s':>13} {'ratio':>6} {'failures':>9}")
    for n in levels:
        handshakes, hs_failed = results["tls"][n]
        enrolments, e_failed = results["capf"][n]
        print(f"{n:>8} {handshakes:>17.0f} {enrolments:>13.0f} {enrolments / handshakes:>6.2f} "
              f"{hs_failed + e_failed:>9}")
    print(f"LSCs recorded in the device store: {enrolled}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
