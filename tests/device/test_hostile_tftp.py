"""Rogue and broken TFTP servers against the phone's fetcher and against a whole phone (SPEC 4.1).

``RogueTftp`` is a TFTP server written for these tests: honest RFC 1350
lock-step transfers by default (512-byte blocks, options ignored), and one
misbehaviour per file name on demand. Against ``TftpFetcher`` each
misbehaviour must end in a FetchResult with a one-line reason and no data;
through a ``Phone`` (``phone.device.transports.TftpTransport``) the file is reported
``failed`` (or ``rejected`` when the bytes arrived but are not a valid file),
the boot goes on, and what the phone had installed stays.

Scripted single-answer peers and the size cap's unit tests are in
tests/test_tftp_client.py; this file adds whole misbehaving transfers.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator

import attrs
import pytest
from minicluster import MAC, MiniCluster, TvsDouble

from phone.device.phone import Phone
from phone.device.flash import FlashStore
from phone.firmware.machine import Flash
from phone.catalogue import get_model
from phone.device.tftp import FetchStatus, TftpFetcher
from phone.wire.tftp import error_packet
from phone.device.transports import TftpTransport

CTL = f"CTLSEP{MAC}.tlv"
ITL = f"ITLSEP{MAC}.tlv"
SGN = f"SEP{MAC}.cnf.xml.sgn"
BLOCK = 512


def data_packet(block: int, payload: bytes) -> bytes:
    return struct.pack("!HH", 3, block & 0xFFFF) + payload


class RogueTftp:
    """A TFTP server on loopback; ``modes[name]`` makes the transfer of ``name`` misbehave.

    Modes: honest (default), silent, garbage, error, huge-error, tsize-over,
    stream-over, drip, other-port, not-found-midway, stranger-flood,
    late-options, duplicate-everything, future-block, oversized-datagram, junk-content. Each transfer runs on its
    own thread and port, as a real server's do.
    """

    def __init__(self, files: dict[str, bytes]) -> None:
        self.files = dict(files)
        self.modes: dict[str, str] = {}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.05)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._serve, daemon=True)]
        self._threads[0].start()

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        self.sock.close()

    # -- the server loop ---------------------------------------------------------------

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                datagram, client = self.sock.recvfrom(65536)
            except TimeoutError:
                continue
            if datagram[:2] != b"\x00\x01":
                continue
            name = datagram[2:].split(b"\0", 1)[0].decode("ascii", "replace")
            behaviour = getattr(self, "_" + self.modes.get(name, "honest").replace("-", "_"))
            self._threads.append(threading.Thread(target=self._transfer, args=(behaviour, client, name), daemon=True))
            self._threads[-1].start()

    @staticmethod
    def _transfer(behaviour, client: tuple[str, int], name: str) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as transfer:
            transfer.bind(("127.0.0.1", 0))
            transfer.settimeout(0.1)
            behaviour(transfer, client, name)

    def _acks(self, transfer: socket.socket, client: tuple[str, int]) -> Iterator[int | None]:
        """Block numbers the client acknowledges; None after a silent wait (resend time)."""
        waits = 0
        while not self._stop.is_set() and waits < 20:
            try:
                datagram, sender = transfer.recvfrom(65536)
            except TimeoutError:
                waits += 1
                yield None
                continue
            if sender == client and datagram[:2] == b"\x00\x04":
                waits = 0
                yield struct.unpack("!H", datagram[2:4])[0]
            elif sender == client and datagram[:2] == b"\x00\x05":
                return  # the client gave up and said why

    def _send_file(self, transfer, client, data: bytes, *, copies: int = 1, pause: float = 0.0, endless=False,
                   hop: socket.socket | None = None, lose_first_ack: bool = False, resends: bool = True) -> None:
        """Lock-step transfer of ``data``; ``hop`` sends every block after the first from another port;
        ``lose_first_ack`` ignores the first ACK; without ``resends`` only the client's resends move on."""
        block = 1
        blocks = len(data) // BLOCK + 1

        def send(number: int) -> None:
            payload = data[(number - 1) * BLOCK : number * BLOCK] if not endless else b"d" * BLOCK
            for _ in range(copies):
                (hop if hop is not None and number > 1 else transfer).sendto(data_packet(number, payload), client)

        send(block)
        for acked in self._acks(transfer, client):
            if acked is None:
                if resends:
                    send(block)
            elif lose_first_ack and acked == 1:
                lose_first_ack = False  # that ACK "was lost"
            elif acked == block:
                if block == blocks and not endless:
                    return
                block += 1
                time.sleep(pause)
                send(block)

    # -- modes ---------------------------------------------------------------------------

    def _honest(self, transfer, client, name):
        data = self.files.get(name)
        if data is None:
            transfer.sendto(error_packet(1, "File not found"), client)
            return
        self._send_file(transfer, client, data)

    def _silent(self, transfer, client, name):
        pass

    def _garbage(self, transfer, client, name):
        transfer.sendto(b"\x00\x07" + bytes(range(256)) * 4, client)

    def _error(self, transfer, client, name):
        transfer.sendto(error_packet(2, "Access violation"), client)

    def _huge_error(self, transfer, client, name):
        transfer.sendto(b"\x00\x05\x00\x00" + "\u00e9\n\x1b[31m".encode() * 8000 + b"\0", client)

    def _tsize_over(self, transfer, client, name):
        transfer.sendto(b"\x00\x06tsize\x0070000\x00blksize\x00512\x00", client)
        for _ in self._acks(transfer, client):
            break  # the client refuses: it sends an ERROR, never an ACK

    def _stream_over(self, transfer, client, name):
        self._send_file(transfer, client, bytes(70_000))  # no tsize announced: cut off while it flows

    def _drip(self, transfer, client, name):
        self._send_file(transfer, client, b"", pause=0.05, endless=True)  # full blocks, slowly, for ever

    def _other_port(self, transfer, client, name):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as hop:
            hop.bind(("127.0.0.1", 0))
            self._send_file(transfer, client, self.files[name], hop=hop)

    def _not_found_midway(self, transfer, client, name):
        transfer.sendto(data_packet(1, self.files[name][:BLOCK]), client)
        for acked in self._acks(transfer, client):
            if acked == 1:
                transfer.sendto(error_packet(1, "File not found"), client)
                return

    def _stranger_flood(self, transfer, client, name):
        done = threading.Event()

        def flood() -> None:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
                stranger.bind(("127.0.0.1", 0))
                while not done.wait(0.02):
                    stranger.sendto(data_packet(2, b"forged"), client)

        flooding = threading.Thread(target=flood, daemon=True)
        flooding.start()
        try:
            self._send_file(transfer, client, self.files[name], lose_first_ack=True, resends=False)
        finally:
            done.set()
            flooding.join()

    def _late_options(self, transfer, client, name):
        """Answers the options, then sends a stale copy of that answer before each block after the first."""
        data = self.files[name]
        options = b"\x00\x06blksize\x00512\x00"
        transfer.sendto(options, client)
        for acked in self._acks(transfer, client):
            if acked is None:
                continue
            if acked * BLOCK > len(data):
                return
            if acked >= 1:
                transfer.sendto(options, client)
            transfer.sendto(data_packet(acked + 1, data[acked * BLOCK : (acked + 1) * BLOCK]), client)

    def _duplicate_everything(self, transfer, client, name):
        self._send_file(transfer, client, self.files[name], copies=3)

    def _future_block(self, transfer, client, name):
        transfer.sendto(data_packet(1, self.files[name][:BLOCK]), client)
        for acked in self._acks(transfer, client):
            if acked == 1:
                transfer.sendto(data_packet(3, self.files[name][2 * BLOCK : 3 * BLOCK]), client)
                return

    def _oversized_datagram(self, transfer, client, name):
        transfer.sendto(data_packet(1, self.files[name][: BLOCK + 100]), client)  # 612 bytes in a 512 block
        for _ in self._acks(transfer, client):
            break

    def _junk_content(self, transfer, client, name):
        data = self.files[name]
        self._send_file(transfer, client, bytes((b * 7 + 13) & 0xFF for b in data))  # well-formed TFTP, junk file


