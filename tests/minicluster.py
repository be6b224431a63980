"""A one-node emulated CUCM (``phone.lab``) seen as files, and a TVS double, for machine tests.

The machine tests drive ``phone.device.boot.run_boot`` with files served from
a dict and a TVS that answers as CUCM's does (DB cache, then the certificates
of the current CTL). The cluster is a real lab: ``MiniCluster`` copies a
template lab (one CUCM 10.5 publisher with 1024-bit keys, made once a session)
into a temporary folder and changes it with CUCM operations (``Lab.run``);
its certificates, CTL, ITL and signed configurations are the lab's. Only the
edges are doubles: ``serve_files`` (a fetch function over a dict) and
``TvsDouble`` (an in-memory TVS answerer reading the lab's TVS store and CTL).
The real TFTP and TVS servers are tested over loopback sockets elsewhere.
"""

from __future__ import annotations

import atexit
import datetime
import functools
import os
import shutil
import tempfile
import weakref
from pathlib import Path

import attrs

from phone.errors import CertificateError
from phone.firmware.machine import (
    AskTvs, Fetch, FileFetched, FileMissing, TvsAnswered, TvsAttempt, TvsFailed, TvsFailure,
)
from phone.lab import Lab
from phone.lab.tvs_store import TvsStore
from phone.wire.certs import Identity, load_certificate
from phone.wire.names import serial_to_bytes
from phone.wire.tlv import Role, TrustList

MAC = "B000B4BA0AEE"
PUB_IP = "10.48.47.155"
#: The seed's `utils ctl set-cluster mixed-mode` ran on Fri Mar 06 19:45:13 CET 2015.
START = datetime.datetime(2015, 3, 6, 18, 45, 13, tzinfo=datetime.timezone.utc)
_TEMPLATES = Path(tempfile.mkdtemp(prefix="phonetrust-minicluster-"))
atexit.register(shutil.rmtree, _TEMPLATES, ignore_errors=True)


#: The serial of the seed's CallManager certificate (the first serial a new lab draws).
SEED_CALLMANAGER_SERIAL = bytes.fromhex("70CAF64E090751B9DF22F49F754FC5BB")


@functools.cache
def _template(release: str) -> Path:
    """One publisher named as the seed's (cucm-1051-a-pub, 10.48.47.155, its CallManager serial),
    made once a session."""
    folder = _TEMPLATES / f"template-{release}"
    draws = [SEED_CALLMANAGER_SERIAL]

    def random_bytes(size: int) -> bytes:
        return draws.pop(0) if draws and size == len(draws[0]) else os.urandom(size)

    lab = Lab.create(folder, nodes=1, release=release, key_bits=1024, first_ip=PUB_IP, hostname_prefix="cucm-1051-a",
                     clock=lambda: START, random_bytes=random_bytes)
    assert lab.identity("CallManager").serial == SEED_CALLMANAGER_SERIAL
    return folder


