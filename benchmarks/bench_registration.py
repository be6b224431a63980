"""Secure registrations per second served by the lab's CallManager, beside bare TLS handshakes, same run.

A secure registration is what a phone on an authenticated profile does
(docs/registration.md): a new TCP connection, a TLS 1.2 handshake in which the
CallManager presents its 2048-bit certificate and checks the phone's MIC against
CallManager-trust, the name check, one SIP REGISTER and its 200 OK, close. The
baselines are stdlib-ssl servers with the same certificate that complete the
handshake and close: "bare" without asking for a client certificate, "mutual"
asking for and verifying the same MIC. Each server runs in its own process; the
clients are threads of this process using the phone's own client
(``phone.device.registration.SignallingTransport``) or a plain ``ssl`` client.

    .venv/bin/python benchmarks/bench_registration.py [--seconds 3] [--clients 1,4]

Prints operations per second per server and concurrency, and the ratio to bare handshakes.
"""

from __future__ import annotations

import argparse
import datetime
import multiprocessing
import socket
import ssl
import sys
import tempfile
import threading
import time
from pathlib import Path

from phone.device.identity import issue_mic, new_mic_ca
from phone.device.registration import SignallingTransport
from phone.firmware.registration import Register, TransportOutcome
from phone.lab.servers.signalling import CallManagerServer, SignallingSettings
from phone.tls import ClientIdentity, client_context, server_context
from phone.wire.certs import Profile, generate_rsa_key, make_certificate, simple_subject

DEVICE = "SEPB000B4BA0AEE"
NOW = datetime.datetime.now(datetime.UTC)


def _write(identity, folder: Path, stem: str) -> tuple[Path, Path]:
    cert, key = folder / f"{stem}.pem", folder / f"{stem}.key"
    cert.write_bytes(identity.certificate_pem())
    key.touch(mode=0o600)
    key.write_bytes(identity.private_key_pem())
    return cert, key


def _serve(kind: str, folder: str, ports, stop) -> None:  # runs in a child process
    folder_path = Path(folder)
    cert, key = folder_path / "callmanager.pem", folder_path / "callmanager.key"
    ca_pem = (folder_path / "ca.pem").read_bytes()
    if kind == "registration":
        from cryptography import x509

        ca = x509.load_pem_x509_certificate(ca_pem)
        server = CallManagerServer(cert, key, trusted=lambda: [ca], security_mode=lambda device: 2,
                                   settings=SignallingSettings(ports={"sip": None, "sip-tls": 0, "sccp": None}))
        server.start()
        ports.put(server.ports["sip-tls"])
        stop.wait()
        server.close()
        return
    context = server_context(cert, key, max_version="1.2")
    if kind == "mutual":
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(cadata=ca_pem.decode())
    listener = socket.create_server(("127.0.0.1", 0), backlog=128)
    ports.put(listener.getsockname()[1])

    def handshake(connection: socket.socket) -> None:
        with connection:
            try:
                with context.wrap_socket(connection, server_side=True):
                    pass
            except OSError:
                pass

    listener.settimeout(0.2)
    while not stop.is_set():
        try:
            connection, _ = listener.accept()
        except TimeoutError:
            continue
        threading.Thread(target=handshake, args=(connection,), daemon=True).start()


def _measure(operation, clients: int, seconds: float) -> float:
    done = [0] * clients
    ends = time.monotonic() + seconds

    def loop(index: int) -> None:
        while time.monotonic() < ends:
            operation()
            done[index] += 1

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / (time.monotonic() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--clients", default="1,4")
    args = parser.parse_args()
    levels = [int(part) for part in args.clients.split(",")]
    with tempfile.TemporaryDirectory() as folder_name:
        folder = Path(folder_name)
        callmanager = make_certificate(simple_subject(O="Lab", CN="cucm-pub"), generate_rsa_key(2048),
                                       not_before=NOW, serial=0x1234, profile=Profile.SERVER)
        _write(callmanager, folder, "callmanager")
        ca = new_mic_ca(now=NOW)
        (folder / "ca.pem").write_bytes(ca.certificate_pem())
        mic = ClientIdentity(*_write(issue_mic("CP-8861", DEVICE, ca, now=NOW), folder, "mic"))
        context = multiprocessing.get_context("spawn")
        results: dict[str, dict[int, float]] = {}
        for kind in ("registration", "bare", "mutual"):
            ports, stop = context.Queue(), context.Event()
            process = context.Process(target=_serve, args=(kind, folder_name, ports, stop), daemon=True)
            process.start()
            port = ports.get(timeout=60)
            if kind == "registration":
                register = Register(DEVICE, "SIP", 2, "127.0.0.1", port, True, (callmanager.der,), ("1.2",), 10.0,
                                    "mic")
                transport = SignallingTransport(mic)

                def operation(register=register, transport=transport) -> None:
                    outcome = transport(register).outcome
                    if outcome is not TransportOutcome.ANSWERED_OK:
                        raise SystemExit(f"registration failed: {outcome}")
            else:
                client = client_context(("1.2",), mic if kind == "mutual" else None)

                def operation(client=client, port=port) -> None:
                    with socket.create_connection(("127.0.0.1", port)) as raw, client.wrap_socket(raw):
                        pass
            operation()  # warm up: contexts, first handshake
            results[kind] = {clients: _measure(operation, clients, args.seconds) for clients in levels}
            stop.set()
            process.join(10)
    print(f"{'clients':>8} {'registrations/s':>16} {'bare TLS/s':>11} {'mutual TLS/s':>13} {'reg/bare':>9}")
    for clients in levels:
        registration, bare, mutual = (results[kind][clients] for kind in ("registration", "bare", "mutual"))
        print(f"{clients:>8} {registration:>16.0f} {bare:>11.0f} {mutual:>13.0f} {registration / bare:>9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