@pytest.fixture
def rogue() -> Iterator[RogueTftp]:
    cluster = MiniCluster(mixed_mode=True)
    server = RogueTftp(cluster.files())
    yield server
    server.close()


def fetcher(port: int, **settings) -> TftpFetcher:
    return TftpFetcher("127.0.0.1", port, **{"timeout": 0.2, "retries": 1, "deadline": 2.0, "blksize": BLOCK,
                                             **settings})


# -- against the fetcher ----------------------------------------------------------------------


def test_the_honest_server_delivers_every_file(rogue):
    for name, data in rogue.files.items():
        result = fetcher(rogue.port).fetch(name)
        assert result.found and result.data == data, name


@pytest.mark.parametrize(
    ("mode", "status", "reason"),
    [
        ("silent", FetchStatus.TIMED_OUT, "no answer from 127.0.0.1:"),
        ("garbage", FetchStatus.FAILED, "malformed packet"),
        ("error", FetchStatus.FAILED, "answered error 2 (Access violation)"),
        ("huge-error", FetchStatus.FAILED, "answered error 0 ("),
        ("tsize-over", FetchStatus.FAILED, "announced 70000 bytes, more than the 65535-byte cap"),
        ("stream-over", FetchStatus.FAILED, "sent more than the 65535-byte cap (65536 bytes so far)"),
        ("drip", FetchStatus.TIMED_OUT, "download not complete after the 1 s deadline"),
        ("other-port", FetchStatus.TIMED_OUT, "no answer from 127.0.0.1:"),  # its blocks come from a stranger
        ("not-found-midway", FetchStatus.FAILED, "answered error 1 (File not found)"),
        ("future-block", FetchStatus.FAILED, "protocol error"),
    ],
)
def test_a_misbehaving_transfer_ends_in_a_clean_result_without_data(rogue, mode, status, reason):
    rogue.modes[ITL] = mode
    # The drip is ended by the deadline alone; the others by what they send, which a busy machine
    # may take more than a second to stream (137 lock-step blocks for stream-over).
    deadline = 1.0 if mode == "drip" else 5.0
    started = time.monotonic()
    result = fetcher(rogue.port, deadline=deadline).fetch(ITL, max_bytes=65535)
    assert result.status is status, result
    assert reason in result.reason
    assert result.data is None
    assert "\n" not in result.reason and len(result.reason) < 300
    assert time.monotonic() - started < deadline + 0.5  # the deadline holds whatever the server does


