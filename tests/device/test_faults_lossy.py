"""TFTP through a lossy network: downloads complete through resends or fail cleanly, nothing half-written.

The network is ``phone.testing.lossy.LossyUdpProxy`` between the phone's
fetcher and the lab's TFTP server (``TftpFileServer``), both on
loopback. Success rates per loss level, over more downloads, are measured by
benchmarks/bench_lossy_tftp.py (figures in docs/reliability.md).
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Iterator

import attrs
import pytest
from minicluster import MAC, MiniCluster, TvsDouble

from phone.device.phone import Phone
from phone.errors import UsageError
from phone.device.flash import FlashStore
from phone.catalogue import get_model
from phone.testing.lossy import Impairment, LossyUdpProxy
from phone.device.tftp import FetchStatus, TftpFetcher
from phone.lab.servers.tftp import TftpFileServer
from phone.device.transports import TftpTransport

ITL = f"ITLSEP{MAC}.tlv"
SGN = f"SEP{MAC}.cnf.xml.sgn"


@pytest.fixture(scope="module")
def cluster_files() -> dict[str, bytes]:
    return MiniCluster(mixed_mode=True).files()


@pytest.fixture(scope="module")
def server(cluster_files) -> Iterator[int]:
    with TftpFileServer(None, lambda name, _client: cluster_files.get(name), timeout=0.1, retries=5) as port:
        yield port


def fetch_through(proxy_port: int, name: str = ITL, **settings):
    return TftpFetcher("127.0.0.1", proxy_port, **{"timeout": 0.1, "retries": 6, "deadline": 10.0, "blksize": 512,
                                                   **settings}).fetch(name)


# -- the proxy itself ------------------------------------------------------------------------


def test_a_proxy_that_impairs_nothing_is_transparent(server, cluster_files):
    proxy = LossyUdpProxy(("127.0.0.1", server), Impairment(), seed=1)
    with proxy as port:
        results = [fetch_through(port, name) for name in cluster_files]
    assert [r.data for r in results] == list(cluster_files.values())
    assert proxy.stats["datagrams"] > 0 and not proxy.stats["dropped"]


def test_a_proxy_that_drops_everything_gives_a_clean_time_out(server):
    with LossyUdpProxy(("127.0.0.1", server), Impairment(drop=1.0)) as port:
        result = fetch_through(port, retries=2)
    assert result.status is FetchStatus.TIMED_OUT and result.data is None
    assert "no answer" in result.reason


def _arrivals(impairment: Impairment, seed: int, count: int = 300) -> list[int]:
    """Numbered datagrams sent through the proxy to a sink: the numbers that arrived, in order."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sink, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        sink.bind(("127.0.0.1", 0))
        sink.settimeout(1.0)  # the last arrival ends the wait; a busy machine may pause the proxy a while
        arrived = []
        with LossyUdpProxy(sink.getsockname(), impairment, seed=seed) as port:
            for number in range(count):
                client.sendto(number.to_bytes(2, "big"), ("127.0.0.1", port))
                time.sleep(0.0002)  # no burst for the socket buffers to drop
            with contextlib.suppress(TimeoutError):
                while True:
                    arrived.append(int.from_bytes(sink.recvfrom(100)[0], "big"))
    return arrived


def test_the_same_seed_hits_the_same_datagrams_and_the_share_is_as_asked():
    impairment = Impairment(drop=0.2, duplicate=0.1)
    first, again, other = _arrivals(impairment, 5), _arrivals(impairment, 5), _arrivals(impairment, 6)
    assert first == again
    assert first != other
    distinct = len(set(first))
    assert 0.72 < distinct / 300 < 0.88  # 80% get through (the binomial's 4 sigma: +-0.09)
    assert 0.05 < (len(first) - distinct) / distinct < 0.16  # 10% of those twice


