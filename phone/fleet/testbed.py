"""A small self-served cluster for fleet tests and benchmarks: one publisher, per-MAC files.

It stands in for the emulated CUCM lab (``phone.lab``) until a fleet can be
pointed at one: the same files a CUCM 10.5 publisher serves (docs/trust-lists.md, docs/phone.md) —
``ITLSEP<MAC>.tlv``, ``CTLSEP<MAC>.tlv`` in mixed mode, ``SEP<MAC>.cnf.xml``
and its ``.sgn`` — made for any MAC on request, and a TVS server answering from
a store holding the publisher's CallManager certificate ({0, 2}, docs/tvs.md) and
from the current CTL.

``TestbedCluster`` is the cluster as values (no I/O); ``serving_testbed()``
runs its TFTP and TVS servers in a child process (so that the fleet's own
processes keep their cores) and applies the cluster changes of a rehearsal
there::

    with serving_testbed() as testbed:
        fleet.boot_all("first-boot", tftp=testbed.tftp)
        testbed.apply("mixed-mode")                # utils ctl set-cluster mixed-mode
        fleet.boot_all("mixed-mode", tftp=testbed.tftp)
        testbed.apply("regenerate-callmanager")    # new certificate + utils ctl update CTLFile
        fleet.boot_all("regenerate-callmanager", tftp=testbed.tftp)

``REGENERATE_CALLMANAGER`` is that sequence: Cisco TAC 118893's procedure, after which
every SBD phone accepts (TVS vouches for the new signer) and a 7940 rejects
(its CTL must be erased by hand, docs/models.md).
"""

from __future__ import annotations

import contextlib
import datetime
import multiprocessing
import re
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import attrs

from phone.wire.certs import Identity, cucm_subject, generate_rsa_key, make_certificate
from phone.wire.config import TvsMember, render_config
from phone.errors import TransportError, UsageError
from phone.wire.signing import build_signed_file, build_trust_list, make_record
from phone.wire.tlv import Role

PUBLISHER = "cucm-1051-a-pub"
PUBLISHER_IP = "10.48.47.155"
_NOT_BEFORE = datetime.datetime(2014, 6, 5, 16, 31, 39, tzinfo=datetime.timezone.utc)
_DEVICE_FILE = re.compile(r"^(CTL|ITL)(SEP[0-9A-F]{12}|CSF[0-9A-Z_]{1,50})\.tlv$|"
                          r"^(SEP[0-9A-F]{12}|CSF[0-9A-Z_]{1,50})\.cnf\.xml(\.sgn)?$")

#: Cisco TAC 118893's rehearsal: (step name, cluster change before the step, or None).
REGENERATE_CALLMANAGER: tuple[tuple[str, str | None], ...] = (
    ("first-boot", None),
    ("mixed-mode", "mixed-mode"),
    ("regenerate-callmanager", "regenerate-callmanager"),
)
OPERATIONS = ("mixed-mode", "non-secure-mode", "regenerate-callmanager", "update-ctl")


def _identity(common_name: str, serial: int, bits: int) -> Identity:
    return make_certificate(cucm_subject(common_name), generate_rsa_key(bits), not_before=_NOT_BEFORE, serial=serial)


