"""The console message catalogue: which lines each machine event writes, per dialect (docs/logs.md).

The phone machine emits structured ``Log(event, fields)`` effects; this table
turns an event into the lines a real phone of that dialect prints. Texts marked
``real=True`` are verbatim from a published Cisco log (the source is named next
to them); the others are the emulator's own wording for events no public log
shows, kept short and in the same style, and ``logs diff`` against a real log
will show them as extra.

Placeholders are ``str.format`` fields supplied by the machine (``name``,
``store_as``, ``address``, ``port``, ``bytes``, ``hours``, ``reason``,
``version``, ``pid``, ``server``, ``cert_hash``, ``certificate``, and for CAPF ``servers``, ``mode``,
``operation``, ``key``).
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

JAVA79XX = "java79xx"
ENTERPRISE = "enterprise"

S1 = 'Cisco TAC 213407 "Migrate Phones Between Secure Clusters"'
SEED = 'Cisco TAC 118893 "Migrate CUCM Mixed Mode with Tokenless CTL"'


@attrs.frozen
class Line:
    """One console line: level, process and message template."""

    level: str
    process: str
    template: str
    real: bool = False
    source: str | None = None


def _real(level: str, process: str, template: str, source: str) -> Line:
    return Line(level, process, template, True, source)


CATALOGUE: Mapping[str, Mapping[str, tuple[Line, ...]]] = {
    "boot.start": {
        JAVA79XX: (Line("NOT", "SECD", "secdInit: starting trust list processing for {device}"),),
        ENTERPRISE: (Line("NOT", "SECUREAPP", "Starting trust list processing for {device}"),),
    },
    "download.start": {
        JAVA79XX: (Line("NOT", "CFGD", "tftpGetFile: requesting [{name}]"),),
        ENTERPRISE: (
            _real("NOT", "downd", "DDFORK - execing [/usr/sbin/dgetfile][-L620][ ]", S1),
            _real("NOT", "dgetfile({pid})",
                  "GETXXTP [GT{pid}][src={name}][dest=/tmp/{store_as}][serv=][serv6=][sec=0]", S1),
        ),
    },
    "download.done": {
        JAVA79XX: (Line("NOT", "CFGD", "tftpGetFile: [{name}] received, {bytes} bytes"),),
        ENTERPRISE: (
            _real("NOT", "dgetfile({pid})", "XXTP complete - status = 100 ", S1),
            _real("NOT", "dgetfile({pid})", "XXTP actualserver [{server}]", S1),
        ),
    },
    "download.not_found": {
        JAVA79XX: (Line("WRN", "CFGD", "tftpGetFile: [{name}] File not found"),),
        ENTERPRISE: (Line("ERR", "dgetfile({pid})", "XXTP complete - status = 404 [{name}] File not found"),),
    },
    "download.failed": {
        JAVA79XX: (Line("ERR", "CFGD", "tftpGetFile: [{name}] failed: {reason}"),),
        ENTERPRISE: (Line("ERR", "dgetfile({pid})", "XXTP failed [{name}]: {reason}"),),
    },
    # The emulator's wording (docs/http.md): Cisco TAC 214535 shows a 7821 asking each file over
    # HTTP first and ending each with a status (100 HTTP OK, 2 not found), but not the line
    # it writes when it turns to TFTP. 7900 phones never ask over HTTP; their line is for completeness.
    "download.http_fallback": {
        JAVA79XX: (Line("WRN", "CFGD", "httpGetFile: [{name}] not over HTTP ({reason}), trying TFTP"),),
        ENTERPRISE: (Line("WRN", "dgetfile({pid})", "XXTP HTTP [{name}] failed: {reason}; trying TFTP"),),
    },
    # Cisco TAC 118893's 7975 prints these two lines when it turns to TVS about an unknown signer ...
    "tvs.request": {
        JAVA79XX: (
            _real("NOT", "SECD", "setupSocketToTvsProxy: Connected to TVS proxy server", SEED),
            _real("NOT", "SECD", "tvsReqFlushTvsCertCache: Sent Request to TVS proxy, len: 3708", SEED),
        ),
        ENTERPRISE: (),
    },
    # ... and these four once TVS has vouched and the new list is in (the cache flush, docs/phone.md).
    "tvs.cache_flushed": {
        JAVA79XX: (
            _real("NOT", "SECD", "clpTvsInit: Client message received on TVS proxy socket", SEED),
            _real("NOT", "SECD", "processTvsClntReq: Success reading the client TVS request, len : 3708", SEED),
            _real("NOT", "SECD", "processTvsClntReq: TVS Certificate cache flush request received", SEED),
            _real("NOT", "SECD", "tvsFlushCertCache: Completed TVS Certificate cache flush request", SEED),
        ),
        ENTERPRISE: (),
    },
    "tvs.connected": {
        JAVA79XX: (),
        ENTERPRISE: (
            _real("INF", "SECUREAPP", "Attempting connect to TVS server addr [{address}], mode [IPv4]", S1),
            _real("INF", "SECUREAPP", "TCP connect() successful, [{address}] [11]", S1),
            _real("DEB", "SECUREAPP", "BIO created with: addr:{address}, port:{port}, mode:IPv4", S1),
            _real("INF", "SECUREAPP", "Sec SSL Connection - TVS.", S1),
            _real("DEB", "SECUREAPP", "SSL session setup Cert Verification - Role is = 21", S1),
            _real("INF", "SECUREAPP", "SSL session setup Cert Verification - Certificate is valid.", S1),
            _real("NOT", "SECUREAPP", "Sec SSL Connection - Handshake successful.", S1),
            _real("DEB", "SECUREAPP", "Connection to server succeeded", S1),
        ),
    },
    "tvs.query_sent": {
        JAVA79XX: (),
        ENTERPRISE: (
            _real("DEB", "SECUREAPP", "TVS process request - processing TVS Query Certificate request.", S1),
            _real("NOT", "SECUREAPP",
                  "TVS process request - Successfully sent the TVS request to TVS server, bytes written : {bytes}", S1),
        ),
    },
    "tvs.verify_sent": {
        JAVA79XX: (),
        ENTERPRISE: (
            Line("DEB", "SECUREAPP", "TVS process request - processing TVS Certificate Verification request."),
            _real("NOT", "SECUREAPP",
                  "TVS process request - Successfully sent the TVS request to TVS server, bytes written : {bytes}", S1),
        ),
    },
    "tvs.response": {
        JAVA79XX: (),
        ENTERPRISE: (_real("DEB", "SECUREAPP", "TVS Service receives {bytes} bytes of data", S1),),
    },
    "tvs.cached": {
        JAVA79XX: (),
        ENTERPRISE: (_real("INF", "SECUREAPP", "TVS added cert to TVS cache - expires in {hours} hours", S1),),
    },
    "tvs.not_trusted": {
        JAVA79XX: (Line("ERR", "SECD", "EROR:tvsGetCertificate: TVS does not trust the certificate: {reason}"),),
        ENTERPRISE: (Line("ERR", "SECUREAPP", "TVS process response - certificate not trusted: {reason}"),),
    },
    "tvs.failed": {
        JAVA79XX: (Line("ERR", "SECD", "EROR:setupSocketToTvsProxy: TVS request failed: {reason}"),),
        ENTERPRISE: (Line("ERR", "SECUREAPP", "TVS provider - request failed: {reason}"),),
    },
    "tl.verified": {
        JAVA79XX: (Line("NOT", "SECD", "tlVerifyFile: {store_as} signature verified ({via})"),),
        ENTERPRISE: (_real("NOT", "SECUREAPP", "Hashes match... authentication successful.", S1),),
    },
    # Firmware that knows header versions up to 1.1 warns about 1.2 and parses anyway.
    "tl.header_version": {
        JAVA79XX: (),
        ENTERPRISE: (
            _real("WRN", "SECUREAPP", "AUTH: early exit from parser loop; old version header?", S1),
            _real("WRN", "SECUREAPP", "AUTH: hdr ver {version} (knows only upto 1.1)", S1),
        ),
    },
    "tl.installed": {
        JAVA79XX: (Line("NOT", "SECD", "tlUpdateFile: {store_as} updated"),),
        ENTERPRISE: (
            _real("NOT", "SECUREAPP", "updateFromFile: TL parse to table: CTL_SUCCESS", S1),
            _real("NOT", "SECUREAPP", "updateFromFile: Updating master TL table", S1),
            _real("DEB", "SECUREAPP", "TL file verified successfully.", S1),
            _real("INF", "SECUREAPP", "TL file updated.", S1),
        ),
    },
    "tl.unchanged": {
        JAVA79XX: (Line("NOT", "SECD", "tlUpdateFile: {store_as} unchanged"),),
        ENTERPRISE: (Line("NOT", "SECUREAPP", "updateFromFile: {store_as} unchanged, hash matches"),),
    },
    "tl.rejected": {
        JAVA79XX: (Line("ERR", "SECD", "EROR:tlVerifyFile: {store_as} rejected: {reason}"),),
        ENTERPRISE: (Line("ERR", "SECUREAPP", "AUTH: {store_as} verification failed: {reason}"),),
    },
    "config.applied": {
        JAVA79XX: (Line("NOT", "CFGD", "cfgApply: [{name}] applied"),),
        ENTERPRISE: (Line("NOT", "JAVA", "Config file [{name}] applied"),),
    },
    "config.rejected": {
        JAVA79XX: (Line("ERR", "CFGD", "cfgApply: [{name}] not applied: {reason}"),),
        ENTERPRISE: (Line("ERR", "JAVA", "Config file [{name}] not applied: {reason}"),),
    },
    # CAPF (docs/capf.md): no public console log shows a phone's CAPF exchange, so every
    # line below is the emulator's own wording, on the process that holds certificates.
    "capf.start": {
        JAVA79XX: (Line("NOT", "SECD", "capfStart: certificate operation pending, auth mode {mode}, CAPF [{servers}]"),),
        ENTERPRISE: (Line("NOT", "SECUREAPP", "CAPF: certificate operation pending, auth mode {mode}, servers [{servers}]"),),
    },
    "capf.server_failed": {
        JAVA79XX: (Line("ERR", "SECD", "EROR:capfConnect: {reason}"),),
        ENTERPRISE: (Line("ERR", "SECUREAPP", "CAPF: server failed, trying the next: {reason}"),),
    },
    "capf.installed": {
        JAVA79XX: (Line("NOT", "SECD", "capfStoreCert: LSC stored ({operation}, {key}) from [{server}]"),),
        ENTERPRISE: (Line("NOT", "SECUREAPP", "CAPF: LSC {operation} successful ({key}) from [{server}]"),),
    },
    "capf.deleted": {
        JAVA79XX: (Line("NOT", "SECD", "capfDeleteCert: LSC deleted by [{server}], using the MIC"),),
        ENTERPRISE: (Line("NOT", "SECUREAPP", "CAPF: LSC deleted by [{server}], using the MIC"),),
    },
    "capf.fetched": {
        JAVA79XX: (Line("NOT", "SECD", "capfFetchCert: LSC sent to [{server}]"),),
        ENTERPRISE: (Line("NOT", "SECUREAPP", "CAPF: LSC sent to [{server}]"),),
    },
    "capf.nothing_pending": {
        JAVA79XX: (Line("NOT", "SECD", "capfEndSession: nothing pending at [{server}]"),),
        ENTERPRISE: (Line("NOT", "SECUREAPP", "CAPF: nothing pending at [{server}]"),),
    },
    "capf.refused": {
        JAVA79XX: (Line("ERR", "SECD", "EROR:capfAuth: [{server}] refused: {reason}"),),
        ENTERPRISE: (Line("ERR", "SECUREAPP", "CAPF: [{server}] refused: {reason}"),),
    },
    "capf.failed": {
        JAVA79XX: (Line("ERR", "SECD", "EROR:capfSession: certificate operation failed: {reason}"),),
        ENTERPRISE: (Line("ERR", "SECUREAPP", "CAPF: certificate operation failed: {reason}"),),
    },
    # Encrypted configurations (docs/encrypted-config.md): no public log shows these lines; the
    # wording is the emulator's, in each dialect's style.
    "config.encrypted_stub": {
        JAVA79XX: (Line("NOT", "SECD", "encCfg: [{name}] is an encrypted config stub, certHash {cert_hash}"),),
        ENTERPRISE: (Line("NOT", "SECUREAPP", "Encrypted config stub [{name}] certHash {cert_hash}, "
                                              "phone holds {certificate}"),),
    },
    "config.capf_needed": {
        JAVA79XX: (Line("ERR", "SECD", "EROR:encCfg: [{name}] {reason}; CAPF needed"),),
        ENTERPRISE: (Line("ERR", "SECUREAPP", "Encrypted config [{name}]: {reason}; CAPF enrolment needed"),),
    },
    "config.decrypted": {
        JAVA79XX: (Line("NOT", "SECD", "encCfg: [{name}] decrypted with {certificate}, {bytes} bytes"),),
        ENTERPRISE: (Line("NOT", "SECUREAPP", "Encrypted config [{name}] decrypted with {certificate} key, "
                                              "{bytes} bytes"),),
    },
    "config.decrypt_failed": {
        JAVA79XX: (Line("ERR", "SECD", "EROR:encCfg: [{name}] {reason}"),),
        ENTERPRISE: (Line("ERR", "SECUREAPP", "Encrypted config [{name}] decryption failed: {reason}"),),
    },
    # Registration (docs/registration.md). No published phone log shows these steps, so every line is the
    # emulator's wording; the 79xx names the certificate it presents, as Cisco TAC 200860 says it logs.
    "registration.start": {
        JAVA79XX: (Line("NOT", "CCM", "registerWithCallManager: {protocol} over {transport} to {server}"),),
        ENTERPRISE: (Line("NOT", "SIPCC", "Registering [{protocol}] over [{transport}] to [{server}]"),),
    },
    "registration.start_tls": {
        JAVA79XX: (
            Line("NOT", "SECD", "secdGetCert: using {certificate} for {transport} to {server}"),
            Line("NOT", "CCM", "registerWithCallManager: {protocol} over {transport} to {server}"),
        ),
        ENTERPRISE: (Line("NOT", "SIPCC", "Registering [{protocol}] over [{transport}] to [{server}], "
                                          "client certificate [{certificate}]"),),
    },
    "registration.registered": {
        JAVA79XX: (Line("NOT", "CCM", "registerWithCallManager: registered with {server} ({code})"),),
        ENTERPRISE: (Line("NOT", "SIPCC", "Registered with [{server}] ({code})"),),
    },
    "registration.failed": {
        JAVA79XX: (Line("ERR", "CCM", "EROR:registerWithCallManager: {server} {code}: {reason}"),),
        ENTERPRISE: (Line("ERR", "SIPCC", "Registration with [{server}] failed ({code}): {reason}"),),
    },
    "registration.waiting": {
        JAVA79XX: (Line("WRN", "CCM", "registerWithCallManager: waiting ({code}): {reason}"),),
        ENTERPRISE: (Line("WRN", "SIPCC", "Registration waiting ({code}): {reason}"),),
    },
    "erase": {
        JAVA79XX: (Line("NOT", "SECD", "tlEraseFiles: erasing {what}"),),
        ENTERPRISE: (Line("NOT", "SECUREAPP", "Erasing {what}"),),
    },
}


def lines_for(event: str, dialect: str | None) -> tuple[Line, ...]:
    """The lines ``event`` writes in ``dialect`` (none for a model without console, e.g. Jabber)."""
    if dialect is None:
        return ()
    return CATALOGUE[event][dialect]


def render(event: str, dialect: str | None, fields: Mapping[str, object]) -> list[tuple[str, str, str]]:
    """``(level, process, message)`` for each line ``event`` writes, placeholders filled in."""
    rendered = []
    for line in lines_for(event, dialect):
        rendered.append((line.level, line.process.format(**fields), line.template.format(**fields)))
    return rendered
