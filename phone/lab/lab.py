"""A CUCM cluster in a folder, and the CUCM operations on it (docs/lab.md).

Folder layout (everything a lab is; copy the folder and you copy the lab)::

    lab.json                       the description (phone.lab.state.LabState)
    certs/<host>/<Service>.pem     CallManager, TVS, CAPF (publisher), ITLRecovery (10.0+),
                                   CallManager-ECDSA and tomcat-ECDSA (11.0+); tomcat when first needed
    certs/<host>/<Service>.key     their keys (mode 0600)
    ca/manufacturing-ca.pem|.key   the emulated "Cisco Manufacturing CA" (made with the first eToken)
    etokens/<name>.pem|.key        the eTokens the CTL client can use
    trust/<store>/<sha>.pem        certificates in Phone-SAST-trust / CallManager-trust / CAPF-trust:
                                   uploaded, or put there by CUCM (CAPF certificates, manufacturing CA)
    tftp/<host>/CTLFile.tlv        what each node's TFTP service serves (CTL only in mixed mode,
    tftp/<host>/ITLFile.tlv        or left behind after non-secure mode until `ctl delete`)
    tvs.sqlite3                    the TVS DB cache (phone.lab.tvs_store.TvsStore)
    devices.sqlite                 the phones' pages (phone.lab.devices.DeviceStore)

A lab made by an older phonetrust lacks certificates and trust entries added since;
``Lab.open`` adds them (one operation, as CUCM's upgrade would).

Every operation runs under an exclusive lock on ``.lock`` (readers take a
shared one), writes certificates and files first and ``lab.json`` last, each
through a temporary file and a rename: a ``lab serve`` in another process
never reads half an operation, and picks the change up at its next request.

Operations return the lines CUCM prints (``phone.lab.texts``); an operation
CUCM would refuse raises ``OperationRefused`` with one line.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import hashlib
import ipaddress
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from phone.wire.certs import Identity, PrivateKey, load_certificate, load_private_key
from phone.errors import PhonetrustError, UsageError
from phone.lab import build, encrypted, operations, pki, texts
from phone.lab.build import CTL_FILE, ITL_FILE, ServiceAddresses
from phone.lab.devices import DEVICES_FILE, DeviceRecord, DeviceStore, describe, updated_record
from phone.lab.state import (
    DEFAULT_FIRST_IP,
    DIGESTS,
    EC_SERVICES,
    MAX_NODES,
    SERVICES,
    TLS_VERSIONS,
    TRUST_STORES,
    CtlInfo,
    EToken,
    LabError,
    LabState,
    Names,
    Node,
    OperationRefused,
    Upload,
    check_hostname,
    check_label,
)
from phone.lab.releases import DEFAULT_RELEASE, parse_release
from phone.wire.names import ctl_client_name, cucm_name, serial_hex
from phone.wire.showctl import render_show_ctl
from phone.wire.signing import verify
from phone.wire.tlv import Role, TrustList
from phone.lab.tvs_store import TvsStore

Clock = Callable[[], datetime.datetime]

STATE_FILE = "lab.json"
TVS_DB = "tvs.sqlite3"
LOCK_FILE = ".lock"
#: How long an operation waits for another one on the same lab to finish.
LOCK_TIMEOUT = 30.0
#: Names of the per-device files a TFTP node generates on request (docs/phone.md).
DEVICE = r"(?:SEP[0-9A-Fa-f]{12}|CSF[A-Za-z0-9_-]{1,32})"
_DEVICE_TRUST_LIST = re.compile(rf"^(CTL|ITL)({DEVICE})\.tlv$")
_DEVICE_CONFIG = re.compile(rf"^({DEVICE}|XMLDefault)\.cnf\.xml(\.sgn)?$")
_ENCRYPTED_CONFIG = re.compile(r"^(SEP[0-9A-Fa-f]{12})\.cnf\.xml\.enc\.sgn$")
PARAMETERS = ("tftp-file-signature-algorithm", "tls-min-version")


def wall_clock() -> datetime.datetime:
    """The default clock of a lab opened without one (the command line's)."""
    return datetime.datetime.now(datetime.timezone.utc)


class _FolderLock:
    """A threading lock plus an fcntl lock on the lab's ``.lock``, re-entrant for one thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._mutex = threading.RLock()
        self._depth = 0
        self._fd: int | None = None
        self._exclusive = False

    @contextlib.contextmanager
    def hold(self, *, exclusive: bool) -> Iterator[None]:
        with self._mutex:
            if self._depth == 0:
                self._acquire(exclusive)
            elif exclusive and not self._exclusive:
                raise RuntimeError("a lab read cannot turn into an operation")  # pragma: no cover - a bug
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
                if self._depth == 0 and self._fd is not None:
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
                    os.close(self._fd)
                    self._fd = None

    def _acquire(self, exclusive: bool) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
        deadline = time.monotonic() + LOCK_TIMEOUT
        while True:
            try:
                fcntl.flock(fd, mode)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise LabError(f"{self.path.parent}: another operation holds the lab for more than "
                                   f"{LOCK_TIMEOUT:.0f} s") from None
                time.sleep(0.02)
        self._fd, self._exclusive = fd, exclusive


def _write_atomically(path: Path, data: bytes, *, private: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o644)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def _load_identity(certificate: Path, key: Path) -> Identity:
    """A node's or eToken's certificate and key, from the lab's PEM files."""
    return Identity(load_certificate(certificate.read_bytes(), source=str(certificate)),
                    _load_own_key(key.read_bytes(), source=str(key)))


def _load_own_key(data: bytes, *, source: str) -> PrivateKey:
    """A private key the lab generated and wrote itself (``_save_identity``, mode 0600).

    cryptography checks an RSA key's numbers when loading it (milliseconds for 2048 bits), a
    guard against keys from elsewhere; the lab's own need no such check, so it is skipped
    (``unsafe_skip_rsa_key_validation``). Anything that does not load that way goes through
    ``load_private_key``, which says what is wrong in one line.
    """
    try:
        key = serialization.load_pem_private_key(data, password=None, unsafe_skip_rsa_key_validation=True)
    except (TypeError, ValueError, UnsupportedAlgorithm):
        key = None
    if isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        return key
    return load_private_key(data, source=source)


def _file_stamp(path: Path) -> tuple[int, ...]:
    """What changes when a file is rewritten (``_write_atomically`` replaces it: a new inode)."""
    stat = os.stat(path)
    return (stat.st_mtime_ns, stat.st_ctime_ns, stat.st_size, stat.st_ino)


class _SignedConfigs:
    """Signed configurations (``<device>.cnf.xml.sgn``) already made in the lab's current state.

    CUCM's TFTP service builds a device's signed file when the configuration changes and serves
    it as it is until the next change; the lab signs on request instead (an RSA signature per
    file) and keeps the result here: per (lab state, TFTP node, file name, configuration), the
    configuration's bytes standing for the device's record. The state is part of the key (the
    signature's timestamp and signer come from it), so a file signed in a state that has just
    changed is never served for the new one; every change also empties the cache
    (``Lab._refresh`` and ``Lab._commit``). At most ``limit_bytes`` of signed files are kept; past that the oldest go.
    A signed configuration is about 1.3 KB: 64 MiB keeps some 50,000 devices', so a 40,000-phone
    fleet's step without a cluster change is served without signing again (phones ask in the same
    order at every step, so with fewer kept every file would have gone before it is asked again).
    """

    def __init__(self, limit_bytes: int = 64 * 1024 * 1024) -> None:
        self._signed: dict[tuple[object, str, str, bytes], bytes] = {}
        self._size = 0
        self._limit = limit_bytes
        self._lock = threading.Lock()  # a serving lab answers TFTP from several threads

    def get(self, stamp: object, node: str, name: str, config: bytes, sign: Callable[[], bytes]) -> bytes:
        """The signed file of ``config`` for state ``stamp``, made by ``sign`` the first time."""
        key = (stamp, node, name, hashlib.sha256(config).digest())
        with self._lock:
            found = self._signed.get(key)
        if found is not None:
            return found
        signed = sign()
        with self._lock:
            while self._signed and self._size + len(signed) > self._limit:
                self._size -= len(self._signed.pop(next(iter(self._signed))))
            if len(signed) <= self._limit:
                self._signed[key] = signed
                self._size += len(signed)
        return signed

    def clear(self) -> None:
        with self._lock:
            self._signed.clear()
            self._size = 0


class _IdentityFiles:
    """The lab's node identities as last read, kept while their two files stay the same.

    Loading an RSA key checks it thoroughly (cryptography's RSA key validation: some milliseconds
    for a 2048-bit key), and a fleet's serving process reloads the lab after every cluster change.
    A change rewrites the description and the files it touches, never the other identities: only
    those whose certificate or key file changed are read again.
    """

    def __init__(self) -> None:
        self._loaded: dict[tuple[Path, Path], tuple[tuple[int, ...], Identity]] = {}

    def load(self, certificate: Path, key: Path) -> Identity:
        stamp = (*_file_stamp(certificate), *_file_stamp(key))
        known = self._loaded.get((certificate, key))
        if known is not None and known[0] == stamp:
            return known[1]
        identity = _load_identity(certificate, key)
        self._loaded[certificate, key] = (stamp, identity)
        return identity

    def forget_all_but(self, kept: set[tuple[Path, Path]]) -> None:
        """Drop what the lab no longer has (a node or certificate removed)."""
        for paths in [paths for paths in self._loaded if paths not in kept]:
            del self._loaded[paths]


def _same_content(old: bytes, new: TrustList) -> bool:
    """True when a rebuilt trust list says what the file already says (CUCM: "Tftp Itl hash not changed")."""
    try:
        current = TrustList.from_bytes(old)
    except PhonetrustError:
        return False
    mine, theirs = current.header, new.header
    return (current.records == new.records and mine.signer_serial == theirs.signer_serial
            and mine.signer_issuer == theirs.signer_issuer and mine.digest_code == theirs.digest_code
            and mine.filename == theirs.filename)


def _summary(trust_list: TrustList) -> dict[str, str | None]:
    header = trust_list.header
    return {"signer": header.signer_name, "signer_serial": serial_hex(header.signer_serial or b""),
            "sha1": trust_list.sha1, "md5": trust_list.md5}


#: The trust stores CUCM puts its CAPF certificates and the manufacturing CA into (Cisco TAC 200860).
CUCM_CAPF_STORES = ("CAPF-trust", "CallManager-trust")


#: Certificates made the first time something needs them (``Lab.identity``): an RSA key per node
#: that most labs never use, kept out of ``Lab.create`` so that making a lab stays fast.
ON_DEMAND_SERVICES = ("tomcat",)


def _made_with_the_lab(release: Any, node: Node) -> tuple[str, ...]:
    """The certificates a node gets with the lab: its services' (``Release.node_services``) and those
    older labs lack (``Release.later_services``: the ECDSA ones, EC keys that cost nothing to make)."""
    return (*release.node_services(node.publisher), *release.later_services())


def _common_name(certificate: x509.Certificate) -> str:
    names = certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    return str(names[0].value) if names else ""


@attrs.frozen
class _Change:
    """What an operation changes besides the description: identities, the CTL."""

    identities: dict[tuple[str, str], Identity] = attrs.field(factory=dict)
    #: None: leave the CTL alone; b"": delete it; bytes: write it.
    ctl: bytes | None = None
    ctl_nodes: tuple[str, ...] | None = None


class Lab:
    """A CUCM cluster persisted in a folder; one method per CUCM operation.

    Make one with ``Lab.create`` or ``Lab.open``. ``clock`` gives certificate
    validity and file timestamps (an aware datetime); ``random_bytes`` and
    ``new_key`` make serial numbers and keys (tests pass cheap ones). A Lab
    may be shared between threads (``lab.serving()`` reads it from its TFTP
    thread) and between processes (``phonetrust lab serve`` while other
    ``phonetrust lab …`` commands change the folder).
    """

    def __init__(self, path: Path, *, clock: Clock = wall_clock, random_bytes: pki.RandomBytes = os.urandom,
                 new_key: pki.NewKey = pki.default_new_key) -> None:
        self.path = Path(path)
        self.clock = clock
        self.random_bytes = random_bytes
        self.new_key = new_key
        self._lock = _FolderLock(self.path / LOCK_FILE)
        self._stamp: tuple[int, ...] | None = None
        self._state: LabState | None = None
        self._identities: dict[tuple[str, str], Identity] = {}
        self._identity_files = _IdentityFiles()
        self._signed_configs = _SignedConfigs()

    def __repr__(self) -> str:
        return f"Lab({str(self.path)!r})"

    # -- creating and opening ---------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        *,
        nodes: int = 2,
        release: str = DEFAULT_RELEASE,
        clock: Clock = wall_clock,
        key_bits: int = 2048,
        names: Names = Names(),
        first_ip: str = DEFAULT_FIRST_IP,
        hostname_prefix: str | None = None,
        random_bytes: pki.RandomBytes = os.urandom,
        new_key: pki.NewKey = pki.default_new_key,
    ) -> Lab:
        """Build a new lab in ``path`` (missing or empty): certificates, ITLs, TVS store."""
        folder = Path(path)
        if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
            raise UsageError(f"{folder}: exists and is not an empty folder; a lab needs a new folder")
        if not 1 <= nodes <= MAX_NODES:
            raise UsageError(f"a lab has 1 to {MAX_NODES} nodes, not {nodes}")
        if key_bits not in (1024, 2048, 4096):
            raise UsageError(f"key size {key_bits}: choose 1024, 2048 or 4096")
        parsed = parse_release(release)
        prefix = check_hostname(hostname_prefix or f"cucm-{parsed.hostname_tag}-a")
        try:
            first = int(ipaddress.IPv4Address(first_ip))
        except ValueError:
            raise UsageError(f"{first_ip!r} is not an IPv4 address") from None
        if first + nodes - 1 > 0xFFFFFFFF:
            raise UsageError(f"{nodes} addresses from {first_ip} do not fit in IPv4")
        members = tuple(
            Node(f"{prefix}-pub" if index == 0 else f"{prefix}-sub{index}", str(ipaddress.IPv4Address(first + index)),
                 publisher=index == 0)
            for index in range(nodes)
        )
        now = clock()
        state = LabState(release=parsed, nodes=members, key_bits=key_bits, names=names, changed=now)
        try:
            state.validate()
        except ValueError as error:
            raise UsageError(str(error)) from None
        created = not folder.exists()
        folder.mkdir(parents=True, exist_ok=True)
        lab = cls(folder, clock=clock, random_bytes=random_bytes, new_key=new_key)
        try:
            with lab._lock.hold(exclusive=True):
                identities = {}
                for node in members:
                    for service in _made_with_the_lab(parsed, node):
                        identities[node.name, service] = lab._new_identity(service, node, state, key_bits)
                state = lab._seed_trust(state, identities)
                lab._commit(state, _Change(identities=identities))
        except BaseException:
            if created:
                shutil.rmtree(folder, ignore_errors=True)
            else:
                for child in folder.iterdir():
                    shutil.rmtree(child) if child.is_dir() else child.unlink()
            raise
        return lab

    @classmethod
    def open(cls, path: str | os.PathLike[str], *, clock: Clock = wall_clock,
             random_bytes: pki.RandomBytes = os.urandom, new_key: pki.NewKey = pki.default_new_key) -> Lab:
        """Open an existing lab folder; ``LabError`` when it is not one."""
        folder = Path(path)
        if not (folder / STATE_FILE).is_file():
            raise LabError(f"{folder}: not a lab folder (no {STATE_FILE}); make one with 'phonetrust lab init DIR'")
        lab = cls(folder, clock=clock, random_bytes=random_bytes, new_key=new_key)
        with lab._lock.hold(exclusive=False):
            lab._refresh()
            outdated = lab._outdated()
        if outdated:
            lab._upgrade()
        return lab

    def _outdated(self) -> bool:
        """A lab made before the ECDSA certificates or CUCM's own trust entries existed (caller reads)."""
        state = self._state
        assert state is not None
        missing = any((node.name, service) not in self._identities
                      for node in state.nodes for service in _made_with_the_lab(state.release, node))
        return missing or not state.trust_seeded

    def _upgrade(self) -> None:
        """Add what an older lab lacks: the ECDSA certificates (and the ITL records CallManager-ECDSA
        brings), CUCM's own trust entries (CAPF certificate and manufacturing CA in CAPF-trust and CallManager-trust)."""
        with self._writing() as state:
            if not self._outdated():
                return  # another process upgraded it meanwhile
            identities = {(node.name, service): self._new_identity(service, node, state, state.key_bits)
                          for node in state.nodes for service in _made_with_the_lab(state.release, node)
                          if (node.name, service) not in self._identities}
            if not state.trust_seeded:
                state = self._seed_trust(state, {**self._identities, **identities})
            self._commit(state, _Change(identities=identities))

    # -- reading --------------------------------------------------------------------------

    @property
    def state(self) -> LabState:
        """The current description (re-read when another process changed the lab)."""
        with self._reading():
            assert self._state is not None
            return self._state

    @property
    def release(self) -> str:
        return self.state.release.name

    @property
    def nodes(self) -> tuple[Node, ...]:
        return self.state.nodes

    @property
    def tvs_db(self) -> Path:
        return self.path / TVS_DB

    def node(self, which: str | int | None = None) -> Node:
        return self.state.node(which)

    def tftp_folder(self, node: str | int | None = None) -> Path:
        return self.path / "tftp" / self.node(node).name

    def ctl_path(self, node: str | int | None = None) -> Path:
        return self.tftp_folder(node) / CTL_FILE

    def itl_path(self, node: str | int | None = None) -> Path:
        return self.tftp_folder(node) / ITL_FILE

    def certificate_paths(self, service: str, node: str | int | None = None) -> tuple[Path, Path]:
        """The PEM certificate and key of ``service`` on ``node`` (publisher by default)."""
        self.identity(service, node)  # makes tomcat's the first time
        with self._reading():
            owner = self._owner(service, self.node(node))
            return self._identity_paths(owner.name, service)

    def identity(self, service: str, node: str | int | None = None) -> Identity:
        """The certificate and key of ``service`` on ``node`` (publisher by default).

        Tomcat's is made here the first time it is asked for (``ON_DEMAND_SERVICES``), as one lab
        operation: ask outside ``lab._reading()``.
        """
        with self._reading():
            owner = self._owner(service, self.node(node))
            found = self._identities.get((owner.name, service))
        if found is not None:
            return found
        if service not in ON_DEMAND_SERVICES:  # Lab.open adds what older labs lack: the folder is damaged
            raise LabError(f"{self.path}: the {service} certificate of {owner.name} is missing")
        with self._writing() as state:
            found = self._identities.get((owner.name, service))
            if found is None:
                found = self._new_identity(service, owner, state, state.key_bits)
                self._commit(state, _Change(identities={(owner.name, service): found}))
            return found

    def trusted_certificates(self, store: str) -> list[x509.Certificate]:
        """What CUCM's trust store ``store`` holds (CAPF-trust, CallManager-trust, Phone-SAST-trust):
        what CUCM put there itself (the CAPF certificates, the Cisco Manufacturing CA) and the uploads,
        minus what ``lab cert delete`` removed. CAPF checks LSCs and MICs against CAPF-trust, secure
        SIP/SCCP checks phones' certificates against CallManager-trust (Cisco TAC 200860)."""
        if store not in TRUST_STORES:
            raise UsageError(f"unknown trust store {store!r}: choose {', '.join(TRUST_STORES)}")
        with self._reading():
            state = self.state
            found, seen = [], set()
            for entry in (*state.system_trust, *state.uploads):
                if entry.store == store and entry.sha256 not in seen:
                    seen.add(entry.sha256)
                    found.append(self._trust_certificate(entry))
            return found

    def devices(self) -> DeviceStore:
        """The phones' pages of this lab (``devices.sqlite``; ``phone.lab.devices``)."""
        return DeviceStore.for_lab(self.path)

    def device(self, name: str) -> DeviceRecord:
        """The device's record, or auto-registration's defaults for a device the lab never heard of."""
        store = self.devices()
        if not store.path.exists():  # no device configured yet: do not create the store for a read
            return DeviceRecord(name=name, model="unknown", configured=False)
        return store.effective(name)

    def etoken(self, name: str) -> Identity:
        """An eToken's certificate and key ("plugged into the CTL client")."""
        with self._reading():
            return self._etoken(name)

    def ctl_bytes(self, node: str | int | None = None) -> bytes | None:
        with self._reading():
            return self._read_file(self.ctl_path(node))

    def itl_bytes(self, node: str | int | None = None) -> bytes:
        with self._reading():
            data = self._read_file(self.itl_path(node))
            if data is None:
                raise LabError(f"{self.itl_path(node)} is missing: the lab folder is damaged")
            return data

    def ctl(self, node: str | int | None = None) -> TrustList | None:
        data = self.ctl_bytes(node)
        return None if data is None else TrustList.from_bytes(data)

    def itl(self, node: str | int | None = None) -> TrustList:
        return TrustList.from_bytes(self.itl_bytes(node))

    def show(self, what: str, node: str | int | None = None) -> str:
        """CUCM's ``show ctl`` / ``show itl`` on ``node`` (docs/trust-lists.md, docs/lab.md)."""
        if what not in ("ctl", "itl"):
            raise UsageError(f"show what? 'ctl' or 'itl', not {what!r}")
        data = self.ctl_bytes(node) if what == "ctl" else self.itl_bytes(node)
        if data is None:
            return "\n".join(texts.NO_CTL) + "\n"
        trust_list = TrustList.from_bytes(data)
        stamp = trust_list.header.timestamp
        modified = None if stamp is None else datetime.datetime.fromtimestamp(stamp, datetime.timezone.utc)
        return render_show_ctl(trust_list, verify(trust_list), modified=modified)

    def device_file(self, name: str, node: str | int | None = None,
                    tvs_addresses: Sequence[tuple[str, int]] | None = None,
                    addresses: ServiceAddresses | None = None) -> bytes | None:
        """A file a TFTP node makes on request (docs/phone.md), or None when ``name`` is not one.

        ``CTL<device>.tlv`` is the node's CTL (None outside mixed mode: "File not
        found"), ``ITL<device>.tlv`` its ITL, ``<device>.cnf.xml`` the device's
        configuration (``build.device_config``: its security profile and CAPF
        operation from the lab's devices, the services at ``addresses`` — TVS, CAPF and
        the CallManagers as served, docs/registration.md; default a real cluster's ports,
        with ``tvs_addresses`` as each node's TVS (host, port) when given),
        ``<device>.cnf.xml.sgn`` the same signed by the node's CallManager.
        ``XMLDefault.cnf.xml[.sgn]`` too.
        For a device whose profile has "TFTP Encrypted Config" on (``lab device
        set --encrypted-config on``) the plain and signed names give the stub and
        ``<device>.cnf.xml.enc.sgn`` the encrypted configuration
        (``phone.lab.encrypted``); for any other device that name is not found.
        """
        match = _DEVICE_TRUST_LIST.match(name)
        if match:
            return self.ctl_bytes(node) if match.group(1) == "CTL" else self.itl_bytes(node)
        encrypted_match = _ENCRYPTED_CONFIG.match(name)
        match = encrypted_match or _DEVICE_CONFIG.match(name)
        if not match:
            return None
        device = match.group(1)
        record = self.device("SEP" + device[3:].upper()) if device.startswith("SEP") else None
        with self._reading():
            # The stamp before the state: ``_refresh`` sets the stamp last, so a signed file is
            # never kept under a newer stamp than the state it was made in.
            stamp = self._stamp
            state = self.state
            identities = self._identities
            if addresses is None:
                addresses = ServiceAddresses.of_cluster(state, tvs_addresses)
            config = build.device_config(state, device, record, addresses)
            encrypted_device = self._encrypted_device(device)
            if encrypted_device is not None:
                suffix = name[len(device):]
                return encrypted.encrypted_device_file(
                    suffix, encrypted_device, config, self._identities[self.node(node).name, "CallManager"],
                    timestamp=int(state.changed.timestamp()), digest=state.params.tftp_file_signature_algorithm)
            if encrypted_match:
                return None
            if not match.group(2):
                return config
            signer = self.node(node)
            return self._signed_configs.get(
                stamp, signer.name, name, config,
                lambda: build.signed_config(state, identities, signer, name[: -len(".sgn")], config))

    def _encrypted_device(self, stem: str) -> DeviceRecord | None:
        """The device ``stem`` names when its configuration is encrypted; None otherwise.

        A lab without a device store has no such device (and reading it does not create one).
        """
        if not stem.upper().startswith("SEP") or not (self.path / DEVICES_FILE).is_file():
            return None
        device = DeviceStore.for_lab(self.path).get("SEP" + stem[3:].upper())
        return device if device is not None and device.encrypted_config else None
    def device_security_mode(self, device: str) -> int:
        """The ``deviceSecurityMode`` of ``device``'s security profile; 1 for a device the lab does not
        hold (CUCM auto-registration) or a name CUCM cannot hold (``XMLDefault``)."""
        path = self.path / DEVICES_FILE
        if not path.exists():
            return 1
        try:
            return DeviceStore(path).effective(device).device_security_mode
        except UsageError:
            return 1

    def status(self) -> dict[str, Any]:
        """The lab at a glance (``phonetrust lab status --json``)."""
        with self._reading():
            state = self.state
            ctl = self.ctl()
            stored = state.as_json()  # params, eTokens and uploads as lab.json keeps them
            return {
                "path": str(self.path),
                "release": state.release.name,
                "cluster_security_mode": state.security_mode,
                "ctl": None if ctl is None else {"kind": state.ctl.kind if state.ctl else None, **_summary(ctl)},
                "nodes": [self._node_status(node) for node in state.nodes],
                **{key: stored[key] for key in ("params", "itl_reset", "etokens", "uploads")},
                "trust": {store: [_common_name(certificate) for certificate in self.trusted_certificates(store)]
                          for store in TRUST_STORES},
            }

    def _node_status(self, node: Node) -> dict[str, Any]:
        certificates = {}
        for service in SERVICES:
            identity = self._identities.get((node.name, service))
            if identity is None:
                continue
            certificates[service] = {"subject": cucm_name(identity.certificate.subject),
                                     "serial": serial_hex(identity.serial)}
        return {"name": node.name, "ip": node.ip, "publisher": node.publisher, "certificates": certificates,
                "itl": _summary(self.itl(node.name))}

    # -- CUCM operations ----------------------------------------------------------------------

    def run(self, words: Sequence[str] | str) -> operations.OperationResult:
        """The operation named by ``words`` as ``phonetrust lab`` names it (``"ctl set-cluster mixed-mode"``,
        ``["cert", "upload", "Phone-SAST-trust", "token.pem"]``): its lines and the cluster afterwards.
        ``OperationRefused`` when CUCM would refuse it; see ``phone.lab.operations``."""
        return operations.run(self, words)

    def set_cluster_mixed_mode(self) -> tuple[str, ...]:
        """``utils ctl set-cluster mixed-mode``: ClusterSecurityMode 1 and a tokenless CTL (docs/lab.md)."""
        with self._writing() as state:
            self._need_tokenless(state, "utils ctl set-cluster mixed-mode")
            if state.mixed_mode:
                raise OperationRefused(texts.ALREADY_MIXED)
            new = attrs.evolve(state, security_mode=1, ctl=CtlInfo("tokenless"))
            ctl = build.build_tokenless_ctl(new, self._identities, timestamp=self._timestamp())
            self._commit(new, _Change(ctl=ctl.data))
            return texts.MIXED_MODE

    def set_cluster_non_secure_mode(self) -> tuple[str, ...]:
        """``utils ctl set-cluster non-secure-mode``: ClusterSecurityMode 0; the CTL left behind
        lists the nodes without certificates (docs/trust-lists.md) until ``ctl delete``."""
        with self._writing() as state:
            self._need_tokenless(state, "utils ctl set-cluster non-secure-mode")
            if not state.mixed_mode:
                raise OperationRefused(texts.ALREADY_NON_SECURE)
            new = attrs.evolve(state, security_mode=0, ctl=CtlInfo("non-secure"))
            ctl = build.build_non_secure_ctl(new, self._identities, timestamp=self._timestamp())
            self._commit(new, _Change(ctl=ctl.data))
            return texts.NON_SECURE_MODE

    def ctl_update(self) -> tuple[str, ...]:
        """``utils ctl update CTLFile``: a tokenless CTL with the current certificates (eTokens dropped)."""
        with self._writing() as state:
            self._need_tokenless(state, "utils ctl update CTLFile")
            if not state.mixed_mode:
                raise OperationRefused(texts.NOT_MIXED)
            new = attrs.evolve(state, ctl=CtlInfo("tokenless"))
            ctl = build.build_tokenless_ctl(new, self._identities, timestamp=self._timestamp())
            self._commit(new, _Change(ctl=ctl.data))
            return texts.CTL_UPDATED

    def ctl_reset_localkey(self) -> tuple[str, ...]:
        """``utils ctl reset localkey``: every node serves a CTL signed by the publisher's CallManager key
        instead of ITLRecovery or an eToken (Cisco "Security Guide for Cisco Unified Communications
        Manager", ITLRecovery certificate regeneration); the mode stays Mixed Mode."""
        with self._writing() as state:
            self._need_tokenless(state, "utils ctl reset localkey")
            if not state.mixed_mode:
                raise OperationRefused(texts.NOT_MIXED)
            new = attrs.evolve(state, ctl=CtlInfo("reset"))
            ctl = build.build_reset_ctl(new, self._identities, timestamp=self._timestamp())
            self._commit(new, _Change(ctl=ctl.data))
            return texts.ctl_reset([node.name for node in state.nodes])

    def ctl_delete(self, node: str | int | None = None) -> tuple[str, ...]:
        """``file delete tftp CTLFile.tlv`` on every node (or on ``node`` only); the mode stays."""
        with self._writing() as state:
            targets = state.nodes if node is None else (state.node(node),)
            found = [target.name for target in targets if (self.path / "tftp" / target.name / CTL_FILE).exists()]
            remaining = [n for n in state.nodes if n.name not in found
                         and (self.path / "tftp" / n.name / CTL_FILE).exists()]
            new = state if remaining else attrs.evolve(state, ctl=None)
            self._commit(new, _Change(ctl=b"" if found else None, ctl_nodes=tuple(found)))
            count = 1 if found else 0
            return (texts.files_deleted(count, count),)

    def new_etoken(self, name: str) -> Identity:
        """A new hardware eToken issued by the lab's "Cisco Manufacturing CA" (made on first use)."""
        check_label(name, "eToken name")
        with self._writing() as state:
            if state.etoken(name) is not None:
                raise UsageError(f"the lab already has an eToken named {name!r}")
            now = self.clock()
            ca = self._manufacturing_ca(now)
            common = pki.etoken_common_name(name, self.random_bytes)
            token = pki.etoken_identity(common, ca, now=now, random_bytes=self.random_bytes, new_key=self.new_key)
            self._save_identity(self.path / "etokens" / f"{name}.pem", self.path / "etokens" / f"{name}.key", token)
            new = attrs.evolve(state, etokens=(*state.etokens, EToken(name, common)))
            self._commit(new, _Change())
            return token

    def ctl_client(self, tokens: Sequence[str], sign_with: str | None = None) -> tuple[str, ...]:
        """The CTL client with hardware eTokens (docs/lab.md; Cisco TAC 118893, tokenless to eToken).

        The first token authenticates against the current CTL: when a CTL exists
        and that token is not one of its SAST records, CUCM's client refuses
        (Cisco TAC 118893). Without a CTL (after ``ctl delete``) the client
        warns and goes on; on a non-secure cluster it also sets mixed mode. The
        new CTL lists exactly ``tokens``, in order, signed by ``sign_with``
        (default: the last token).
        """
        if not tokens:
            raise UsageError("the CTL client needs at least one eToken (--token NAME)")
        if len(set(tokens)) != len(tokens):
            raise UsageError("each eToken can be inserted once")
        signer_name = sign_with if sign_with is not None else tokens[-1]
        if signer_name not in tokens:
            raise UsageError(f"--sign-with {signer_name!r} is not one of the inserted tokens")
        with self._writing() as state:
            if not state.release.etoken_client:
                raise OperationRefused(f"CUCM {state.release.name} no longer supports hardware eTokens "
                                       "(dropped in 14SU3): use 'utils ctl' (tokenless)")
            inserted = [self._etoken(name) for name in tokens]
            current = self._read_file(self.path / "tftp" / state.publisher.name / CTL_FILE)
            lines: list[str] = []
            if current is not None:
                sast = {record.certificate for _, record in TrustList.from_bytes(current).records_with_role(Role.SAST)}
                if inserted[0].der not in sast:
                    common = ctl_client_name(inserted[0].certificate.subject)
                    raise OperationRefused(f"{texts.TOKEN_NOT_IN_CTL} (eToken {tokens[0]}: {common})")
            elif state.mixed_mode:
                lines.append(texts.NO_CTL_IN_SECURE_MODE)
            if not state.mixed_mode:
                lines.append("Cluster set to Mixed Mode")
            new = attrs.evolve(state, security_mode=1, ctl=CtlInfo("etoken", tuple(tokens), signer_name))
            signer = inserted[tokens.index(signer_name)]
            ctl = build.build_etoken_ctl(new, self._identities, inserted, signer, timestamp=self._timestamp())
            self._commit(new, _Change(ctl=ctl.data))
            lines += [f"CTL file updated with {len(tokens)} Security Token(s), signed by the Security Token "
                      f"{signer_name} ({ctl_client_name(signer.certificate.subject)})", texts.RESTART]
            return tuple(lines)

    def regenerate_certificate(self, service: str, node: str | int | None = None,
                               key_bits: int | None = None) -> tuple[str, ...]:
        """``set cert regen <service>`` on ``node``: a new key and serial, with CUCM's side effects
        (docs/lab.md; Security Guide "Certificate Regeneration", Cisco TAC 214231 and 200860).

        The ITLs follow at once (CallManager, CallManager-ECDSA, TVS, CAPF, ITLRecovery); the CTL
        only at the next ``ctl update`` / CTL client run, so in Mixed Mode it keeps naming the
        previous CallManager, CAPF or ITLRecovery certificate until then. A new CAPF certificate
        joins CAPF-trust and CallManager-trust; the previous one stays there until deleted
        (``lab cert delete``), so LSCs it issued keep working meanwhile. Tomcat certificates are in
        no trust list. Nothing is refused for being done in the wrong order: the lines say what is
        still owed.
        """
        if service not in SERVICES:
            raise UsageError(f"unknown certificate {service!r}: choose {', '.join(SERVICES)}")
        if service in EC_SERVICES and key_bits is not None:
            raise UsageError(f"{service} has an EC P-256 key: --key-size is for the RSA certificates")
        with self._writing() as state:
            target = state.node(node)
            if service == "CAPF" and not target.publisher:
                raise OperationRefused("the CAPF certificate of the cluster is the publisher's")
            if service == "ITLRecovery":
                if not state.release.itl_recovery:
                    raise OperationRefused(f"CUCM {state.release.name} has no ITLRecovery certificate (10.0 and later)")
                if state.release.cluster_itl_recovery and not target.publisher:
                    raise OperationRefused(f"from CUCM 12.0 the ITLRecovery certificate is the publisher's, "
                                           f"not {target.name}'s")
            if service in EC_SERVICES and not state.release.ecdsa:
                raise OperationRefused(f"CUCM {state.release.name} has no {service} certificate (11.0 and later)")
            bits = state.key_bits if key_bits is None else key_bits
            if bits not in (1024, 2048, 4096):
                raise UsageError(f"key size {bits}: choose 1024, 2048 or 4096")
            old = self._identities.get((target.name, service))
            identity = self._new_identity(service, target, state, bits)
            new = attrs.evolve(state, itl_reset=False)
            lines = list(texts.regenerated(service))
            if service == "CAPF":
                system = new.system_trust
                for store in CUCM_CAPF_STORES:
                    system = self._add_trust(system, store, identity.certificate)
                new = attrs.evolve(new, system_trust=system)
                if old is not None:
                    lines.append(texts.capf_trust_added(_common_name(identity.certificate),
                                                        _common_name(old.certificate)))
            self._commit(new, _Change(identities={(target.name, service): identity}))
            ctl = self._read_file(self.path / "tftp" / state.publisher.name / CTL_FILE)
            if (old is not None and ctl is not None
                    and any(r.certificate == old.der for r in TrustList.from_bytes(ctl).records)):
                lines.append("The CTL file still lists the previous certificate: run 'utils ctl update CTLFile' "
                             "(or the CTL client) to replace it")
            if service == "ITLRecovery" and bits == 1024:
                lines.append(texts.ITL_RECOVERY_1024)
            lines += texts.regeneration_steps(service, mixed_mode=state.mixed_mode,
                                              automatic_reset=state.release.resets_phones_on_regeneration)
            return tuple(lines)

    def set_device(self, name: str, *, model: str | None = None, security_profile: str | None = None,
                   encrypted_config: bool | None = None, capf_operation: str | None = None,
                   capf_auth: str | None = None, capf_key: str | None = None) -> tuple[str, ...]:
        """Save a phone's page (``lab device set``): ``phone.lab.devices.updated_record`` says how each
        field changes; the model is checked against the catalogue and stored by its catalogue name."""
        from phone.catalogue import get_model  # the model files: only this operation needs them
        from phone.lab.devices import check_device_name

        check_device_name(name)
        canonical = None if model is None else get_model(model).name
        store = self.devices()
        with self._writing():  # one device page saved at a time, like the other operations
            record = updated_record(store.get(name) if store.path.exists() else None, name, model=canonical,
                                    security_profile=security_profile, encrypted_config=encrypted_config,
                                    capf_operation=capf_operation, capf_auth=capf_auth, capf_key=capf_key)
            store.put(record)
        lines = [texts.device_saved(name)]
        if record.security_profile != "non-secure" and record.capf.pending and record.capf.auth == "auth-string":
            lines.append("Warning: with a secure profile the phone does not register before it has an LSC, so "
                         "nobody is asked for the authentication string: choose null-string or an existing "
                         "certificate (System Configuration Guide 12.5(1)SU2, \"Configure CAPF\")")
        return (*lines, *describe(record))

    def show_device(self, name: str, *, as_json: bool = False) -> tuple[str, ...]:
        """``lab device show``: the device's page (auto-registration defaults for an unknown device)."""
        from phone.lab.devices import check_device_name

        record = self.device(check_device_name(name))
        return (json.dumps(record.as_json()),) if as_json else describe(record)

    def list_devices(self, *, as_json: bool = False) -> tuple[str, ...]:
        """``lab device list``: every configured device, by name."""
        records = self.devices().list() if self.devices().path.exists() else []
        if as_json:
            return (json.dumps([record.as_json() for record in records]),)
        return tuple(f"{r.name}  {r.model}  {r.security_profile}  encrypted-config "
                     f"{'on' if r.encrypted_config else 'off'}  CAPF {r.capf.operation}"
                     f"{'' if r.capf.status is None else ' ' + r.capf.status}" for r in records)

    def export_certificate(self, service: str, out: str | os.PathLike[str],
                           node: str | int | None = None) -> tuple[str, ...]:
        """Write ``service``'s certificate on ``node`` (publisher by default) to ``out`` as PEM
        (what CUCM's OS Administration "Download .PEM File" gives)."""
        identity = self.identity(service, node)
        path = Path(out)
        try:
            _write_atomically(path, identity.certificate_pem())
        except OSError as error:
            raise UsageError(f"cannot write {path}: {error.strerror or error}") from None
        line = (f"{service} certificate of {self.node(node).name} (CN={_common_name(identity.certificate)}, "
                f"serial {serial_hex(identity.serial)}) written to {path}")
        return (line,)

    def delete_trusted(self, store: str, common_name: str) -> tuple[str, ...]:
        """Delete every certificate whose subject CN is ``common_name`` from ``store`` (OS Administration,
        Certificate Management, Delete). CUCM lets you delete the CAPF certificate or a manufacturing
        CA it put there itself; phones that depended on it then fail (docs/lab.md)."""
        if store not in TRUST_STORES:
            raise UsageError(f"unknown trust store {store!r}: choose {', '.join(TRUST_STORES)}")
        with self._writing() as state:
            doomed = {entry.sha256 for entry in (*state.system_trust, *state.uploads)
                      if entry.store == store and _common_name(self._trust_certificate(entry)) == common_name}
            if not doomed:
                held = sorted({_common_name(self._trust_certificate(entry))
                               for entry in (*state.system_trust, *state.uploads) if entry.store == store})
                raise UsageError(f"{store} holds no certificate with CN {common_name!r} (it holds: "
                                 f"{', '.join(held) or 'nothing'})")

            def kept(entries: tuple[Upload, ...]) -> tuple[Upload, ...]:
                return tuple(entry for entry in entries if not (entry.store == store and entry.sha256 in doomed))

            lines = [texts.trust_deleted(store, common_name, len(doomed))]
            capf = self._identities[state.publisher.name, "CAPF"]
            if hashlib.sha256(capf.der).hexdigest() in doomed:
                lost = ("authenticate to CAPF with an LSC it issued" if store == "CAPF-trust"
                        else "register securely with an LSC it issued")
                lines.append(f"Warning: that is the current CAPF certificate: phones can no longer {lost}")
            new = attrs.evolve(state, system_trust=kept(state.system_trust), uploads=kept(state.uploads))
            self._commit(new, _Change())
            for entry in (*state.system_trust, *state.uploads):
                if entry.store == store and entry.sha256 in doomed:
                    (self.path / "trust" / store / entry.file).unlink(missing_ok=True)
            return tuple(lines)

    def upload_certificate(self, store: str, certificate: bytes | x509.Certificate) -> tuple[str, ...]:
        """Upload a certificate (PEM/DER bytes) to Phone-SAST-trust, CallManager-trust or CAPF-trust
        (docs/tvs.md, docs/lab.md); TVS answers for the first two only."""
        if store not in TRUST_STORES:
            raise UsageError(f"unknown trust store {store!r}: choose {', '.join(TRUST_STORES)}")
        if isinstance(certificate, x509.Certificate):
            parsed = certificate
        else:
            parsed = load_certificate(bytes(certificate), source="uploaded certificate")
        der = parsed.public_bytes(Encoding.DER)
        digest = hashlib.sha256(der).hexdigest()
        with self._writing() as state:
            file = f"{digest[:16]}.pem"
            _write_atomically(self.path / "trust" / store / file, parsed.public_bytes(Encoding.PEM))
            uploads = tuple(u for u in state.uploads if not (u.store == store and u.sha256 == digest))
            new = attrs.evolve(state, uploads=(*uploads, Upload(store, file, digest)))
            self._commit(new, _Change())
            return (texts.UPLOADED,)

    def itl_reset_localkey(self) -> tuple[str, ...]:
        """``utils itl reset localkey``: every node serves the publisher's ITL signed by the reset
        signer (``Release.reset_itl_signer``) until the TFTP service rebuilds it (``restart_tftp``)."""
        with self._writing() as state:
            if not state.release.itl_reset:
                raise OperationRefused(f"utils itl reset exists from CUCM 10.0, not in {state.release.name}")
            self._commit(attrs.evolve(state, itl_reset=True), _Change())
            return texts.itl_reset([node.name for node in state.nodes])

    def restart_tftp(self) -> tuple[str, ...]:
        """Restart TFTP on every node: the normal ITL replaces a reset ITL."""
        with self._writing() as state:
            self._commit(attrs.evolve(state, itl_reset=False), _Change())
            return ("Cisco Tftp restarted on " + ", ".join(node.name for node in state.nodes),)

    def set_rollback(self, on: bool) -> tuple[str, ...]:
        """Enterprise parameter "Prepare Cluster for Rollback to pre-8.0" (docs/phone.md, docs/lab.md)."""
        with self._writing() as state:
            new = attrs.evolve(state, params=attrs.evolve(state.params, rollback=bool(on)), itl_reset=False)
            self._commit(new, _Change())
            return (f"Prepare Cluster for Rollback to pre-8.0 = {'True' if on else 'False'}",
                    "Restart the TFTP service on all nodes: the ITL was rebuilt"
                    + (" without its TVS and TFTP entries" if on else ""))

    def set_parameter(self, name: str, value: str) -> tuple[str, ...]:
        """``tftp-file-signature-algorithm sha1|sha512`` (every file signed from now on; the CTL at its next
        update) or ``tls-min-version 1.0|1.1|1.2`` (what the lab's TVS accepts)."""
        with self._writing() as state:
            if name == "tftp-file-signature-algorithm":
                digest = value.lower().replace("-", "")
                if digest not in DIGESTS:
                    raise UsageError(f"TFTP File Signature Algorithm is sha1 or sha512, not {value!r}")
                if digest == "sha512" and not state.release.sha512:
                    raise OperationRefused(f"CUCM {state.release.name} signs TFTP files with SHA-1 only "
                                           "(SHA-512 from 11.5)")
                params = attrs.evolve(state.params, tftp_file_signature_algorithm=digest)
                new = attrs.evolve(state, params=params, itl_reset=False)
                self._commit(new, _Change())
                lines = [f"TFTP File Signature Algorithm = {'SHA-512' if digest == 'sha512' else 'SHA-1'}"]
                if state.ctl is not None:
                    lines.append("The CTL file keeps its signature until 'utils ctl update CTLFile'")
                return tuple(lines)
            if name == "tls-min-version":
                if value not in TLS_VERSIONS:
                    raise UsageError(f"TLS minimum version is one of {', '.join(TLS_VERSIONS)}, not {value!r}")
                if not state.release.tls_min_version:
                    raise OperationRefused(f"'set tls min-version' does not exist in CUCM {state.release.name} "
                                           "(11.5(1)SU3 and later)")
                new = attrs.evolve(state, params=attrs.evolve(state.params, tls_min_version=value))
                self._commit(new, _Change())
                return (f"Successfully set the minimum TLS version to {value}",)
            raise UsageError(f"unknown parameter {name!r}: choose {', '.join(PARAMETERS)}")

    def export(self, out: str | os.PathLike[str], *, node: str | int | None = None, macs: Sequence[str] = (),
               tvs_addresses: Sequence[tuple[str, int]] | None = None) -> tuple[str, ...]:
        """Write what any TFTP server needs to serve real phones as ``node`` would; returns the file names.

        CTLFile.tlv (removed from ``out`` when the lab has none), ITLFile.tlv,
        XMLDefault.cnf.xml and its .sgn, and for every MAC in ``macs`` and every
        device configured in the lab the per-device CTLSEP/ITLSEP/SEP….cnf.xml[.sgn] files, and
        SEP….cnf.xml.enc.sgn for a device with an encrypted configuration (removed from ``out`` otherwise).
        """
        folder = Path(out)
        store = self.devices()
        devices = [record.name for record in store.list()] if store.path.exists() else []
        for mac in macs:
            cleaned = mac.replace(":", "").replace("-", "").replace(".", "").upper()
            if not re.fullmatch(r"[0-9A-F]{12}", cleaned):
                raise UsageError(f"{mac!r} is not a MAC address (12 hex digits)")
            if f"SEP{cleaned}" not in devices:
                devices.append(f"SEP{cleaned}")
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"{folder} exists and is not a folder")
        with self._reading():
            target = self.node(node)
            ctl = self.ctl_bytes(target.name)
            files: dict[str, bytes | None] = {CTL_FILE: ctl, ITL_FILE: self.itl_bytes(target.name)}
            for stem in ("XMLDefault", *devices):
                suffixes = (".cnf.xml", ".cnf.xml.sgn") + ((encrypted.ENCRYPTED,) if stem != "XMLDefault" else ())
                for suffix in suffixes:
                    files[stem + suffix] = self.device_file(stem + suffix, target.name, tvs_addresses)
            for device in devices:
                files[f"CTL{device}.tlv"] = ctl
                files[f"ITL{device}.tlv"] = files[ITL_FILE]
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for name, data in files.items():
            if data is None:
                (folder / name).unlink(missing_ok=True)
            else:
                _write_atomically(folder / name, data)
                written.append(name)
        return tuple(written)

    def serving(self, *, host: str = "127.0.0.1", tftp_port: int = 0, tvs_port: int = 0,
                tftp_node: str | int | None = None, advertise: str | None = None, tvs: bool = True,
                trace: Callable[[str], None] | None = None, capf_port: int | None = 0,
                http_port: int | None = None, https_port: int | None = None, tomcat_port: int | None = None,
                **signalling: Any) -> contextlib.AbstractContextManager[Any]:
        """Run the lab's TFTP, TVS, CAPF and CallManager (and HTTP/HTTPS provisioning) servers in the
        background: see ``phone.lab.servers.serving.serving`` (``signalling``: its sip_port,
        sip_tls_port, sccp_port and signalling_trace)."""
        from phone.lab.servers.serving import serving  # serve imports this module

        return serving(self, host=host, tftp_port=tftp_port, tvs_port=tvs_port, tftp_node=tftp_node,
                       advertise=advertise, tvs=tvs, trace=trace, capf_port=capf_port, http_port=http_port,
                       https_port=https_port, tomcat_port=tomcat_port, **signalling)

    # -- internals ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        with self._lock.hold(exclusive=False):
            self._refresh()
            yield

    @contextlib.contextmanager
    def _writing(self) -> Iterator[LabState]:
        with self._lock.hold(exclusive=True):
            self._refresh()
            assert self._state is not None
            yield self._state

    def _stat(self) -> tuple[int, ...] | None:
        try:
            stat = os.stat(self.path / STATE_FILE)
        except FileNotFoundError:
            return None
        return (stat.st_mtime_ns, stat.st_ctime_ns, stat.st_size, stat.st_ino)

    def _refresh(self) -> None:
        """Re-read the description and certificates when ``lab.json`` changed (caller holds the lock)."""
        stamp = self._stat()
        if stamp is None:
            raise LabError(f"{self.path}: not a lab folder (no {STATE_FILE})")
        if stamp == self._stamp:
            return
        try:
            data = json.loads((self.path / STATE_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise LabError(f"{self.path / STATE_FILE}: cannot be read ({error})") from None
        state = LabState.from_json(data, source=str(self.path / STATE_FILE))
        identities, read = {}, set()
        for node in state.nodes:
            required = state.release.node_services(node.publisher)
            for service in (*required, *state.release.later_services(), *ON_DEMAND_SERVICES):
                certificate, key = self._identity_paths(node.name, service)
                if service not in required and not certificate.exists():
                    continue  # an older lab (Lab.open adds it), or tomcat not needed yet
                try:
                    identities[node.name, service] = self._identity_files.load(certificate, key)
                except (OSError, PhonetrustError) as error:
                    raise LabError(f"{self.path}: the {service} certificate of {node.name} cannot be loaded "
                                   f"({error})") from None
                read.add((certificate, key))
        self._identity_files.forget_all_but(read)
        self._signed_configs.clear()
        self._state, self._identities, self._stamp = state, identities, stamp

    def _commit(self, state: LabState, change: _Change) -> None:
        """Write an operation's result: identities, CTL, ITLs, TVS store, then the description."""
        now = self.clock()
        state = attrs.evolve(state, changed=now)
        identities = {**self._identities, **change.identities}
        for (host, service), identity in change.identities.items():
            self._save_identity(*self._identity_paths(host, service), identity)
        targets = change.ctl_nodes if change.ctl_nodes is not None else tuple(n.name for n in state.nodes)
        if change.ctl is not None:
            for host in targets:
                path = self.path / "tftp" / host / CTL_FILE
                if change.ctl:
                    _write_atomically(path, change.ctl)
                else:
                    path.unlink(missing_ok=True)
        timestamp = int(now.timestamp())
        for node in state.nodes:
            if state.itl_reset:
                itl = build.build_reset_itl(state, identities, timestamp=timestamp)
            else:
                itl = build.build_itl(state, identities, node, timestamp=timestamp)
            path = self.path / "tftp" / node.name / ITL_FILE
            old = self._read_file(path)
            if old is None or not _same_content(old, itl):
                _write_atomically(path, itl.data)
        self._sync_tvs_store(state, identities)
        _write_atomically(self.path / STATE_FILE, (json.dumps(state.as_json(), indent=2) + "\n").encode())
        self._signed_configs.clear()
        self._state, self._identities, self._stamp = state, identities, self._stat()

    def _sync_tvs_store(self, state: LabState, identities: dict[tuple[str, str], Identity]) -> None:
        uploads = []
        for upload in state.uploads:
            data = (self.path / "trust" / upload.store / upload.file).read_bytes()
            uploads.append((upload.store, load_certificate(data, source=upload.file).public_bytes(Encoding.DER)))
        wanted = build.tvs_entries(state, identities, uploads)
        with TvsStore(self.tvs_db) as store:
            for entry in store.list():
                if entry.certificate not in wanted:
                    store.delete(id=entry.id)
            present = {entry.certificate: entry.roles for entry in store.list()}
            for der, roles in wanted.items():
                if present.get(der) != roles:
                    store.add(der, roles)

    def _timestamp(self) -> int:
        return int(self.clock().timestamp())

    def _identity_paths(self, host: str, service: str) -> tuple[Path, Path]:
        folder = self.path / "certs" / host
        return folder / f"{service}.pem", folder / f"{service}.key"

    def _owner(self, service: str, node: Node) -> Node:
        assert self._state is not None
        state = self._state
        if service not in SERVICES:
            raise UsageError(f"unknown certificate {service!r}: choose {', '.join(SERVICES)}")
        if service == "CAPF":
            return state.publisher
        if service == "ITLRecovery":
            if not state.release.itl_recovery:
                raise UsageError(f"CUCM {state.release.name} has no ITLRecovery certificate")
            return build.recovery_node(state, node)
        if service in EC_SERVICES and not state.release.ecdsa:
            raise UsageError(f"CUCM {state.release.name} has no {service} certificate (11.0 and later)")
        return node

    def _save_identity(self, certificate: Path, key: Path, identity: Identity) -> None:
        _write_atomically(key, identity.private_key_pem(), private=True)
        _write_atomically(certificate, identity.certificate_pem())

    def _new_identity(self, service: str, node: Node, state: LabState, bits: int) -> Identity:
        return pki.node_identity(service, node.name, state.names, bits=bits, now=self.clock(),
                                 random_bytes=self.random_bytes, new_key=self.new_key,
                                 capf_ca=state.release.capf_ca)

    # -- trust stores ---------------------------------------------------------------------------

    def _seed_trust(self, state: LabState, identities: dict[tuple[str, str], Identity]) -> LabState:
        """What CUCM puts in its trust stores itself: the CAPF certificate and the Cisco Manufacturing CA
        that issues phones' MICs, in CAPF-trust and CallManager-trust (Cisco TAC 200860). The emulated
        manufacturing CA is this installation's (``phone.device.identity.default_mic_ca``), the one
        emulated phones get their MIC from."""
        from phone.device.identity import CA_CERTIFICATE, default_mic_ca, default_mic_ca_folder

        folder = default_mic_ca_folder()
        if not (folder / CA_CERTIFICATE).is_file():
            default_mic_ca(folder)  # the installation's emulated CA, made on first use
        mic_ca = load_certificate((folder / CA_CERTIFICATE).read_bytes(), source=str(folder / CA_CERTIFICATE))
        system = state.system_trust
        for certificate in (identities[state.publisher.name, "CAPF"].certificate, mic_ca):
            for store in CUCM_CAPF_STORES:
                system = self._add_trust(system, store, certificate)
        return attrs.evolve(state, system_trust=system, trust_seeded=True)

    def _add_trust(self, entries: tuple[Upload, ...], store: str, certificate: x509.Certificate) -> tuple[Upload, ...]:
        """``entries`` with ``certificate`` in ``store`` (written under ``trust/``), once."""
        der = certificate.public_bytes(Encoding.DER)
        digest = hashlib.sha256(der).hexdigest()
        if any(entry.store == store and entry.sha256 == digest for entry in entries):
            return entries
        file = f"{digest[:16]}.pem"
        _write_atomically(self.path / "trust" / store / file, certificate.public_bytes(Encoding.PEM))
        return (*entries, Upload(store, file, digest))

    def _trust_certificate(self, entry: Upload) -> x509.Certificate:
        path = self.path / "trust" / entry.store / entry.file
        try:
            return load_certificate(path.read_bytes(), source=str(path))
        except OSError as error:
            raise LabError(f"{path}: cannot be read ({error.strerror or error}): the lab folder is damaged") from None

    def _manufacturing_ca(self, now: datetime.datetime) -> Identity:
        certificate, key = self.path / "ca" / "manufacturing-ca.pem", self.path / "ca" / "manufacturing-ca.key"
        if certificate.exists():
            return _load_identity(certificate, key)
        ca = pki.manufacturing_ca(now=now, random_bytes=self.random_bytes, new_key=self.new_key)
        self._save_identity(certificate, key, ca)
        return ca

    def _etoken(self, name: str) -> Identity:
        assert self._state is not None
        if self._state.etoken(name) is None:
            raise UsageError(f"no eToken {name!r} in this lab (make one with 'phonetrust lab etoken new {name} "
                             "--out FILE')")
        return _load_identity(self.path / "etokens" / f"{name}.pem", self.path / "etokens" / f"{name}.key")

    @staticmethod
    def _need_tokenless(state: LabState, command: str) -> None:
        if not state.release.tokenless:
            raise OperationRefused(f"'{command}' does not exist in CUCM {state.release.name} (tokenless CTL from "
                                   "10.0): use the CTL client with eTokens")

    @staticmethod
    def _read_file(path: Path) -> bytes | None:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            return None
