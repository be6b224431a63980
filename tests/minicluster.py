"""An in-memory CUCM for machine tests: certificates, CTL/ITL/config builders, a TVS double.

Only the machine tests use it: they drive ``phone.device.boot.run_boot`` with files
served from a dict and a TVS that answers as SPEC 3.3 says CUCM's does
(DB cache, then the certificates of the current CTL). The real TFTP and TVS
servers are tested over loopback sockets elsewhere.
"""

from __future__ import annotations

import attrs
from conftest import etoken_identity, node_identity

from phone.wire.certs import load_certificate
from phone.wire.config import TvsMember, render_config
from phone.errors import CertificateError
from phone.firmware.machine import AskTvs, Fetch, FileFetched, FileMissing, TvsAnswered, TvsFailed, TvsFailure
from phone.wire.names import serial_to_bytes
from phone.wire.signing import NameStyle, build_signed_file, build_trust_list, make_record
from phone.wire.tlv import Role, TrustList

MAC = "B000B4BA0AEE"
PUB_IP = "10.48.47.155"


@attrs.define
class MiniCluster:
    """One publisher (CallManager, TVS, CAPF) unless told otherwise; 10.5-style files."""

    callmanager: object = attrs.field(factory=lambda: node_identity("cucm-1051-a-pub", serial=0x70CAF64E090751B9DF22F49F754FC5BB))
    tvs: object = attrs.field(factory=lambda: node_identity("cucm-1051-a-pub-tvs", serial=0x5EED))
    capf: object = attrs.field(factory=lambda: node_identity("CAPF-e41e7d87", serial=0xCAF))
    digest: str = "sha1"
    tvs_port: int = 2445
    etokens: list = attrs.field(factory=list)
    ctl_signer: object | None = None  # None: tokenless (publisher CallManager)
    mixed_mode: bool = False
    rollback: bool = False
    phone_sast_trust: list = attrs.field(factory=list)  # certificates uploaded as Phone-SAST-trust

    def regenerate_callmanager(self, bits: int = 2048) -> None:
        self.callmanager = node_identity("cucm-1051-a-pub", bits=bits, serial=0x6B1D357B6841740B078FEE4A1813D5D6)

    def regenerate_tvs(self) -> None:
        self.tvs = node_identity("cucm-1051-a-pub-tvs", bits=2048, serial=0x7E57)

    def itl(self) -> bytes:
        cm = self.callmanager.certificate
        records = [make_record(cm, Role.SAST, dns_name="cucm-1051-a-pub", ip_address=PUB_IP)]
        if not self.rollback:
            records += [
                make_record(cm, Role.CCM_TFTP, dns_name="cucm-1051-a-pub", ip_address=PUB_IP),
                make_record(self.tvs.certificate, Role.TVS, dns_name="cucm-1051-a-pub", ip_address=PUB_IP),
            ]
        records.append(make_record(self.capf.certificate, Role.CAPF, dns_name="cucm-1051-a-pub", ip_address=PUB_IP))
        return build_trust_list(records, self.callmanager, filename="ITLFile.tlv", timestamp=1, digest=self.digest).data

    def ctl(self) -> bytes | None:
        if not self.mixed_mode:
            return None
        cm = self.callmanager.certificate
        records = []
        if self.etokens:
            records += [make_record(t.certificate, Role.SAST, name_style=NameStyle.CTL_CLIENT, include_signature=False)
                        for t in self.etokens]
        else:
            records.append(make_record(cm, Role.SAST, dns_name="cucm-1051-a-pub", ip_address=PUB_IP))
        records += [
            make_record(cm, Role.CCM_TFTP, dns_name="cucm-1051-a-pub", ip_address=PUB_IP),
            make_record(self.capf.certificate, Role.CAPF, dns_name="cucm-1051-a-pub", ip_address=PUB_IP),
        ]
        signer = self.ctl_signer or self.callmanager
        style = NameStyle.CTL_CLIENT if self.etokens and signer in self.etokens else NameStyle.CUCM
        return build_trust_list(records, signer, filename="CTLFile.tlv", timestamp=2, digest=self.digest,
                                signer_name_style=style).data

    def config(self) -> bytes:
        return render_config([TvsMember("127.0.0.1", self.tvs_port, 0)], device_name=f"SEP{MAC}")

    def files(self) -> dict[str, bytes]:
        files = {f"ITLSEP{MAC}.tlv": self.itl(), f"SEP{MAC}.cnf.xml": self.config()}
        files[f"SEP{MAC}.cnf.xml.sgn"] = build_signed_file(self.config(), self.callmanager,
                                                           filename=f"SEP{MAC}.cnf.xml", timestamp=3).data
        ctl = self.ctl()
        if ctl is not None:
            files[f"CTLSEP{MAC}.tlv"] = ctl
        return files

    def tvs_lookup(self, serial: bytes) -> tuple[bytes, tuple[int, ...]] | None:
        """SPEC 3.3: the DB cache (own CallManager {0,2}, Phone-SAST-trust {0}), then the current CTL ({0})."""
        if serial == serial_to_bytes(self.callmanager.certificate.serial_number):
            return self.callmanager.der, (0, 2)
        for uploaded in self.phone_sast_trust:
            if serial == uploaded.serial:
                return uploaded.der, (0,)
        ctl = self.ctl()
        if ctl is not None:
            for record in TrustList.from_bytes(ctl).records_with_role(Role.SAST):
                if record[1].serial == serial and record[1].certificate:
                    return record[1].certificate, (0,)
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
                return TvsAnswered(server, status=1, bytes_sent=153, bytes_received=20)  # in neither cache
            found = self.cluster.tvs_lookup(serial_to_bytes(cert.serial_number))
            if found is not None and found[0] != ask.certificate:
                found = None  # type 1 asks about a whole certificate (SPEC 3.2): a namesake is not it
        if self.mode == "not-found" or found is None:
            return TvsAnswered(server, status=1, bytes_sent=153, bytes_received=20)
        certificate, roles = found
        if self.mode == "no-sast":
            roles = tuple(r for r in roles if r != 0) or (3,)
        if self.mode == "wrong-cert":
            certificate = self.cluster.capf.der
        return TvsAnswered(server, status=0, roles=roles, ttl=86400,
                           certificate=certificate if ask.message_type == 3 else None,
                           bytes_sent=153, bytes_received=1480)


def serve_files(files: dict[str, bytes]):
    def fetch(request: Fetch):
        data = files.get(request.name)
        if data is None:
            return FileMissing(request.name)
        return FileFetched(request.name, data, server=PUB_IP)

    return fetch


def fresh_etoken(index: int):
    return etoken_identity(f"SAST-ADN00{index:06d} ", 0x83E90800000055450000 + index)
