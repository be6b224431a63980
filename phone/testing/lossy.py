"""A lossy UDP proxy on loopback: drops, duplicates and reorders a given share of datagrams.

It stands between UDP clients and one server, in both directions, the way
TFTP needs (RFC 1350 section 4): a client's first datagram goes to the
server's well-known port; the server answers from a new port (its transfer
id), and the proxy answers the client from a new port of its own for each
such server port. A client therefore sees what it would see without the
proxy: the transfer's answers from one port, a second transfer (a duplicated
request answered twice) from another, so its checks of the sender work
through the proxy too.

Every datagram, each way, independently:

- is dropped with probability ``drop``;
- else is sent twice with probability ``duplicate``;
- else is held back with probability ``reorder`` and sent after the next
  datagram of the same direction, or after ``hold`` seconds if none comes (in
  a lock-step protocol like TFTP the next one usually is the other side's
  resend, so a held datagram arrives late and out of order).

The decisions come from one random stream per direction, seeded from
``seed``, three draws per datagram in the order datagrams arrive: with the
same seed, the n-th datagram towards the server (or the client) meets the
same fate in every run, however the two directions interleave. ``stats``
counts what was done.

    with LossyUdpProxy(("127.0.0.1", server_port), Impairment(drop=0.1), seed=7) as port:
        TftpFetcher("127.0.0.1", port).fetch("ITLFile.tlv")
"""

from __future__ import annotations

import collections
import random
import select
import socket
import threading
import time

import attrs

from phone.errors import UsageError


def _share(instance: object, attribute: attrs.Attribute, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise UsageError(f"{attribute.name} must be a share between 0 and 1, not {value}")


@attrs.frozen
class Impairment:
    """What the proxy does to each datagram (shares between 0 and 1; ``hold`` in seconds)."""

    drop: float = attrs.field(default=0.0, validator=_share)
    duplicate: float = attrs.field(default=0.0, validator=_share)
    reorder: float = attrs.field(default=0.0, validator=_share)
    hold: float = 0.05


@attrs.define
class _Held:
    data: bytes
    sock: socket.socket
    destination: tuple[str, int]
    release_at: float


class LossyUdpProxy:
    """Relay datagrams between clients and ``server`` through ``impairment``; ``start()`` returns the port."""

    def __init__(self, server: tuple[str, int], impairment: Impairment, *, seed: int = 0,
                 host: str = "127.0.0.1") -> None:
        self.server = server
        self.impairment = impairment
        self.host = host
        self.stats: collections.Counter[str] = collections.Counter()
        self._random = {direction: random.Random(f"{seed}/{direction}") for direction in ("to-server", "to-client")}
        self._listen = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._upstream: dict[tuple[str, int], socket.socket] = {}  # per client: its socket towards the server
        self._mirrors: dict[tuple[tuple[str, int], int], socket.socket] = {}  # per (client, server port)
        self._roles: dict[socket.socket, tuple] = {}
        self._held: dict[str, _Held] = {}  # per direction, at most one datagram held back
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- life cycle ---------------------------------------------------------------------

    def start(self) -> int:
        self._listen.bind((self.host, 0))
        self._roles[self._listen] = ("listen",)
        self._thread = threading.Thread(target=self._run, name="lossy-udp-proxy", daemon=True)
        self._thread.start()
        return self.port

    @property
    def port(self) -> int:
        return self._listen.getsockname()[1]

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        for sock in list(self._roles):
            sock.close()

    def __enter__(self) -> int:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- relaying -------------------------------------------------------------------------

    def _socket(self, role: tuple) -> socket.socket:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((self.host, 0))
        self._roles[sock] = role
        return sock

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic()
            waits = [held.release_at - now for held in self._held.values()]
            readable, _, _ = select.select(list(self._roles), [], [], max(0.0, min([0.05, *waits])))
            for sock in readable:
                try:
                    data, sender = sock.recvfrom(65536)
                except OSError:
                    continue
                self._relay(sock, data, sender)
            for direction, held in list(self._held.items()):
                if held.release_at <= time.monotonic():
                    del self._held[direction]
                    self._send(held.sock, held.data, held.destination)

    def _relay(self, sock: socket.socket, data: bytes, sender: tuple[str, int]) -> None:
        role = self._roles[sock]
        if role[0] == "listen":  # a client's request to the server's well-known port
            client = sender
            if client not in self._upstream:
                self._upstream[client] = self._socket(("upstream", client))
            self._impair("to-server", self._upstream[client], data, self.server)
        elif role[0] == "upstream":  # the server answering a client, from its transfer port
            client = role[1]
            if sender[0] != self.server[0]:
                return
            key = (client, sender[1])
            if key not in self._mirrors:
                self._mirrors[key] = self._socket(("mirror", client, sender[1]))
            self._impair("to-client", self._mirrors[key], data, client)
        else:  # a client writing to the port that stands for a server transfer port
            _, client, server_port = role
            if sender != client:
                return
            self._impair("to-server", self._upstream[client], data, (self.server[0], server_port))

    def _impair(self, direction: str, sock: socket.socket, data: bytes, destination: tuple[str, int]) -> None:
        impairment = self.impairment
        draw = self._random[direction].random
        drop, duplicate, reorder = draw(), draw(), draw()  # three draws per datagram, whatever happens to it
        self.stats["datagrams"] += 1
        if drop < impairment.drop:
            self.stats["dropped"] += 1
            return
        copies = 2 if duplicate < impairment.duplicate else 1
        self.stats["duplicated"] += copies - 1
        overtaken = self._held.pop(direction, None)
        if reorder < impairment.reorder and overtaken is None:
            self.stats["reordered"] += 1
            self._held[direction] = _Held(data, sock, destination, time.monotonic() + impairment.hold)
            copies -= 1  # a duplicate of a held datagram still goes now
        for _ in range(copies):
            self._send(sock, data, destination)
        if overtaken is not None:  # the held datagram goes after the one that overtook it
            self._send(overtaken.sock, overtaken.data, overtaken.destination)

    def _send(self, sock: socket.socket, data: bytes, destination: tuple[str, int]) -> None:
        try:
            sock.sendto(data, destination)
        except OSError:
            self.stats["send-errors"] += 1
