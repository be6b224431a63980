"""The lab's TFTP server against tftpy's client (the compatibility reference) and raw datagrams, on loopback."""

from __future__ import annotations

import io
import os
import resource
import socket
import struct
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import tftpy

from phone.errors import TransportError, UsageError
from phone.device.tftp import FetchStatus, TftpFetcher
from phone.lab.servers.tftp import TftpFileServer, negotiate, parse_request, running_tftp_server

FILES = {"CTLFile.tlv": bytes(range(256)) * 20, "empty": b"", "block": b"b" * 512, "big": bytes(range(256)) * 700}


def files(name, _client):
    return FILES.get(name)


def fetcher(port, **settings):
    return TftpFetcher("127.0.0.1", port, **{"timeout": 0.5, "retries": 2, **settings})


def exchange(port, datagram, *, sock=None, wait=1.0):
    own = sock is None
    sock = sock or socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.settimeout(wait)
        sock.sendto(datagram, ("127.0.0.1", port))
        return sock.recvfrom(65536)
    finally:
        if own:
            sock.close()


def rrq(name, *options):
    return struct.pack("!H", 1) + name.encode() + b"\0octet\0" + b"".join(o.encode() + b"\0" for o in options)


# -- request codec ---------------------------------------------------------------


def test_read_request_sample_decodes():
    datagram = b"\x00\x01CTLSEP0011223344AA.tlv\x00octet\x00blksize\x0065464\x00tsize\x000\x00"
    assert parse_request(datagram) == (1, "CTLSEP0011223344AA.tlv", "octet", {"blksize": "65464", "tsize": "0"})


@pytest.mark.parametrize(("options", "accepted", "blksize"), [
    ({}, {}, 512),
    ({"blksize": "1428", "tsize": "0"}, {"blksize": "1428", "tsize": "5120"}, 1428),
    ({"blksize": "70000"}, {"blksize": "65464"}, 65464),
    ({"blksize": "4"}, {}, 512),
    ({"timeout": "3", "windowsize": "8"}, {"timeout": "3"}, 512),
])
def test_options_are_negotiated_as_rfc_2347_to_2349_say(options, accepted, blksize):
    assert negotiate(options, 5120, 2.0)[:2] == (accepted, blksize)


# -- against tftpy's client ------------------------------------------------------


@pytest.mark.parametrize("blksize", [None, 512, 1428, 8])
def test_every_file_arrives_whole_whatever_the_block_size(blksize):
    with running_tftp_server(files) as server:
        for name, data in FILES.items():
            if blksize == 8 and len(data) > 8192:
                continue  # 22,000 lock-step blocks prove nothing more than 1,000 do
            result = fetcher(server.port, blksize=blksize).fetch(name)
            assert result.status is FetchStatus.FOUND and result.data == data, name


def test_unknown_names_get_file_not_found():
    with running_tftp_server(files) as server:
        assert fetcher(server.port).fetch("CTLSEP001122334455.tlv").status is FetchStatus.NOT_FOUND
        assert server.stats().not_found == 1


def test_tftpys_own_client_downloads_with_and_without_options():
    with running_tftp_server(files) as server:
        for options in ({}, {"blksize": 1428, "tsize": 0}):
            out = io.BytesIO()
            tftpy.TftpClient("127.0.0.1", server.port, options=options).download("big", out)
            assert out.getvalue() == FILES["big"]


def test_files_under_the_root_are_served_and_dynamic_files_come_first(tmp_path: Path):
    (tmp_path / "ITLFile.tlv").write_bytes(b"I" * 700)
    (tmp_path / "CTLFile.tlv").write_bytes(b"from disk")
    (tmp_path / "sub").mkdir()
    with running_tftp_server(files, root=tmp_path) as server:
        assert fetcher(server.port).fetch("ITLFile.tlv").data == b"I" * 700
        assert fetcher(server.port).fetch("CTLFile.tlv").data == FILES["CTLFile.tlv"]
        assert fetcher(server.port).fetch("sub").status is FetchStatus.NOT_FOUND


@pytest.mark.parametrize("name", ["/etc/passwd", "../secret", "a//b", "a\\b", "./x", "bad\x01name"])
def test_names_outside_plain_relative_paths_are_refused(name):
    with running_tftp_server(files) as server:
        answer, _ = exchange(server.port, rrq(name))
    assert answer[:4] == b"\x00\x05\x00\x02"


