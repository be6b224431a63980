"""atheris fuzz target: files of any shape fed to the phone's trust state machine (docs/phone.md).

The first byte picks one of four waiting CP-8861 phones built from
fuzz/phone_state/ (written by make_corpus.py), the rest is the file it gets:

    0  empty phone, waiting for its CTL (the first list is taken on trust if it verifies)
    1  phone holding the ITL (with a TVS record) and a config, waiting for a new ITL
    2  phone holding the CTL and the ITL, waiting for a new CTL
    3  phone holding the ITL, waiting for its signed configuration

TVS questions are answered as CUCM would for the two certificates in
phone_state/tvs-knows-*.der (roles SAST and CCM+TFTP), "not found" otherwise.

Bugs: any exception out of the machine, and any file the phone installs whose
signed content and signature are not exactly those of a file it was seeded
with (fuzz/corpus/phone, phone_state): the fuzzer holds no key, so anything
else it gets accepted is a forgery. Moving the SIGNATURE element within the
header keeps both, and is the one change that may be accepted.

    .venv/bin/python fuzz/fuzz_phone.py fuzz/corpus/phone -max_total_time=60
"""

from __future__ import annotations

import sys
from pathlib import Path

import atheris

with atheris.instrument_imports(include=["phone"]):
    from phone.wire.certs import load_certificate
    from phone.errors import TrustListFormatError
    from phone.firmware.machine import AskTvs, Booted, Fetch, FileFetched, FileMissing, Flash, Install, PhoneMachine, TvsAnswered
    from phone.catalogue import get_model
    from phone.wire.names import serial_to_bytes
    from phone.wire.tlv import FileKind, TrustList
    from phone.firmware.trust import Item

HERE = Path(__file__).parent
STATE = HERE / "phone_state"
MAC = "B000B4BA0AEE"
NOW = 1_700_000_000.0
CTL, ITL, SGN = f"CTLSEP{MAC}.tlv", f"ITLSEP{MAC}.tlv", f"SEP{MAC}.cnf.xml.sgn"


def _state(name: str) -> bytes:
    return (STATE / name).read_bytes()


_KNOWN = {}
for _path in sorted(STATE.glob("tvs-knows-*.der")):
    _der = _path.read_bytes()
    _KNOWN[serial_to_bytes(load_certificate(_der).serial_number)] = _der


def ask_tvs(ask: AskTvs) -> TvsAnswered:
    if ask.message_type == 3:
        certificate = _KNOWN.get(ask.serial or b"")
    else:
        certificate = ask.certificate if ask.certificate in _KNOWN.values() else None
    if certificate is None:
        return TvsAnswered("127.0.0.1:2445", status=1)
    return TvsAnswered("127.0.0.1:2445", status=0, roles=(0, 2), ttl=86400,
                       certificate=certificate if ask.message_type == 3 else None)


def _waiting(flash: Flash, name: str, served: dict[str, bytes]) -> PhoneMachine:
    machine, effects = PhoneMachine(get_model("CP-8861"), MAC, flash).handle(Booted(), NOW)
    while True:
        request = next(effect for effect in effects if isinstance(effect, Fetch))
        if request.name == name:
            return machine
        event = FileFetched(request.name, served[request.name]) if request.name in served else FileMissing(request.name)
        machine, effects = machine.handle(event, NOW)


_CONFIG = {"config": _state("config.xml"), "config_name": SGN}
#: selector -> (waiting phone, file name, what it installs, how the machine parses the file)
SITUATIONS = {
    0: (_waiting(Flash(), CTL, {}), CTL, Item.CTL, None),
    1: (_waiting(Flash(itl=_state("itl.tlv"), **_CONFIG), ITL, {}), ITL, Item.ITL, None),
    2: (_waiting(Flash(ctl=_state("ctl.tlv"), itl=_state("itl.tlv"), **_CONFIG), CTL, {}), CTL, Item.CTL, None),
    3: (_waiting(Flash(itl=_state("itl.tlv"), **_CONFIG), SGN, {ITL: _state("itl.tlv")}), SGN, Item.CONFIG,
        FileKind.SGN),
}


def _signed(data: bytes, kind: FileKind | None) -> tuple[bytes, bytes] | None:
    try:
        parsed = TrustList.from_bytes(data, kind=kind)
    except TrustListFormatError:
        return None
    return parsed.signed_bytes(), parsed.header.signature


GENUINE = {_signed(_state(name), None) for name in ("ctl.tlv", "itl.tlv")}
for _seed in sorted((HERE / "corpus" / "phone").iterdir()):
    _data = _seed.read_bytes()
    GENUINE.add(_signed(_data[1:], SITUATIONS[_data[0]][3]))
GENUINE.discard(None)


def test_one_input(data: bytes) -> None:
    if not data or data[0] not in SITUATIONS:
        return
    machine, name, item, kind = SITUATIONS[data[0]]
    file = data[1:]
    machine, effects = machine.handle(FileFetched(name, file), NOW)
    installed = []
    while True:
        installed += [effect for effect in effects if isinstance(effect, Install) and effect.item is item]
        ask = next((effect for effect in effects if isinstance(effect, AskTvs)), None)
        if ask is None:
            break
        machine, effects = machine.handle(ask_tvs(ask), NOW)
    if installed and _signed(file, kind) not in GENUINE:
        raise AssertionError(f"situation {data[0]}: a forged {item.value} was accepted: {file.hex()}")


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
