"""Fetching one file over TFTP into memory, as a phone does at boot (docs/phone.md).

``TftpFetcher(host, port).fetch(name)`` makes one read request and always
returns a FetchResult; nothing the network or the server does makes it raise:

- ``found``: the whole file is in ``data`` (in memory; nothing is written to disk,
  and a download that does not complete leaves no data at all);
- ``not_found``: the server answered error 1 "File not found" before sending any
  data, as CUCM does for CTLSEP<MAC>.tlv outside mixed mode (docs/phone.md);
- ``timed_out``: no answer after ``retries`` resends, each followed by a wait of
  ``timeout`` seconds, or the download was still not complete when its
  ``deadline`` passed (a server that drips blocks ends here too);
- ``failed``: anything else, with a one-line ``reason``: another error code, an
  answer larger than the size cap, a malformed datagram.

Block size (RFC 2348): asked for with every request, 65464 (the largest) towards
a loopback address and 1428 otherwise (fits an Ethernet frame with room for
tunnel headers); a server that ignores options gets the RFC 1350 512. The size
of the file (RFC 2349 tsize) is asked for too, so that a server announcing a
file over the cap is refused before any data flows; a server that does not
announce sizes is cut off when the data passes the cap.

tftpy provides the packet codec and the download states (option negotiation,
acknowledgements, duplicate blocks). Its TftpClient.download loop is not used:
it bounds each wait but not the whole download, acts on datagrams from any
sender, and answers error packets with error packets. The loop here drives
tftpy's download context instead, ignores datagrams that do not come from the
server's transfer port (RFC 1350 section 4), and tells the server why it stops
(an ERROR packet) when it gives up on a transfer the server started.

IPv4 only (tftpy's sockets are AF_INET). A TftpFetcher holds only settings:
one instance can serve many threads, each fetch uses its own socket.
"""

from __future__ import annotations

import enum
import ipaddress
import socket
import struct
import time

import attrs
from tftpy.TftpContexts import TftpContextClientDownload
from tftpy.TftpPacketTypes import TftpPacketERR, TftpPacketOACK, TftpPacketRRQ
from tftpy.TftpShared import TftpException
from tftpy.TftpStates import TftpStateSentRRQ

from phone.errors import UsageError
from phone.wire.tftp import (
    DISK_FULL,
    FILE_NOT_FOUND,
    ILLEGAL_OPERATION,
    MAX_BLKSIZE,
    MIN_BLKSIZE,
    NOT_DEFINED,
    RECEIVE_BUFFER,
    error_packet,
    quiet_tftpy,
)

quiet_tftpy()

#: Block size towards a non-loopback server: 1500-byte Ethernet MTU minus IP,
#: UDP and TFTP headers, less 40 bytes of margin for tunnels (RFC 2348's example).
LAN_BLKSIZE = 1428

#: What a malformed datagram makes tftpy's decoders and states raise.
_MALFORMED = (TftpException, struct.error, UnicodeError, ValueError, IndexError)


class FetchStatus(enum.StrEnum):
    """How a fetch ended; the values are the strings used in JSON output."""

    FOUND = "found"
    NOT_FOUND = "not_found"
    TIMED_OUT = "timed_out"
    FAILED = "failed"


@attrs.frozen(kw_only=True)
class FetchResult:
    """The outcome of one TFTP read request.

    ``data`` is the file when ``status`` is FOUND, else None. ``reason`` says
    in one line why a fetch did not succeed (empty when found). ``elapsed`` is
    in seconds; ``server`` is the (host, port) asked. ``blksize`` is the block
    size of the transfer once data flowed (found, or cut off at the cap).
    """

    name: str
    status: FetchStatus
    data: bytes | None = None
    reason: str = ""
    elapsed: float = 0.0
    server: tuple[str, int]
    blksize: int | None = None

    @property
    def found(self) -> bool:
        return self.status is FetchStatus.FOUND


class _Oversized(Exception):
    """Raised from inside tftpy's states when the next block would pass the cap."""


