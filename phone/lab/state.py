"""The lab's description: frozen records, and their JSON form in ``lab.json``.

A lab folder holds this description, the PEM certificates and keys it names,
the TFTP folder of every node and the TVS store. The description is what a
CUCM database holds: nodes, the cluster security mode, enterprise parameters,
what the current CTL is, the eTokens known to the CTL client, the uploaded
trust certificates. Files are derived from it (``phone.lab.build``).

Change is ``attrs.evolve``; ``LabState.from_json`` refuses a description that
is not one (one line naming the field), never half-loads it.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
from typing import Any

import attrs

from phone.errors import LocalError, PhonetrustError, RemoteError, UsageError
from phone.lab.releases import Release, parse_release

FORMAT = 1
#: Services whose certificates a node may hold, by their CUCM names (``set cert regen <name>``).
SERVICES = ("CallManager", "CallManager-ECDSA", "TVS", "CAPF", "ITLRecovery", "tomcat", "tomcat-ECDSA")
#: Certificates with an EC P-256 key (Security Guide 12.5(1)SU6, "ECDSA Support"); the others are RSA.
EC_SERVICES = ("CallManager-ECDSA", "tomcat-ECDSA")
#: Trust stores a certificate can be uploaded to, with the roles TVS answers for uploads to them
#: (docs/tvs.md). CAPF-trust only serves CAPF (LSC authentication), never TVS.
TRUST_STORES = {"Phone-SAST-trust": (0,), "CallManager-trust": (3,), "CAPF-trust": ()}
DIGESTS = ("sha1", "sha512")
TLS_VERSIONS = ("1.0", "1.1", "1.2")
#: RFC 5737 TEST-NET-1: addresses that never collide with a real network.
DEFAULT_FIRST_IP = "192.0.2.11"
MAX_NODES = 8


class LabError(RemoteError):
    """A folder that is not a usable lab, or a lab description that does not load."""


class OperationRefused(LocalError):
    """An operation CUCM would refuse in the lab's current state (exit 1)."""

    exit_code = 1


@attrs.frozen
class Names:
    """The OU/O/L/ST/C of every node certificate (default: Cisco TAC 118893's)."""

    organizational_unit: str = "TAC"
    organization: str = "Cisco"
    locality: str = "Krakow"
    state: str = "Malopolska"
    country: str = "PL"

    def as_json(self) -> dict[str, str]:
        return {"OU": self.organizational_unit, "O": self.organization, "L": self.locality,
                "ST": self.state, "C": self.country}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Names:
        return cls(data["OU"], data["O"], data["L"], data["ST"], data["C"])


@attrs.frozen
class Node:
    """A CUCM node: host name, address, publisher or subscriber."""

    name: str
    ip: str
    publisher: bool = False


@attrs.frozen
class EToken:
    """A hardware eToken known to the lab: its label, certificate and key files (under ``etokens/``)."""

    name: str
    common_name: str


@attrs.frozen
class Upload:
    """A certificate uploaded to a trust store (``trust/<store>/<file>``)."""

    store: str
    file: str
    sha256: str


@attrs.frozen
class CtlInfo:
    """What the current CTLFile.tlv is: ``tokenless``, ``etoken`` (tokens, signer), ``reset``
    (``utils ctl reset localkey``) or ``non-secure``."""

    kind: str
    tokens: tuple[str, ...] = ()
    signer: str | None = None


@attrs.frozen
class Params:
    """Enterprise parameters and cluster settings the trust side depends on."""

    #: "TFTP File Signature Algorithm" (SHA-1 default, SHA-512 option).
    tftp_file_signature_algorithm: str = "sha1"
    #: ``set tls min-version``: what TVS accepts (docs/tvs.md: 1.0 for Cisco TAC 118893's 10.x).
    tls_min_version: str = "1.0"
    #: "Prepare Cluster for Rollback to pre-8.0".
    rollback: bool = False


