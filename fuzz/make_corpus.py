"""Write the fuzz targets' seed corpora: real-format files built with phone.wire.signing (docs/reliability.md).

    .venv/bin/python fuzz/make_corpus.py        # rewrites fuzz/corpus/ and fuzz/phone_state/

- ``corpus/tlv``: CTLs and ITLs in CUCM's layout (tokenless, two eTokens,
  SHA-512 with a 2048-bit key, a non-secure-mode CTL with a bare record) and
  in usecallmanager's (tag 28, an EC record), and ``.sgn`` configurations;
- ``corpus/config``: configurations as CUCM writes them, and some that
  exercise the reader's refusals (a DTD, an encoding declaration, comments,
  CDATA, deep nesting, a member without address);
- ``corpus/tvs``: TVS frames of each message type, the real S1 query among them;
- ``corpus/capf``: CAPF frames of an install (RSA and EC), a fetch and a delete,
  an AUTH_RESPONSE with certificate credentials, and two frames in one input;
- ``corpus/encconfig``: encrypted configurations (SHA-1 and SHA-512, an
  aligned plaintext, a 2048-bit phone key) and their stub, for
  fuzz_encconfig.py, whose TFTP certificate and phone key are
  ``encconfig_state/``;
- ``corpus/phone``: files for fuzz_phone.py, each behind one byte that picks
  the waiting phone (see there), signed by the same keys as
  ``phone_state/``: the installed CTL, ITL and configuration of those phones
  and the certificates the target's TVS vouches for.

Keys are made afresh and thrown away: running this again rewrites every file
consistently. Nothing here is secret.
"""

from __future__ import annotations

import datetime
import shutil
from pathlib import Path

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from phone.wire.certs import Profile, cucm_subject, generate_ec_key, generate_rsa_key, make_certificate, simple_subject
from phone.wire.config import TvsMember, render_config
from phone.wire.encconfig import build_encrypted_config, build_stub
from phone.wire.signing import Layout, NameStyle, build_signed_file, build_trust_list, make_bare_record, make_record
from phone.wire.tlv import Role
from phone.wire.tvs import TvsMessage
from phone.wire.capf import CapfMessage, Command, Curve, DigestCode, KeyType
from phone.wire.capf_signing import auth_data, sign_auth_data

HERE = Path(__file__).parent
START = datetime.datetime(2014, 6, 5, 16, 31, 39, tzinfo=datetime.timezone.utc)
MAC = "B000B4BA0AEE"
IP = "10.48.47.155"


def node(name: str, serial: int, bits: int = 1024, profile: Profile = Profile.SERVER):
    return make_certificate(cucm_subject(name), generate_rsa_key(bits), not_before=START, serial=serial,
                            profile=profile)


def etoken(name: str, serial: int, ca):
    return make_certificate(simple_subject(O="Cisco Systems, Inc.", OU="IPCBU", CN=name), generate_rsa_key(1024),
                            not_before=START, serial=serial, profile=Profile.ETOKEN, issuer=ca)


def record(identity, role, **options):
    return make_record(identity.certificate, role, dns_name="cucm-1051-a-pub", ip_address=IP, **options)


def write(folder: Path, files: dict[str, bytes]) -> None:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)


