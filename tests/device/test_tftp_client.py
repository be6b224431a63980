"""TftpFetcher against scripted peers on loopback: every way a download can end."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tftpy.TftpPacketFactory import TftpPacketFactory

from phone.errors import UsageError
from phone.device.tftp import FetchStatus, TftpFetcher
from phone.wire.tftp import error_packet

Reply = Callable[[bytes, tuple[str, int]], list[bytes]]


def data_packet(block: int, payload: bytes) -> bytes:
    return struct.pack("!HH", 3, block) + payload


class ScriptedPeer:
    """A UDP peer on loopback answering each datagram with what ``reply`` returns."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.received: list[bytes] = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.02)
        self.port = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                datagram, client = self.sock.recvfrom(65536)
            except TimeoutError:
                continue
            self.received.append(datagram)
            for answer in self.reply(datagram, client):
                self.sock.sendto(answer, client)

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self.sock.close()


@pytest.fixture
def peer() -> Iterator[Callable[[Reply], ScriptedPeer]]:
    peers: list[ScriptedPeer] = []

    def make(reply: Reply) -> ScriptedPeer:
        peers.append(ScriptedPeer(reply))
        return peers[-1]

    yield make
    for made in peers:
        made.close()


def fetcher(port: int, **settings: object) -> TftpFetcher:
    return TftpFetcher("127.0.0.1", port, **{"timeout": 0.3, "retries": 1, **settings})


def on_request(answers: list[bytes]) -> Reply:
    """Answer a read request (opcode 1) with ``answers``; ignore everything else."""
    return lambda datagram, client: answers if datagram[:2] == b"\x00\x01" else []


# -- the wire sample ---------------------------------------------------------


def test_error_packet_matches_rfc_1350_layout_and_tftpy_reads_it_back() -> None:
    sample = b"\x00\x05\x00\x03larger than 65536 bytes\x00"
    assert error_packet(3, "larger than 65536 bytes") == sample
    parsed = TftpPacketFactory().parse(sample)
    assert (parsed.errorcode, parsed.errmsg) == (3, b"larger than 65536 bytes")


# -- found / not found / failed -------------------------------------------


def test_server_that_ignores_options_is_read_with_512_byte_blocks(peer) -> None:
    def reply(datagram: bytes, client: tuple[str, int]) -> list[bytes]:
        if datagram[:2] == b"\x00\x01":
            return [data_packet(1, b"a" * 512)]
        if datagram == b"\x00\x04\x00\x01":
            return [data_packet(2, b"b" * 10)]
        return []

    result = fetcher(peer(reply).port).fetch("ITLFile.tlv")
    assert result.status is FetchStatus.FOUND and result.found
    assert result.data == b"a" * 512 + b"b" * 10
    assert result.blksize == 512
    assert result.reason == ""


def test_request_asks_for_blksize_and_tsize(peer) -> None:
    scripted = peer(on_request([data_packet(1, b"x")]))
    fetcher(scripted.port, blksize=1428).fetch("SEP001122334455.cnf.xml")
    assert scripted.received[0] == b"\x00\x01SEP001122334455.cnf.xml\x00octet\x00blksize\x001428\x00tsize\x000\x00"


def test_repeated_options_answer_is_acknowledged_again(peer) -> None:
    oack = b"\x00\x06blksize\x001428\x00tsize\x005\x00"
    acks: list[bytes] = []

    def reply(datagram: bytes, client: tuple[str, int]) -> list[bytes]:
        if datagram[:2] == b"\x00\x01":
            return [oack]
        if datagram == b"\x00\x04\x00\x00":
            acks.append(datagram)
            # The first ACK 0 "was lost": the server repeats its options.
            return [oack] if len(acks) == 1 else [data_packet(1, b"12345")]
        return []

    result = fetcher(peer(reply).port, timeout=1.0).fetch("ITLFile.tlv")
    assert result.data == b"12345"
    assert result.blksize == 1428
    assert len(acks) == 2
    assert result.elapsed < 0.5  # answered at once, not after a time-out