def test_uploads_are_refused():
    with running_tftp_server(files) as server:
        answer, _ = exchange(server.port, struct.pack("!H", 2) + b"x\0octet\0")
    assert answer[:4] == b"\x00\x05\x00\x02"


@pytest.mark.parametrize("garbage", [b"", b"\x00", b"\x00\x01\xff\x00octet\x00", b"\x00\x04\x00", b"\x00\x09abc",
                                     b"\x00\x01name-without-nul"])
def test_garbage_datagrams_do_not_stop_the_server(garbage):
    with running_tftp_server(files) as server:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(garbage, ("127.0.0.1", server.port))
        assert fetcher(server.port).fetch("CTLFile.tlv").found


def test_a_failing_callback_answers_error_0_and_the_server_carries_on():
    def broken(name, _client):
        if name == "boom":
            raise RuntimeError("lab bug")
        return files(name, _client)

    with running_tftp_server(broken) as server:
        result = fetcher(server.port).fetch("boom")
        assert result.status is FetchStatus.FAILED and "error 0" in result.reason
        assert fetcher(server.port).fetch("CTLFile.tlv").found


def test_data_is_sent_from_a_new_transfer_id_and_resent_until_acknowledged():
    with running_tftp_server(files, timeout=0.2, retries=2) as server:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            first, address = exchange(server.port, rrq("block"), sock=sock)
            assert address[1] != server.port and first[:4] == b"\x00\x03\x00\x01"
            again, _ = sock.recvfrom(65536)  # no ACK from us: the same block comes again
            assert again == first
            sock.sendto(b"\x00\x04\x00\x01", address)
            last, _ = sock.recvfrom(65536)  # 512 bytes exactly: an empty block 2 ends the file
            assert last == b"\x00\x03\x00\x02"
            sock.sendto(b"\x00\x04\x00\x02", address)
            time.sleep(0.1)
        assert server.stats().active == 0


def test_a_silent_client_is_dropped_after_the_retries():
    with running_tftp_server(files, timeout=0.1, retries=1) as server:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            exchange(server.port, rrq("CTLFile.tlv", "blksize", "1428"), sock=sock)
            time.sleep(0.6)
        assert server.stats().active == 0 and server.counts["timeouts"] == 1


def test_requests_beyond_max_sessions_are_dropped_until_a_slot_frees():
    with running_tftp_server(files, max_sessions=1, timeout=0.3, retries=1) as server:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as hog:
            exchange(server.port, rrq("CTLFile.tlv"), sock=hog)  # never acknowledged: holds the only slot
            with pytest.raises(TimeoutError):
                exchange(server.port, rrq("CTLFile.tlv"), wait=0.2)
            assert server.stats().dropped == 1
            result = fetcher(server.port, timeout=0.3, retries=4).fetch("CTLFile.tlv")
        assert result.found


def test_many_parallel_downloads_from_one_server():
    with running_tftp_server(files) as server:
        fetch = fetcher(server.port, timeout=1.0, retries=3).fetch
        with ThreadPoolExecutor(32) as pool:
            results = list(pool.map(lambda _: fetch("big"), range(300)))
    assert all(result.data == FILES["big"] for result in results)


def test_taken_port_is_a_transport_error():
    with running_tftp_server(files) as server:
        with pytest.raises(TransportError, match="cannot serve TFTP"):
            TftpFileServer(None, files, port=server.port).start_in_thread()


def test_bad_settings_are_usage_errors(tmp_path):
    with pytest.raises(UsageError):
        TftpFileServer(tmp_path / "missing")
    with pytest.raises(UsageError):
        TftpFileServer(None, files, timeout=0)


