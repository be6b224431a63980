"""The answer of a TVS server to one request, with no sockets (docs/tvs.md).

``TvsResponder`` looks a certificate up as CUCM's TVS does, DB cache first, then
the CTL cache, STATUS 1 when neither holds it, and writes CUCM's detailed-trace
lines (Cisco TAC 213407 and 118893) on the way. Every phone of a cluster asks
about the same few certificates, so what a lookup found, and the answer's
encoded elements, are kept per question until the store or the CTL changes
(``TvsStore.version``, ``CtlCache.generation``); the trace is written from what
was kept exactly as a fresh lookup writes it.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable

import attrs

from phone.console.tvs_trace import TvsTraceWriter
from phone.errors import CertificateError
from phone.lab.tvs_store import CertificateEntry, CtlCache, TvsStore
from phone.wire.certs import load_certificate
from phone.wire.names import cucm_name, name_key, serial_to_bytes
from phone.wire.tvs import HEADER_SIZE, MessageType, Status, TvsHeader, TvsMessage

#: Issuer of the hardware eTokens' SAST certificates (Cisco TAC 118893).
_ETOKEN_ISSUER = name_key("CN=Cisco Manufacturing CA;O=Cisco Systems")
#: The two caches in CUCM's lookup order, with the text the trace adds to the look-up line.
_CACHES = ("CertificateDBCache", "CertificateCTLCache")
#: Questions remembered at most; past that the memory starts again (a peer asking about
#: ever new certificates costs lookups, never memory).
MEMO_LIMIT = 1024


@attrs.frozen
class Reply:
    """An answer before its request id: the message (request id 0) and its encoded elements."""

    message: TvsMessage
    payload: bytes

    def frame(self, request_id: int) -> bytes:
        """The answer's bytes for the request ``request_id`` (the only field that differs per request)."""
        return TvsHeader(self.message.type, request_id, len(self.payload), self.message.flags).encode() \
            + self.payload

    @classmethod
    def of(cls, message: TvsMessage) -> Reply:
        return cls(message, message.encode()[HEADER_SIZE:])


@attrs.frozen
class _Found:
    """What a lookup found: the entry and the cache that held it (an index of ``_CACHES``), or neither."""

    cache: int | None
    entry: CertificateEntry | None
    reply: Reply


@attrs.frozen
class _Named:
    """The names of a certificate sent whole (CERT_VERIFICATION_REQ), or None when it does not parse."""

    subject: str
    issuer: str
    serial: bytes


