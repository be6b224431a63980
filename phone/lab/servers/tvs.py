"""A TVS server: asyncio + TLS, answering as CUCM's TVS does (docs/tvs.md).

``TvsResponder`` decides the answer to one request (no sockets): DB cache
first, then the CTL cache, STATUS 1 when neither holds the certificate. It
writes CUCM's detailed-trace lines (Cisco TAC 213407 and 118893) on the way.
``TvsServer`` is the transport: one request per TLS connection, a cap on
concurrent clients, a deadline per step, reads bounded by the frame header,
and any failure of one connection confined to that connection.
``running_tvs_server`` runs one in a background thread (tests, the lab).

Trace lines are written by ``phone.console.writers.TvsTrace`` (through ``phone.console.tvs_trace``); texts
that no published log shows (type 1 handling, errors other than
the cache misses) are ours and named so in docs/tvs.md.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import resource
import select
import socket
import ssl
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import attrs

from phone.console.tvs_trace import TvsTraceWriter
from phone.lab.servers.background import serving_in_thread
from phone.errors import CertificateError, PhonetrustError, TransportError
from phone.lab.tvs_store import CertificateEntry, CtlCache, TvsStore
from phone.tls import close_stream, error_reason, server_context
from phone.wire.certs import load_certificate
from phone.wire.names import cucm_name, name_key, serial_to_bytes
from phone.wire.tvs import (
    DEFAULT_TTL,
    HEADER_SIZE,
    MAX_PAYLOAD,
    MessageType,
    Status,
    TvsHeader,
    TvsMessage,
)

#: Issuer of the hardware eTokens' SAST certificates (Cisco TAC 118893).
_ETOKEN_ISSUER = name_key("CN=Cisco Manufacturing CA;O=Cisco Systems")


@attrs.frozen
class TvsServerSettings:
    """Settings of a TVS server; defaults suit a lab of CUCM 10.x phones (docs/tvs.md)."""

    host: str = "127.0.0.1"
    port: int = 2445
    #: OPEN (docs/tvs.md): CUCM's minimum per release; 10.x accepted TLS 1.0.
    min_tls: str = "1.0"
    max_tls: str = "1.3"
    seclevel: int = 0
    #: Connections beyond this are closed at once, before the handshake (tvsd does the same).
    max_clients: int = 512
    handshake_timeout: float = 10.0
    #: A full server closes the oldest connection that has not sent a byte yet, whatever its
    #: age, to admit a newcomer (see TvsServer._make_room). False: refuse newcomers.
    evict_when_full: bool = True
    #: Connections all TVS servers of this process hold at once; None: derived from the
    #: descriptor limit (``process_connection_cap``), so that TVS cannot starve the other
    #: services of a ``lab serve`` process (TFTP, the stores) of descriptors.
    process_connections: int | None = None
    #: From the end of the handshake until the whole request has arrived.
    request_timeout: float = 10.0
    #: Writing the answer and closing the connection.
    send_timeout: float = 5.0
    max_payload: int = MAX_PAYLOAD
    #: TTL answered for certificates found in the CTL cache (docs/tvs.md: CUCM 86400).
    ctl_ttl: int = DEFAULT_TTL
    #: Seconds between checks of CTLFile.tlv for changes (also checked before each lookup).
    ctl_poll_interval: float | None = 2.0
    #: Hex dumps and decoded headers of each message in the trace (S1.e/S1.f).
    trace_messages: bool = True
    #: How QUERY issuers are matched: "cucm" (CUCM's exact Unique MAP ID) or "any" rendering (tvs_store).
    issuer_match: str = "cucm"


#: Descriptors a TVS connection may hold: its socket, and a duplicate while it is silent or
#: while its exchange moves to a thread (the original closes on the next turn of the loop).
DESCRIPTORS_PER_CONNECTION = 2
#: The listen backlog, which is also how many connections asyncio accepts in one go: that
#: many descriptors are taken before any connection can be counted or refused.
ACCEPT_BACKLOG = 100


def process_connection_cap(soft_limit: int | None = None) -> int:
    """How many TVS connections one process may hold, from its descriptor limit.

    A quarter of the limit (at least 64) stays for everything else the process opens
    (listening sockets, TFTP transfers, SQLite, files), and one accept batch
    (``ACCEPT_BACKLOG``) twice: connections accepted before they are counted, and as many
    evicted ones whose sockets close on the next turn of the loop. With the usual soft limit
    of 1,024, 284 connections; 1,010 idle connections used to take a
    ``lab serve`` process to the limit, after which its TFTP server dropped every request."""
    if soft_limit is None:
        soft_limit = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft_limit == resource.RLIM_INFINITY or soft_limit > 1 << 20:
        soft_limit = 1 << 20
    reserve = max(64, soft_limit // 4) + 2 * ACCEPT_BACKLOG
    return max(1, (soft_limit - reserve) // DESCRIPTORS_PER_CONNECTION)


class _ProcessConnections:
    """The TVS connections open in this process, across servers and their threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.count = 0

    def take(self, cap: int) -> bool:
        with self._lock:
            if self.count >= cap:
                return False
            self.count += 1
            return True

    def force(self) -> None:
        with self._lock:
            self.count += 1

    def release(self) -> None:
        with self._lock:
            self.count -= 1