def main() -> None:
    pub = node("cucm-1051-a-pub", 0x70CAF64E090751B9DF22F49F754FC5BB)
    regenerated = node("cucm-1051-a-pub", 0x6B1D357B6841740B078FEE4A1813D5D6)
    tvs = node("cucm-1051-a-pub-tvs", 0x5EED)
    capf = node("CAPF-e41e7d87", 0x744B4999770496E799E91E81D3C8109B, profile=Profile.CAPF)
    big = node("cucm-1151-pub", 0x1151, bits=2048)
    ca = make_certificate(simple_subject(O="Cisco Systems", CN="Cisco Manufacturing CA"), generate_rsa_key(2048),
                          not_before=START, serial=0x6A6967B3000000000003, profile=Profile.CA)
    tokens = [etoken("SAST-ADN008580ef ", 0x83E9080000005545AF31, ca), etoken("SAST-ADN0054f4a5 ", 0x3A2A8E0000005545, ca)]
    ec = make_certificate(cucm_subject("cucm-pub-EC"), generate_ec_key(), not_before=START, serial=0x1234567)
    config = render_config([TvsMember(IP), TvsMember("10.48.47.156", 2445, 1)], device_name=f"SEP{MAC}",
                           capf_servers=("CAPF-e41e7d87",), call_managers=("cucm-1051-a-pub",))

    itl_records = [record(pub, Role.SAST), record(pub, Role.CCM_TFTP), record(tvs, Role.TVS), record(capf, Role.CAPF)]
    itl = build_trust_list(itl_records, pub, filename="ITLFile.tlv", timestamp=1425667513).data
    ctl = build_trust_list([record(pub, Role.SAST), record(pub, Role.CCM_TFTP), record(capf, Role.CAPF)], pub,
                           filename="CTLFile.tlv", timestamp=1425667514).data
    token_records = [make_record(t.certificate, Role.SAST, name_style=NameStyle.CTL_CLIENT, include_signature=False)
                     for t in tokens]
    etoken_ctl = build_trust_list(token_records + [record(pub, Role.CCM_TFTP), record(capf, Role.CAPF)], tokens[0],
                                  filename="CTLFile.tlv", timestamp=1402000000,
                                  signer_name_style=NameStyle.CTL_CLIENT).data
    ucm = Layout.USECALLMANAGER
    write(HERE / "corpus" / "tlv", {
        "cucm-itl.tlv": itl,
        "cucm-ctl-tokenless.tlv": ctl,
        "cucm-ctl-etoken.tlv": etoken_ctl,
        "cucm-ctl-sha512-2048.tlv": build_trust_list(
            [record(big, Role.SAST), record(big, Role.CCM_TFTP)], big, filename="CTLFile.tlv", timestamp=1500000000,
            digest="sha512").data,
        "cucm-ctl-non-secure.tlv": build_trust_list(
            [record(pub, Role.SAST), make_bare_record(Role.CCM_TFTP, dns_name="cucm-1051-a-pub", ip_address=IP)],
            pub, filename="CTLFile.tlv", timestamp=1425667515).data,
        "ucm-itl.tlv": build_trust_list(
            [make_record(pub.certificate, Role.SAST, layout=ucm), make_record(ec.certificate, Role.CCM_TFTP, layout=ucm),
             make_record(tvs.certificate, Role.TVS, layout=ucm)], pub, filename="ITLFile.tlv", timestamp=1600000000,
            layout=ucm, signer_version=(1, 1)).data,
        "ucm-ctl.tlv": build_trust_list(
            [make_record(pub.certificate, Role.SAST, layout=ucm), make_record(pub.certificate, Role.CCM_TFTP,
                                                                              layout=ucm)],
            pub, filename="CTLFile.tlv", timestamp=1600000001, layout=ucm).data,
        "config.cnf.xml.sgn": build_signed_file(config, pub, filename=f"SEP{MAC}.cnf.xml", timestamp=1425667516).data,
        "ucm-config.cnf.xml.sgn": build_signed_file(config, pub, filename=f"SEP{MAC}.cnf.xml", timestamp=1600000002,
                                                    layout=ucm).data,
    })

    write(HERE / "corpus" / "config", {
        "cucm.cnf.xml": config,
        "minimal.cnf.xml": b"<device><TVS><members><member priority=\"0\"><address>tvs</address></member></members>"
                           b"</TVS></device>",
        "declaration.cnf.xml": b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n" + config,
        "comments-cdata.cnf.xml": b"<!-- a comment --><device><?pi data?><deviceSecurityMode><![CDATA[2]]>"
                                  b"</deviceSecurityMode><capfList><capf><processNodeName>c&amp;d</processNodeName>"
                                  b"</capf></capfList></device>",
        "dtd.cnf.xml": b"<?xml version=\"1.0\"?><!DOCTYPE d [<!ENTITY a \"b\">]><device>&a;</device>",
        "nested.cnf.xml": b"<device>" + b"<a>" * 200 + b"<TVS><members><member><address>x</address></member>"
                          b"</members></TVS>" + b"</a>" * 200 + b"</device>",
        "member-without-address.cnf.xml": b"<device><TVS><members><member priority=\"1\"><port>2445</port></member>"
                                          b"</members></TVS></device>",
    })

    query = TvsMessage.query_request(1001, f"CP-8861-SEP{MAC}", "CN=ucm11pub.stormin.local;OU=IST;O=Stormin;"
                                     "L=Brisbane;ST=QLD;C=AU", "CN=stormin-WIN2012-CA",
                                     bytes.fromhex("24000000179479B8F124AC3F3B000000000017"))
    verify = TvsMessage.verification_request(1002, f"CP-7975-SEP{MAC}", pub.der)
    write(HERE / "corpus" / "tvs", {
        "query-request.bin": query.encode(),
        "verification-request.bin": verify.encode(),
        "query-answer.bin": TvsMessage.answer(query, 0, certificate=pub.der, roles=(0, 2), ttl=86400).encode(),
        "query-answer-not-found.bin": TvsMessage.answer(query, 1).encode(),
        "verification-answer.bin": TvsMessage.answer(verify, 0, roles=(0, 3), ttl=86400).encode(),
    })

    write(HERE / "corpus" / "capf", capf_frames(capf, ca))

    # The fuzz_phone target: installed lists, and new files behind the byte that picks the waiting phone.
    write(HERE / "phone_state", {
        "ctl.tlv": ctl, "itl.tlv": itl, "config.xml": config, "tvs-knows-1.der": pub.der,
        "tvs-knows-2.der": regenerated.der,
    })
    new_itl = build_trust_list(itl_records[:3], pub, filename="ITLFile.tlv", timestamp=1425667600).data
    itl_by_regenerated = build_trust_list([record(regenerated, Role.SAST), record(regenerated, Role.CCM_TFTP),
                                           record(tvs, Role.TVS)], regenerated, filename="ITLFile.tlv",
                                          timestamp=1425667601).data
    new_ctl = build_trust_list([record(pub, Role.SAST), record(pub, Role.CCM_TFTP)], pub, filename="CTLFile.tlv",
                               timestamp=1425667602).data
    new_config = render_config([TvsMember("10.48.47.157")], device_name=f"SEP{MAC}")
    write(HERE / "corpus" / "phone", {
        "0-first-ctl.bin": b"\x00" + ctl,
        "0-first-ctl-etoken.bin": b"\x00" + etoken_ctl,
        "1-itl-update.bin": b"\x01" + new_itl,
        "1-itl-by-regenerated.bin": b"\x01" + itl_by_regenerated,
        "2-ctl-update.bin": b"\x02" + new_ctl,
        "3-config.bin": b"\x03" + build_signed_file(new_config, pub, filename=f"SEP{MAC}.cnf.xml",
                                                     timestamp=1425667603).data,
        "3-config-by-regenerated.bin": b"\x03" + build_signed_file(new_config, regenerated,
                                                                   filename=f"SEP{MAC}.cnf.xml",
                                                                   timestamp=1425667604).data,
    })
    write_encconfig(config)