def test_a_server_that_sends_every_block_three_times_still_gives_the_exact_file(rogue):
    rogue.modes[ITL] = "duplicate-everything"
    result = fetcher(rogue.port).fetch(ITL)
    assert result.found and result.data == rogue.files[ITL]


def test_a_stranger_flooding_the_client_does_not_stop_its_resends(rogue):
    # Found by the other-port server: every ignored datagram restarted the wait for the
    # transfer's answer, so a stranger sending every 20 ms stopped all resends and a lost
    # packet cost the whole deadline instead of one timeout.
    rogue.modes[ITL] = "stranger-flood"
    result = fetcher(rogue.port, timeout=0.2, retries=2, deadline=5.0).fetch(ITL)
    assert result.found and result.data == rogue.files[ITL]
    assert result.elapsed < 1.0


def test_a_late_copy_of_the_options_answer_is_ignored(rogue):
    # Found by the lossy proxy: a duplicated options answer (OACK) whose copy was delayed
    # arrived after the first block, and the fetcher failed the download ("protocol error
    # ... Received unknown packet type from peer: OACK packet:" with a newline in it).
    rogue.modes[ITL] = "late-options"
    result = fetcher(rogue.port).fetch(ITL)
    assert result.found and result.data == rogue.files[ITL], result.reason


def test_a_data_block_longer_than_the_block_size_is_refused(rogue):
    rogue.modes[ITL] = "oversized-datagram"
    result = fetcher(rogue.port).fetch(ITL)
    assert not result.found and result.data is None
    assert result.status in (FetchStatus.FAILED, FetchStatus.TIMED_OUT)