_PROCESS_CONNECTIONS = _ProcessConnections()


class TvsResponder:
    """The answer to one request, looked up as docs/tvs.md describes."""

    def __init__(self, store: TvsStore | None, ctl: CtlCache | None, trace: TvsTraceWriter) -> None:
        self.store = store
        self.ctl = ctl
        self.trace = trace

    def answer(self, request: TvsMessage) -> TvsMessage | None:
        """The response, or None when the request deserves none (the connection is dropped)."""
        if not request.is_request:
            self.trace.debug(f"ERROR:tvsPhoneDecodeMsg - unexpected message type {int(request.type)}"
                             " from a phone")
            return None
        missing = request.missing()
        if missing:
            self.trace.debug(f"ERROR:tvsPhoneDecodeMsg - {request.type.name} without "
                             + ", ".join(tag.name for tag in missing))
            return None
        if self.ctl is not None:
            self.ctl.refresh_if_changed()
        if request.type is MessageType.QUERY_CERT_REQ:
            return self._query(request)
        return self._verify(request)

    def _query(self, request: TvsMessage) -> TvsMessage:
        subject, issuer, serial = request.subject, request.issuer, request.serial
        assert subject is not None and issuer is not None and serial is not None
        self.trace.debug("tvsHandleQueryCertReq")
        self.trace.debug(f"tvsHandleQueryCertReq : Subject Name is: {subject}")
        self.trace.debug(f"tvsHandleQueryCertReq : Issuer Name is: {issuer}")
        if name_key(issuer) == _ETOKEN_ISSUER:
            self.trace.debug("tvsHandleQueryCertReq :subjectName and issuerName matches for eToken certificate")
            self.trace.debug(f"tvsHandleQueryCertReq : SAST Issuer Name  is: {issuer}")
            self.trace.debug("tvsHandleQueryCertReq : This is SAST eToken cert")
        self.trace.debug(f"tvsHandleQueryCertReq : Serial Number is: {serial.hex().upper()}")
        map_id = f"{serial.hex().upper()}{issuer}"
        entry = self._lookup(map_id, lambda cache: cache.find(serial, issuer))
        if entry is None:
            self.trace.debug("tvsHandleQueryCertReq : certificate not found, sending status 1")
            return TvsMessage.answer(request, Status.NOT_TRUSTED)
        self.trace.debug(f"convertX509ToDER -x509cert : 0x{zlib.crc32(entry.certificate):x}")
        self.trace.debug("tvsHandleQueryCertReq: Timer started from tvsHandleNewPhConnection")
        return TvsMessage.answer(request, Status.TRUSTED, certificate=entry.certificate,
                                 roles=entry.roles, ttl=entry.ttl)

    def _verify(self, request: TvsMessage) -> TvsMessage:
        der = request.certificate
        assert der is not None
        self.trace.debug("tvsHandleCertVerificationReq")
        try:
            parsed = load_certificate(der, source="CERT_VERIFICATION_REQ certificate")
            subject, issuer = cucm_name(parsed.subject), cucm_name(parsed.issuer)
            serial = serial_to_bytes(parsed.serial_number)
        except CertificateError:
            self.trace.debug("ERROR:tvsHandleCertVerificationReq : the certificate does not parse,"
                             " sending status 1")
            return TvsMessage.answer(request, Status.NOT_TRUSTED)
        self.trace.debug(f"tvsHandleCertVerificationReq : Subject Name is: {subject}")
        self.trace.debug(f"tvsHandleCertVerificationReq : Issuer Name is: {issuer}")
        self.trace.debug(f"tvsHandleCertVerificationReq : Serial Number is: {serial.hex().upper()}")
        # The whole certificate must match: same serial and issuer with another key is not trust.
        entry = self._lookup(f"{serial.hex().upper()}{issuer}", lambda cache: cache.find_certificate(der))
        if entry is None:
            self.trace.debug("tvsHandleCertVerificationReq : certificate not found, sending status 1")
            return TvsMessage.answer(request, Status.NOT_TRUSTED)
        return TvsMessage.answer(request, Status.TRUSTED, roles=entry.roles, ttl=entry.ttl)

    def _lookup(self, map_id: str, find: Callable[[object], CertificateEntry | None]
                ) -> CertificateEntry | None:
        """DB cache first, then CTL cache, with the trace of S1.e and S2."""
        caches = (("CertificateDBCache", self.store, ""),
                  ("CertificateCTLCache", self.ctl, f", len : {len(map_id)}"))
        for name, cache, suffix in caches:
            where = f"{name}::getCertificateInformation"
            self.trace.debug(f"{where} - Looking up the certificate cache using Unique MAP ID : {map_id}{suffix}")
            entry = None if cache is None else find(cache)
            if entry is None:
                self.trace.debug(f"ERROR:{where} - Cannot find the certificate in the cache")
                continue
            self.trace.debug(f"{where} - Found entry {{rolecount : {len(entry.roles)}}}")
            for role in entry.roles:
                self.trace.debug(f"{where} - {{role : {role}}}")
            return entry
        return None


