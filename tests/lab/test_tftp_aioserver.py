"""AsyncTftpFileServer (the fleet's fast TFTP server) against tftpy's client, the compatibility reference."""

from __future__ import annotations

import io
import socket
import struct
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import tftpy

from phone.errors import TransportError, UsageError
from phone.device.tftp import FetchStatus, TftpFetcher
from phone.lab.servers.tftp import AsyncTftpFileServer, negotiate, parse_request, running_aio_tftp_server

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
    with running_aio_tftp_server(files) as server:
        for name, data in FILES.items():
            if blksize == 8 and len(data) > 8192:
                continue  # 22,000 lock-step blocks prove nothing more than 1,000 do
            result = fetcher(server.port, blksize=blksize).fetch(name)
            assert result.status is FetchStatus.FOUND and result.data == data, name


def test_unknown_names_get_file_not_found():
    with running_aio_tftp_server(files) as server:
        assert fetcher(server.port).fetch("CTLSEP001122334455.tlv").status is FetchStatus.NOT_FOUND
        assert server.stats().not_found == 1


def test_tftpys_own_client_downloads_with_and_without_options():
    with running_aio_tftp_server(files) as server:
        for options in ({}, {"blksize": 1428, "tsize": 0}):
            out = io.BytesIO()
            tftpy.TftpClient("127.0.0.1", server.port, options=options).download("big", out)
            assert out.getvalue() == FILES["big"]


def test_files_under_the_root_are_served_and_dynamic_files_come_first(tmp_path: Path):
    (tmp_path / "ITLFile.tlv").write_bytes(b"I" * 700)
    (tmp_path / "CTLFile.tlv").write_bytes(b"from disk")
    (tmp_path / "sub").mkdir()
    with running_aio_tftp_server(files, root=tmp_path) as server:
        assert fetcher(server.port).fetch("ITLFile.tlv").data == b"I" * 700
        assert fetcher(server.port).fetch("CTLFile.tlv").data == FILES["CTLFile.tlv"]
        assert fetcher(server.port).fetch("sub").status is FetchStatus.NOT_FOUND


@pytest.mark.parametrize("name", ["/etc/passwd", "../secret", "a//b", "a\\b", "./x", "bad\x01name"])
def test_names_outside_plain_relative_paths_are_refused(name):
    with running_aio_tftp_server(files) as server:
        answer, _ = exchange(server.port, rrq(name))
    assert answer[:4] == b"\x00\x05\x00\x02"


def test_uploads_are_refused():
    with running_aio_tftp_server(files) as server:
        answer, _ = exchange(server.port, struct.pack("!H", 2) + b"x\0octet\0")
    assert answer[:4] == b"\x00\x05\x00\x02"


@pytest.mark.parametrize("garbage", [b"", b"\x00", b"\x00\x01\xff\x00octet\x00", b"\x00\x04\x00", b"\x00\x09abc",
                                     b"\x00\x01name-without-nul"])
def test_garbage_datagrams_do_not_stop_the_server(garbage):
    with running_aio_tftp_server(files) as server:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(garbage, ("127.0.0.1", server.port))
        assert fetcher(server.port).fetch("CTLFile.tlv").found


def test_a_failing_callback_answers_error_0_and_the_server_carries_on():
    def broken(name, _client):
        if name == "boom":
            raise RuntimeError("lab bug")
        return files(name, _client)

    with running_aio_tftp_server(broken) as server:
        result = fetcher(server.port).fetch("boom")
        assert result.status is FetchStatus.FAILED and "error 0" in result.reason
        assert fetcher(server.port).fetch("CTLFile.tlv").found


def test_data_is_sent_from_a_new_transfer_id_and_resent_until_acknowledged():
    with running_aio_tftp_server(files, timeout=0.2, retries=2) as server:
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
    with running_aio_tftp_server(files, timeout=0.1, retries=1) as server:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            exchange(server.port, rrq("CTLFile.tlv", "blksize", "1428"), sock=sock)
            time.sleep(0.6)
        assert server.stats().active == 0 and server.counts["timeouts"] == 1


def test_requests_beyond_max_sessions_are_dropped_until_a_slot_frees():
    with running_aio_tftp_server(files, max_sessions=1, timeout=0.3, retries=1) as server:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as hog:
            exchange(server.port, rrq("CTLFile.tlv"), sock=hog)  # never acknowledged: holds the only slot
            with pytest.raises(TimeoutError):
                exchange(server.port, rrq("CTLFile.tlv"), wait=0.2)
            assert server.stats().dropped == 1
            result = fetcher(server.port, timeout=0.3, retries=4).fetch("CTLFile.tlv")
        assert result.found


def test_many_parallel_downloads_from_one_server():
    with running_aio_tftp_server(files) as server:
        fetch = fetcher(server.port, timeout=1.0, retries=3).fetch
        with ThreadPoolExecutor(32) as pool:
            results = list(pool.map(lambda _: fetch("big"), range(300)))
    assert all(result.data == FILES["big"] for result in results)


def test_taken_port_is_a_transport_error():
    with running_aio_tftp_server(files) as server:
        with pytest.raises(TransportError, match="cannot serve TFTP"):
            AsyncTftpFileServer(None, files, port=server.port).start_in_thread()


def test_bad_settings_are_usage_errors(tmp_path):
    with pytest.raises(UsageError):
        AsyncTftpFileServer(tmp_path / "missing")
    with pytest.raises(UsageError):
        AsyncTftpFileServer(None, files, timeout=0)


@pytest.mark.parametrize(("seed", "blksize"), [(1, None), (2, 8192)])
def test_downloads_through_a_lossy_network_complete_byte_for_byte(seed, blksize):
    from phone.testing.lossy import Impairment, LossyUdpProxy

    impairment = Impairment(drop=0.05, duplicate=0.05, reorder=0.05, hold=0.02)
    with running_aio_tftp_server(files, timeout=0.1, retries=6) as server, \
            LossyUdpProxy(("127.0.0.1", server.port), impairment, seed=seed) as port:
        fetch = fetcher(port, timeout=0.1, retries=8, blksize=blksize).fetch
        results = [fetch(name) for name in ("big", "CTLFile.tlv", "block", "empty") * 4]
    for result in results:
        assert result.status is FetchStatus.FOUND and result.data == FILES[result.name], result.reason