class TvsResponder:
    """The answer to one request, looked up as docs/tvs.md describes."""

    def __init__(self, store: TvsStore | None, ctl: CtlCache | None, trace: TvsTraceWriter) -> None:
        self.store = store
        self.ctl = ctl
        self.trace = trace
        self._found: dict[tuple, _Found] = {}
        self._stamp: tuple | None = None
        #: Names of certificates sent whole: a certificate's names never change.
        self._named: dict[bytes, _Named | None] = {}

    def answer(self, request: TvsMessage) -> TvsMessage | None:
        """The response, or None when the request deserves none (the connection is dropped)."""
        reply = self.reply(request)
        return None if reply is None else attrs.evolve(reply.message, request_id=request.request_id)

    def reply(self, request: TvsMessage) -> Reply | None:
        """``answer`` before its request id, ready to be framed (``Reply.frame``)."""
        trace = self.trace
        if not request.is_request:
            trace.debug(f"ERROR:tvsPhoneDecodeMsg - unexpected message type {int(request.type)} from a phone")
            return None
        missing = request.missing()
        if missing:
            trace.debug(f"ERROR:tvsPhoneDecodeMsg - {request.type.name} without "
                        + ", ".join(tag.name for tag in missing))
            return None
        self._forget_if_changed()
        if request.type is MessageType.QUERY_CERT_REQ:
            return self._query(request)
        return self._verify(request)

    def _forget_if_changed(self) -> None:
        if self.ctl is not None:
            self.ctl.refresh_if_changed()
        stamp = (None if self.store is None else self.store.version(),
                 None if self.ctl is None else self.ctl.generation)
        if stamp != self._stamp or len(self._found) >= MEMO_LIMIT:
            self._found.clear()
            self._stamp = stamp

    def _query(self, request: TvsMessage) -> Reply:
        subject, issuer, serial = request.subject, request.issuer, request.serial
        assert subject is not None and issuer is not None and serial is not None
        serial_hex = serial.hex().upper()
        if self.trace.enabled:
            self.trace.debug("tvsHandleQueryCertReq")
            self.trace.debug(f"tvsHandleQueryCertReq : Subject Name is: {subject}")
            self.trace.debug(f"tvsHandleQueryCertReq : Issuer Name is: {issuer}")
            if name_key(issuer) == _ETOKEN_ISSUER:
                self.trace.debug("tvsHandleQueryCertReq :subjectName and issuerName matches for eToken certificate")
                self.trace.debug(f"tvsHandleQueryCertReq : SAST Issuer Name  is: {issuer}")
                self.trace.debug("tvsHandleQueryCertReq : This is SAST eToken cert")
            self.trace.debug(f"tvsHandleQueryCertReq : Serial Number is: {serial_hex}")
        found = self._lookup((MessageType.QUERY_CERT_REQ, serial, issuer), f"{serial_hex}{issuer}",
                             lambda cache: cache.find(serial, issuer), self._query_reply)
        if self.trace.enabled:
            if found.entry is None:
                self.trace.debug("tvsHandleQueryCertReq : certificate not found, sending status 1")
            else:
                self.trace.debug(f"convertX509ToDER -x509cert : 0x{zlib.crc32(found.entry.certificate):x}")
                self.trace.debug("tvsHandleQueryCertReq: Timer started from tvsHandleNewPhConnection")
        return found.reply

    @staticmethod
    def _query_reply(entry: CertificateEntry | None) -> Reply:
        request = TvsMessage(MessageType.QUERY_CERT_REQ)
        if entry is None:
            return Reply.of(TvsMessage.answer(request, Status.NOT_TRUSTED))
        return Reply.of(TvsMessage.answer(request, Status.TRUSTED, certificate=entry.certificate,
                                          roles=entry.roles, ttl=entry.ttl))

    @staticmethod
    def _verify_reply(entry: CertificateEntry | None) -> Reply:
        request = TvsMessage(MessageType.CERT_VERIFICATION_REQ)
        if entry is None:
            return Reply.of(TvsMessage.answer(request, Status.NOT_TRUSTED))
        return Reply.of(TvsMessage.answer(request, Status.TRUSTED, roles=entry.roles, ttl=entry.ttl))

    def _verify(self, request: TvsMessage) -> Reply:
        der = request.certificate
        assert der is not None
        self.trace.debug("tvsHandleCertVerificationReq")
        named = self._names_of(der)
        if named is None:
            self.trace.debug("ERROR:tvsHandleCertVerificationReq : the certificate does not parse,"
                             " sending status 1")
            return self._verify_reply(None)
        serial_hex = named.serial.hex().upper()
        if self.trace.enabled:
            self.trace.debug(f"tvsHandleCertVerificationReq : Subject Name is: {named.subject}")
            self.trace.debug(f"tvsHandleCertVerificationReq : Issuer Name is: {named.issuer}")
            self.trace.debug(f"tvsHandleCertVerificationReq : Serial Number is: {serial_hex}")
        # The whole certificate must match: same serial and issuer with another key is not trust.
        found = self._lookup((MessageType.CERT_VERIFICATION_REQ, der), f"{serial_hex}{named.issuer}",
                             lambda cache: cache.find_certificate(der), self._verify_reply)
        if found.entry is None:
            self.trace.debug("tvsHandleCertVerificationReq : certificate not found, sending status 1")
        return found.reply

    def _names_of(self, der: bytes) -> _Named | None:
        if der not in self._named:
            if len(self._named) >= MEMO_LIMIT:
                self._named.clear()
            try:
                parsed = load_certificate(der, source="CERT_VERIFICATION_REQ certificate")
                self._named[der] = _Named(cucm_name(parsed.subject), cucm_name(parsed.issuer),
                                          serial_to_bytes(parsed.serial_number))
            except CertificateError:
                self._named[der] = None
        return self._named[der]

    def _lookup(self, question: tuple, map_id: str, find: Callable[[object], CertificateEntry | None],
                reply: Callable[[CertificateEntry | None], Reply]) -> _Found:
        """DB cache first, then CTL cache (or what they gave last time), traced as CUCM traces it (Cisco TAC 213407)."""
        found = self._found.get(question)
        if found is None:
            found = _Found(None, None, reply(None))
            for index, cache in enumerate((self.store, self.ctl)):
                entry = None if cache is None else find(cache)
                if entry is not None:
                    found = _Found(index, entry, reply(entry))
                    break
            self._found[question] = found
        if self.trace.enabled:
            self._trace_lookup(map_id, found)
        return found

    def _trace_lookup(self, map_id: str, found: _Found) -> None:
        for index, name in enumerate(_CACHES):
            where = f"{name}::getCertificateInformation"
            suffix = f", len : {len(map_id)}" if index == 1 else ""
            self.trace.debug(f"{where} - Looking up the certificate cache using Unique MAP ID : {map_id}{suffix}")
            if found.cache != index:
                self.trace.debug(f"ERROR:{where} - Cannot find the certificate in the cache")
                continue
            assert found.entry is not None
            self.trace.debug(f"{where} - Found entry {{rolecount : {len(found.entry.roles)}}}")
            for role in found.entry.roles:
                self.trace.debug(f"{where} - {{role : {role}}}")
            return