@attrs.define
class TestbedCluster:
    """One publisher (CallManager, TVS, CAPF) with a tokenless CTL in mixed mode (docs/trust-lists.md, docs/lab.md)."""

    __test__ = False  # not a pytest class

    bits: int = 2048
    tvs_address: str = "127.0.0.1"
    tvs_port: int = 2445
    mixed_mode: bool = False
    generation: int = 0
    callmanager: Identity = attrs.field(init=False)
    ctl_signer: Identity = attrs.field(init=False)
    tvs: Identity = attrs.field(init=False)
    capf: Identity = attrs.field(init=False)
    _cache: dict[str, bytes | None] = attrs.field(init=False, factory=dict)

    def __attrs_post_init__(self) -> None:
        self.callmanager = _identity(PUBLISHER, 0x70CAF64E090751B9DF22F49F754FC5BB, self.bits)
        self.ctl_signer = self.callmanager
        self.tvs = _identity(f"{PUBLISHER}-tvs", 0x5EED, self.bits)
        self.capf = _identity("CAPF-e41e7d87", 0xCAF, self.bits)

    # -- CUCM operations (docs/lab.md) -----------------------------------------------------

    def apply(self, operation: str) -> None:
        if operation == "mixed-mode":
            self.mixed_mode = True
            self.ctl_signer = self.callmanager
        elif operation == "non-secure-mode":
            self.mixed_mode = False
        elif operation == "regenerate-callmanager":
            # New key and serial; in mixed mode CUCM's procedure then runs `utils ctl update CTLFile`.
            self.generation += 1
            self.callmanager = _identity(PUBLISHER, 0x6B1D357B6841740B078FEE4A1813D5D6 + self.generation, self.bits)
            self.ctl_signer = self.callmanager
        elif operation == "update-ctl":
            self.ctl_signer = self.callmanager
        else:
            raise UsageError(f"unknown testbed operation {operation!r}: expected one of {', '.join(OPERATIONS)}")
        self._cache.clear()

    # -- files --------------------------------------------------------------------------

    def _record(self, identity: Identity, role: int):
        return make_record(identity.certificate, role, dns_name=PUBLISHER, ip_address=PUBLISHER_IP)

    def itl(self) -> bytes:
        return self._cached("ITLFile.tlv", lambda: build_trust_list(
            [self._record(self.callmanager, Role.SAST), self._record(self.callmanager, Role.CCM_TFTP),
             self._record(self.tvs, Role.TVS), self._record(self.capf, Role.CAPF)],
            self.callmanager, filename="ITLFile.tlv", timestamp=1_400_000_000 + self.generation).data)

    def ctl(self) -> bytes | None:
        if not self.mixed_mode:
            return None
        return self._cached("CTLFile.tlv", lambda: build_trust_list(
            [self._record(self.ctl_signer, Role.SAST), self._record(self.callmanager, Role.CCM_TFTP),
             self._record(self.capf, Role.CAPF)],
            self.ctl_signer, filename="CTLFile.tlv", timestamp=1_400_000_100 + self.generation).data)

    def config(self, device: str) -> bytes:
        return render_config([TvsMember(self.tvs_address, self.tvs_port, 0)], device_name=device,
                             capf_servers=("CAPF-e41e7d87",), call_managers=(PUBLISHER,))

    def file(self, name: str) -> bytes | None:
        """What the publisher's TFTP serves under ``name`` (None: "File not found")."""
        match = _DEVICE_FILE.match(name)
        if match is None:
            return self.itl() if name == "ITLFile.tlv" else self.ctl() if name == "CTLFile.tlv" else None
        if match.group(1) == "CTL":
            return self.ctl()
        if match.group(1) == "ITL":
            return self.itl()
        device = match.group(3)
        if not match.group(4):
            return self.config(device)
        # CUCM keeps each device's signed configuration; built once per cluster state here.
        return self._cached(name, lambda: build_signed_file(
            self.config(device), self.callmanager, filename=f"{device}.cnf.xml",
            timestamp=1_400_000_200 + self.generation).data)

    def _cached(self, key: str, make) -> bytes | None:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]


# -- serving in a child process ---------------------------------------------------------


@attrs.frozen
class TestbedAddress:
    __test__ = False

    host: str
    tftp_port: int
    tvs_port: int

    @property
    def tftp(self) -> tuple[str, int]:
        return (self.host, self.tftp_port)


class TestbedServer:
    """The child process serving a ``TestbedCluster``; ``apply`` changes the cluster between steps."""

    __test__ = False

    def __init__(self, process: multiprocessing.process.BaseProcess, connection, address: TestbedAddress) -> None:
        self._process = process
        self._connection = connection
        self._lock = threading.Lock()
        self.address = address

    @property
    def tftp(self) -> tuple[str, int]:
        return self.address.tftp

    def apply(self, operation: str) -> None:
        if operation not in OPERATIONS:
            raise UsageError(f"unknown testbed operation {operation!r}: expected one of {', '.join(OPERATIONS)}")
        self._call(("apply", operation))

    def stats(self) -> dict[str, int]:
        return self._call(("stats",))

    def cpu_seconds(self) -> float:
        """CPU time the serving process has used so far (user + system)."""
        return self._call(("cpu",))

    def _call(self, message: tuple):
        with self._lock:
            self._connection.send(message)
            if not self._connection.poll(60):
                raise TransportError("the testbed server did not answer within 60 s")
            status, value = self._connection.recv()
        if status != "ok":
            raise TransportError(f"testbed server: {value}")
        return value

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._connection.send(("stop",))
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)


