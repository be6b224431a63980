"""A TVS server: TLS on blocking sockets in threads, admitted by an event loop (docs/tvs.md).

``TvsServer`` is the transport around a ``TvsResponder`` (``tvs_responder``, which decides
each answer): one request per TLS connection, a cap on concurrent clients, a deadline per
step, reads bounded by the frame header, and any failure of one connection confined to
that connection. The event loop accepts sockets itself (no stream objects), counts them,
watches the silent ones and evicts them when full; a connection that has spoken is handed
to a thread that runs its handshake, request and answer on a blocking ``ssl`` socket.
``running_tvs_server`` runs one in a background thread (tests, the lab).

Trace lines are written by ``phone.console.writers.TvsTrace`` (through ``phone.console.tvs_trace``); texts
that no published log shows (type 1 handling, errors other than
the cache misses) are ours and named so in docs/tvs.md.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import os
import resource
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path

import attrs

from phone.console.tvs_trace import TvsTraceWriter
from phone.errors import PhonetrustError, TransportError
from phone.lab.servers.background import serving_in_thread
from phone.lab.servers.tvs_responder import TvsResponder
from phone.lab.tvs_store import CtlCache, TvsStore
from phone.tls import error_reason, server_context
from phone.wire.tvs import DEFAULT_TTL, HEADER_SIZE, MAX_PAYLOAD, TvsHeader, TvsMessage

#: TvsResponder lives in tvs_responder; it is named here too, where it always was.
__all__ = ["RunningTvsServer", "TvsResponder", "TvsServer", "TvsServerSettings", "process_connection_cap",
           "running_tvs_server"]


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
    #: Hex dumps and decoded headers of each message in the trace (docs/tvs.md, "Trace").
    trace_messages: bool = True
    #: How QUERY issuers are matched: "cucm" (CUCM's exact Unique MAP ID) or "any" rendering (tvs_store).
    issuer_match: str = "cucm"


#: Descriptors budgeted per TVS connection. A connection holds one, its socket (the server
#: no longer duplicates descriptors); the budget stays at two so that the cap, which held
#: against floods of idle connections (docs/reliability.md), does not grow.
DESCRIPTORS_PER_CONNECTION = 2
#: The listen backlog, which is also the most connections accepted in one turn of the loop.
ACCEPT_BACKLOG = 100


def process_connection_cap(soft_limit: int | None = None) -> int:
    """How many TVS connections one process may hold, from its descriptor limit.

    A quarter of the limit (at least 64) stays for everything else the process opens
    (listening sockets, TFTP transfers, SQLite, files), and two accept batches
    (``ACCEPT_BACKLOG``) as a margin. With the usual soft limit
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



#: accept() failures that mean the process is out of descriptors or memory: accepting
#: pauses for a second instead of spinning (as asyncio's own servers do).
_OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


@attrs.frozen
class _Silent:
    """An admitted connection that has not sent a byte yet."""

    since: float
    address: str
    timer: asyncio.TimerHandle


