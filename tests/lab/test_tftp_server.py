"""TftpFileServer (tftpy's server, guarded) against TftpFetcher on loopback."""

from __future__ import annotations

import os
import resource
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from phone.errors import TransportError, UsageError
from phone.device.tftp import FetchStatus, TftpFetcher
from phone.lab.servers.tftp_tftpy import TftpFileServer

CTL = bytes(range(256)) * 20  # 5120 bytes: CTL-sized


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


def fetcher(port: int, **settings: object) -> TftpFetcher:
    return TftpFetcher("127.0.0.1", port, **{"timeout": 0.5, "retries": 2, **settings})


def raw_exchange(port: int, datagram: bytes) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.settimeout(1.0)
        client.sendto(datagram, ("127.0.0.1", port))
        return client.recvfrom(65536)[0]


# -- serving -----------------------------------------------------------------


def test_files_under_the_root_are_served(root: Path) -> None:
    with TftpFileServer(root) as port:
        assert fetcher(port).fetch("ITLFile.tlv").data == b"I" * 5000
        assert fetcher(port).fetch("Desktops/List.xml").data == b"<List/>"
        assert fetcher(port).fetch("empty.txt").data == b""


def test_unknown_names_get_file_not_found(root: Path) -> None:
    with TftpFileServer(root) as port:
        result = fetcher(port).fetch("CTLSEP001122334455.tlv")
    assert result.status is FetchStatus.NOT_FOUND


def test_dynamic_files_are_made_by_name_for_the_asking_client(root: Path) -> None:
    asked: list[tuple[str, tuple[str, int]]] = []

    def dynamic(name: str, client: tuple[str, int]) -> bytes | None:
        asked.append((name, client))
        if name == "SEP001122334455.cnf.xml":
            return b"<device/>"
        if name == "CTLSEP001122334455.tlv":
            return CTL
        if name == "ITLFile.tlv":
            return b"generated ITL"
        return None

    with TftpFileServer(root, dynamic) as port:
        one = fetcher(port)
        assert one.fetch("SEP001122334455.cnf.xml").data == b"<device/>"
        assert one.fetch("CTLSEP001122334455.tlv").data == CTL
        assert one.fetch("ITLFile.tlv").data == b"generated ITL"  # the callback comes first
        assert one.fetch("Desktops/List.xml").data == b"<List/>"  # then the folder
        assert one.fetch("SEP001122334455.cnf.xml.sgn").status is FetchStatus.NOT_FOUND
    assert [name for name, _ in asked][:2] == ["SEP001122334455.cnf.xml", "CTLSEP001122334455.tlv"]
    assert all(client[0] == "127.0.0.1" and client[1] > 0 for _, client in asked)


def test_dynamic_only_server_needs_no_folder() -> None:
    with TftpFileServer(None, lambda name, client: b"x" if name == "a" else None) as port:
        assert fetcher(port).fetch("a").data == b"x"
        assert fetcher(port).fetch("b").status is FetchStatus.NOT_FOUND


def test_failing_callback_answers_error_0_and_the_server_carries_on(caplog) -> None:
    def dynamic(name: str, client: tuple[str, int]) -> bytes | None:
        if name == "boom":
            raise RuntimeError("lab bug")
        return b"ok"

    server = TftpFileServer(None, dynamic)
    with server as port:
        failed = fetcher(port).fetch("boom")
        assert fetcher(port).fetch("fine").data == b"ok"
    assert failed.status is FetchStatus.FAILED
    assert "error 0 (cannot produce boom)" in failed.reason
    assert server.stats().errors == 1
    assert "lab bug" in caplog.text


@pytest.mark.parametrize(
    ("blksize", "size", "used"),
    [
        (None, 5120, 65464),  # loopback default: the largest block
        (512, 5120, 512),
        (1428, 5120, 1428),
        (1024, 2048, 1024),  # a multiple of the block size ends with an empty block
        (8, 100, 8),  # RFC 2348's smallest
        (65464, 65464 * 2, 65464),
    ],
)
def test_block_size_is_negotiated(blksize: int | None, size: int, used: int) -> None:
    payload = os.urandom(size)
    with TftpFileServer(None, lambda name, client: payload) as port:
        result = fetcher(port, blksize=blksize).fetch("f")
    assert result.data == payload
    assert result.blksize == used