@contextlib.contextmanager
def serving_testbed(*, host: str = "127.0.0.1", bits: int = 2048, server: str = "tftpy",
                    start_timeout: float = 60.0) -> Iterator[TestbedServer]:
    """Serve a fresh ``TestbedCluster`` from a child process until the block ends.

    ``server`` picks the TFTP server: ``"tftpy"`` (``phone.tftp.TftpFileServer``)
    or ``"fast"`` (``phone.lab.servers.tftp``, asyncio).
    """
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_serve_main, args=(child, host, bits, server), name="fleet-testbed",
                              daemon=True)
    process.start()
    child.close()
    if not parent.poll(start_timeout):
        process.kill()
        raise TransportError("the testbed server did not start in time")
    try:
        status, value = parent.recv()
    except EOFError:
        status, value = "error", f"the serving process ended (exit code {process.join(5) or process.exitcode})"
    if status != "ok":
        process.join(5)
        raise TransportError(f"testbed server: {value}")
    testbed = TestbedServer(process, parent, TestbedAddress(host, *value))
    try:
        yield testbed
    finally:
        testbed.close()


def _serve_main(connection, host: str, bits: int, server: str) -> None:  # pragma: no cover - child process
    import os

    from phone.lab.servers.tftp_tftpy import TftpFileServer
    from phone.lab.servers.tvs import TvsServerSettings, running_tvs_server
    from phone.lab.tvs_store import TvsStore

    try:
        folder = Path(tempfile.mkdtemp(prefix="phonetrust-testbed-"))
        cluster = TestbedCluster(bits=bits, tvs_address=host)
        (folder / "tvs.pem").write_bytes(cluster.tvs.certificate_pem())
        (folder / "tvs.key").write_bytes(cluster.tvs.private_key_pem())
        store = TvsStore(folder / "tvs.sqlite", create=True)
        store.add(cluster.callmanager.der, (0, 2))
        ctl_path = folder / "CTLFile.tlv"
        lock = threading.Lock()

        def dynamic(name: str, _client) -> bytes | None:
            with lock:
                return cluster.file(name)

        def write_ctl() -> None:
            ctl = cluster.ctl()
            if ctl is None:
                ctl_path.unlink(missing_ok=True)
            else:
                ctl_path.write_bytes(ctl)

        with contextlib.ExitStack() as stack:
            tvs = stack.enter_context(running_tvs_server(
                folder / "tvs.pem", folder / "tvs.key", db=folder / "tvs.sqlite", ctl=ctl_path,
                settings=TvsServerSettings(host=host, port=0, trace_messages=False, ctl_poll_interval=None)))
            cluster.tvs_port = tvs.port
            if server == "fast":
                from phone.lab.servers.tftp import running_aio_tftp_server

                fast = stack.enter_context(running_aio_tftp_server(dynamic, host=host, port=0))
                tftp_port = fast.port
                tftp_stats = lambda: {**attrs.asdict(fast.stats()), **fast.counts}  # noqa: E731
            else:
                tftp = TftpFileServer(None, dynamic, host=host, port=0, max_sessions=900)
                tftp_port = stack.enter_context(tftp)
                tftp_stats = lambda: attrs.asdict(tftp.stats())  # noqa: E731
            connection.send(("ok", (tftp_port, tvs.port)))
            while True:
                message = connection.recv()
                try:
                    if message[0] == "stop":
                        return
                    if message[0] == "apply":
                        with lock:
                            cluster.apply(message[1])
                            write_ctl()
                            if message[1] == "regenerate-callmanager":
                                store.add(cluster.callmanager.der, (0, 2))
                        connection.send(("ok", None))
                    elif message[0] == "stats":
                        connection.send(("ok", tftp_stats()))
                    elif message[0] == "cpu":
                        times = os.times()
                        connection.send(("ok", times.user + times.system))
                    else:
                        connection.send(("error", f"unknown message {message[0]!r}"))
                except Exception as error:  # noqa: BLE001 - reported to the parent
                    connection.send(("error", f"{type(error).__name__}: {error}"))
    except EOFError:
        return
    except Exception as error:  # noqa: BLE001 - reported to the parent
        with contextlib.suppress(Exception):
            connection.send(("error", f"{type(error).__name__}: {error}"))
