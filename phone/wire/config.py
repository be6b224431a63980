"""The phone configuration file (``SEP<MAC>.cnf.xml``) as far as the trust side reads it (docs/tvs.md).

What matters here is the TVS server list: ``<TVS><members><member
priority="0"><port>2445</port><address>HOST</address></member>…</members></TVS>``,
up to five members tried lowest priority first. The stored configuration's
list is the one a phone uses when the next trust list arrives.

The file is untrusted input (it may come from any TFTP server): it is read
with defusedxml, DTDs and entities refused (no billion laughs, no external
entities). CUCM writes ``xsi:type`` without declaring the ``xsi`` prefix, so
the file is read without namespace processing, as phones do.
"""

from __future__ import annotations

import functools
import re
import xml.dom.minidom
from xml.parsers.expat import ExpatError

import attrs
from defusedxml import DefusedXmlException
from defusedxml.expatbuilder import parseString

from phone.errors import ConfigFormatError
from phone.wire.addresses import parse_host_port

#: docs/tvs.md: a configuration lists at most five TVS servers.
MAX_TVS_MEMBERS = 5
DEFAULT_TVS_PORT = 2445
#: Far above any real configuration (CUCM's are a few KB); refuses a hostile giant file before parsing.
MAX_CONFIG_BYTES = 1024 * 1024
MAX_CACHED_CONFIG_BYTES = 64 * 1024
#: A number of the file: ASCII digits only (``str.isdigit`` also takes "²" and "٣", which
#: ``int`` refuses or reads), at most 9 of them (far above any port, priority or mode, and
#: far below the 4300 digits past which ``int`` raises).
_DECIMAL = re.compile(r"-?[0-9]{1,9}")


