"""The lab's TFTP server: read-only, on asyncio, RFC 1350 with options (RFC 2347/2348/2349).

``TftpFileServer(root, dynamic)`` answers a request for NAME through
``phone.lab.servers.files.FileSource``: ``dynamic(NAME, client)`` first (the
lab makes CTLSEP/ITLSEP<MAC>.tlv and SEP<MAC>.cnf.xml[.sgn] there), then the
file NAME under ``root``, else error 1 "File not found" (what CUCM answers for
CTLSEP<MAC>.tlv outside mixed mode); unsafe names get error 2, uploads error 2.
``with TftpFileServer(...) as port:`` serves from a background thread with
its own event loop (``lab.serving()``, the pytest plugin, scenarios); in a
running loop, ``port = await server.start()`` … ``await server.close()``.

It is the project's only TFTP server. It replaced a server built on tftpy's
``TftpServer``, which walks every open session on every packet in one
``select()`` loop and cannot watch descriptors past 1024: with a fleet's
64-256 transfers in flight that one spent about 1 ms of CPU per download
(docs/fleet.md), this one about a tenth of that, with no descriptor limit
(epoll). tftpy stays the phone's client (``phone.device.tftp``) and the
compatibility reference the tests check this server against.

Protocol, as a CUCM TFTP server behaves towards phones:

- a read request (RRQ) starts a transfer from a new socket (a new transfer
  id, RFC 1350 section 4); the same RRQ repeated from the same client port
  while its transfer runs gets the last packet again; another request from
  that port (its OS reused the port of a transfer whose final ACK is still
  unread) ends the old transfer and starts the new one;
- options (RFC 2347): ``blksize`` 8-65464 (RFC 2348; larger asks get 65464),
  ``tsize`` (RFC 2349: the file's size is announced), ``timeout`` 1-255 s
  (RFC 2349); others are left out of the OACK. With at least one accepted
  option the server sends OACK and waits for ACK 0, else DATA 1 at once with
  512-byte blocks;
- lockstep: DATA n is resent after ``timeout`` seconds without ACK n, at most
  ``retries`` times, then the transfer is dropped; duplicate ACKs of the
  previous block are ignored (no sorcerer's apprentice, RFC 1123 4.2.3.1);
  an ERROR from the client ends the transfer; the transfer ends when the
  short final block is acknowledged;
- mode ``octet`` and ``netascii`` are both served byte for byte (phones ask
  for octet), others get error 4; a write request gets error 2;
- at most ``max_sessions`` transfers at once: requests beyond are dropped
  unanswered and the client's resend comes back later.

The callback runs on the server's event loop thread: keep it quick. If it
raises, the client gets error 0 and the server carries on. IPv4 only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import attrs

from phone.errors import RemoteError, TransportError, UsageError
from phone.lab.servers.background import InThread
from phone.lab.servers.files import Dynamic, FileSource, RefusedName, check_server_settings
from phone.wire.tftp import (
    ACCESS_VIOLATION,
    FILE_NOT_FOUND,
    ILLEGAL_OPERATION,
    MAX_BLKSIZE,
    MIN_BLKSIZE,
    NOT_DEFINED,
    error_packet,
)

log = logging.getLogger(__name__)

RRQ, WRQ, DATA, ACK, ERROR, OACK = 1, 2, 3, 4, 5, 6
DEFAULT_BLKSIZE = 512
_ACK = struct.Struct("!HH")
_DATA_HEAD = struct.Struct("!HH")
#: Requests and ACKs are small; a larger datagram is cut and then fails to parse.
_RECEIVE = 4096
#: How often transfers are checked for an overdue ACK (seconds).
_SWEEP = 0.1


@attrs.frozen
class ServerStats:
    """Counters since start, for benchmarks, tests and the lab's status output."""

    requests: int  # read requests that reached the lookup
    served: int  # transfers started (the file was found)
    not_found: int  # answered error 1
    refused: int  # unsafe names and uploads, answered error 2
    dropped: int  # left unanswered: too many transfers in flight (the client resends later)
    errors: int  # the dynamic callback failed or a file could not be read, answered error 0
    active: int  # transfers in progress now