@pytest.mark.parametrize(("seed", "blksize"), [(1, None), (2, 8192)])
def test_downloads_through_a_lossy_network_complete_byte_for_byte(seed, blksize):
    from phone.testing.lossy import Impairment, LossyUdpProxy

    impairment = Impairment(drop=0.05, duplicate=0.05, reorder=0.05, hold=0.02)
    with running_tftp_server(files, timeout=0.1, retries=6) as server, \
            LossyUdpProxy(("127.0.0.1", server.port), impairment, seed=seed) as port:
        fetch = fetcher(port, timeout=0.1, retries=8, blksize=blksize).fetch
        results = [fetch(name) for name in ("big", "CTLFile.tlv", "block", "empty") * 4]
    for result in results:
        assert result.status is FetchStatus.FOUND and result.data == FILES[result.name], result.reason


# -- carried over from the tftpy-based server: behaviours the lab relies on ----------------------


@pytest.fixture
def root(tmp_path: Path) -> Path:
    served = tmp_path / "tftp"
    served.mkdir()
    (served / "ITLFile.tlv").write_bytes(b"I" * 5000)
    (served / "Desktops").mkdir()
    (served / "Desktops" / "List.xml").write_bytes(b"<List/>")
    (served / "empty.txt").write_bytes(b"")
    (tmp_path / "secret.txt").write_bytes(b"secret")
    return served


def test_dynamic_files_are_made_by_name_for_the_asking_client_then_the_folder(root):
    asked = []

    def dynamic(name, client):
        asked.append((name, client))
        return {"SEP001122334455.cnf.xml": b"<device/>", "ITLFile.tlv": b"generated ITL"}.get(name)

    with TftpFileServer(root, dynamic) as port:
        one = fetcher(port)
        assert one.fetch("SEP001122334455.cnf.xml").data == b"<device/>"
        assert one.fetch("ITLFile.tlv").data == b"generated ITL"  # the callback comes first
        assert one.fetch("Desktops/List.xml").data == b"<List/>"  # then the folder
        assert one.fetch("empty.txt").data == b""
        assert one.fetch("SEP001122334455.cnf.xml.sgn").status is FetchStatus.NOT_FOUND
    assert [name for name, _ in asked][:2] == ["SEP001122334455.cnf.xml", "ITLFile.tlv"]
    assert all(client[0] == "127.0.0.1" and client[1] > 0 for _, client in asked)


@pytest.mark.parametrize(("blksize", "size", "used"), [
    (None, 5120, 65464),  # loopback default: the largest block
    (1024, 2048, 1024),  # a multiple of the block size ends with an empty block
    (65464, 65464 * 2, 65464),
])
def test_block_size_is_negotiated(blksize, size, used):
    payload = os.urandom(size)
    with TftpFileServer(None, lambda name, client: payload) as port:
        result = fetcher(port, blksize=blksize).fetch("f")
    assert result.data == payload and result.blksize == used


def test_the_announced_size_lets_a_client_cap_a_download_at_exactly_its_limit():
    with TftpFileServer(None, lambda name, client: b"c" * 65536) as port:
        exact = fetcher(port).fetch("ITLFile.tlv", max_bytes=65536)
        under = fetcher(port).fetch("ITLFile.tlv", max_bytes=65535)
    assert exact.found
    assert under.status is FetchStatus.FAILED
    assert "announced 65536 bytes, more than the 65535-byte cap" in under.reason


@pytest.mark.parametrize("name", ["../secret.txt", "Desktops/../../secret.txt", "//etc/passwd",
                                  "Desktops/../ITLFile.tlv", "Desktops//List.xml", "..\\secret.txt",
                                  "ITLFile.tlv\x7f"])
def test_the_callback_never_sees_an_unsafe_name_and_the_server_goes_on(root, name):
    seen = []

    def dynamic(asked, client):
        seen.append(asked)
        return None

    with TftpFileServer(root, dynamic) as port:
        result = fetcher(port).fetch(name)
        assert fetcher(port).fetch("ITLFile.tlv").found
    assert result.status is FetchStatus.FAILED and "error 2 (Access violation" in result.reason
    assert seen == ["ITLFile.tlv"]


def test_symbolic_link_out_of_the_root_is_refused(root):
    (root / "escape.txt").symlink_to(root.parent / "secret.txt")
    (root / "inside.txt").symlink_to(root / "ITLFile.tlv")
    with TftpFileServer(root) as port:
        escape = fetcher(port).fetch("escape.txt")
        inside = fetcher(port).fetch("inside.txt")
    assert escape.status is FetchStatus.FAILED and "leads out of the root" in escape.reason
    assert inside.found