class _MemorySink:
    """The download's destination: memory that refuses to grow past the cap."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.size = 0
        self._parts: list[bytes] = []

    def write(self, data: bytes) -> None:
        if self.size + len(data) > self.cap:
            raise _Oversized(self.size + len(data))
        self._parts.append(bytes(data))
        self.size += len(data)

    def getvalue(self) -> bytes:
        return b"".join(self._parts)


@attrs.frozen
class _Outcome:
    status: FetchStatus
    reason: str = ""
    data: bytes | None = None
    blksize: int | None = None


@attrs.frozen
class TftpFetcher:
    """Settings for TFTP downloads from one server; ``fetch`` does the work.

    - ``timeout``: seconds to wait for each answer before resending (> 0);
    - ``retries``: resends of the same packet before giving up (0-10);
    - ``deadline``: seconds one download may take in all, whatever the server sends;
    - ``blksize``: RFC 2348 block size to ask for (8-65464); None picks 65464
      towards loopback, 1428 otherwise;
    - ``max_bytes``: the largest file accepted (a caller fetching an ITL passes
      its 64 KB limit); ``fetch`` can lower or raise it per request.
    """

    host: str
    port: int = 69
    timeout: float = attrs.field(default=2.0, kw_only=True)
    retries: int = attrs.field(default=3, kw_only=True)
    deadline: float = attrs.field(default=30.0, kw_only=True)
    blksize: int | None = attrs.field(default=None, kw_only=True)
    max_bytes: int = attrs.field(default=1 << 20, kw_only=True)

    def __attrs_post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise UsageError(f"TFTP port must be 1-65535, not {self.port}")
        if not self.timeout > 0 or not self.deadline > 0:
            raise UsageError(f"TFTP timeout and deadline must be positive, not {self.timeout} and {self.deadline}")
        if not 0 <= self.retries <= 10:
            raise UsageError(f"TFTP retries must be 0-10, not {self.retries}")
        if self.blksize is not None and not MIN_BLKSIZE <= self.blksize <= MAX_BLKSIZE:
            raise UsageError(f"TFTP blksize must be {MIN_BLKSIZE}-{MAX_BLKSIZE} (RFC 2348), not {self.blksize}")
        _check_cap(self.max_bytes)

    def fetch(self, name: str, *, max_bytes: int | None = None) -> FetchResult:
        """Download ``name``; never raises for what the network or server does.

        Raises UsageError only for a name TFTP cannot carry (empty, not ASCII,
        or holding a NUL) or a negative ``max_bytes``.
        """
        if not name or not name.isascii() or "\0" in name:
            raise UsageError(f"TFTP file name must be non-empty ASCII without NUL, not {name!r}")
        cap = self.max_bytes if max_bytes is None else _check_cap(max_bytes)
        started = time.monotonic()
        outcome = self._download(name, cap, started + self.deadline)
        return FetchResult(
            name=name,
            status=outcome.status,
            data=outcome.data,
            reason=outcome.reason,
            elapsed=time.monotonic() - started,
            server=(self.host, self.port),
            blksize=outcome.blksize,
        )

    def _download(self, name: str, cap: int, deadline: float) -> _Outcome:
        try:
            address = socket.gethostbyname(self.host)
        except (OSError, UnicodeError, ValueError) as error:  # UnicodeError: a name IDNA cannot encode
            return _Outcome(FetchStatus.FAILED, f"cannot resolve {self.host[:80]!r}: {error}")
        blksize = self.blksize or (MAX_BLKSIZE if ipaddress.ip_address(address).is_loopback else LAN_BLKSIZE)
        sink = _MemorySink(cap)
        try:
            context = TftpContextClientDownload(
                address, self.port, name, sink, {"blksize": blksize, "tsize": 0}, None, self.timeout
            )
        except OSError as error:  # no socket to be had, e.g. out of descriptors
            return _Outcome(FetchStatus.FAILED, f"cannot open a UDP socket: {error}")
        try:
            outcome = self._run(context, sink, deadline)
        finally:
            context.end()
        if outcome.status is FetchStatus.FOUND:
            return attrs.evolve(outcome, data=sink.getvalue())
        return outcome

    def _run(self, context: TftpContextClientDownload, sink: _MemorySink, deadline: float) -> _Outcome:
        request = TftpPacketRRQ()
        request.filename = context.file_to_transfer
        request.mode = "octet"
        request.options = context.options
        try:
            context.sock.sendto(request.encode().buffer, (context.address, context.port))
        except OSError as error:
            return _Outcome(FetchStatus.FAILED, f"cannot send the request to {self.host}:{self.port}: {error}")
        context.next_block = 1
        context.last_pkt = request
        context.state = TftpStateSentRRQ(context)
        resends = 0
        # When to resend: `timeout` after our last packet or the transfer's last datagram.
        # A stranger's datagrams do not push it back, or a flood of them would stop resends.
        answer_by = time.monotonic() + self.timeout
        while context.state is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                _tell_peer(context, context.tidport, NOT_DEFINED, "client deadline passed")
                return _Outcome(
                    FetchStatus.TIMED_OUT,
                    f"download not complete after the {self.deadline:g} s deadline ({sink.size} bytes received)",
                )
            context.sock.settimeout(max(min(answer_by - time.monotonic(), left), 0.001))
            try:
                datagram, (host, port) = context.sock.recvfrom(RECEIVE_BUFFER)
            except TimeoutError:
                if time.monotonic() >= deadline:
                    continue  # reported as a deadline above
                if resends == self.retries:
                    return _Outcome(
                        FetchStatus.TIMED_OUT,
                        f"no answer from {self.host}:{self.port} in {resends + 1} waits of {self.timeout:g} s",
                    )
                resends += 1
                failure = _resend(context, f"{self.host}:{self.port}")
                if failure is not None:
                    return failure
                answer_by = time.monotonic() + self.timeout
                continue
            except OSError as error:
                return _Outcome(FetchStatus.FAILED, f"receiving from {self.host}:{self.port} failed: {error}")
            if host != context.address or (context.tidport is not None and port != context.tidport):
                continue  # a datagram from outside the transfer (RFC 1350 section 4)
            ended = self._step(context, sink, datagram, port)
            if ended is not None:
                return ended
            resends = 0
            answer_by = time.monotonic() + self.timeout
        return _Outcome(FetchStatus.FOUND, blksize=context.getBlocksize())

    def _step(
        self, context: TftpContextClientDownload, sink: _MemorySink, datagram: bytes, port: int
    ) -> _Outcome | None:
        """Handle one datagram from the server; an outcome when the transfer ends here without the file."""
        peer = f"{self.host}:{self.port}"
        try:
            packet = context.factory.parse(datagram)
        except _MALFORMED as error:
            _tell_peer(context, port, ILLEGAL_OPERATION, "malformed packet")
            return _Outcome(FetchStatus.FAILED, f"malformed packet from {peer}: {_one_line(error)}")
        if isinstance(packet, TftpPacketERR):
            if packet.errorcode == FILE_NOT_FOUND and context.next_block == 1:
                return _Outcome(FetchStatus.NOT_FOUND, f"{peer} answered error 1 (File not found)")
            return _Outcome(
                FetchStatus.FAILED, f"{peer} answered error {packet.errorcode} ({_error_text(packet)})"
            )
        if isinstance(packet, TftpPacketOACK):
            if not isinstance(context.state, TftpStateSentRRQ):
                # The options answer again (RFC 2347). Before any data, our acknowledgement was
                # lost: acknowledge again. Once data flows it is a late copy (a duplicated and
                # delayed datagram): stale, like a duplicate block. tftpy's states would call
                # either a protocol error.
                return _resend(context, peer) if context.next_block == 1 else None
            announced = _announced_size(packet.options.get("tsize", ""))
            if announced is not None and announced > sink.cap:
                _tell_peer(context, port, DISK_FULL, f"larger than {sink.cap} bytes")
                shown = str(announced) if announced < 10**20 else "more than 10^20"
                return _Outcome(
                    FetchStatus.FAILED, f"{peer} announced {shown} bytes, more than the {sink.cap}-byte cap"
                )
        try:
            context.state = context.state.handle(packet, context.address, port)
        except _Oversized as error:
            _tell_peer(context, port, DISK_FULL, f"larger than {sink.cap} bytes")
            return _Outcome(
                FetchStatus.FAILED,
                f"{peer} sent more than the {sink.cap}-byte cap ({error.args[0]} bytes so far)",
                blksize=context.getBlocksize(),
            )
        except _MALFORMED as error:
            _tell_peer(context, port, ILLEGAL_OPERATION, "protocol error")
            return _Outcome(FetchStatus.FAILED, f"protocol error from {peer}: {_one_line(error)}")
        return None


#: Any announced size with more digits than this is over every cap (a cap is at most an int
#: the caller chose; 10^20 bytes is far beyond memory), whatever the digits are.
_TSIZE_DIGITS = 20


def _announced_size(value: object) -> int | None:
    """The RFC 2349 ``tsize`` a server announced, or None when it announced none we can read.

    Only ASCII digits count (``str.isdigit`` also accepts "²", which ``int`` refuses), and
    the value is never handed whole to ``int``: Python refuses strings of more than 4,300
    digits, and a server may send any number. Past ``_TSIZE_DIGITS`` significant digits
    the size is reported as 10^20, which is over any cap."""
    text = str(value)
    if not text or not text.isascii() or not text.isdigit():
        return None
    significant = text.lstrip("0") or "0"
    if len(significant) > _TSIZE_DIGITS:
        return 10**_TSIZE_DIGITS
    return int(significant)


def _one_line(error: Exception) -> str:
    """tftpy's messages can hold a whole packet dump: one line, at most 200 characters."""
    return " ".join(str(error).split())[:200]


def _check_cap(max_bytes: int) -> int:
    if max_bytes < 0:
        raise UsageError(f"TFTP size cap must not be negative, not {max_bytes}")
    return max_bytes


def _tell_peer(context: TftpContextClientDownload, port: int | None, code: int, message: str) -> None:
    """Best effort: tell a server that started a transfer why we drop it (RFC 1350 section 7)."""
    if port is None:
        return
    try:
        context.sock.sendto(error_packet(code, message), (context.address, port))
    except OSError:
        pass


def _error_text(packet: TftpPacketERR) -> str:
    raw = packet.errmsg or b""
    text = raw.decode("ascii", "replace").strip() if isinstance(raw, bytes) else str(raw)
    text = "".join(c if c.isprintable() else "?" for c in text)[:120]
    return text or "no message"


def _resend(context: TftpContextClientDownload, peer: str) -> _Outcome | None:
    """Send our last packet again; an outcome only when that fails."""
    try:
        context.state.resendLast()
    except (TftpException, OSError) as error:  # tftpy gives up after 20 copies of one packet
        return _Outcome(FetchStatus.FAILED, f"cannot resend to {peer}: {error}")
    return None
