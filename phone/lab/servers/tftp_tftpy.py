"""Serving files over TFTP for the emulated CUCM lab, through tftpy's server.

``TftpFileServer(root, dynamic, host="127.0.0.1", port=0)`` answers read
requests in a background thread; ``with TftpFileServer(...) as port:`` starts
it, yields the bound port (port 0 lets the OS pick a free one) and stops it.
A request for NAME is answered from, in order:

1. ``dynamic(NAME, (client_host, client_port))`` when given: bytes are served,
   None passes on (the lab generates SEP<MAC>.cnf.xml[.sgn] and CTLSEP<MAC>.tlv
   here, docs/phone.md);
2. the file NAME under ``root`` when given;
3. else error 1 "File not found", what CUCM answers for CTLSEP<MAC>.tlv outside
   mixed mode (docs/phone.md).

Names must be relative and '/'-separated, without empty, '.' or '..' parts,
backslashes or control characters, and a file reached through a symbolic link
must still lie inside ``root``; anything else gets error 2 "Access violation"
(or tftpy's own error 4 for a name that climbs out of its root). Uploads get
error 2. The callback runs on the server's thread and holds up every transfer
while it runs: keep it quick. An exception in it is logged and answered with
error 0.

tftpy's server is one select() loop on one thread. Around it:

- every request goes through the lookup above: tftpy is given an empty private
  folder as its root, so it never opens files itself (no directory or
  permission error can reach its loop, no symbolic link leads out);
- at most ``max_sessions`` transfers run at once, and a transfer whose socket
  got a descriptor select() cannot watch (1024 and above) is not started:
  such requests are dropped unanswered, and the client's resend comes back
  later (a client that gives up reports a time-out);
- when a malformed datagram kills tftpy's loop (its decoders raise more than
  TftpException), the loop is restarted on the same port; transfers in flight
  at that moment are lost and their clients time out;
- its loggers are silenced (see phone.wire.tftp.quiet_tftpy).

docs/tftp.md gives the measured limits (transfers per second, concurrency,
what happens near 1024 descriptors). IPv4 only.
"""

from __future__ import annotations

import io
import logging
import socket
import tempfile
import threading
from pathlib import Path

import attrs
import tftpy
from tftpy.TftpShared import TftpException

from phone.errors import TransportError, UsageError
from phone.lab.servers.files import Dynamic, FileSource, RefusedName, check_server_settings
from phone.wire.tftp import ACCESS_VIOLATION, NOT_DEFINED, error_packet, quiet_tftpy

quiet_tftpy()

log = logging.getLogger(__name__)

#: A callback making files by name: (name, (client host, client port)) -> bytes, or None.

#: select() cannot watch descriptors at or above FD_SETSIZE, 1024 on Linux.
SELECT_LIMIT = 1024

#: How long stop() waits for the server thread before giving up on it.
_STOP_WAIT = 5.0


@attrs.frozen
class ServerStats:
    """Counters since start, for benchmarks, tests and the lab's status output."""

    requests: int  # read requests that reached the lookup
    served: int  # transfers started (the file was found)
    not_found: int  # answered error 1
    refused: int  # unsafe names and uploads, answered error 2
    dropped: int  # left unanswered: too many transfers, or a descriptor select() cannot watch
    errors: int  # the dynamic callback failed or a file could not be read, answered error 0
    restarts: int  # tftpy's loop died on a malformed datagram and was started again
    active: int  # transfers in progress now


class _MemoryFile(io.BytesIO):
    """Bytes handed to tftpy as the file to send.

    It reports itself closed: at the end of every transfer tftpy 0.8.7 unlocks
    (flock) and closes the file if it is still open, which fails for an
    in-memory file and kills the whole server loop (msoulier/tftpy#155 on GitHub). There is
    nothing to unlock or close.
    """

    @property
    def closed(self) -> bool:  # type: ignore[override]
        return True