class MiniCluster:
    """A CUCM publisher in a temporary folder; non-secure unless told otherwise.

    ``digest="sha512"`` makes it an 11.5 cluster (10.5 signs with SHA-1 only).
    ``etokens`` (names) run the CTL client with those eTokens, the last one signing.
    """

    def __init__(self, *, mixed_mode: bool = False, rollback: bool = False, digest: str = "sha1",
                 etokens: tuple[str, ...] = (), tvs_port: int = 2445) -> None:
        self.tvs_port = tvs_port
        self.now = START
        self._files: tuple[object, dict[str, bytes]] | None = None
        folder = Path(tempfile.mkdtemp(prefix="minicluster-", dir=_TEMPLATES)) / "lab"
        shutil.copytree(_template("11.5" if digest == "sha512" else "10.5"), folder)
        weakref.finalize(self, shutil.rmtree, folder.parent, ignore_errors=True)
        self.lab = Lab.open(folder, clock=lambda: self.now)
        if digest != "sha1":
            self.run(f"param set tftp-file-signature-algorithm {digest}")
        self.rollback = rollback
        self.mixed_mode = mixed_mode
        if etokens:
            self.ctl_client(*etokens)

    # -- CUCM operations ----------------------------------------------------------------

    def run(self, *operations: str) -> None:
        """CUCM operations in ``phonetrust lab`` words, a minute after the last ones."""
        self.now += datetime.timedelta(minutes=1)
        for words in operations:
            self.lab.run(words)

    @property
    def mixed_mode(self) -> bool:
        return self.lab.state.mixed_mode

    @mixed_mode.setter
    def mixed_mode(self, on: bool) -> None:
        """Mixed mode sets a tokenless CTL; leaving it deletes the CTL (phones keep theirs)."""
        if on and not self.mixed_mode:
            self.run("ctl set-cluster mixed-mode")
        elif not on and self.mixed_mode:
            self.run("ctl set-cluster non-secure-mode", "ctl delete")

    @property
    def rollback(self) -> bool:
        return self.lab.state.params.rollback

    @rollback.setter
    def rollback(self, on: bool) -> None:
        """"Prepare Cluster for Rollback to pre-8.0": an ITL without its CCM+TFTP and TVS records."""
        if on != self.rollback:
            self.run(f"rollback {'on' if on else 'off'}")

    def regenerate_callmanager(self) -> None:
        """A new CallManager key and serial; the ITL, the signed configurations and the CTL follow."""
        self._regenerate("CallManager")

    def regenerate_tvs(self) -> None:
        self._regenerate("TVS")

    def regenerate_capf(self) -> None:
        """A new CAPF certificate: the CTL's content changes, its signer does not."""
        self._regenerate("CAPF")

    def _regenerate(self, service: str) -> None:
        """``set cert regen``; then ``utils ctl update`` when the tokenless CTL lists that certificate."""
        self.run(f"cert regenerate {service}")
        ctl = self.lab.state.ctl
        if service != "TVS" and self.mixed_mode and ctl is not None and ctl.kind == "tokenless":
            self.run("ctl update")

    def ctl_client(self, *tokens: str) -> None:
        """The CTL client with eTokens (made on first use), the last one signing. Over a CTL that does
        not list the first token, the seed's way: delete the CTL, upload the tokens to Phone-SAST-trust."""
        for name in tokens:
            if self.lab.state.etoken(name) is None:
                self.lab.new_etoken(name)
        ctl = self.lab.ctl()
        if ctl is not None and self.etoken(tokens[0]).der not in {
                record.certificate for _, record in ctl.records_with_role(Role.SAST)}:
            self.run("ctl delete")
            for name in tokens:
                self.lab.upload_certificate("Phone-SAST-trust", self.etoken(name).certificate)
        self.run(" ".join(["ctl client", *(f"--token {name}" for name in tokens)]))

    def tokenless(self) -> None:
        """``utils ctl update CTLFile``: the eToken CTL replaced by a tokenless one (CallManager signs)."""
        self.run("ctl update")

    # -- certificates and files -----------------------------------------------------------

    @property
    def callmanager(self) -> Identity:
        return self.lab.identity("CallManager")

    @property
    def tvs(self) -> Identity:
        return self.lab.identity("TVS")

    @property
    def capf(self) -> Identity:
        return self.lab.identity("CAPF")

    def etoken(self, name: str) -> Identity:
        return self.lab.etoken(name)

    def itl(self) -> bytes:
        return self.lab.itl_bytes()

    def ctl(self) -> bytes | None:
        return self.lab.ctl_bytes()

    def config(self) -> bytes:
        return self.lab.device_file(f"SEP{MAC}.cnf.xml", tvs_addresses=[("127.0.0.1", self.tvs_port)])

    def files(self) -> dict[str, bytes]:
        """What the publisher's TFTP serves this phone (no CTLSEP outside mixed mode, as CUCM); a new
        dict each call, made once per cluster state (servers in tests ask for it per request)."""
        key = (self.lab.state, self.tvs_port)
        if self._files is None or self._files[0] != key:
            addresses = [("127.0.0.1", self.tvs_port)]
            names = (f"ITLSEP{MAC}.tlv", f"SEP{MAC}.cnf.xml", f"SEP{MAC}.cnf.xml.sgn", f"CTLSEP{MAC}.tlv")
            files = {name: self.lab.device_file(name, tvs_addresses=addresses) for name in names}
            self._files = (key, {name: data for name, data in files.items() if data is not None})
        return dict(self._files[1])

    def tvs_lookup(self, serial: bytes) -> tuple[bytes, tuple[int, ...]] | None:
        """As CUCM's TVS: the DB cache (the lab's TVS store), then the SAST records of the current CTL ({0})."""
        with TvsStore(self.lab.tvs_db) as store:
            for entry in store.list():
                if entry.serial == serial:
                    return entry.certificate, entry.roles
        ctl = self.ctl()
        if ctl is not None:
            for _, record in TrustList.from_bytes(ctl).records_with_role(Role.SAST):
                if record.serial == serial and record.certificate:
                    return record.certificate, (0,)
        return None