class TvsServer:
    """The asyncio TLS transport around a ``TvsResponder`` (docs/tvs.md)."""

    def __init__(self, certificate: str | os.PathLike[str], key: str | os.PathLike[str], *,
                 db: str | os.PathLike[str] | None = None, ctl: str | os.PathLike[str] | None = None,
                 settings: TvsServerSettings = TvsServerSettings(),
                 trace: Callable[[str], None] | None = None,
                 clock: Callable[[], datetime] = datetime.now) -> None:
        self.settings = settings
        self.trace = TvsTraceWriter(trace, clock)
        self._context = server_context(certificate, key, min_version=settings.min_tls,
                                       max_version=settings.max_tls, seclevel=settings.seclevel)
        self._db_path = None if db is None else Path(db)
        self._ctl_path = None if ctl is None else Path(ctl)
        self._server: asyncio.base_events.Server | None = None
        self._responder: TvsResponder | None = None
        self._tasks: set[asyncio.Task] = set()
        self._active = 0
        #: Connections that have not yet delivered a whole request, oldest first: the ones a
        #: full server evicts, so that idle sockets cannot lock phones out (see _connection).
        self._waiting: dict[asyncio.Task, tuple[float, asyncio.BaseTransport]] = {}
        self._process_cap = (settings.process_connections if settings.process_connections is not None
                             else process_connection_cap())
        self._attempted = 0
        self._accepted = 0
        self._evicted = 0
        #: Connections that have not sent a byte yet, oldest first: the ones a full server
        #: evicts (see _first_byte and _make_room).
        self._idle: dict[asyncio.Task, tuple[asyncio.BaseTransport, asyncio.Future, int]] = {}
        #: Threads for the blocking TLS exchanges, at most one per admitted connection.
        self._exchanges = concurrent.futures.ThreadPoolExecutor(
            max_workers=max(1, min(settings.max_clients, self._process_cap)), thread_name_prefix="tvs-exchange")
        self._lookups = threading.Lock()

    @property
    def port(self) -> int:
        if self._server is None:
            raise TransportError("the TVS server is not started")
        return self._server.sockets[0].getsockname()[1]

    async def start(self) -> int:
        """Open the store, read the CTL, listen; returns the bound port (settings.port 0: any)."""
        match = self.settings.issuer_match
        store = None if self._db_path is None else TvsStore(self._db_path, issuer_match=match)
        ctl = None if self._ctl_path is None else CtlCache(self._ctl_path, ttl=self.settings.ctl_ttl,
                                                           log=self.trace.debug, issuer_match=match)
        self._responder = TvsResponder(store, ctl, self.trace)
        try:
            self._server = await asyncio.start_server(self._connection, self.settings.host,
                                                      self.settings.port, limit=self.settings.max_payload
                                                      + HEADER_SIZE, backlog=ACCEPT_BACKLOG)
        except OSError as error:
            if store is not None:
                store.close()
            raise TransportError(f"cannot listen on {self.settings.host}:{self.settings.port}: "
                                 f"{error.strerror or error}") from None
        if ctl is not None and self.settings.ctl_poll_interval:
            self._spawn(self._watch_ctl(ctl, self.settings.ctl_poll_interval))
        return self.port

    async def serve_until(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set, then close."""
        if self._server is None:
            await self.start()
        try:
            await stop.wait()
        finally:
            await self.close()

    async def close(self) -> None:
        """Stop listening, cut open connections, close the store."""
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
        self._exchanges.shutdown(wait=False, cancel_futures=True)
        if self._responder is not None and self._responder.store is not None:
            with self._lookups:
                self._responder.store.close()
                self._responder = None

    def _spawn(self, coroutine) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _watch_ctl(self, ctl: CtlCache, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                ctl.refresh_if_changed()
            except Exception as error:  # noqa: BLE001 - the monitor must outlive a bad file
                self.trace.debug(f"ERROR:CertificateCache::localCTLCacheMonitor - {error}")

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        self._attempted += 1
        admitted = self._active < self.settings.max_clients and _PROCESS_CONNECTIONS.take(self._process_cap)
        if not admitted:
            if not self._make_room():
                self.trace.debug(f"ERROR:tvsHandleNewPhConnection - too many clients "
                                 f"({self._active} of {self.settings.max_clients} here, "
                                 f"{_PROCESS_CONNECTIONS.count} of {self._process_cap} in this process), "
                                 "connection refused")
                writer.transport.abort()
                return
            _PROCESS_CONNECTIONS.force()  # the evicted connection's slot frees as its task ends
        self._active += 1
        if task is not None:
            self._waiting[task] = (time.monotonic(), writer.transport)
        try:
            silent = await self._first_byte(task, writer)
            if silent is not None:
                if silent == "timeout":
                    self.trace.debug(f"ERROR:tvsHandleNewPhConnection - nothing received within "
                                     f"{self.settings.handshake_timeout} s, closing connection")
                writer.transport.abort()
                return
            await self._session(reader, writer)
        except asyncio.CancelledError:
            # Server shutdown: cut the connection now. The task ends normally, as
            # asyncio's stream callback reports a cancelled handler as an error.
            writer.transport.abort()
            return
        except Exception as error:  # noqa: BLE001 - one bad connection never stops the server
            self.trace.debug(f"ERROR:tvsHandleNewPhConnection - closing connection: "
                             f"{type(error).__name__}: {error}")
        finally:
            self._active -= 1
            _PROCESS_CONNECTIONS.release()
            self._waiting.pop(task, None)
            self._idle.pop(task, None)
        if not writer.transport.is_closing():
            await close_stream(writer, self.settings.send_timeout)

    async def _first_byte(self, task: asyncio.Task | None, writer: asyncio.StreamWriter) -> str | None:
        """Wait, without reading it, for the peer's first byte (a phone's TLS ClientHello).

        Until then the connection is *idle*, the kind a full server evicts first: a phone
        sends its ClientHello as soon as it connects, a flood of idle sockets never does.
        Readiness is watched on a duplicate of the socket's descriptor, with the stream
        paused, so that the byte stays in the kernel for the TLS handshake to read. None
        once a byte (or the peer's close) arrived; "timeout" when nothing came within the
        handshake timeout; "evicted" when a full server cut the connection meanwhile."""
        sock = writer.get_extra_info("socket")
        if sock is None or task is None:
            return None
        if select.select([sock.fileno()], [], [], 0)[0]:
            return None  # already there (a phone whose connection waited in the accept queue)
        try:
            watcher = os.dup(sock.fileno())
        except OSError:  # no descriptor to spare: go straight to the handshake
            return None
        loop = asyncio.get_running_loop()
        arrived: asyncio.Future[str | None] = loop.create_future()
        self._idle[task] = (writer.transport, arrived, watcher)
        writer.transport.pause_reading()  # start_tls resumes it
        loop.add_reader(watcher, lambda: arrived.done() or arrived.set_result(None))
        try:
            async with asyncio.timeout(self.settings.handshake_timeout):
                return await arrived
        except TimeoutError:
            return "timeout"
        finally:
            if not (arrived.done() and not arrived.cancelled() and arrived.result() == "evicted"):
                # (eviction closed it already)
                loop.remove_reader(watcher)
                os.close(watcher)
            self._idle.pop(task, None)

    def _make_room(self) -> bool:
        """Cut the oldest connection that has not sent a byte yet, whatever its age.

        A full server would otherwise let a host holding idle connections turn every phone
        away. Age is no test: a flood of connections each closed after 1.5 s kept a server
        that evicted only connections idle for 2 s full for good. Silence is: a phone sends
        its ClientHello the moment it connects, so a connection that has sent nothing is
        not a phone at work, while one in its handshake is never cut (a registration storm
        of 1,000 phones keeps being answered, the excess turned away before its handshake).
        A cap per address would also stop a flood, but would throttle a fleet emulator that
        runs thousands of phones from one address.
        """
        if not self.settings.evict_when_full or not self._idle:
            return False
        task, (transport, arrived, watcher) = next(iter(self._idle.items()))
        del self._idle[task]
        if not arrived.done():
            # Its descriptors go now, not when its task next runs: a burst of newcomers
            # would otherwise hold two descriptors each for the evicted ones.
            asyncio.get_running_loop().remove_reader(watcher)
            os.close(watcher)
            arrived.set_result("evicted")
        since = self._waiting.get(task, (time.monotonic(), None))[0]
        self._evicted += 1
        if self._evicted == 1 or self._evicted % 1000 == 0:  # a flood must not flood the trace too
            self.trace.debug("ERROR:tvsHandleNewPhConnection - server full: closed the oldest idle connection "
                             f"({time.monotonic() - since:.1f} s without a byte; {self._evicted} so far)")
        transport.abort()
        return True

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Hand the connection to a thread for the TLS handshake, the request and the answer.

        The event loop admits, watches and evicts connections; the exchange itself is
        blocking ``ssl`` on a duplicate of the socket in a thread of ``_exchanges``: the
        handshake's RSA signature runs without the GIL, so several exchanges use several
        cores, and the blocking socket spares the per-record round trips of asyncio's TLS
        layer (docs/tvs.md has the figures). The transport is aborted once the duplicate
        holds the connection: closing one of two descriptors of a socket closes nothing.
        """
        self._accepted += 1
        sock = writer.get_extra_info("socket")
        if sock is None:
            return
        fd = sock.fileno()
        address = (writer.get_extra_info("peername") or ("?",))[0]
        self.trace.debug(f"Accepted TCP connection from socket 0x{fd:08x}, fd = {fd}")
        self.trace.debug(f"Total Session attempted = {self._attempted} accepted = {self._accepted}")
        self.trace.debug(f"ipAddrStr (Phone) {address}")
        writer.transport.pause_reading()  # the ClientHello stays in the kernel for the thread to read
        connection = socket.socket(sock.family, sock.type, sock.proto, fileno=os.dup(fd))
        writer.transport.abort()
        try:
            await asyncio.get_running_loop().run_in_executor(self._exchanges, self._exchange, connection, fd,
                                                             address, asyncio.current_task())
        except asyncio.CancelledError:
            # Server shutdown: wake the thread wherever it blocks; it closes the socket itself.
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)
            raise

    def _exchange(self, connection: socket.socket, fd: int, address: str, task: asyncio.Task | None) -> None:
        """One request over TLS, blocking, in a thread; every failure stays with this connection."""
        try:
            self._blocking_exchange(connection, fd, address, task)
        except Exception as error:  # noqa: BLE001 - one bad connection never stops the server
            self.trace.debug(f"ERROR:tvsHandleNewPhConnection - closing connection: "
                             f"{type(error).__name__}: {error}")
        finally:
            connection.close()

    def _blocking_exchange(self, connection: socket.socket, fd: int, address: str,
                           task: asyncio.Task | None) -> None:
        settings = self.settings
        connection.settimeout(settings.handshake_timeout)  # for the whole handshake (one do_handshake call)
        try:
            tls = self._context.wrap_socket(connection, server_side=True, do_handshake_on_connect=False)
            tls.do_handshake()
        except OSError as error:  # ssl.SSLError and TimeoutError are OSErrors
            self.trace.debug(f"ERROR:{address}: tvsSSLHandShake failed: {error_reason(error)}")
            return
        try:
            self._answer_over(tls, fd, address, task)
        finally:
            # A clean close: close_notify, and the peer's, for at most the send timeout.
            with contextlib.suppress(OSError, ValueError):
                tls.settimeout(settings.send_timeout)
                tls.unwrap()
            tls.close()

    def _answer_over(self, tls: ssl.SSLSocket, fd: int, address: str, task: asyncio.Task | None) -> None:
        settings = self.settings
        cipher = tls.cipher()
        self.trace.debug("tvsSSLHandShakeNotify")
        self.trace.debug(f"{address}: tvsSSLHandShake Session ciphers - {cipher[0] if cipher else '?'}")
        self.trace.debug("TLS HS Done for ph_conn")
        deadline = time.monotonic() + settings.request_timeout
        try:
            head = _read_exactly(tls, HEADER_SIZE, deadline)
            header = TvsHeader.decode(head, settings.max_payload)
            payload = _read_exactly(tls, header.length, deadline)
        except _ClosedEarly as error:
            self.trace.debug(f"ERROR:{fd}:UNKNOWN: connection closed after {error.received} bytes"
                             " of a request")
            return
        except TimeoutError:
            self.trace.debug(f"ERROR:{fd}:UNKNOWN: no complete request within {settings.request_timeout} s")
            return
        except PhonetrustError as error:
            self.trace.debug(f"ERROR:{fd}:UNKNOWN: {error}")
            return
        frame = head + payload
        self._waiting.pop(task, None)  # a whole request: no longer evictable (a dict: safe across threads)
        if settings.trace_messages:
            self.trace.debug(f"{fd}:UNKNOWN:Incoming Phone Msg:")
            self.trace.hex_dump(frame)
        try:
            request = TvsMessage.decode(frame, settings.max_payload)
        except PhonetrustError as error:
            self.trace.debug(f"ERROR:{fd}:UNKNOWN:tvsPhoneDecodeMsg - {error}")
            return
        if settings.trace_messages:
            self._trace_decoded(request, header.length)
            self.trace.debug(f"{fd}:UNKNOWN:TVS CORE: Rcvd Event: TVS_EV_{request.type.name}"
                             " in State: TVS_STATE_AWAIT_REQ")
        responder = self._responder
        if responder is None:  # closed meanwhile
            return
        with self._lookups:  # one SQLite connection and one CTL cache for all threads
            response = responder.answer(request)
        if response is None:
            return
        data = response.encode()
        if settings.trace_messages:
            self.trace.debug(f"{fd}:UNKNOWN:Sending {response.type.name} msg")
            self._trace_decoded(response, len(data) - HEADER_SIZE)
            self.trace.debug("Sending TLS Msg ..")
            self.trace.hex_dump(data)
        tls.settimeout(settings.send_timeout)
        tls.sendall(data)

    def _trace_decoded(self, message: TvsMessage, length: int) -> None:
        self.trace.debug("tvsPhoneDecodeMsg -")
        self.trace.debug("Protocol Discriminator: 57")
        self.trace.debug(f"MsgType : TVS_MSG_{message.type.name}")
        self.trace.debug(f"Length : {length}")