class TftpFileServer:
    """A TFTP server for files in ``root`` and files made by ``dynamic``.

    ``timeout`` and ``retries`` are tftpy's per-transfer settings: seconds
    before resending the last packet, and resends before dropping a silent
    client. Use as ``with TftpFileServer(root) as port: ...`` or call
    ``start()`` (returns the port) and ``stop()``.
    """

    def __init__(
        self,
        root: Path | str | None = None,
        dynamic: Dynamic | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        timeout: float = 2.0,
        retries: int = 3,
        max_sessions: int = 256,
    ) -> None:
        self.files = FileSource(root, dynamic)
        check_server_settings(port, timeout, retries)
        if not 1 <= max_sessions < SELECT_LIMIT:
            raise UsageError(f"max_sessions must be 1-{SELECT_LIMIT - 1}, not {max_sessions}")
        self.root, self.dynamic = self.files.root, dynamic
        self.host = host
        self.timeout = timeout
        self.retries = retries
        self.max_sessions = max_sessions
        self._requested_port = port
        self._port: int | None = None
        self._counts = dict.fromkeys(("requests", "served", "not_found", "refused", "dropped", "errors", "restarts"), 0)
        self._empty_root: tempfile.TemporaryDirectory[str] | None = None
        self._server: tftpy.TftpServer | None = None
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._failure: BaseException | None = None

    # -- life cycle ---------------------------------------------------------

    def __enter__(self) -> int:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound UDP port (after start)."""
        if self._port is None:
            raise UsageError("the TFTP server has not been started")
        return self._port

    def start(self) -> int:
        """Bind, start serving in a background thread, return the bound port."""
        if self._thread is not None:
            raise UsageError("this TFTP server was already started; make a new one")
        self._empty_root = tempfile.TemporaryDirectory(prefix="phonetrust-tftp-")
        self._server = tftpy.TftpServer(
            self._empty_root.name, dyn_file_func=self._open, upload_open=self._refuse_upload
        )
        self._thread = threading.Thread(target=self._serve, name="tftp-server", daemon=True)
        self._thread.start()
        while not self._server.is_running.wait(0.01):
            if not self._thread.is_alive():
                self._release()
                raise TransportError(f"cannot serve TFTP on {self.host}:{self._requested_port}: {self._failure}")
        descriptor = self._server.sock.fileno()
        self._port = self._server.listenport
        if descriptor >= SELECT_LIMIT:
            self.stop()
            raise TransportError(
                f"the TFTP server socket got descriptor {descriptor}; tftpy's select() loop cannot "
                f"watch descriptors from {SELECT_LIMIT} up (close descriptors or serve from another process)"
            )
        self._thread.name = f"tftp-server-{self._port}"
        return self._port

    def stop(self) -> None:
        """Stop at once (transfers in flight are dropped) and release the port; idempotent."""
        if self._server is None or self._thread is None or self._stopping:
            return
        self._stopping = True
        self._server.stop(now=True)
        self._wake()
        self._thread.join(_STOP_WAIT)
        if self._thread.is_alive():
            log.warning("TFTP server thread on port %s did not stop within %s s", self._port, _STOP_WAIT)
        else:
            self._discard_sessions()  # a loop that died on select() left its sockets open
        self._release()

    def stats(self) -> ServerStats:
        active = len(self._server.sessions) if self._server is not None else 0
        return ServerStats(**self._counts, active=active)

    def _serve(self) -> None:
        """The server thread: tftpy's loop, started again when a malformed datagram kills it."""
        assert self._server is not None
        port = self._requested_port
        while not self._stopping:
            try:
                self._server.listen(self.host, port, timeout=self.timeout, retries=self.retries)
                return
            except Exception as error:  # tftpy raises whatever its decoders raise
                if not self._server.is_running.is_set() or _select_overflow(error):
                    self._failure = error  # could not bind, or cannot select: restarting would not help
                    log.warning("TFTP server on %s:%s stopped: %s", self.host, port, error)
                    return
                port = self._server.listenport
                self._counts["restarts"] += 1
                log.warning("TFTP server loop on port %s died (%r); restarting it", port, error)
                self._discard_sessions()

    def _discard_sessions(self) -> None:
        """Close what a dead (or stopped) tftpy loop left: session sockets and its own socket."""
        assert self._server is not None
        for context in list(self._server.sessions.values()):
            try:
                context.end()
            except Exception:  # already broken; we only want its socket closed
                log.debug("closing a dead TFTP session failed", exc_info=True)
        self._server.sessions = {}
        if self._server.sock is not None:
            self._server.sock.close()
        self._server.is_running.clear()

    def _wake(self) -> None:
        """Send the loop a datagram so that it sees the stop flag now, not after its select() timeout.

        Two zero bytes are no TFTP request: tftpy discards them without answering.
        """
        if self._port is None:
            return
        target = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as waker:
                waker.sendto(b"\0\0", (target, self._port))
        except OSError:
            pass  # the loop still stops at its next select() timeout

    def _release(self) -> None:
        if self._empty_root is not None:
            self._empty_root.cleanup()
            self._empty_root = None

    # -- requests (called on the server thread by tftpy) ---------------------

    def _open(self, name: str, raddress: str, rport: int) -> io.BytesIO | None:
        """tftpy's dyn_file_func: the file to send, None for error 1; raising ends the transfer."""
        assert self._server is not None
        self._counts["requests"] += 1
        context = self._server.sessions[f"{raddress}:{rport}"]
        if len(self._server.sessions) > self.max_sessions or context.sock.fileno() >= SELECT_LIMIT:
            self._counts["dropped"] += 1
            log.debug("dropped a request for %r from %s:%s", name, raddress, rport)
            raise TftpException("dropped: too many transfers or descriptors")
        try:
            data = self.files.lookup(name, (raddress, rport))
        except RefusedName as refusal:
            self._counts["refused"] += 1
            self._answer_error(context, ACCESS_VIOLATION, f"Access violation: {refusal}")
            raise TftpException(f"refused {name!r}: {refusal}") from None
        except Exception as error:  # the lab's callback, or reading a file
            self._counts["errors"] += 1
            log.warning("TFTP request for %r failed", name, exc_info=True)
            self._answer_error(context, NOT_DEFINED, f"cannot produce {name}")
            raise TftpException(f"cannot produce {name!r}: {error}") from None
        if data is None:
            self._counts["not_found"] += 1
            return None
        self._counts["served"] += 1
        return _MemoryFile(data)

    def _refuse_upload(self, path: str, context: object) -> None:
        """tftpy's upload_open: None makes it answer error 2; the lab takes no uploads."""
        self._counts["refused"] += 1
        return None

    @staticmethod
    def _answer_error(context: tftpy.TftpContexts.TftpContextServer, code: int, message: str) -> None:
        try:
            context.sock.sendto(error_packet(code, message), (context.host, context.tidport))
        except OSError:
            pass  # the client resends or times out


def _select_overflow(error: Exception) -> bool:
    return isinstance(error, ValueError) and "filedescriptor out of range" in str(error)