@attrs.define
class TvsDouble:
    """Answers AskTvs as CUCM's TVS would; can be down, drop QUERY like usecallmanager's tvsd, or misbehave."""

    cluster: MiniCluster
    mode: str = "cucm"  # cucm | down | type1-only | no-sast | wrong-cert | not-found
    requests: list = attrs.field(factory=list)

    def __call__(self, ask: AskTvs) -> TvsAnswered | TvsFailed:
        self.requests.append(ask)
        server = f"{ask.members[0].address}:{ask.members[0].port}"
        if self.cluster.tvs.der not in ask.pinned:
            return TvsFailed(TvsFailure.UNTRUSTED_SERVER, "server certificate is not a TVS record of the ITL")
        if self.mode == "down":
            return TvsFailed(TvsFailure.UNREACHABLE, "connection refused")
        if self.mode == "type1-only" and ask.message_type == 3:
            return TvsFailed(TvsFailure.DROPPED, "connection closed without an answer")
        if ask.message_type == 3:
            found = self.cluster.tvs_lookup(ask.serial)
        else:
            try:
                cert = load_certificate(ask.certificate)
            except CertificateError:
                return _answer(server, ask, 1, received=20)  # in neither cache
            found = self.cluster.tvs_lookup(serial_to_bytes(cert.serial_number))
            if found is not None and found[0] != ask.certificate:
                found = None  # type 1 asks about a whole certificate (SPEC 3.2): a namesake is not it
        if self.mode == "not-found" or found is None:
            return _answer(server, ask, 1, received=20)
        certificate, roles = found
        if self.mode == "no-sast":
            roles = tuple(r for r in roles if r != 0) or (3,)
        if self.mode == "wrong-cert":
            certificate = self.cluster.capf.der
        return _answer(server, ask, 0, roles=roles, ttl=86400,
                       certificate=certificate if ask.message_type == 3 else None, received=1480)


def _answer(server: str, ask, status: int, *, roles=(), ttl=None, certificate=None, received: int) -> TvsAnswered:
    """An answer with the sizes of the real exchange of Cisco TAC 213407 (a 153-byte query)."""
    attempt = TvsAttempt(server, ask.message_type, status, tuple(roles), None, bytes_sent=153, bytes_received=received)
    return TvsAnswered(server, status=status, roles=tuple(roles), ttl=ttl, certificate=certificate, attempts=(attempt,))


def serve_files(files: dict[str, bytes]):
    def fetch(request: Fetch):
        data = files.get(request.name)
        if data is None:
            return FileMissing(request.name)
        return FileFetched(request.name, data, server=PUB_IP)

    return fetch
