"""Round-trip properties of the codec (hypothesis): parse(build(x)) == x, encode(parse(b)) == b."""

from __future__ import annotations

import hypothesis.strategies as st
from conftest import ec_identity, etoken_identity, node_identity
from hypothesis import HealthCheck, given, settings

from phone.errors import TrustListFormatError
from phone.wire.signing import Layout, NameStyle, build_trust_list, make_record, verify
from phone.wire.tlv import Role, TrustList

ROLES = st.sampled_from([0, 1, 2, 3, 4, 7, 21, 99])
IPV4 = st.tuples(*[st.integers(0, 255)] * 4).map(lambda t: ".".join(map(str, t)))
DNS = st.one_of(st.none(), st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.", max_size=40))


def identities():
    return [node_identity("cucm-1051-a-pub"), node_identity("cucm-1051-a-sub1", serial=0x6BEB), etoken_identity(),
            ec_identity()]


@st.composite
def record_specs(draw):
    return {
        "identity": draw(st.integers(0, 3)),
        "role": draw(ROLES),
        "dns_name": draw(DNS),
        "ip_address": draw(st.one_of(st.none(), IPV4)),
        "include_signature": draw(st.booleans()),
        "style": draw(st.sampled_from(list(NameStyle))),
    }


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    specs=st.lists(record_specs(), min_size=0, max_size=5),
    layout=st.sampled_from(list(Layout)),
    digest=st.sampled_from(["sha1", "sha256", "sha512"]),
    timestamp=st.integers(0, 2**32 - 1),
    filename=st.sampled_from(["CTLFile.tlv", "ITLFile.tlv", "ITLSEP0123456789AB.tlv"]),
)
def test_parse_of_build_gives_back_what_was_built(specs, layout, digest, timestamp, filename):
    people = identities()
    signer = people[0]
    records = [make_record(signer.certificate, Role.SAST, layout=layout)]
    for spec in specs:
        records.append(make_record(people[spec["identity"]].certificate, spec["role"], layout=layout,
                                   name_style=spec["style"], dns_name=spec["dns_name"],
                                   ip_address=spec["ip_address"], include_signature=spec["include_signature"]))
    built = build_trust_list(records, signer, filename=filename, timestamp=timestamp, digest=digest, layout=layout)
    parsed = TrustList.from_bytes(built.data)
    assert parsed == built
    assert parsed.records == tuple(records)
    assert parsed.header.timestamp == timestamp and parsed.header.filename == filename
    assert parsed.header.digest_name == digest
    assert parsed.header.header_length % 4 == 0
    assert parsed.encode() == built.data
    assert verify(parsed).valid


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_arbitrary_bytes_either_parse_and_reencode_or_raise_format_error(data):
    try:
        parsed = TrustList.from_bytes(data)
    except TrustListFormatError as error:
        assert 0 <= error.offset <= len(data)
        return
    assert parsed.encode() == data
    assert not verify(parsed).valid


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_mutated_files_never_verify(data):
    signer = node_identity("cucm-1051-a-pub")
    original = build_trust_list([make_record(signer.certificate, Role.SAST)], signer, filename="ITLFile.tlv",
                                timestamp=1).data
    mutated = bytearray(original)
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(mutated) - 1))
        mutated[position] = data.draw(st.integers(0, 255).filter(lambda b, p=position: b != mutated[p]))
    try:
        parsed = TrustList.from_bytes(bytes(mutated))
    except TrustListFormatError:
        return
    assert not verify(parsed).valid