def test_file_not_found_answer_is_not_found(peer) -> None:
    result = fetcher(peer(on_request([error_packet(1, "File not found")])).port).fetch("CTLSEP001122334455.tlv")
    assert result.status is FetchStatus.NOT_FOUND
    assert result.data is None
    assert "error 1" in result.reason


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (error_packet(2, "Access violation"), "error 2 (Access violation)"),
        (error_packet(0, "busy"), "error 0 (busy)"),
        (b"\x00\x05\x00\x04", "error 4 (no message)"),
    ],
)
def test_other_error_answers_fail_with_the_code_and_message(peer, answer: bytes, expected: str) -> None:
    result = fetcher(peer(on_request([answer])).port).fetch("ITLFile.tlv")
    assert result.status is FetchStatus.FAILED
    assert expected in result.reason


def test_file_not_found_after_data_started_is_a_failure_not_a_missing_file(peer) -> None:
    def reply(datagram: bytes, client: tuple[str, int]) -> list[bytes]:
        if datagram[:2] == b"\x00\x01":
            return [data_packet(1, b"a" * 512)]
        return [error_packet(1, "File not found")]

    result = fetcher(peer(reply).port).fetch("ITLFile.tlv")
    assert result.status is FetchStatus.FAILED
    assert result.data is None


@pytest.mark.parametrize(
    "garbage",
    [b"\x00", b"\x00\x03\x00", b"\x00\x09junk", b"\x00\x06blksize\x00", b"\x00\x06blksize\x00huge\x00", b"\xff" * 40],
)
def test_garbage_answer_is_a_clean_failure(peer, garbage: bytes) -> None:
    scripted = peer(on_request([garbage]))
    result = fetcher(scripted.port).fetch("ITLFile.tlv")
    assert result.status is FetchStatus.FAILED
    assert "malformed" in result.reason or "protocol error" in result.reason
    assert result.data is None


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(answer=st.binary(max_size=80) | st.binary(max_size=60).map(lambda b: b"\x00\x06" + b))
def test_any_single_answer_ends_in_a_result_never_an_exception(peer, answer: bytes) -> None:
    result = fetcher(peer(on_request([answer])).port, timeout=0.05, retries=0).fetch("x")
    assert result.status in set(FetchStatus)
    assert (result.data is not None) == result.found


def test_datagrams_from_outside_the_transfer_are_ignored(peer) -> None:
    # 127.0.0.2 is another loopback address on Linux: a stranger on another host.
    other_host = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other_host.bind(("127.0.0.2", 0))
    other_port = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    def reply(datagram: bytes, client: tuple[str, int]) -> list[bytes]:
        if datagram[:2] == b"\x00\x01":
            other_host.sendto(error_packet(1, "File not found"), client)
            time.sleep(0.02)
            return [data_packet(1, b"g" * 512)]
        if datagram == b"\x00\x04\x00\x01":
            # The server's port is known now (RFC 1350 section 4).
            other_port.sendto(error_packet(2, "Access violation"), client)
            other_port.sendto(data_packet(2, b"forged"), client)
            time.sleep(0.02)
            return [data_packet(2, b"genuine")]
        return []

    try:
        result = fetcher(peer(reply).port).fetch("ITLFile.tlv")
    finally:
        other_host.close()
        other_port.close()
    assert result.data == b"g" * 512 + b"genuine"


# -- time-outs and the overall deadline ------------------------------------


def test_silent_server_times_out_after_resending_the_request() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        result = fetcher(silent.getsockname()[1], timeout=0.3, retries=2).fetch("ITLFile.tlv")
        silent.settimeout(0.1)
        requests = 0
        with pytest.raises(TimeoutError):
            while True:
                silent.recvfrom(100)
                requests += 1
    assert result.status is FetchStatus.TIMED_OUT
    assert "3 waits of 0.3 s" in result.reason
    assert requests == 3
    assert 0.85 < result.elapsed < 2.0


def test_server_that_drips_blocks_forever_is_cut_off_by_the_deadline(peer) -> None:
    def reply(datagram: bytes, client: tuple[str, int]) -> list[bytes]:
        if datagram[:2] == b"\x00\x01":
            return [data_packet(1, b"d" * 512)]
        if datagram[:2] == b"\x00\x04":
            time.sleep(0.1)  # well inside the per-packet timeout
            (block,) = struct.unpack("!H", datagram[2:4])
            return [data_packet((block + 1) & 0xFFFF, b"d" * 512)]
        return []

    scripted = peer(reply)
    result = fetcher(scripted.port, timeout=0.3, deadline=0.6).fetch("ITLFile.tlv")
    assert result.status is FetchStatus.TIMED_OUT
    assert "deadline" in result.reason
    assert result.data is None
    assert result.elapsed < 1.5
    time.sleep(0.15)
    assert scripted.received[-1][:4] == b"\x00\x05\x00\x00"  # we told the server we stopped