@pytest.mark.parametrize("settings", [{"drop": -0.1}, {"duplicate": 1.5}, {"reorder": 2}])
def test_impossible_shares_are_refused(settings):
    with pytest.raises(UsageError, match="share between 0 and 1"):
        Impairment(**settings)


# -- downloads through it --------------------------------------------------------------------


@pytest.mark.slow
def test_downloads_at_5_percent_loss_with_duplicates_and_reordering_all_complete_exactly(server, cluster_files):
    proxy = LossyUdpProxy(("127.0.0.1", server), Impairment(drop=0.05, duplicate=0.05, reorder=0.05, hold=0.08),
                          seed=2024)
    with proxy as port:
        results = [fetch_through(port) for _ in range(12)]
    assert [r.status for r in results] == [FetchStatus.FOUND] * 12, [r.reason for r in results if not r.found]
    assert all(r.data == cluster_files[ITL] for r in results)
    assert proxy.stats["dropped"] and proxy.stats["duplicated"] and proxy.stats["reordered"]


@pytest.mark.slow
def test_downloads_at_30_percent_loss_are_exact_or_fail_cleanly(server, cluster_files):
    proxy = LossyUdpProxy(("127.0.0.1", server), Impairment(drop=0.3, duplicate=0.1, reorder=0.1, hold=0.08),
                          seed=30)
    with proxy as port:
        results = [fetch_through(port, SGN) for _ in range(12)]
    for result in results:
        if result.found:
            assert result.data == cluster_files[SGN]
        else:
            assert result.data is None and result.status in (FetchStatus.TIMED_OUT, FetchStatus.FAILED)
            assert "\n" not in result.reason
    assert any(result.found for result in results)  # resends do get files through


@pytest.mark.slow
def test_a_phone_booting_over_a_lossy_network_installs_whole_files_or_keeps_what_it_had(tmp_path, cluster_files):
    """Every boot leaves flash whole; resends get the files through within a few boots.

    Timeouts are long enough (0.1 s, six resends) that a busy machine's late
    scheduling is not itself a loss: the proxy's fate stream is fixed per
    datagram, but a spurious resend shifts it, so a test that timed out at
    the proxy's own hold time depended on the machine's load.
    """
    cluster = MiniCluster(mixed_mode=True)
    model = get_model("CP-8861")
    model = attrs.evolve(model, settings=attrs.evolve(model.settings, tftp_timeout_seconds=0.1, tftp_retries=6))
    outcomes: list[str] = []
    with TftpFileServer(None, lambda name, _client: cluster.files().get(name), timeout=0.2, retries=8) as server_port:
        proxy = LossyUdpProxy(("127.0.0.1", server_port), Impairment(drop=0.2, duplicate=0.1, reorder=0.1, hold=0.08),
                              seed=99)
        with proxy as port:
            phone = Phone(model, MAC, fetch=TftpTransport("127.0.0.1", port, model, blksize=512, deadline=10.0),
                          ask_tvs=TvsDouble(cluster), store=FlashStore(tmp_path))

            def boot_and_check() -> list[str]:
                results = [entry.result for entry in phone.boot().files]
                flash = phone.machine.flash
                assert flash.ctl is None or flash.ctl.data == cluster.ctl()
                assert flash.itl is None or flash.itl.data in (cluster_files[ITL], cluster.itl())
                if (tmp_path / "CURRENT").exists():
                    assert FlashStore(tmp_path).load() == flash
                outcomes.extend(results)
                return results

            for _ in range(8):  # a boot whose trust lists all failed to arrive is retried, as a phone would
                if "installed" in boot_and_check():
                    break
            cluster.regenerate_tvs()  # the ITL changes: an update must come through whole or not at all
            for _ in range(2):
                boot_and_check()
    assert set(outcomes) <= {"installed", "unchanged", "applied", "failed", "not_found"}
    assert "installed" in outcomes and "applied" in outcomes
    assert proxy.stats["dropped"] and proxy.stats["reordered"]