@attrs.frozen
class TvsMember:
    """One ``<member>`` of the configuration's TVS list (docs/tvs.md); lower priority is tried first."""

    address: str
    port: int = DEFAULT_TVS_PORT
    priority: int = 0

    @property
    def server(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{host}:{self.port}"

    @classmethod
    def parse(cls, text: str, priority: int = 0) -> TvsMember:
        """``HOST``, ``HOST:PORT`` or ``[V6]:PORT`` (the command line's way to name a TVS)."""
        host, port = parse_host_port(text, DEFAULT_TVS_PORT, what="TVS server")
        return cls(host, port, priority)


DEFAULT_CAPF_PORT = 3804
#: Port usage guide for CUCM: SCCP 2000, SIP 5060, SIP over TLS 5061.
DEFAULT_SCCP_PORT = 2000
DEFAULT_SIP_PORT = 5060
DEFAULT_SECURE_SIP_PORT = 5061
#: ``transportLayerProtocol`` of a SIP phone's configuration: 1 TCP, 2 UDP, 3 TLS (4 TCP preferred).
TRANSPORT_TLS = 3


@attrs.frozen
class CapfServer:
    """One ``<capf>`` of ``<capfList>``: where the phone enrols (docs/capf.md); tried in order."""

    address: str
    port: int = DEFAULT_CAPF_PORT


@attrs.frozen
class CallManager:
    """One ``<callManager>`` of the device pool's CallManager group, with its signalling ports."""

    address: str
    sccp_port: int = DEFAULT_SCCP_PORT
    sip_port: int = DEFAULT_SIP_PORT
    secure_sip_port: int = DEFAULT_SECURE_SIP_PORT


@attrs.frozen
class PhoneConfig:
    """What the trust side takes from a configuration file.

    Beyond the TVS list: the CAPF servers and ``capfAuthMode`` (0 = no CAPF
    operation pending), ``certHash``/``encrConfig`` of an encrypted configuration's
    stub (docs/encrypted-config.md), ``fullConfig`` (false in a stub), the
    ``deviceSecurityMode`` (1 non-secure, 2 authenticated, 3 encrypted) and the
    CallManagers a phone registers with.
    """

    tvs_members: tuple[TvsMember, ...] = ()
    capf_servers: tuple[str, ...] = ()
    device_security_mode: int | None = None
    capf_list: tuple[CapfServer, ...] = ()
    capf_auth_mode: int | None = None
    cert_hash: str | None = None
    encrypted_config: bool = False
    full_config: bool = True
    call_managers: tuple[CallManager, ...] = ()
    transport_layer_protocol: int | None = None
    load_information: str | None = None

    @classmethod
    def from_bytes(cls, data: bytes, *, source: str = "configuration") -> PhoneConfig:
        """Read a ``SEP<MAC>.cnf.xml``; ``ConfigFormatError`` naming ``source`` if it is not safe XML.

        The result depends on the bytes alone, so a fleet reads each distinct file once.
        """
        if len(data) > MAX_CONFIG_BYTES:
            raise ConfigFormatError(f"{source}: {len(data)} bytes is too large for a phone configuration")
        try:
            # Real configurations are a few KB; a large one is read without being cached,
            # so a hostile server cannot fill memory with cached copies.
            read = _read_config if len(data) <= MAX_CACHED_CONFIG_BYTES else _read_config.__wrapped__
            return read(bytes(data))
        except ConfigFormatError as error:
            raise ConfigFormatError(f"{source}: {error}") from None


def parse_xml(data: bytes) -> xml.dom.minidom.Document:
    """Untrusted XML read safely: defusedxml, no DTD, no namespace processing (see the module docstring).

    ``ConfigFormatError`` (without a source name) when the bytes are unsafe or not well-formed.
    """
    try:
        return parseString(data, namespaces=False, forbid_dtd=True)
    except DefusedXmlException as error:
        raise ConfigFormatError(f"refused unsafe XML ({type(error).__name__})") from None
    except ExpatError as error:
        raise ConfigFormatError(f"not well-formed XML at line {error.lineno}, column {error.offset}") from None
    except (LookupError, ValueError) as error:  # an encoding expat does not know or cannot read
        raise ConfigFormatError(f"unreadable XML encoding ({error})") from None


class _Shared:
    """One ``PhoneConfig`` object for every equal reading.

    A configuration names its device, but what the phone reads from it (TVS servers, CAPF,
    CallManagers, security mode) does not: a cluster's thousands of configurations read as a
    handful of values, and a fleet worker keeps each phone's reading (about 1.2 KB each).
    At most ``limit`` distinct readings are held; past that they are forgotten and shared anew.
    No lock (this layer does no I/O and starts no threads): ``dict.setdefault`` is atomic, and
    two threads clearing at once only forget a reading early, which is never wrong.
    """

    def __init__(self, limit: int = 1024) -> None:
        self._readings: dict[PhoneConfig, PhoneConfig] = {}
        self._limit = limit

    def __call__(self, config: PhoneConfig) -> PhoneConfig:
        if len(self._readings) >= self._limit and config not in self._readings:
            self._readings.clear()
        return self._readings.setdefault(config, config)

    def clear(self) -> None:
        self._readings.clear()


_shared = _Shared()


@functools.lru_cache(maxsize=1024)
def _read_config(data: bytes) -> PhoneConfig:
    return _shared(_reading(data))


def _reading(data: bytes) -> PhoneConfig:
    elements = _index(parse_xml(data))  # one walk of the tree for every element read below

    def first(tag: str) -> str | None:
        found = elements.get(tag)
        return _text(found[0]) if found else None

    capf_list = _capf_list(elements)
    cert_hash = first("certHash")
    return PhoneConfig(
        tvs_members=_tvs_members(elements),
        capf_servers=tuple(server.address for server in capf_list),
        device_security_mode=_decimal(first("deviceSecurityMode")),
        capf_list=capf_list,
        capf_auth_mode=_decimal(first("capfAuthMode")),
        cert_hash=cert_hash.lower() if cert_hash else None,
        encrypted_config=_boolean(first("encrConfig")),
        full_config=(first("fullConfig") or "true").lower() != "false",
        call_managers=_call_managers(elements),
        transport_layer_protocol=_decimal(first("transportLayerProtocol")),
        load_information=first("loadInformation") or None,
    )


def _boolean(text: str | None) -> bool:
    return (text or "").strip().lower() in ("true", "1")


def _port(text: str | None, default: int) -> int:
    """A port element's value, ``default`` when absent or not a TCP port (a phone uses its default)."""
    port = _decimal(text)
    return port if port is not None and 0 < port < 65536 else default


def _capf_list(elements: ElementIndex) -> tuple[CapfServer, ...]:
    servers = []
    for holder in elements.get("capfList", ()):
        for capf in _children(holder, "capf"):
            address = _text((_children(capf, "processNodeName") or [None])[0])
            if address:
                port = _text((_children(capf, "phonePort") or [None])[0])
                servers.append(CapfServer(address, _port(port, DEFAULT_CAPF_PORT)))
    return tuple(servers[:MAX_TVS_MEMBERS])


def _call_managers(elements: ElementIndex) -> tuple[CallManager, ...]:
    found = []
    for manager in elements.get("callManager", ()):
        address = _text((_children(manager, "processNodeName") or _children(manager, "name") or [None])[0])
        if not address:
            continue
        ports = (_children(manager, "ports") or [None])[0]

        def port(tag: str, default: int, ports=ports) -> int:
            return _port(_text((_children(ports, tag) or [None])[0]) if ports is not None else None, default)

        found.append(CallManager(address, port("ethernetPhonePort", DEFAULT_SCCP_PORT),
                                 port("sipPort", DEFAULT_SIP_PORT), port("securedSipPort", DEFAULT_SECURE_SIP_PORT)))
    return tuple(found)


def _children(node: xml.dom.minidom.Node, name: str) -> list[xml.dom.minidom.Element]:
    return [child for child in node.childNodes if child.nodeType == child.ELEMENT_NODE and child.tagName == name]


def _text(node: xml.dom.minidom.Element | None) -> str | None:
    if node is None:
        return None
    return "".join(child.data for child in node.childNodes if child.nodeType == child.TEXT_NODE).strip()


#: Every element of a document by tag name, each list in document order (``_index``).
ElementIndex = dict[str, list[xml.dom.minidom.Element]]


def _index(document: xml.dom.minidom.Document) -> ElementIndex:
    """Every element by tag name, in document order, from one walk of the tree.

    A configuration is read for a dozen element names; walking the tree once for all of
    them costs a twelfth of walking it per name. The walk keeps its own stack: minidom's
    ``getElementsByTagName`` recurses once per level, and a hostile file of well under
    ``MAX_CONFIG_BYTES`` nests deeper than Python's recursion limit.
    """
    found: ElementIndex = {}
    element = xml.dom.Node.ELEMENT_NODE
    stack = list(reversed(document.childNodes))
    while stack:
        node = stack.pop()
        if node.nodeType == element:
            found.setdefault(node.tagName, []).append(node)
            if node.childNodes:
                stack.extend(reversed(node.childNodes))
    return found


def _elements(document: xml.dom.minidom.Document, tag: str) -> list[xml.dom.minidom.Element]:
    """Every element named ``tag``, in document order."""
    return _index(document).get(tag, [])


def first_text(document: xml.dom.minidom.Document, tag: str) -> str | None:
    """The text of the first element named ``tag`` (stripped), None when there is none."""
    found = _elements(document, tag)
    return _text(found[0]) if found else None


def _texts(document: xml.dom.minidom.Document, parent: str, tag: str) -> list[str]:
    values = []
    for node in _elements(document, parent):
        for child in _children(node, tag):
            value = _text(child)
            if value:
                values.append(value)
    return values


def _decimal(text: str | None, *, signed: bool = False) -> int | None:
    """``text`` as an integer when it is one (see ``_DECIMAL``), else None."""
    text = (text or "").strip()
    if not _DECIMAL.fullmatch(text) or (text.startswith("-") and not signed):
        return None
    return int(text)


def _tvs_members(elements: ElementIndex) -> tuple[TvsMember, ...]:
    members = []
    for tvs in elements.get("TVS", ()):
        for holder in _children(tvs, "members"):
            for index, member in enumerate(_children(holder, "member")):
                address = _text((_children(member, "address") or [None])[0])
                if not address:
                    raise ConfigFormatError("a TVS member without an <address>")
                port_text = _text((_children(member, "port") or [None])[0]) or str(DEFAULT_TVS_PORT)
                priority_text = member.getAttribute("priority") or str(index)
                port = _decimal(port_text)
                if port is None or not 0 < port < 65536:
                    raise ConfigFormatError(f"TVS member {address[:60]!r}: port {port_text[:20]!r} is not a TCP port")
                priority = _decimal(priority_text, signed=True)
                if priority is None:
                    raise ConfigFormatError(f"TVS member {address[:60]!r}: priority {priority_text[:20]!r} "
                                            "is not a number of at most 9 digits")
                members.append(TvsMember(address, port, priority))
    return tuple(sorted(members, key=lambda member: member.priority))[:MAX_TVS_MEMBERS]


def render_config(
    tvs_members: list[TvsMember] | tuple[TvsMember, ...],
    *,
    device_name: str,
    capf_servers: tuple[str, ...] = (),
    device_security_mode: int = 1,
    call_managers: tuple[str | CallManager, ...] = (),
    capf_port: int = DEFAULT_CAPF_PORT,
    capf_auth_mode: int = 0,
    transport_layer_protocol: int | None = None,
    load_information: str = "",
) -> bytes:
    """A minimal ``SEP<MAC>.cnf.xml`` as CUCM writes one, with the trust-relevant parts.

    ``transport_layer_protocol`` defaults to TLS (3) for an authenticated or
    encrypted device and TCP (1) otherwise, as CUCM's SIP profiles do.
    """
    managers = tuple(m if isinstance(m, CallManager) else CallManager(m) for m in call_managers)
    if transport_layer_protocol is None:
        transport_layer_protocol = TRANSPORT_TLS if device_security_mode in (2, 3) else 1
    def member(m: TvsMember) -> str:
        return (f'<member priority="{m.priority}"><port>{m.port}</port>'
                f"<address>{xml_escape(m.address)}</address></member>")

    call_manager_members = "".join(
        f'<member priority="{i}"><callManager><name>{xml_escape(m.address)}</name><ports><ethernetPhonePort>'
        f"{m.sccp_port}</ethernetPhonePort><sipPort>{m.sip_port}</sipPort><securedSipPort>{m.secure_sip_port}"
        f"</securedSipPort></ports><processNodeName>{xml_escape(m.address)}</processNodeName></callManager></member>"
        for i, m in enumerate(managers)
    )
    capf = "".join(
        f"<capf><phonePort>{capf_port}</phonePort><processNodeName>{xml_escape(c)}</processNodeName></capf>"
        for c in capf_servers
    )
    text = (
        f'<device xsi:type="axl:XIPPhone" ctiid="1" uuid="{{{device_name}}}">\n'
        "<fullConfig>true</fullConfig>\n"
        f"<deviceSecurityMode>{device_security_mode}</deviceSecurityMode>\n"
        f"<devicePool><callManagerGroup><members>{call_manager_members}</members></callManagerGroup></devicePool>\n"
        f"<TVS><members>{''.join(member(m) for m in tvs_members)}</members></TVS>\n"
        f"<capfAuthMode>{int(capf_auth_mode)}</capfAuthMode><capfList>{capf}</capfList>\n"
        f"<transportLayerProtocol>{int(transport_layer_protocol)}</transportLayerProtocol>\n"
        f"<loadInformation>{xml_escape(load_information)}</loadInformation>\n"
        "</device>\n"
    )
    return text.encode("utf-8")


def xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
