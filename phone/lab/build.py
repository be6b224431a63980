"""The files a CUCM cluster produces, built from the lab's description (docs/trust-lists.md, docs/tvs.md, docs/lab.md).

Pure functions: the description, the certificates and a timestamp in, a
``TrustList`` or bytes out; nothing here reads a file or the clock.

ITL of a TFTP node (docs/trust-lists.md), in this order:
  ITLRecovery as SAST (10.0+; the publisher's from 12.0), the node's CallManager
  as SAST and as CCM+TFTP, the TVS certificate of every node (role 21), the
  publisher's CAPF. Signed by the node's CallManager before 12.0, by
  ITLRecovery from 12.0. The rollback ITL ("Prepare Cluster for Rollback to
  pre-8.0", docs/phone.md, docs/lab.md) leaves out the CCM+TFTP and TVS records. The reset
  ITL (``utils itl reset localkey``) is the publisher's ITL signed by the
  release's reset signer (``Release.reset_itl_signer``).

Tokenless CTL (docs/trust-lists.md, Cisco TAC 118893): the publisher's CallManager as SAST,
ITLRecovery as SAST from 12.0, then the publisher's CallManager as CCM+TFTP,
CAPF, and a CCM+TFTP record per subscriber; signed by the publisher's
CallManager. eToken CTL: the tokens as SAST records in CTL-client style (no
tag 8, empty DNS name), then the same node records; signed by one token.
The reset CTL (``utils ctl reset localkey``) has the tokenless records, signed by the
publisher's CallManager whatever the release. The CTL left after ``set-cluster non-secure-mode``: the tokenless SAST
records, then a CCM+TFTP record without certificate per node (docs/trust-lists.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from phone.wire.certs import Identity
from phone.wire.config import CallManager, TvsMember, render_config
from phone.lab.state import TRUST_STORES, LabState, Node
from phone.wire.signing import NameStyle, build_signed_file, build_trust_list, make_bare_record, make_record
from phone.wire.tlv import Record, Role, TrustList

CTL_FILE = "CTLFile.tlv"
ITL_FILE = "ITLFile.tlv"
#: docs/tvs.md: a configuration lists at most five TVS servers.
MAX_TVS_MEMBERS = 5
DEFAULT_TVS_PORT = 2445

#: (host name, service) -> the certificate with its key.
Certificates = Mapping[tuple[str, str], Identity]


def _record(identity: Identity, role: int, node: Node) -> Record:
    return make_record(identity.certificate, role, dns_name=node.name, ip_address=node.ip)


def recovery_node(state: LabState, node: Node) -> Node:
    """The node whose ITLRecovery certificate serves ``node`` (the publisher's from 12.0)."""
    return state.publisher if state.release.cluster_itl_recovery else node


def itl_records(state: LabState, certs: Certificates, node: Node, *, rollback: bool = False) -> list[Record]:
    records = []
    if state.release.itl_recovery:
        owner = recovery_node(state, node)
        records.append(_record(certs[owner.name, "ITLRecovery"], Role.SAST, owner))
    callmanager = certs[node.name, "CallManager"]
    records.append(_record(callmanager, Role.SAST, node))
    if not rollback:
        records.append(_record(callmanager, Role.CCM_TFTP, node))
        records += [_record(certs[other.name, "TVS"], Role.TVS, other) for other in state.nodes]
    records.append(_record(certs[state.publisher.name, "CAPF"], Role.CAPF, state.publisher))
    return records


def itl_signer(state: LabState, certs: Certificates, node: Node) -> Identity:
    if state.release.itl_signer == "ITLRecovery":
        return certs[recovery_node(state, node).name, "ITLRecovery"]
    return certs[node.name, "CallManager"]


def build_itl(state: LabState, certs: Certificates, node: Node, *, timestamp: int) -> TrustList:
    """The ITL ``node``'s TFTP service serves (the rollback ITL when that parameter is on)."""
    records = itl_records(state, certs, node, rollback=state.params.rollback)
    return build_trust_list(records, itl_signer(state, certs, node), filename=ITL_FILE, timestamp=timestamp,
                            digest=state.params.tftp_file_signature_algorithm)


def build_reset_itl(state: LabState, certs: Certificates, *, timestamp: int) -> TrustList:
    """``utils itl reset localkey``: the publisher's ITL, signed by the release's reset signer."""
    publisher = state.publisher
    records = itl_records(state, certs, publisher, rollback=state.params.rollback)
    if state.release.reset_itl_signer == "ITLRecovery":
        signer = certs[recovery_node(state, publisher).name, "ITLRecovery"]
    else:
        signer = certs[publisher.name, "CallManager"]
    return build_trust_list(records, signer, filename=ITL_FILE, timestamp=timestamp,
                            digest=state.params.tftp_file_signature_algorithm)


def _tokenless_sast(state: LabState, certs: Certificates) -> list[Record]:
    publisher = state.publisher
    records = [_record(certs[publisher.name, "CallManager"], Role.SAST, publisher)]
    if state.release.ctl_itl_recovery:
        records.append(_record(certs[publisher.name, "ITLRecovery"], Role.SAST, publisher))
    return records


def _ctl_node_records(state: LabState, certs: Certificates) -> list[Record]:
    publisher = state.publisher
    records = [
        _record(certs[publisher.name, "CallManager"], Role.CCM_TFTP, publisher),
        _record(certs[publisher.name, "CAPF"], Role.CAPF, publisher),
    ]
    records += [_record(certs[node.name, "CallManager"], Role.CCM_TFTP, node) for node in state.nodes[1:]]
    return records


def build_tokenless_ctl(state: LabState, certs: Certificates, *, timestamp: int) -> TrustList:
    """``utils ctl set-cluster mixed-mode`` / ``utils ctl update CTLFile`` (docs/trust-lists.md, docs/lab.md)."""
    records = _tokenless_sast(state, certs) + _ctl_node_records(state, certs)
    return build_trust_list(records, certs[state.publisher.name, "CallManager"], filename=CTL_FILE,
                            timestamp=timestamp, digest=state.params.tftp_file_signature_algorithm)


def build_reset_ctl(state: LabState, certs: Certificates, *, timestamp: int) -> TrustList:
    """``utils ctl reset localkey``: the tokenless records signed by the publisher's CallManager key,
    whatever signed the CTL before (ITLRecovery, eToken): the way out when that signer is lost.
    A phone takes it only if it trusts that CallManager certificate (through its lists or TVS)."""
    records = _tokenless_sast(state, certs) + _ctl_node_records(state, certs)
    return build_trust_list(records, certs[state.publisher.name, "CallManager"], filename=CTL_FILE,
                            timestamp=timestamp, digest=state.params.tftp_file_signature_algorithm)


def build_etoken_ctl(state: LabState, certs: Certificates, tokens: Sequence[Identity], signer: Identity, *,
                     timestamp: int) -> TrustList:
    """The CTL client's file: every token as a SAST record without tag 8, signed by ``signer``."""
    records = [make_record(token.certificate, Role.SAST, name_style=NameStyle.CTL_CLIENT, include_signature=False)
               for token in tokens]
    records += _ctl_node_records(state, certs)
    return build_trust_list(records, signer, filename=CTL_FILE, timestamp=timestamp,
                            digest=state.params.tftp_file_signature_algorithm,
                            signer_name_style=NameStyle.CTL_CLIENT)


def build_non_secure_ctl(state: LabState, certs: Certificates, *, timestamp: int) -> TrustList:
    """The CTL CUCM leaves after ``utils ctl set-cluster non-secure-mode`` (docs/trust-lists.md)."""
    records = _tokenless_sast(state, certs)
    records += [make_bare_record(Role.CCM_TFTP, dns_name=node.name, ip_address=node.ip) for node in state.nodes]
    return build_trust_list(records, certs[state.publisher.name, "CallManager"], filename=CTL_FILE,
                            timestamp=timestamp, digest=state.params.tftp_file_signature_algorithm)


def tvs_members(state: LabState, addresses: Sequence[tuple[str, int]] | None = None) -> tuple[TvsMember, ...]:
    """The configuration's TVS list: publisher then subscribers, at most five (docs/tvs.md).

    ``addresses`` gives each node's (host, port) as a lab server publishes them;
    by default the node addresses on port 2445, as a real cluster's.
    """
    if addresses is None:
        addresses = [(node.ip, DEFAULT_TVS_PORT) for node in state.nodes]
    return tuple(TvsMember(address=host, port=port, priority=priority)
                 for priority, (host, port) in enumerate(addresses[:MAX_TVS_MEMBERS]))


def device_config(state: LabState, device: str, members: Sequence[TvsMember], *,
                  call_managers: Sequence[CallManager] | None = None, device_security_mode: int = 1) -> bytes:
    """``<device>.cnf.xml`` with the cluster's TVS members, CallManager group and CAPF (docs/tvs.md).

    ``call_managers`` are the CallManagers as a lab server serves them (docs/registration.md;
    default: every node by name on the standard ports); ``device_security_mode`` comes from
    the device's security profile.
    """
    managers = tuple(call_managers) if call_managers is not None else tuple(node.name for node in state.nodes)
    return render_config(members, device_name=device, capf_servers=(state.publisher.name,),
                         call_managers=managers, device_security_mode=device_security_mode)


def signed_config(state: LabState, certs: Certificates, node: Node, filename: str, payload: bytes) -> bytes:
    """``<file>.sgn`` signed by the TFTP node's CallManager (docs/trust-lists.md), stamped with the last change."""
    return build_signed_file(payload, certs[node.name, "CallManager"], filename=filename,
                             timestamp=int(state.changed.timestamp()),
                             digest=state.params.tftp_file_signature_algorithm).data


def tvs_entries(state: LabState, certs: Certificates,
                uploads: Sequence[tuple[str, bytes]]) -> dict[bytes, tuple[int, ...]]:
    """The TVS DB cache as docs/tvs.md observes it: DER certificate -> roles.

    Every node's CallManager certificate {0, 2}; uploads to Phone-SAST-trust
    {0}, to CallManager-trust {3}, to both {0, 3}.
    """
    entries: dict[bytes, set[int]] = {}
    for node in state.nodes:
        entries.setdefault(certs[node.name, "CallManager"].der, set()).update((Role.SAST, Role.CCM_TFTP))
    for store, der in uploads:
        entries.setdefault(der, set()).update(TRUST_STORES[store])
    return {der: tuple(sorted(int(role) for role in roles)) for der, roles in entries.items()}