class RequestError(RemoteError):
    """A request datagram that cannot be read (answered with error 4)."""


def parse_request(datagram: bytes) -> tuple[int, str, str, dict[str, str]]:
    """(opcode, file name, mode, options) of an RRQ/WRQ datagram (RFC 1350 section 5, RFC 2347)."""
    if len(datagram) < 4:
        raise RequestError("request too short")
    opcode = int.from_bytes(datagram[:2], "big")
    if opcode not in (RRQ, WRQ):
        raise RequestError(f"opcode {opcode} on the request port")
    fields = datagram[2:].split(b"\0")
    if len(fields) < 3 or fields[-1] != b"":
        raise RequestError("request fields are not NUL-terminated")
    try:
        texts = [field.decode("ascii") for field in fields[:-1]]
    except UnicodeDecodeError:
        raise RequestError("request is not ASCII") from None
    name, mode, rest = texts[0], texts[1].lower(), texts[2:]
    if len(rest) % 2:
        rest = rest[:-1]  # a dangling option name: ignored
    options: dict[str, str] = {}
    for key, value in zip(rest[0::2], rest[1::2]):
        options.setdefault(key.lower(), value)
    return opcode, name, mode, options


def negotiate(options: dict[str, str], size: int, default_timeout: float) -> tuple[dict[str, str], int, float]:
    """The OACK's options, the block size and the per-packet timeout (RFC 2347/2348/2349)."""
    accepted: dict[str, str] = {}
    blksize, timeout = DEFAULT_BLKSIZE, default_timeout
    text = options.get("blksize", "")
    if text.isdigit() and int(text) >= MIN_BLKSIZE:
        blksize = min(int(text), MAX_BLKSIZE)
        accepted["blksize"] = str(blksize)
    if options.get("tsize", "").isdigit():
        accepted["tsize"] = str(size)
    text = options.get("timeout", "")
    if text.isdigit() and 1 <= int(text) <= 255:
        timeout = float(text)
        accepted["timeout"] = text
    return accepted, blksize, timeout


def oack_packet(options: dict[str, str]) -> bytes:
    return struct.pack("!H", OACK) + b"".join(f"{k}\0{v}\0".encode("ascii") for k, v in options.items())