class _ClosedEarly(Exception):
    """The peer closed before the whole request arrived."""

    def __init__(self, received: int) -> None:
        super().__init__(f"closed after {received} bytes")
        self.received = received


def _read_exactly(tls: ssl.SSLSocket, size: int, deadline: float) -> bytes:
    """``size`` bytes before ``deadline`` (``time.monotonic``); TimeoutError or _ClosedEarly otherwise."""
    data = bytearray()
    while len(data) < size:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("request deadline")
        tls.settimeout(remaining)
        chunk = tls.recv(size - len(data))
        if not chunk:
            raise _ClosedEarly(len(data))
        data += chunk
    return bytes(data)


@attrs.frozen
class RunningTvsServer:
    """A server running in a background thread: where to reach it."""

    host: str
    port: int

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@contextlib.contextmanager
def running_tvs_server(certificate: str | os.PathLike[str], key: str | os.PathLike[str], *,
                       db: str | os.PathLike[str] | None = None,
                       ctl: str | os.PathLike[str] | None = None,
                       settings: TvsServerSettings = TvsServerSettings(port=0),
                       trace: Callable[[str], None] | None = None,
                       clock: Callable[[], datetime] = datetime.now,
                       start_timeout: float = 10.0) -> Iterator[RunningTvsServer]:
    """Run a TVS server in a background thread with its own event loop; stop it on exit.

    ``settings.port`` defaults to 0 here: the OS picks a free port, yielded in
    the result. Start-up errors (bad certificate, port in use) are raised here.
    """
    server = TvsServer(certificate, key, db=db, ctl=ctl, settings=settings, trace=trace, clock=clock)
    with serving_in_thread(server, name="tvs", start_timeout=start_timeout):
        yield RunningTvsServer(settings.host, server.port)
