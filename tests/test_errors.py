"""The error split: what a user asked wrongly is a LocalError, what a file or a peer sent wrongly is a
RemoteError, and no plain built-in exception is raised where it could leave its room.

The command line prints a PhonetrustError as one line with its exit code; a ValueError that escapes
instead becomes "internal error" (exit 3), which is why the raises themselves are checked here.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import phone
from phone.errors import (
    CertificateError,
    CertificateRequestError,
    LocalError,
    LocalProtocolError,
    PhonetrustError,
    RemoteError,
    UnknownModelError,
    UsageError,
)

PACKAGE = Path(phone.__file__).parent
BUILTINS = {"ValueError", "KeyError", "RuntimeError", "TypeError"}

#: Plain built-in raises that stay, per (module, exception): how many, and why none can leave its room.
ALLOWED = {
    ("phone/lab/lab.py", "RuntimeError"): (
        1, "a lab read turning into an operation inside one lock: a bug in the lab, not reachable from input"),
    ("phone/device/boot.py", "RuntimeError"): (
        1, "the effect queue ran dry without BootFinished: a bug in the machine, not reachable from input"),
    ("phone/firmware/models.py", "KeyError"): (
        1, "PhoneModel.message() with an event outside MESSAGE_EVENTS: the code's own constants, a caller bug"),
    ("phone/lab/servers/processes.py", "ValueError"): (
        2, "an unknown message from the parent process: caught in the same function and reported to the parent"),
}


def builtin_raises() -> dict[tuple[str, str], list[int]]:
    """Every ``raise ValueError/KeyError/RuntimeError/TypeError[(...)]`` in the package, by module."""
    found: dict[tuple[str, str], list[int]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.Raise) or node.exc is None:
                continue
            raised = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            if isinstance(raised, ast.Name) and raised.id in BUILTINS:
                where = path.relative_to(PACKAGE.parent).as_posix()
                found.setdefault((where, raised.id), []).append(node.lineno)
    return found


def test_no_plain_builtin_exception_is_raised_outside_the_allow_list():
    found = builtin_raises()
    unexpected = {key: lines for key, lines in found.items() if len(lines) != ALLOWED.get(key, (0, ""))[0]}
    assert not unexpected, (
        "raise a phone.errors exception instead (LocalError: the caller asked wrongly; RemoteError: a file or "
        f"peer sent something wrong), or add the raise to ALLOWED with the reason it cannot leave its room: "
        f"{unexpected}")


def project_exceptions() -> list[type[PhonetrustError]]:
    classes = set()
    for module in pkgutil.walk_packages(phone.__path__, "phone."):
        if module.name in ("phone.__main__", "phone.pytest_plugin"):
            continue
        for _, value in inspect.getmembers(importlib.import_module(module.name), inspect.isclass):
            if issubclass(value, PhonetrustError) and value not in (PhonetrustError, LocalError, RemoteError):
                classes.add(value)
    return sorted(classes, key=lambda cls: f"{cls.__module__}.{cls.__qualname__}")


def test_every_project_exception_is_either_local_or_remote():
    classes = project_exceptions()
    assert len(classes) >= 15  # the walk found the package's exceptions, not an empty list
    both_or_neither = [cls.__qualname__ for cls in classes
                       if issubclass(cls, LocalError) == issubclass(cls, RemoteError)]
    assert not both_or_neither


def test_exit_codes_are_kept():
    from phone.lab.state import OperationRefused
    assert (PhonetrustError.exit_code, LocalError.exit_code, RemoteError.exit_code) == (2, 2, 2)
    assert OperationRefused.exit_code == 1 and issubclass(OperationRefused, LocalError)


# --- what a file, a server or a peer sent ----------------------------------------------------


def _trust_list():
    from phone.wire.tlv import TrustList
    TrustList.from_bytes(b"\x01\x00\x02\x01\x02garbage")


def _certificate():
    from phone.wire.certs import load_certificate
    load_certificate(b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")


def _negative_serial():
    from phone.wire.names import serial_to_bytes
    serial_to_bytes(-1)


def _config():
    from phone.wire.config import PhoneConfig
    PhoneConfig.from_bytes(b"<device><unclosed>")


def _encrypted_config():
    from conftest import node_identity

    from phone.wire.encconfig import EncryptedConfig, build_encrypted_config, decrypt
    signer, phone = node_identity("cucm-errors-tftp"), node_identity("SEP-errors-phone")
    data = build_encrypted_config(b"<device/>", signer, phone.certificate, filename="a.enc.sgn", timestamp=1)
    decrypt(EncryptedConfig.from_bytes(data), signer.private_key)  # wrapped to the phone, opened by another key


def _tvs_frame():
    from phone.wire.tvs import TvsMessage
    TvsMessage.decode(b"\x01\x02\x03")


def _tftp_request():
    from phone.lab.servers.tftp import parse_request
    parse_request(b"\x00\x01CTLFile.tlv")  # no NUL after the file name


def _tftp_name(tmp_path: Path):
    from phone.lab.servers.files import FileSource
    FileSource(tmp_path, None).lookup("../etc/passwd", ("127.0.0.1", 50000))


def _console_log():
    from phone.console.parse import decode_log
    decode_log(b"12:00:00 \x00\x01\x02")


def _lab_description():
    from phone.lab.state import LabState
    LabState.from_json({"format": "something else"})


def _flash(tmp_path: Path):
    from phone.device.flash import FlashStore
    (tmp_path / "CURRENT").write_text("../../elsewhere")
    FlashStore(tmp_path).load()


@pytest.mark.parametrize("bad_input", [_trust_list, _certificate, _negative_serial, _config, _encrypted_config, _tvs_frame,
                                       _tftp_request, _tftp_name, _console_log, _lab_description, _flash])
def test_bad_input_from_a_file_or_peer_is_a_remote_error(bad_input, tmp_path):
    with pytest.raises(RemoteError) as caught:
        bad_input(tmp_path) if "tmp_path" in inspect.signature(bad_input).parameters else bad_input()
    assert not isinstance(caught.value, LocalError)
    assert str(caught.value)  # a message to print


# --- what our caller or user asked for -------------------------------------------------------


def _unknown_model():
    from phone.catalogue import get_model
    get_model("CP-0000")


def _role_name():
    from phone.wire.tlv import parse_role
    parse_role("PHONE")


def _tvs_role():
    from phone.lab.tvs_store import parse_tvs_role
    parse_tvs_role("256")


def _setting():
    from phone.firmware.settings import TrustSettings
    TrustSettings.from_mapping({"first_list_requires_own_signature": "yes"})


def _key_size():
    from phone.wire.certs import generate_rsa_key
    generate_rsa_key(1000)


def _oversized_element():
    from phone.wire.tlv import Element, RecordTag
    Element(RecordTag.CERTIFICATE, b"\x00" * 0x10000).encode()


def _machine_event():
    from phone.firmware.machine import FileMissing, PhoneMachine
    from phone.catalogue import get_model
    PhoneMachine(get_model("CP-7965"), "B000B4BA0AEE").handle(FileMissing("CTLFile.tlv"), 0.0)


def _lab_size(tmp_path: Path):
    from phone.lab.lab import Lab
    Lab.create(tmp_path / "lab", nodes=9)


def _scenario_file(tmp_path: Path):
    from phone.scenario.definition import load_scenario
    path = tmp_path / "broken.toml"
    path.write_text("name = [unclosed\n")
    load_scenario(path)


def _model_file(tmp_path: Path):
    from phone.catalogue import read_model_file
    path = tmp_path / "7900.toml"
    path.write_text("family = 7900\n")
    read_model_file(path)


@pytest.mark.parametrize("bad_request", [_unknown_model, _role_name, _tvs_role, _setting, _key_size,
                                         _oversized_element, _machine_event, _lab_size, _scenario_file,
                                         _model_file])
def test_an_impossible_request_is_a_local_error(bad_request, tmp_path):
    with pytest.raises(LocalError) as caught:
        bad_request(tmp_path) if "tmp_path" in inspect.signature(bad_request).parameters else bad_request()
    assert not isinstance(caught.value, RemoteError)
    assert str(caught.value)


def test_one_certificate_name_per_kind_of_fault():
    """Loading a certificate someone sent and asking to make an impossible one are different faults."""
    assert issubclass(CertificateError, RemoteError) and issubclass(CertificateRequestError, LocalError)
    assert not issubclass(CertificateRequestError, CertificateError)


def test_the_machine_refuses_events_out_of_step_with_a_local_protocol_error():
    from phone.firmware.machine import MachineError
    with pytest.raises(LocalProtocolError, match="while off"):
        _machine_event()
    assert issubclass(MachineError, LocalProtocolError)


def test_local_errors_keep_their_specific_classes():
    with pytest.raises(UnknownModelError):
        _unknown_model()
    with pytest.raises(UsageError, match="unknown role"):
        _role_name()