class _Transfer:
    """One read transfer on its own non-blocking socket (its transfer id), driven by the loop's reader.

    Plain sockets with ``add_reader`` instead of asyncio datagram transports:
    a transport's read allocates a 256 KiB buffer per datagram and its set-up
    is a coroutine; both cost more than the rest of a transfer (docs/fleet.md).
    """

    __slots__ = ("server", "client", "request", "data", "blksize", "timeout", "block", "last_packet", "resends",
                 "sock", "deadline", "done")

    def __init__(self, server: TftpFileServer, client: tuple[str, int], request: bytes, data: bytes,
                 blksize: int, timeout: float, sock: socket.socket) -> None:
        self.server = server
        self.request = request
        self.client = client
        self.data = data
        self.blksize = blksize
        self.timeout = timeout
        self.block = 0  # the block sent last (0: the OACK)
        self.last_packet = b""
        self.resends = 0
        self.sock = sock
        self.deadline = 0.0
        self.done = False

    def send_block(self, block: int) -> None:
        self.block = block
        start = (block - 1) * self.blksize
        self.send(_DATA_HEAD.pack(DATA, block & 0xFFFF) + self.data[start:start + self.blksize])

    def send(self, packet: bytes) -> None:
        self.last_packet = packet
        self.resends = 0
        self.deadline = self.server.loop.time() + self.timeout
        self._sendto(packet, self.client)

    def _sendto(self, packet: bytes, address: tuple[str, int]) -> None:
        try:
            self.sock.sendto(packet, address)
        except (BlockingIOError, InterruptedError):
            pass  # the socket buffer is full: the resend timer sends it again
        except OSError:
            self.finish()

    @property
    def final_block_sent(self) -> bool:
        return self.block > 0 and self.block * self.blksize > len(self.data)

    def resend(self) -> None:
        self._sendto(self.last_packet, self.client)

    def expired(self, now: float) -> None:
        """Called by the server's sweep once ``deadline`` has passed: resend, or give up."""
        if self.resends >= self.server.retries:
            self.server.counts["timeouts"] += 1
            self.finish()
            return
        self.resends += 1
        self.deadline = now + self.timeout
        self._sendto(self.last_packet, self.client)

    def readable(self) -> None:
        while not self.done:
            try:
                datagram, address = self.sock.recvfrom(_RECEIVE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # e.g. ICMP port unreachable: the client is gone
                self.finish()
                return
            self.received(datagram, address)

    def received(self, datagram: bytes, address: tuple[str, int]) -> None:
        if address[:2] != self.client:
            # Another sender on our transfer id (RFC 1350 section 4): error 5, the transfer goes on.
            self._sendto(error_packet(5, "Unknown transfer ID"), address)
            return
        if len(datagram) < 4:
            return
        opcode, number = _ACK.unpack_from(datagram)
        if opcode == ERROR:
            self.finish()
            return
        if opcode != ACK or number != self.block & 0xFFFF:
            return  # not an ACK, or a duplicate ACK of an earlier block: ignored (RFC 1123 4.2.3.1)
        if self.final_block_sent:
            self.server.counts["completed"] += 1
            self.finish()  # the short last block is acknowledged
            return
        self.send_block(self.block + 1)

    def finish(self) -> None:
        if self.done:
            return
        self.done = True
        self.server.loop.remove_reader(self.sock.fileno())
        self.sock.close()
        self.server._ended(self.client)


class TftpFileServer(InThread):
    """Read-only TFTP for files in ``root`` and files made by ``dynamic``; see the module docstring.

    In a running loop: ``port = await server.start()`` … ``await server.close()``.
    From threaded code: ``with TftpFileServer(...) as port:`` runs it in a
    background thread with its own loop.
    """

    _label = "TFTP"  # names the thread and the start-up error (InThread)

    def __init__(
        self,
        root: Path | str | None = None,
        dynamic: Dynamic | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        timeout: float = 2.0,
        retries: int = 3,
        max_sessions: int = 4096,
    ) -> None:
        self.files = FileSource(root, dynamic)
        check_server_settings(port, timeout, retries)
        if max_sessions < 1:
            raise UsageError(f"max_sessions must be at least 1, not {max_sessions}")
        self.root, self.dynamic = self.files.root, dynamic
        self.host = host
        self.timeout = timeout
        self.retries = retries
        self.max_sessions = max_sessions
        self._requested_port = port
        self._port: int | None = None
        self.counts = dict.fromkeys(("requests", "served", "not_found", "refused", "dropped", "errors", "completed",
                                     "timeouts", "reused_ports"), 0)
        self._sessions: dict[tuple[str, int], _Transfer] = {}
        self._sock: socket.socket | None = None
        self._sweeper: asyncio.TimerHandle | None = None
        self.loop: asyncio.AbstractEventLoop
        self._thread: threading.Thread | None = None
        self._thread_loop: asyncio.AbstractEventLoop | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise UsageError("the TFTP server has not been started")
        return self._port

    def stats(self) -> ServerStats:
        counts = self.counts
        return ServerStats(requests=counts["requests"], served=counts["served"], not_found=counts["not_found"],
                           refused=counts["refused"], dropped=counts["dropped"], errors=counts["errors"],
                           active=len(self._sessions))

    # -- asyncio life cycle ---------------------------------------------------------------

    async def start(self) -> int:
        """Bind and serve in the running loop; returns the bound port."""
        self.loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((self.host, self._requested_port))
        except OSError as error:
            sock.close()
            raise TransportError(f"cannot serve TFTP on {self.host}:{self._requested_port}: "
                                 f"{error.strerror or error}") from None
        sock.setblocking(False)
        self._sock = sock
        self._port = sock.getsockname()[1]
        self.loop.add_reader(sock.fileno(), self._readable)
        self._sweeper = self.loop.call_later(_SWEEP, self._sweep)
        return self._port

    async def close(self) -> None:
        """Stop listening and drop every transfer in flight."""
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        if self._sock is not None:
            self.loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
        for transfer in list(self._sessions.values()):
            transfer.finish()
        self._sessions.clear()

    def _sweep(self) -> None:
        now = self.loop.time()
        for transfer in [t for t in self._sessions.values() if t.deadline <= now]:
            transfer.expired(now)
        self._sweeper = self.loop.call_later(_SWEEP, self._sweep)

    # -- requests -------------------------------------------------------------------------

    def _readable(self) -> None:
        assert self._sock is not None
        while True:
            try:
                datagram, address = self._sock.recvfrom(_RECEIVE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:  # ICMP errors of earlier answers: nothing to do
                log.debug("TFTP listener: %s", error)
                continue
            try:
                self._request(datagram, address[:2])
            except Exception:  # noqa: BLE001 - one datagram never stops the server
                self.counts["errors"] += 1
                log.warning("TFTP request from %s failed", address, exc_info=True)

    def _request(self, datagram: bytes, client: tuple[str, int]) -> None:
        running = self._sessions.get(client)
        if running is not None:
            if datagram == running.request and not running.final_block_sent:
                running.resend()  # the client repeats its request: it missed our answer
                return
            # A new request from the port of a transfer whose last ACK we have not read yet:
            # the client finished it and its OS gave the port to a new socket. Without this,
            # the request would be taken for a repeat and the phone would wait out a timeout.
            self.counts["reused_ports"] += 1
            running.finish()
        try:
            opcode, name, mode, options = parse_request(datagram)
        except RequestError as error:
            self._answer(client, ILLEGAL_OPERATION, f"Illegal TFTP operation: {error}")
            return
        self.counts["requests"] += 1
        if opcode == WRQ:
            self.counts["refused"] += 1
            self._answer(client, ACCESS_VIOLATION, "Access violation: this server takes no uploads")
            return
        if mode not in ("octet", "netascii"):
            self._answer(client, ILLEGAL_OPERATION, f"Illegal TFTP operation: mode {mode!r}")
            return
        if len(self._sessions) >= self.max_sessions:
            self.counts["dropped"] += 1
            return
        try:
            data = self.files.lookup(name, client)
        except RefusedName as error:
            self.counts["refused"] += 1
            self._answer(client, ACCESS_VIOLATION, f"Access violation: {error}")
            return
        except Exception:  # noqa: BLE001 - the callback, or reading a file
            self.counts["errors"] += 1
            log.warning("TFTP request for %r failed", name, exc_info=True)
            self._answer(client, NOT_DEFINED, f"cannot produce {name}")
            return
        if data is None:
            self.counts["not_found"] += 1
            self._answer(client, FILE_NOT_FOUND, "File not found")
            return
        accepted, blksize, timeout = negotiate(options, len(data), self.timeout)
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((self.host, 0))
            sock.setblocking(False)
        except OSError:
            sock.close()
            self.counts["errors"] += 1
            return
        self.counts["served"] += 1
        transfer = _Transfer(self, client, datagram, data, blksize, timeout, sock)
        self._sessions[client] = transfer
        self.loop.add_reader(sock.fileno(), transfer.readable)
        if accepted:
            transfer.send(oack_packet(accepted))
        else:
            transfer.send_block(1)

    def _ended(self, client: tuple[str, int]) -> None:
        self._sessions.pop(client, None)

    def _answer(self, client: tuple[str, int], code: int, message: str) -> None:
        """An error from the listening socket; nothing is kept for the client."""
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.sendto(error_packet(code, message), client)


@contextlib.contextmanager
def running_tftp_server(dynamic: Dynamic | None = None, root: Path | str | None = None,
                            **settings: object) -> Iterator[TftpFileServer]:
    """``TftpFileServer`` in a background thread for the block; yields the server (``.port``)."""
    server = TftpFileServer(root, dynamic, **settings)  # type: ignore[arg-type]
    server.start_in_thread()
    try:
        yield server
    finally:
        server.stop()
