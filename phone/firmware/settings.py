"""Trust settings: every point public Cisco material leaves open that decides how a phone behaves.

Public Cisco material does not settle these points (docs/models.md), so
each one is a named setting with a documented default instead of a silent
guess in the code. A model file can override any of them for a whole family
(``[defaults.settings]``) or for one model (``[models.NAME.settings]``); see
docs/models.md.

TOML has no null: where a setting may be "not enforced" (``None``), a model
file writes ``false``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from phone.errors import LocalError

#: Values of ``signalling_protocol``.
SIGNALLING_PROTOCOLS = ("auto", "SIP", "SCCP")
#: Values of ``first_ctl_with_itl``.
FIRST_CTL_POLICIES = ("trust", "verify")


def describe(value: Any) -> str:
    """A value as an error message shows it: its TOML spelling and kind."""
    kinds = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
             list: "an array", dict: "a table"}
    shown = str(value).lower() if isinstance(value, bool) else repr(value)
    return f"{shown} ({kinds.get(type(value), type(value).__name__)})"


def _boolean(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, bool):
        raise SettingsError(attribute.name, f"expected true or false, got {describe(value)}")


def _first_ctl_policy(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value not in FIRST_CTL_POLICIES or not isinstance(value, str):
        raise SettingsError(attribute.name, f"expected one of {', '.join(map(repr, FIRST_CTL_POLICIES))}, got {describe(value)}")


def _signalling_protocol(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if not isinstance(value, str) or value not in SIGNALLING_PROTOCOLS:
        raise SettingsError(attribute.name, f"expected one of {', '.join(map(repr, SIGNALLING_PROTOCOLS))}, "
                                            f"got {describe(value)}")


def _positive_int(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SettingsError(attribute.name, f"expected a positive integer, got {describe(value)}")


def _positive_number(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
        raise SettingsError(attribute.name, f"expected a positive number of seconds, got {describe(value)}")


def _optional_positive_int(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SettingsError(attribute.name, f"expected a positive integer or false (not enforced), got {describe(value)}")


def _non_negative_int(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SettingsError(attribute.name, f"expected an integer >= 0, got {describe(value)}")


def _byte(instance: Any, attribute: attrs.Attribute, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 255:
        raise SettingsError(attribute.name, f"expected a one-byte code (0-255), got {describe(value)}")


@attrs.frozen
class TrustSettings:
    """How a phone resolves the points public Cisco material leaves open.

    Every default below is the project's documented choice; docs/models.md
    gives the reasoning at more length.
    """

    #: docs/phone.md (OPEN). A first CTL or ITL is taken on trust ("leap of faith"),
    #: but must still parse and verify against its own SAST record. True: a
    #: file whose signature does not verify with its own SAST is rejected even
    #: on an empty phone. Default True: accepting garbage would give a trusted
    #: result from bad input, and no public log shows a phone doing so.
    first_list_requires_own_signature: bool = attrs.field(default=True, validator=_boolean)

    #: docs/phone.md (OPEN). An ITL is installed and the first CTL arrives:
    #: "trust" takes it on trust as a pre-SBD phone would; "verify" checks its
    #: signer against the ITL, then TVS. Default "trust": it is what a cluster
    #: move to mixed mode looks like on every published phone (Cisco TAC 118893:
    #: "first CTL accepted on trust").
    first_ctl_with_itl: str = attrs.field(default="trust", validator=_first_ctl_policy)

    #: docs/phone.md (OPEN, default on). A TVS answer about a trust-list signer
    #: counts only when it is STATUS 0 *and* lists role SAST (0). Default True:
    #: every published answer for a trust-list signer carried role 0 (docs/tvs.md),
    #: and a CallManager-trust-only certificate must not sign trust lists.
    tvs_answer_requires_sast_role: bool = attrs.field(default=True, validator=_boolean)

    #: docs/tvs.md. After a failed QUERY_CERT_REQ (type 3), retry once with
    #: CERT_VERIFICATION_REQ (type 1) carrying the certificate of the new
    #: file's own SAST record. Default True: usecallmanager's tvsd answers only
    #: type 1 and drops anything else; CUCM answers type 3 first, so the
    #: fallback never changes a CUCM outcome.
    tvs_fallback_to_verify: bool = attrs.field(default=True, validator=_boolean)

    #: docs/trust-lists.md (OPEN as a firmware rule). Most SAST records one trust list
    #: may hold; None = not enforced. usecallmanager's phones rule is 2.
    #: Default None: no Cisco document states the limit, and CUCM's own files
    #: (two eTokens, or publisher + ITLRecovery) never exceed it anyway.
    max_sast_records: int | None = attrs.field(default=None, validator=_optional_positive_int)

    #: docs/trust-lists.md. Largest ITL (bytes) a phone loads; None = not enforced.
    #: Default 65535: HEADERLENGTH/RECORDLENGTH are 16-bit and Cisco documents
    #: that an ITL over 64 KB (about 39 certificates) fails to load.
    max_itl_bytes: int | None = attrs.field(default=65535, validator=_optional_positive_int)

    #: docs/phone.md. With a "rollback" ITL installed (empty TVS/TFTP entries, served
    #: when "Prepare Cluster for Rollback to pre-8.0" is on) the phone accepts
    #: any new ITL and unsigned configuration files. Default True: documented
    #: in the CUCM security guide.
    rollback_itl_accepts_unsigned_config: bool = attrs.field(default=True, validator=_boolean)

    #: docs/trust-lists.md (OPEN: not documented). A signed configuration is applied only
    #: when the FILENAME its header signs is the file the phone asked for
    #: (``SEP<MAC>.cnf.xml.sgn``). Default True: CUCM and usecallmanager's tool
    #: both write that name, and without the check another phone's configuration,
    #: signed by the same TFTP key, would be applied.
    signed_config_name_must_match: bool = attrs.field(default=True, validator=_boolean)

    #: docs/phone.md. Keep TVS answers for their TTL ("TVS added cert to TVS cache -
    #: expires in 24 hours"). Default True: seen in the 8861 log (reference S1).
    tvs_cache: bool = attrs.field(default=True, validator=_boolean)

    #: docs/phone.md. Empty the TVS cache once a trust list has been updated.
    #: Default True: the 7975 logs show "TVS Certificate cache flush request"
    #: right after the TVS exchange (Cisco TAC 118893).
    flush_tvs_cache_after_update: bool = attrs.field(default=True, validator=_boolean)

    #: docs/trust-lists.md (OPEN: code 2 never seen). The DIGESTALGORITHM byte read as
    #: SHA-256. Default 2: between SHA-1 = 1 and SHA-512 = 3, as usecallmanager's
    #: tool writes it.
    sha256_digest_code: int = attrs.field(default=2, validator=_byte)

    #: docs/tvs.md. Seconds to wait for a TVS server (connect, handshake, answer)
    #: before failing over to the next one. Default 10.0: a project choice,
    #: long enough for a loaded CUCM, short enough for a fleet run.
    tvs_timeout_seconds: float = attrs.field(default=10.0, validator=_positive_number)

    #: docs/phone.md. Seconds to wait for each TFTP packet. Default 5.0: tftpy's own
    #: default and the usual TFTP client value.
    tftp_timeout_seconds: float = attrs.field(default=5.0, validator=_positive_number)

    #: docs/phone.md. Retransmissions of a TFTP request before the file counts as
    #: unreachable. Default 3: a project choice (a phone's exact count is not
    #: published).
    tftp_retries: int = attrs.field(default=3, validator=_non_negative_int)

    #: docs/capf.md (OPEN). The CAPF protocol version the phone announces at most; the
    #: session uses the lower of this and the server's. 0 = by the model: 3 for an
    #: EC-capable model (CUCM calls version 3 "EC capable"), else 2 (what Jabber answered
    #: CUCM in the Jabber4Linux capture).
    capf_phone_version: int = attrs.field(default=0, validator=_non_negative_int)

    #: docs/capf.md (OPEN). Send REQUEST_IN_PROGRESS before the generated public key.
    #: Default True: the usecallmanager.nz CAPF client does; CUCM waits either way.
    capf_request_in_progress: bool = attrs.field(default=True, validator=_boolean)

    #: docs/capf.md (OPEN). An EC-capable phone generates an EC key only when its ITL
    #: is of version 1.1 (signer version tag 28). Default True: what usecallmanager.nz
    #: documents for real phones; no Cisco document says otherwise.
    capf_ec_needs_itl_1_1: bool = attrs.field(default=True, validator=_boolean)

    #: docs/capf.md. Seconds the phone waits for a CAPF server (connect, handshake and
    #: each message) before giving up on it. Default 30.0: a project choice; key
    #: generation happens on the phone, not while it waits.
    capf_timeout_seconds: float = attrs.field(default=30.0, validator=_positive_number)

    #: docs/http.md. Ask for each file over HTTP (``GET /<name>``, the TFTP server's port
    #: 6970) before TFTP; anything but 200 gets one TFTP try of the same name. Default False
    #: (TFTP only, as the 7900 and 6900 series); the 7800, 8800, 8900, 9900 and DX model files
    #: turn it on: Cisco TAC 214535 shows a 7821 asking each file over HTTP first.
    http_first: bool = attrs.field(default=False, validator=_boolean)

    #: docs/http.md (OPEN). Seconds to wait for the HTTP server to accept the connection
    #: before turning to TFTP. Default 5.0: a project choice, as the TFTP wait.
    http_connect_timeout_seconds: float = attrs.field(default=5.0, validator=_positive_number)

    #: docs/http.md (OPEN). With an installed ITL that carries the version 1.1 marker
    #: (tag 28), ask for ``SEP<MAC>.cnf.xml`` over HTTPS (port 6971) first, trusting the
    #: server only when its certificate is a TFTP record of the installed CTL or ITL.
    #: Default True for phones that provision over HTTP (``http_first``).
    https_config_with_itl_1_1: bool = attrs.field(default=True, validator=_boolean)

    #: docs/registration.md. The signalling protocol the phone registers with: "SIP",
    #: "SCCP", or "auto": SCCP when the model's load name is an SCCP load (``SCCP…``,
    #: or ``P003…`` for the 7940/7960), SIP otherwise. Default "auto": the load name is
    #: how Cisco names the protocol a firmware speaks.
    signalling_protocol: str = attrs.field(default="auto", validator=_signalling_protocol)

    #: docs/registration.md (OPEN ``tls.trust_list_attempts``). CTL downloads, the boot's
    #: own included, before a phone on a secure profile without a CTL stops and waits.
    #: Default 4: the 7945G-7975G Administration Guide's "four attempts" (older guides: for ever).
    tls_trust_list_attempts: int = attrs.field(default=4, validator=_positive_int)

    #: docs/registration.md. Seconds to wait for the CallManager (connect, handshake,
    #: answer). Default 10.0: a project choice, as for TVS.
    registration_timeout_seconds: float = attrs.field(default=10.0, validator=_positive_number)

    #: docs/registration.md. The phone runs in FIPS 140-2 mode and refuses a CallManager
    #: RSA key under 2048 bits ("not FIPS compliant"). Default False: FIPS mode is
    #: switched on per cluster (CUCM Security Guide, "FIPS 140-2 Mode").
    fips_mode: bool = attrs.field(default=False, validator=_boolean)

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], base: TrustSettings | None = None) -> TrustSettings:
        """Settings from a TOML table, on top of ``base`` (the class defaults if None).

        ``false`` stands for None in the settings that may be "not enforced".
        Raises SettingsError naming the offending key.
        """
        settings = base if base is not None else cls()
        known = {field.name: field for field in attrs.fields(cls)}
        for key, value in values.items():
            if key not in known:
                raise SettingsError(key, f"unknown setting (known: {', '.join(sorted(known))})")
            if value is False and known[key].validator is _optional_positive_int:
                value = None
            try:
                settings = attrs.evolve(settings, **{key: value})
            except (TypeError, ValueError) as error:
                raise SettingsError(key, str(error)) from None
        return settings

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict of every setting (None stays None)."""
        return attrs.asdict(self)


class SettingsError(LocalError):
    """A ``settings`` table with an unknown key or a value of the wrong kind."""

    def __init__(self, key: str, problem: str) -> None:
        self.key = key
        self.problem = problem
        super().__init__(f"setting {key!r}: {problem}")