def test_an_upload_writes_nothing_and_is_counted_as_refused(root):
    server = TftpFileServer(root)
    with server as port:
        answer, _ = exchange(port, b"\x00\x02SEP001122334455.cnf.xml\x00octet\x00")
    assert answer[:4] == b"\x00\x05\x00\x02"
    assert sorted(path.name for path in root.iterdir()) == ["Desktops", "ITLFile.tlv", "empty.txt"]
    assert server.stats().refused == 1


@pytest.mark.parametrize("garbage", [b"\x00\x01a\x00octet\x00blksize\x00", b"\x00\x01a\x00octet\x00blksize\x00x\x00",
                                     b"\x00\x03", b"\x00\x05\x00\x01oops\x00"])
def test_malformed_options_and_stray_packets_do_not_stop_the_server(garbage):
    with running_tftp_server(files) as server:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for _ in range(3):
                sock.sendto(garbage, ("127.0.0.1", server.port))
        assert fetcher(server.port).fetch("CTLFile.tlv").data == FILES["CTLFile.tlv"]


@pytest.fixture
def descriptors_up_to_1024() -> Iterator[list[int]]:
    """Open descriptors until the next one the process gets is 1024 or more (select()'s limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1100:
        pytest.skip(f"needs 1100 descriptors, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1100), hard))
    opened: list[int] = []
    try:
        while True:
            opened.append(os.open(os.devnull, os.O_RDONLY))
            if opened[-1] >= 1023:
                break
        yield opened
    finally:
        for fd in opened:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_descriptors_past_1024_are_served(descriptors_up_to_1024):
    with running_tftp_server(files) as server:  # its sockets get descriptors from 1024 up
        assert fetcher(server.port).fetch("big").data == FILES["big"]
        assert server.stats().dropped == 0


def test_stop_is_prompt_idempotent_and_releases_the_port():
    server = TftpFileServer(None, files, timeout=5.0)
    port = server.start_in_thread()
    assert port == server.port
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 1.0
    server.stop()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
        again.bind(("127.0.0.1", port))
    assert not any(thread.name == "tftp-server" and thread.is_alive() for thread in threading.enumerate())


def test_a_server_starts_once_and_stopping_after_a_failed_start_is_harmless():
    server = TftpFileServer(None, files)
    with server:
        with pytest.raises(UsageError, match="already started"):
            server.start_in_thread()
        taken = TftpFileServer(None, files, port=server.port)
        with pytest.raises(TransportError, match="cannot serve TFTP"):
            taken.start_in_thread()
        taken.stop()


def _slow_download(port: int, name: str, ack_delay: float) -> bytes:
    """A client that acknowledges each block ``ack_delay`` seconds late: a download that stays in flight."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(5.0)
        sock.sendto(rrq(name), ("127.0.0.1", port))
        received, expected = bytearray(), 1
        while True:
            packet, peer = sock.recvfrom(65536)
            opcode, block = struct.unpack("!HH", packet[:4])
            assert opcode == 3, packet
            if block == expected:
                received += packet[4:]
                expected += 1
            time.sleep(ack_delay)
            sock.sendto(struct.pack("!HH", 4, block), peer)
            if block == expected - 1 and len(packet) - 4 < 512:
                return bytes(received)


def test_a_three_byte_datagram_every_50_ms_drops_no_transfer_in_flight():
    # tftpy's server loop, which the lab used before, died on each such datagram and took every
    # transfer in flight with it: 0 of 3 slow downloads completed.
    with running_tftp_server(files) as server:
        stop = threading.Event()

        def spray() -> int:
            sent = 0
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
                while not stop.wait(0.05):
                    sock.sendto(b"\x00\x04\x00", ("127.0.0.1", server.port))
                    sent += 1
            return sent

        with ThreadPoolExecutor(4) as pool:
            garbage = pool.submit(spray)
            try:
                downloads = [pool.submit(_slow_download, server.port, "CTLFile.tlv", 0.1) for _ in range(3)]
                results = [download.result(timeout=30) for download in downloads]
            finally:
                stop.set()
            assert garbage.result() >= 10   # the downloads really overlapped the spray
        assert results == [FILES["CTLFile.tlv"]] * 3