# -- through a phone ------------------------------------------------------------------------------


def quick_model(name: str = "CP-8861"):
    """The model with TFTP waits short enough for tests (0.2 s, one resend)."""
    model = get_model(name)
    return attrs.evolve(model, settings=attrs.evolve(model.settings, tftp_timeout_seconds=0.2, tftp_retries=1))


def network_phone(rogue: RogueTftp, state, *, deadline: float = 1.0) -> Phone:
    model = quick_model()
    cluster = MiniCluster(mixed_mode=True)
    return Phone(model, MAC, fetch=TftpTransport("127.0.0.1", rogue.port, model, blksize=BLOCK, deadline=deadline),
                 ask_tvs=TvsDouble(cluster), store=FlashStore(state))


@pytest.mark.parametrize(
    ("name", "mode", "reason"),
    [
        (ITL, "tsize-over", "failed: 127.0.0.1:{port} announced 70000 bytes, more than the 65535-byte cap"),
        (ITL, "stream-over", "failed: 127.0.0.1:{port} sent more than the 65535-byte cap"),
        (CTL, "drip", "timed_out: download not complete after the 1 s deadline"),
        (CTL, "other-port", "timed_out: no answer from 127.0.0.1:{port}"),
        (ITL, "garbage", "failed: malformed packet from 127.0.0.1:{port}"),
        (ITL, "error", "failed: 127.0.0.1:{port} answered error 2 (Access violation)"),
        (CTL, "not-found-midway", "failed: 127.0.0.1:{port} answered error 1 (File not found)"),
        (SGN, "silent", "timed_out: no answer from 127.0.0.1:{port} in 2 waits of 0.2 s"),
        (SGN, "future-block", "failed: protocol error from 127.0.0.1:{port}"),
    ],
)
def test_a_rogue_transfer_fails_cleanly_and_the_phone_keeps_what_it_had(rogue, tmp_path, name, mode, reason):
    phone = network_phone(rogue, tmp_path)
    first = phone.boot()
    assert {f.result for f in first.files} == {"installed", "applied"}
    installed = phone.machine.flash
    generation = (tmp_path / "CURRENT").read_text()
    rogue.modes[name] = mode
    report = phone.boot()
    entry = report.result_of(name)
    assert entry.result == "failed"
    assert entry.reason == reason.format(port=rogue.port) or entry.reason.startswith(reason.format(port=rogue.port))
    assert phone.machine.flash == installed  # nothing half-installed, nothing lost
    assert (tmp_path / "CURRENT").read_text() == generation  # and nothing written to the state folder
    others = [f for f in report.files if f.name != name]
    assert {f.result for f in others} <= {"unchanged", "applied"}  # the boot went on past the failure


def test_a_file_that_arrives_whole_but_is_junk_is_rejected_not_installed(rogue, tmp_path):
    phone = network_phone(rogue, tmp_path)
    phone.boot()
    installed = phone.machine.flash
    rogue.modes[CTL] = rogue.modes[ITL] = "junk-content"
    report = phone.boot()
    assert report.result_of(CTL).result == "rejected" and report.result_of(CTL).code == "format"
    assert report.result_of(ITL).result == "rejected" and report.result_of(ITL).code == "format"
    assert (phone.machine.flash.ctl, phone.machine.flash.itl) == (installed.ctl, installed.itl)


def test_an_empty_phone_against_a_server_that_only_misbehaves_installs_nothing(rogue, tmp_path):
    phone = network_phone(rogue, tmp_path)
    for name, mode in zip((CTL, ITL, "ITLFile.tlv", SGN, f"SEP{MAC}.cnf.xml"),
                          ("garbage", "tsize-over", "error", "drip", "garbage"), strict=True):
        rogue.modes[name] = mode
    started = time.monotonic()
    report = phone.boot()
    assert phone.machine.flash == Flash()
    assert {f.result for f in report.files} == {"failed"}
    assert not (tmp_path / "CURRENT").exists()
    assert time.monotonic() - started < 5