@attrs.frozen
class LabState:
    """Everything the lab knows, apart from certificates and files."""

    release: Release
    nodes: tuple[Node, ...]
    key_bits: int = 2048
    names: Names = Names()
    #: ClusterSecurityMode: 0 non-secure, 1 mixed.
    security_mode: int = 0
    ctl: CtlInfo | None = None
    params: Params = Params()
    #: ``utils itl reset localkey`` was run and no TFTP restart rebuilt the ITL since.
    itl_reset: bool = False
    etokens: tuple[EToken, ...] = ()
    uploads: tuple[Upload, ...] = ()
    #: What CUCM itself puts in its trust stores (the CAPF certificates in CAPF-trust and
    #: CallManager-trust, the Cisco Manufacturing CA in both): TVS does not answer for them.
    system_trust: tuple[Upload, ...] = ()
    #: ``system_trust`` was filled (False in a lab made before CUCM's own trust entries existed).
    trust_seeded: bool = False
    #: The time of the last change (signed per-device files carry it as TIMESTAMP).
    changed: datetime.datetime = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)

    @property
    def publisher(self) -> Node:
        return self.nodes[0]

    @property
    def mixed_mode(self) -> bool:
        return self.security_mode == 1

    def node(self, which: str | int | None) -> Node:
        """A node by index (0 = publisher), by host name, or the publisher for None."""
        if which is None:
            return self.publisher
        text = str(which).strip()
        if text.isdigit():
            index = int(text)
            if index < len(self.nodes):
                return self.nodes[index]
        for node in self.nodes:
            if node.name == text:
                return node
        known = ", ".join(f"{index} ({node.name})" for index, node in enumerate(self.nodes))
        raise UsageError(f"no node {str(which)!r} in this lab: nodes are {known}")

    def etoken(self, name: str) -> EToken | None:
        return next((token for token in self.etokens if token.name == name), None)

    # -- JSON ------------------------------------------------------------------------

    def as_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "release": self.release.name,
            "key_bits": self.key_bits,
            "names": self.names.as_json(),
            "nodes": [{"name": n.name, "ip": n.ip, "publisher": n.publisher} for n in self.nodes],
            "cluster_security_mode": self.security_mode,
            "ctl": None if self.ctl is None else {"kind": self.ctl.kind, "tokens": list(self.ctl.tokens),
                                                   "signer": self.ctl.signer},
            "params": {"tftp_file_signature_algorithm": self.params.tftp_file_signature_algorithm,
                       "tls_min_version": self.params.tls_min_version,
                       "rollback": self.params.rollback},
            "itl_reset": self.itl_reset,
            "etokens": [{"name": t.name, "common_name": t.common_name} for t in self.etokens],
            "uploads": [{"store": u.store, "file": u.file, "sha256": u.sha256} for u in self.uploads],
            "system_trust": [{"store": u.store, "file": u.file, "sha256": u.sha256} for u in self.system_trust],
            "trust_seeded": self.trust_seeded,
            "changed": self.changed.isoformat(),
        }

    @classmethod
    def from_json(cls, data: Any, *, source: str = "lab.json") -> LabState:
        try:
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                raise LabError(f"not a lab description of format {FORMAT}")
            ctl = data["ctl"]
            params = data["params"]
            state = cls(
                release=parse_release(str(data["release"])),
                nodes=tuple(Node(str(n["name"]), str(n["ip"]), bool(n["publisher"])) for n in data["nodes"]),
                key_bits=int(data["key_bits"]),
                names=Names.from_json(data["names"]),
                security_mode=int(data["cluster_security_mode"]),
                ctl=None if ctl is None else CtlInfo(str(ctl["kind"]), tuple(ctl["tokens"]), ctl["signer"]),
                params=Params(str(params["tftp_file_signature_algorithm"]), str(params["tls_min_version"]),
                              bool(params["rollback"])),
                itl_reset=bool(data["itl_reset"]),
                etokens=tuple(EToken(str(t["name"]), str(t["common_name"])) for t in data["etokens"]),
                uploads=tuple(Upload(str(u["store"]), str(u["file"]), str(u["sha256"])) for u in data["uploads"]),
                # Absent in labs made before CUCM's own trust entries existed: Lab.open fills them.
                system_trust=tuple(Upload(str(u["store"]), str(u["file"]), str(u["sha256"]))
                                   for u in data.get("system_trust", [])),
                trust_seeded=bool(data.get("trust_seeded", False)),
                changed=datetime.datetime.fromisoformat(data["changed"]),
            )
            state.validate()
        except (KeyError, TypeError, ValueError, AttributeError, PhonetrustError) as error:
            what = f"missing {error}" if isinstance(error, KeyError) else str(error)
            raise LabError(f"{source}: not a usable lab description ({what})") from None
        return state

    def validate(self) -> None:
        """Raise UsageError when the description contradicts itself.

        ``from_json`` turns it into a LabError naming the file (a damaged lab folder is remote);
        ``Lab.create`` lets it through (the user asked for an impossible lab).
        """
        if not 1 <= len(self.nodes) <= MAX_NODES:
            raise UsageError(f"a lab has 1 to {MAX_NODES} nodes")
        if not self.nodes[0].publisher or any(n.publisher for n in self.nodes[1:]):
            raise UsageError("the first node, and only it, is the publisher")
        for node in self.nodes:
            check_hostname(node.name)
            ipaddress.IPv4Address(node.ip)
        if len({n.name for n in self.nodes}) != len(self.nodes):
            raise UsageError("node names must differ")
        if self.key_bits not in (1024, 2048, 4096):
            raise UsageError(f"key size {self.key_bits} (1024, 2048 or 4096)")
        if self.security_mode not in (0, 1):
            raise UsageError("cluster_security_mode is 0 or 1")
        if self.ctl is not None and self.ctl.kind not in ("tokenless", "etoken", "reset", "non-secure"):
            raise UsageError(f"unknown CTL kind {self.ctl.kind!r}")
        if self.params.tftp_file_signature_algorithm not in DIGESTS:
            raise UsageError("tftp_file_signature_algorithm is sha1 or sha512")
        if self.params.tls_min_version not in TLS_VERSIONS:
            raise UsageError("tls_min_version is 1.0, 1.1 or 1.2")
        for token in self.etokens:
            check_label(token.name, "eToken name")
        for upload in (*self.uploads, *self.system_trust):
            if upload.store not in TRUST_STORES:
                raise UsageError(f"unknown trust store {upload.store!r}")
            check_label(upload.file, "uploaded file name")
        if self.changed.tzinfo is None:
            raise UsageError("the change time needs a time zone")


_HOSTNAME = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_hostname(name: str) -> str:
    if not _HOSTNAME.match(name):
        raise UsageError(f"{name!r} is not a host name (letters, digits and '-', at most 63)")
    return name


def check_label(name: str, what: str) -> str:
    """Names that become file names: letters, digits, '_', '.', '-', no path, at most 64."""
    if not _LABEL.match(name) or ".." in name:
        raise UsageError(f"{what} {name!r}: use letters, digits, '_', '.', '-' (at most 64, no '..')")
    return name