def write_encconfig(config: bytes) -> None:
    """The fuzz_encconfig corpus, and the TFTP certificate and phone key the target checks it with."""
    tftp = node("cucm-1051-a-pub", 0x70CAF64E090751B9DF22F49F754FC5BB)
    phone = make_certificate(simple_subject(CN=f"SEP{MAC}"), generate_rsa_key(1024), not_before=START, serial=0x5E,
                             profile=Profile.DEVICE, issuer=tftp)
    name = f"SEP{MAC}.cnf.xml.enc.sgn"
    write(HERE / "encconfig_state", {"tftp.der": tftp.der, "phone-key.pem": phone.private_key_pem()})
    write(HERE / "corpus" / "encconfig", {
        "sha1.enc.sgn": build_encrypted_config(config, tftp, phone.certificate, filename=name, timestamp=1425667520),
        "sha512.enc.sgn": build_encrypted_config(config, tftp, phone.certificate, filename=name, timestamp=1425667521,
                                                 digest="sha512"),
        "aligned.enc.sgn": build_encrypted_config(b"<device>" + b"y" * 15 + b"</device>", tftp, phone.certificate,
                                                  filename=name, timestamp=1425667522),
        "small.enc.sgn": build_encrypted_config(b"<device/>", tftp, phone.certificate, filename=name,
                                                timestamp=1425667523),
        "stub.cnf.xml.sgn": build_signed_file(
            build_stub(MAC, phone.der, capf_auth_mode=1, capf_servers=("CAPF-e41e7d87",)), tftp,
            filename=f"SEP{MAC}.cnf.xml", timestamp=1425667524).data,
    })