# -- the size cap ----------------------------------------------------------


def test_announced_size_over_the_cap_is_refused_before_any_data(peer) -> None:
    scripted = peer(on_request([b"\x00\x06tsize\x0070000\x00blksize\x001428\x00"]))
    result = fetcher(scripted.port).fetch("ITLFile.tlv", max_bytes=65536)
    assert result.status is FetchStatus.FAILED
    assert "announced 70000 bytes, more than the 65536-byte cap" in result.reason
    time.sleep(0.05)
    assert scripted.received[-1][:4] == b"\x00\x05\x00\x03"


def test_announced_size_of_thousands_of_digits_is_refused_not_a_crash(peer) -> None:
    # Python refuses int() on more than 4,300 digits; the announcement is still just "too big".
    scripted = peer(on_request([b"\x00\x06tsize\x00" + b"9" * 5000 + b"\x00blksize\x001428\x00"]))
    result = fetcher(scripted.port).fetch("ITLFile.tlv", max_bytes=65536)
    assert result.status is FetchStatus.FAILED
    assert "more than the 65536-byte cap" in result.reason
    assert len(result.reason) < 300  # the 5,000 digits are not echoed


def test_streamed_data_over_the_cap_is_cut_off(peer) -> None:
    def reply(datagram: bytes, client: tuple[str, int]) -> list[bytes]:
        if datagram[:2] == b"\x00\x01":
            return [data_packet(1, b"s" * 512)]
        if datagram[:2] == b"\x00\x04":
            (block,) = struct.unpack("!H", datagram[2:4])
            return [data_packet(block + 1, b"s" * 512)]
        return []

    scripted = peer(reply)
    result = fetcher(scripted.port, max_bytes=1000).fetch("ITLFile.tlv")
    assert result.status is FetchStatus.FAILED
    assert "more than the 1000-byte cap (1024 bytes so far)" in result.reason
    assert result.data is None
    time.sleep(0.05)
    assert scripted.received[-1][:4] == b"\x00\x05\x00\x03"


def test_per_fetch_cap_overrides_the_fetcher_cap(peer) -> None:
    scripted = peer(on_request([data_packet(1, b"z" * 100)]))
    assert fetcher(scripted.port, max_bytes=10).fetch("a", max_bytes=100).found
    assert not fetcher(scripted.port, max_bytes=100).fetch("a", max_bytes=99).found


# -- settings and names ------------------------------------------------------


@pytest.mark.parametrize(
    "settings",
    [{"timeout": 0}, {"deadline": -1}, {"retries": -1}, {"retries": 11}, {"blksize": 7}, {"blksize": 65465},
     {"max_bytes": -1}, {"port": 0}],
)
def test_impossible_settings_are_refused(settings: dict[str, object]) -> None:
    with pytest.raises(UsageError):
        TftpFetcher("127.0.0.1", **settings)


@pytest.mark.parametrize("name", ["", "caf\u00e9.tlv", "a\0b"])
def test_names_tftp_cannot_carry_are_refused(name: str) -> None:
    with pytest.raises(UsageError, match="non-empty ASCII"):
        TftpFetcher("127.0.0.1", 69).fetch(name)


def test_unresolvable_host_is_a_failure() -> None:
    result = TftpFetcher("no-such-host.invalid", 69, timeout=0.3).fetch("ITLFile.tlv")
    assert result.status is FetchStatus.FAILED
    assert "cannot resolve" in result.reason


def test_a_server_name_idna_cannot_encode_is_a_failed_fetch_not_a_crash() -> None:
    result = TftpFetcher("a..b", 69, timeout=0.3, retries=0).fetch("ITLFile.tlv")
    assert result.status is FetchStatus.FAILED
    assert result.reason.startswith("cannot resolve 'a..b'")