class TvsServer:
    """The TLS transport around a ``TvsResponder`` (docs/tvs.md)."""

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
        self._loop: asyncio.AbstractEventLoop | None = None
        self._listeners: list[socket.socket] = []
        #: Listeners whose accepting pauses (out of descriptors), with the timer that resumes it.
        self._paused: dict[socket.socket, asyncio.TimerHandle] = {}
        self._responder: TvsResponder | None = None
        self._tasks: set[asyncio.Task] = set()
        #: Connections admitted and not yet closed; threads end them, hence the lock.
        self._active = 0
        self._counts = threading.Lock()
        self._process_cap = (settings.process_connections if settings.process_connections is not None
                             else process_connection_cap())
        self._attempted = 0
        self._accepted = 0
        self._evicted = 0
        #: Connections that have not sent a byte yet, oldest first: the ones a full server
        #: evicts (see _make_room). Only the event loop's thread touches it.
        self._idle: dict[socket.socket, _Silent] = {}
        #: Connections handed to a thread, so that closing the server can cut them.
        self._exchanging: set[socket.socket] = set()  # plain sockets, then their TLS sockets
        #: Threads for the blocking TLS exchanges, at most one per admitted connection.
        self._exchanges = concurrent.futures.ThreadPoolExecutor(
            max_workers=max(1, min(settings.max_clients, self._process_cap)), thread_name_prefix="tvs-exchange")
        self._lookups = threading.Lock()

    @property
    def port(self) -> int:
        if not self._listeners:
            raise TransportError("the TVS server is not started")
        return self._listeners[0].getsockname()[1]

    async def start(self) -> int:
        """Open the store, read the CTL, listen; returns the bound port (settings.port 0: any)."""
        match = self.settings.issuer_match
        store = None if self._db_path is None else TvsStore(self._db_path, issuer_match=match)
        ctl = None if self._ctl_path is None else CtlCache(self._ctl_path, ttl=self.settings.ctl_ttl,
                                                           log=self.trace.debug, issuer_match=match)
        self._responder = TvsResponder(store, ctl, self.trace)
        self._loop = asyncio.get_running_loop()
        try:
            self._listeners = await self._listen()
        except OSError as error:
            if store is not None:
                store.close()
            raise TransportError(f"cannot listen on {self.settings.host}:{self.settings.port}: "
                                 f"{error.strerror or error}") from None
        for listener in self._listeners:
            self._loop.add_reader(listener.fileno(), self._accept_ready, listener)
        if ctl is not None and self.settings.ctl_poll_interval:
            self._spawn(self._watch_ctl(ctl, self.settings.ctl_poll_interval))
        return self.port

    async def _listen(self) -> list[socket.socket]:
        """A listening socket per address of the host (both of "localhost"), as asyncio's servers bind."""
        host, port = self.settings.host, self.settings.port
        assert self._loop is not None
        # An empty host is every interface, as for asyncio's servers.
        addresses = await self._loop.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                                 flags=socket.AI_PASSIVE)
        listeners: list[socket.socket] = []
        try:
            for family, kind, proto, _, address in dict.fromkeys(addresses):
                listener = socket.socket(family, kind, proto)
                listeners.append(listener)
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                if family == socket.AF_INET6:
                    listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                listener.bind(address)
                listener.listen(ACCEPT_BACKLOG)
                listener.setblocking(False)
        except OSError:
            for listener in listeners:
                listener.close()
            raise
        return listeners

    async def serve_until(self, stop: asyncio.Event) -> None:
        """Serve until ``stop`` is set, then close."""
        if not self._listeners:
            await self.start()
        try:
            await stop.wait()
        finally:
            await self.close()

    async def close(self) -> None:
        """Stop listening, cut open connections, close the store."""
        loop = self._loop
        for listener in self._listeners:
            if loop is not None:
                loop.remove_reader(listener.fileno())
            listener.close()
        for timer in self._paused.values():
            timer.cancel()
        for connection in list(self._idle):
            self._drop_silent(connection)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        self._exchanges.shutdown(wait=False, cancel_futures=True)
        for connection in list(self._exchanging):
            # Wake the thread wherever it blocks; it closes the socket itself. The plain
            # socket's shutdown, also for a TLS socket: its TLS state stays the thread's.
            with contextlib.suppress(OSError):
                socket.socket.shutdown(connection, socket.SHUT_RDWR)
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
                with self._lookups:  # the lookups of the exchange threads read the same cache
                    ctl.refresh_if_changed()
            except Exception as error:  # noqa: BLE001 - the monitor must outlive a bad file
                self.trace.debug(f"ERROR:CertificateCache::localCTLCacheMonitor - {error}")

    # -- admission, on the event loop's thread --------------------------------------

    def _accept_ready(self, listener: socket.socket) -> None:
        """Accept what the backlog holds, each connection counted (or refused) before the next."""
        for _ in range(ACCEPT_BACKLOG):
            try:
                connection, peer = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as error:
                if error.errno not in _OUT_OF_RESOURCES:
                    continue  # that connection is gone (ECONNABORTED...): the next one may be fine
                self.trace.debug(f"ERROR:tvsHandleNewPhConnection - cannot accept: {error.strerror};"
                                 " accepting again in 1 s")
                assert self._loop is not None
                self._loop.remove_reader(listener.fileno())
                self._paused[listener] = self._loop.call_later(1.0, self._resume_accepting, listener)
                return
            self._admit(connection, str(peer[0]) if peer else "?")

    def _resume_accepting(self, listener: socket.socket) -> None:
        self._paused.pop(listener, None)
        if listener.fileno() >= 0 and self._loop is not None:
            self._loop.add_reader(listener.fileno(), self._accept_ready, listener)

    def _admit(self, connection: socket.socket, address: str) -> None:
        self._attempted += 1
        with self._counts:
            admitted = self._active < self.settings.max_clients and _PROCESS_CONNECTIONS.take(self._process_cap)
            if admitted:
                self._active += 1
        if not admitted:
            if not self._make_room():
                self.trace.debug(f"ERROR:tvsHandleNewPhConnection - too many clients "
                                 f"({self._active} of {self.settings.max_clients} here, "
                                 f"{_PROCESS_CONNECTIONS.count} of {self._process_cap} in this process), "
                                 "connection refused")
                connection.close()
                return
            with self._counts:
                self._active += 1
            _PROCESS_CONNECTIONS.force()  # the evicted connection's slot went back a moment ago
        try:
            # Peeked, not read: the byte stays in the kernel for the TLS handshake. An empty
            # peek (the peer closed) or an error counts as spoken: the handshake reports it.
            connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            spoke = True
        except BlockingIOError:
            spoke = False
        except OSError:
            spoke = True
        if spoke:
            self._hand_over(connection, address)
        else:
            self._watch_silent(connection, address)

    def _watch_silent(self, connection: socket.socket, address: str) -> None:
        """Wait, without reading it, for the peer's first byte (a phone's TLS ClientHello).

        Until then the connection is *idle*, the kind a full server evicts first: a phone
        sends its ClientHello as soon as it connects, a flood of idle sockets never does."""
        loop = self._loop
        assert loop is not None
        timer = loop.call_later(self.settings.handshake_timeout, self._silent_too_long, connection)
        self._idle[connection] = _Silent(time.monotonic(), address, timer)
        loop.add_reader(connection.fileno(), self._spoke, connection)

    def _spoke(self, connection: socket.socket) -> None:
        silent = self._forget_silent(connection)
        if silent is not None:
            self._hand_over(connection, silent.address)

    def _silent_too_long(self, connection: socket.socket) -> None:
        if connection in self._idle:
            self.trace.debug(f"ERROR:tvsHandleNewPhConnection - nothing received within "
                             f"{self.settings.handshake_timeout} s, closing connection")
            self._drop_silent(connection)

    def _forget_silent(self, connection: socket.socket) -> _Silent | None:
        silent = self._idle.pop(connection, None)
        if silent is not None:
            silent.timer.cancel()
            if self._loop is not None:
                self._loop.remove_reader(connection.fileno())
        return silent

    def _drop_silent(self, connection: socket.socket) -> _Silent | None:
        silent = self._forget_silent(connection)
        if silent is not None:
            connection.close()
            self._release()
        return silent

    def _release(self) -> None:
        with self._counts:
            self._active -= 1
        _PROCESS_CONNECTIONS.release()

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
        silent = self._drop_silent(next(iter(self._idle)))
        assert silent is not None
        self._evicted += 1
        if self._evicted == 1 or self._evicted % 1000 == 0:  # a flood must not flood the trace too
            self.trace.debug("ERROR:tvsHandleNewPhConnection - server full: closed the oldest idle connection "
                             f"({time.monotonic() - silent.since:.1f} s without a byte; {self._evicted} so far)")
        return True

    def _hand_over(self, connection: socket.socket, address: str) -> None:
        """Give a connection that has spoken to a thread for the handshake, the request and the answer.

        The exchange is blocking ``ssl`` in a thread of ``_exchanges``: the handshake's RSA
        signature runs without the GIL, so several exchanges use several cores, and a
        blocking socket spares the per-record round trips of asyncio's TLS layer
        (docs/tvs.md has the figures)."""
        self._accepted += 1
        fd = connection.fileno()
        if self.trace.enabled:
            self.trace.debug(f"Accepted TCP connection from socket 0x{fd:08x}, fd = {fd}")
            self.trace.debug(f"Total Session attempted = {self._attempted} accepted = {self._accepted}")
            self.trace.debug(f"ipAddrStr (Phone) {address}")
        self._exchanging.add(connection)
        try:
            future = self._exchanges.submit(self._exchange, connection, fd, address)
        except RuntimeError:  # the server is closing
            self._abandon(connection)
            return
        future.add_done_callback(lambda done: done.cancelled() and self._abandon(connection))

    def _abandon(self, connection: socket.socket) -> None:
        """A connection whose exchange never ran (the server closed first)."""
        self._exchanging.discard(connection)
        connection.close()
        self._release()

    # -- the exchange, in a thread -------------------------------------------------

    def _exchange(self, connection: socket.socket, fd: int, address: str) -> None:
        """One request over TLS, blocking, in a thread; every failure stays with this connection."""
        try:
            self._blocking_exchange(connection, fd, address)
        except Exception as error:  # noqa: BLE001 - one bad connection never stops the server
            self.trace.debug(f"ERROR:tvsHandleNewPhConnection - closing connection: "
                             f"{type(error).__name__}: {error}")
        finally:
            self._exchanging.discard(connection)
            connection.close()
            self._release()

    def _blocking_exchange(self, connection: socket.socket, fd: int, address: str) -> None:
        settings = self.settings
        connection.settimeout(settings.handshake_timeout)  # for the whole handshake (one do_handshake call)
        try:
            tls = self._context.wrap_socket(connection, server_side=True, do_handshake_on_connect=False)
        except OSError as error:
            self.trace.debug(f"ERROR:{address}: tvsSSLHandShake failed: {error_reason(error)}")
            return
        # The TLS socket took the descriptor over (``connection`` is detached): closing the
        # server must find it to cut it (added before the other goes: close() may be looking).
        self._exchanging.add(tls)
        self._exchanging.discard(connection)
        try:
            try:
                tls.do_handshake()
            except OSError as error:  # ssl.SSLError and TimeoutError are OSErrors
                self.trace.debug(f"ERROR:{address}: tvsSSLHandShake failed: {error_reason(error)}")
                return
            try:
                self._answer_over(tls, fd, address)
            finally:
                # A clean close: close_notify, and the peer's, for at most the send timeout.
                with contextlib.suppress(OSError, ValueError):
                    tls.settimeout(settings.send_timeout)
                    tls.unwrap()
        finally:
            self._exchanging.discard(tls)
            tls.close()

    def _answer_over(self, tls: ssl.SSLSocket, fd: int, address: str) -> None:
        settings = self.settings
        trace = self.trace
        if trace.enabled:
            cipher = tls.cipher()
            trace.debug("tvsSSLHandShakeNotify")
            trace.debug(f"{address}: tvsSSLHandShake Session ciphers - {cipher[0] if cipher else '?'}")
            trace.debug("TLS HS Done for ph_conn")
        deadline = time.monotonic() + settings.request_timeout
        try:
            head = _read_exactly(tls, HEADER_SIZE, deadline)
            header = TvsHeader.decode(head, settings.max_payload)
            payload = _read_exactly(tls, header.length, deadline)
        except _ClosedEarly as error:
            trace.debug(f"ERROR:{fd}:UNKNOWN: connection closed after {error.received} bytes of a request")
            return
        except TimeoutError:
            trace.debug(f"ERROR:{fd}:UNKNOWN: no complete request within {settings.request_timeout} s")
            return
        except PhonetrustError as error:
            trace.debug(f"ERROR:{fd}:UNKNOWN: {error}")
            return
        frame = head + payload
        tracing = settings.trace_messages and trace.enabled
        if tracing:
            trace.debug(f"{fd}:UNKNOWN:Incoming Phone Msg:")
            trace.hex_dump(frame)
        try:
            request = TvsMessage.decode(frame, settings.max_payload)
        except PhonetrustError as error:
            trace.debug(f"ERROR:{fd}:UNKNOWN:tvsPhoneDecodeMsg - {error}")
            return
        if tracing:
            self._trace_decoded(request.type, header.length)
            trace.debug(f"{fd}:UNKNOWN:TVS CORE: Rcvd Event: TVS_EV_{request.type.name} in State: TVS_STATE_AWAIT_REQ")
        with self._lookups:  # one SQLite connection, one CTL cache and one memory of answers for all threads
            responder = self._responder
            if responder is None:  # closed meanwhile
                return
            reply = responder.reply(request)
        if reply is None:
            return
        data = reply.frame(request.request_id)
        if tracing:
            trace.debug(f"{fd}:UNKNOWN:Sending {reply.message.type.name} msg")
            self._trace_decoded(reply.message.type, len(reply.payload))
            trace.debug("Sending TLS Msg ..")
            trace.hex_dump(data)
        tls.settimeout(settings.send_timeout)
        tls.sendall(data)

    def _trace_decoded(self, kind, length: int) -> None:
        self.trace.debug("tvsPhoneDecodeMsg -")
        self.trace.debug("Protocol Discriminator: 57")
        self.trace.debug(f"MsgType : TVS_MSG_{kind.name}")
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