def test_size_cap_admits_a_file_of_exactly_the_cap_and_refuses_one_byte_more() -> None:
    with TftpFileServer(None, lambda name, client: b"c" * 65536) as port:
        exact = fetcher(port).fetch("ITLFile.tlv", max_bytes=65536)
        under = fetcher(port).fetch("ITLFile.tlv", max_bytes=65535)
    assert exact.found
    assert under.status is FetchStatus.FAILED
    assert "announced 65536 bytes, more than the 65535-byte cap" in under.reason


# -- path safety ---------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "../secret.txt",
        "Desktops/../../secret.txt",
        "/etc/passwd",
        "//etc/passwd",
        "Desktops/../ITLFile.tlv",
        "./ITLFile.tlv",
        "Desktops//List.xml",
        "..\\secret.txt",
        "Desktops\\List.xml",
        "ITLFile.tlv\x7f",
    ],
)
def test_names_outside_plain_relative_paths_are_refused(root: Path, name: str) -> None:
    seen: list[str] = []

    def dynamic(asked: str, client: tuple[str, int]) -> bytes | None:
        seen.append(asked)
        return None

    with TftpFileServer(root, dynamic) as port:
        result = fetcher(port).fetch(name)
        assert fetcher(port).fetch("ITLFile.tlv").found  # still serving
    assert result.status is FetchStatus.FAILED
    assert "error 2 (Access violation" in result.reason or "error 4 (Illegal TFTP operation)" in result.reason
    assert seen == ["ITLFile.tlv"]  # the callback never sees an unsafe name


def test_symbolic_link_out_of_the_root_is_refused(root: Path) -> None:
    (root / "escape.txt").symlink_to(root.parent / "secret.txt")
    (root / "inside.txt").symlink_to(root / "ITLFile.tlv")
    with TftpFileServer(root) as port:
        escape = fetcher(port).fetch("escape.txt")
        inside = fetcher(port).fetch("inside.txt")
    assert escape.status is FetchStatus.FAILED
    assert "leads out of the root" in escape.reason
    assert inside.found


def test_folders_are_not_files(root: Path) -> None:
    with TftpFileServer(root) as port:
        assert fetcher(port).fetch("Desktops").status is FetchStatus.NOT_FOUND


def test_uploads_are_refused(root: Path) -> None:
    server = TftpFileServer(root)
    with server as port:
        answer = raw_exchange(port, b"\x00\x02SEP001122334455.cnf.xml\x00octet\x00")
    assert answer[:4] == b"\x00\x05\x00\x02"
    assert sorted(path.name for path in root.iterdir()) == ["Desktops", "ITLFile.tlv", "empty.txt"]
    assert server.stats().refused == 1


# -- robustness ----------------------------------------------------------------


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x00\x01\xff\x00octet\x00",  # not ASCII: tftpy's decoder raises UnicodeDecodeError
        b"\x00\x01a\x00octet\x00blksize\x00",  # odd option list
        b"\x00\x01a\x00octet\x00blksize\x00x\x00",  # blksize not a number
        b"\x00\x04\x00",  # short ACK
        b"\x00\x03",
        b"\x00",
        b"\x00\x05\x00\x01oops\x00",
    ],
)
def test_garbage_datagrams_do_not_stop_the_server(garbage: bytes) -> None:
    server = TftpFileServer(None, lambda name, client: CTL)
    with server as port:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
            for _ in range(3):
                sender.sendto(garbage, ("127.0.0.1", port))
        time.sleep(0.05)
        assert fetcher(port).fetch("CTLSEP001122334455.tlv").data == CTL


def test_many_parallel_downloads_from_one_server(root: Path) -> None:
    files = {f"SEP{n:012X}.cnf.xml": os.urandom(5000 + n) for n in range(50)}
    server = TftpFileServer(root, lambda name, client: files.get(name))
    with server as port:
        one = fetcher(port, timeout=1.0, retries=3, blksize=1428)  # several blocks each
        with ThreadPoolExecutor(max_workers=50) as pool:
            results = list(pool.map(one.fetch, [*files, *files]))
    assert [result.data for result in results] == [*files.values(), *files.values()]
    stats = server.stats()
    assert stats.served == 100
    assert stats.restarts == stats.dropped == 0