def capf_frames(capf, ca) -> dict[str, bytes]:
    """One session's frames of each CAPF command, as the lab's server and a phone send them."""
    device = f"SEP{MAC}"
    mic = make_certificate(simple_subject(O="Cisco Systems Inc.", OU="CTG", CN=f"CP-8861-{device}"),
                           generate_rsa_key(1024), not_before=START, serial=0x3C, profile=Profile.DEVICE, issuer=ca)
    data = auth_data(device, mic.der)
    sha2 = sign_auth_data(mic.private_key, data, "sha512")
    lsc = make_certificate(simple_subject(CN=f"CP-8861-{device}"), generate_ec_key(), not_before=START, serial=0x15C,
                           profile=Profile.DEVICE, issuer=capf)
    public_key = lsc.certificate.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)

    def frame(command: Command, **fields: object) -> bytes:
        return CapfMessage.build(command, 0x1A2B3C4D, **fields).encode()

    return {
        "auth-request.bin": frame(Command.AUTH_REQUEST, version=3, auth_type=0),
        "auth-response-password.bin": frame(Command.AUTH_RESPONSE, reason=1, version=3, device_name=device,
                                            password="123456"),
        "auth-response-certificate.bin": frame(
            Command.AUTH_RESPONSE, reason=1, version=3, device_name=device, password="", certificate_der=mic.der,
            signed_data=sign_auth_data(mic.private_key, data, "sha1"),
            sha2_signed_data=bytes([DigestCode.SHA512]) + len(sha2).to_bytes(2, "big") + sha2),
        "key-generate-request-rsa.bin": frame(Command.KEY_GENERATE_REQUEST, key_size=2048, key_type=KeyType.RSA),
        "key-generate-request-ec.bin": frame(Command.KEY_GENERATE_REQUEST, key_type=KeyType.EC, curve=Curve.P256),
        "key-generate-response.bin": frame(Command.KEY_GENERATE_RESPONSE, public_key=public_key),
        "store-request.bin": frame(Command.STORE_CERTIFICATE_REQUEST, certificate_type=1, certificate_der=lsc.der),
        "store-response.bin": frame(Command.STORE_CERTIFICATE_RESPONSE, reason=1),
        "fetch-response.bin": frame(Command.FETCH_CERTIFICATE_RESPONSE, reason=1, certificate_der=lsc.der),
        "delete-request.bin": frame(Command.DELETE_CERTIFICATE_REQUEST),
        "two-frames.bin": frame(Command.REQUEST_IN_PROGRESS) + frame(Command.END_SESSION, reason=1),
    }


if __name__ == "__main__":
    main()
