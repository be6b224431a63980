"""What each CUCM release does on the trust side, as one table (docs/lab.md, "Releases").

A lab is built for one release; every difference between releases that the lab
reproduces is a field here, so that a reader can check the table against the
sources instead of hunting for version comparisons in the code.

| field | from | source |
|---|---|---|
| ``itl_recovery`` (an ITLRecovery certificate, in the ITL as SAST) | 10.0 | docs/trust-lists.md |
| ``tokenless`` (``utils ctl set-cluster`` / ``utils ctl update``) | 10.0 | docs/trust-lists.md, Cisco TAC 118893 |
| ``itl_reset`` (``utils itl reset``) | 10.0 | Cisco TAC 117598 |
| ``itl_signer`` ITLRecovery instead of CallManager | 12.0 | docs/trust-lists.md |
| ``ctl_itl_recovery`` (ITLRecovery also a SAST of the tokenless CTL) | 12.0 | docs/trust-lists.md |
| ``cluster_itl_recovery`` (one ITLRecovery, the publisher's, signs every node's ITL) | 12.0 | our reading: the CTL carries one ITLRecovery, so every node's ITL must be signed by that one |
| ``reset_itl_signer`` | CallManager from 12.0, ITLRecovery before | docs/lab.md, CLI reference 12.5; 117598 for 10.x |
| ``tls_min_version`` (``set tls min-version``) | 11.5 | docs/tvs.md (11.5(1)SU3) |
| ``sha512`` ("TFTP File Signature Algorithm" SHA-512) | 11.5 | docs/models.md (SHA-2 with CUCM 11.5) |
| ``etoken_client`` (the CTL client with hardware eTokens) | up to 14 | CUCM 14SU3 dropped tokens |
| ``ecdsa`` (CallManager-ECDSA and tomcat-ECDSA certificates; CallManager-ECDSA in the ITL) | 11.0 | Security Guide 12.5(1)SU6, "ECDSA Support" |
| ``capf_ca`` (the CAPF certificate is a CA: CA:TRUE, path length 0) | 14 | Security Guide 14SU2, "Certificate Authority Proxy Function" |
| ``resets_phones_on_regeneration`` ("Phone Interaction on Certificate Update") | 14 | Security Guide 15, "Certificate Regeneration" |
"""

from __future__ import annotations

import re

import attrs

from phone.errors import UsageError

#: Releases a lab can be built for (major.minor as CUCM numbers them; "14" and "15" have no minor).
RELEASES = ("8.6", "9.1", "10.0", "10.5", "11.0", "11.5", "12.0", "12.5", "14", "15")
DEFAULT_RELEASE = "10.5"


@attrs.frozen
class Release:
    """One CUCM release and the trust-side behaviour that depends on it."""

    name: str
    version: tuple[int, int]

    @property
    def itl_recovery(self) -> bool:
        return self.version >= (10, 0)

    @property
    def tokenless(self) -> bool:
        return self.version >= (10, 0)

    @property
    def itl_reset(self) -> bool:
        return self.version >= (10, 0)

    @property
    def itl_signer(self) -> str:
        """The certificate that signs a node's ITL: "CallManager" or "ITLRecovery" (docs/trust-lists.md)."""
        return "ITLRecovery" if self.version >= (12, 0) else "CallManager"

    @property
    def ctl_itl_recovery(self) -> bool:
        return self.version >= (12, 0)

    @property
    def cluster_itl_recovery(self) -> bool:
        return self.version >= (12, 0)

    @property
    def reset_itl_signer(self) -> str:
        """``utils itl reset localkey`` signs with the key that does not sign the normal ITL."""
        return "CallManager" if self.version >= (12, 0) else "ITLRecovery"

    @property
    def tls_min_version(self) -> bool:
        return self.version >= (11, 5)

    @property
    def sha512(self) -> bool:
        return self.version >= (11, 5)

    @property
    def etoken_client(self) -> bool:
        return self.version < (15, 0)

    @property
    def ecdsa(self) -> bool:
        return self.version >= (11, 0)

    @property
    def capf_ca(self) -> bool:
        return self.version >= (14, 0)

    @property
    def resets_phones_on_regeneration(self) -> bool:
        return self.version >= (14, 0)

    @property
    def hostname_tag(self) -> str:
        """The release in Cisco TAC 118893's host names: 10.5(1) -> ``1051``, 14 -> ``1401``."""
        major, minor = self.version
        return f"{major}{minor}1"

    def node_services(self, publisher: bool) -> tuple[str, ...]:
        """The certificates a node holds (CAPF only on the publisher; ITLRecovery per release)."""
        services = ["CallManager", "TVS"]
        if publisher:
            services.append("CAPF")
        if self.itl_recovery and (publisher or not self.cluster_itl_recovery):
            services.append("ITLRecovery")
        return tuple(services)

    def later_services(self) -> tuple[str, ...]:
        """Certificates every node also holds that older labs lack (``Lab.open`` adds them):
        CallManager-ECDSA and tomcat-ECDSA from 11.0. (Tomcat, an RSA key, is made on first need.)"""
        return ("CallManager-ECDSA", "tomcat-ECDSA") if self.ecdsa else ()


_NAME = re.compile(r"^(\d{1,2})(?:\.(\d))?$")


def parse_release(text: str) -> Release:
    """A release from ``10.5``, ``12.5``, ``14`` …; ``UsageError`` for anything not in RELEASES."""
    match = _NAME.match(text.strip())
    name = text.strip()
    if match and match.group(2) is None and f"{match.group(1)}" in RELEASES:
        name = match.group(1)
    elif match and match.group(2) == "0" and match.group(1) in RELEASES:
        name = match.group(1)
    if not match or name not in RELEASES:
        raise UsageError(f"unknown CUCM release {text!r}: choose one of {', '.join(RELEASES)}")
    return Release(name, (int(match.group(1)), int(match.group(2) or 0)))