def hold_a_transfer(port: int) -> socket.socket:
    """A client that asks for a file and never acknowledges it: one busy session."""
    holder = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    holder.settimeout(1.0)
    holder.sendto(b"\x00\x01ITLFile.tlv\x00octet\x00", ("127.0.0.1", port))
    assert holder.recvfrom(65536)[0][:2] == b"\x00\x03"
    return holder


def test_requests_beyond_max_sessions_wait_for_a_free_slot() -> None:
    server = TftpFileServer(None, lambda name, client: CTL, max_sessions=1, timeout=0.2, retries=1)
    with server as port:
        holder = hold_a_transfer(port)
        try:
            refused = fetcher(port, timeout=0.1, retries=0).fetch("a")
            # The held transfer expires after about timeout x retries; a patient client gets in.
            patient = fetcher(port, timeout=0.2, retries=5).fetch("b")
        finally:
            holder.close()
    assert refused.status is FetchStatus.TIMED_OUT
    assert patient.data == CTL
    assert server.stats().dropped >= 1


@pytest.fixture
def descriptors_up_to_the_select_limit() -> Iterator[list[int]]:
    """Open descriptors until the next one the process gets is 1024 or more."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1100:
        pytest.skip(f"needs 1100 descriptors, the hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 1100), hard))
    opened: list[int] = []
    try:
        while True:
            fd = os.open(os.devnull, os.O_RDONLY)
            opened.append(fd)
            if fd >= 1023:
                break
        yield opened
    finally:
        for fd in opened:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_past_1024_descriptors_requests_are_dropped_instead_of_killing_the_loop(
    descriptors_up_to_the_select_limit: list[int],
) -> None:
    opened = descriptors_up_to_the_select_limit
    closed_one = opened.pop(0)  # room below 1024 for the server's own socket
    os.close(closed_one)
    server = TftpFileServer(None, lambda name, client: CTL)
    with server as port:
        crowded = fetcher(port, timeout=0.1, retries=1).fetch("a")
        for fd in opened[-200:]:
            os.close(fd)
        del opened[-200:]
        relieved = fetcher(port).fetch("a")
    assert crowded.status is FetchStatus.TIMED_OUT
    assert relieved.data == CTL
    stats = server.stats()
    assert stats.dropped >= 1 and stats.restarts == 0


def test_server_socket_past_the_select_limit_is_refused_at_start(
    descriptors_up_to_the_select_limit: list[int],
) -> None:
    with pytest.raises(TransportError, match="cannot watch descriptors from 1024"):
        TftpFileServer(None, lambda name, client: CTL).start()


# -- life cycle ----------------------------------------------------------------


def test_stop_is_prompt_and_releases_the_port() -> None:
    server = TftpFileServer(None, lambda name, client: b"x", timeout=5.0)
    port = server.start()
    assert isinstance(port, int) and port == server.port
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 1.0
    server.stop()  # idempotent
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as again:
        again.bind(("127.0.0.1", port))
    assert not any(thread.name == f"tftp-server-{port}" for thread in threading.enumerate())


def test_private_empty_root_is_removed_on_stop() -> None:
    before = set(Path(tempfile.gettempdir()).glob("phonetrust-tftp-*"))
    with TftpFileServer(None, lambda name, client: b"x") as port:
        assert fetcher(port).fetch("a").found
        assert len(set(Path(tempfile.gettempdir()).glob("phonetrust-tftp-*")) - before) == 1
    assert set(Path(tempfile.gettempdir()).glob("phonetrust-tftp-*")) == before


def test_a_server_starts_once() -> None:
    server = TftpFileServer(None, lambda name, client: b"x")
    with server:
        with pytest.raises(UsageError, match="already started"):
            server.start()


def test_taken_port_is_a_transport_error() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        server = TftpFileServer(None, None, port=taken.getsockname()[1])
        with pytest.raises(TransportError, match="cannot serve TFTP"):
            server.start()
        server.stop()  # harmless after a failed start


def test_missing_root_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="is not a folder"):
        TftpFileServer(tmp_path / "nowhere")
