"""`phonetrust phone boot`: what it waits for, its deadline, exit 3 when nothing answered, whose flash it boots."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time

import pytest

from phone.cli import build_parser, main
from phone.device.flash import FlashStore
from phone.firmware.machine import Flash
from phone.lab.servers.tftp import TftpFileServer

MAC = "B000B4BA0AEE"


def boot(capsys, *extra: str) -> tuple[int, str, str]:
    # TFTP only unless a test says otherwise: whatever listens on this host's port 6970 stays out of it.
    if "--http-port" not in extra:
        extra = ("--http-port", "0", *extra)
    code = main(["phone", "boot", "--model", "CP-8861", "--mac", MAC, *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def closed_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_server_that_answers_not_found_is_reachable_and_the_boot_exits_0(tmp_path, capsys):
    with TftpFileServer(None, lambda name, client: None) as port:
        code, out, err = boot(capsys, "--tftp", f"127.0.0.1:{port}", "--state", str(tmp_path / "phone"))
    assert code == 0, err
    assert f"CTLSEP{MAC}.tlv" in out and "not_found" in out
    assert "nothing reachable" not in err


def test_nothing_listening_exits_3_after_printing_the_report(tmp_path, capsys):
    port = closed_udp_port()
    code, out, err = boot(capsys, "--tftp", f"127.0.0.1:{port}", "--state", str(tmp_path / "phone"),
                          "--deadline", "0.5")
    assert code == 3
    assert out.startswith(f"CP-8861 SEP{MAC} booted against TFTP 127.0.0.1:{port}")
    assert err.splitlines()[-1].startswith(f"phonetrust: nothing reachable: TFTP 127.0.0.1:{port} answered none")


def test_an_unresolvable_server_exits_3_in_one_line_without_a_boot(tmp_path, capsys):
    code, out, err = boot(capsys, "--tftp", "tftp.invalid", "--state", str(tmp_path / "phone"))
    assert (code, out) == (3, "")
    assert err.startswith("phonetrust: cannot resolve the TFTP server 'tftp.invalid'") and err.count("\n") == 1


def test_a_silent_server_is_named_while_waited_for_and_the_deadline_ends_the_boot(tmp_path, capsys):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        port = silent.getsockname()[1]
        started = time.monotonic()
        code, out, err = boot(capsys, "--tftp", f"127.0.0.1:{port}", "--state", str(tmp_path / "phone"),
                              "--deadline", "1.5")
        took = time.monotonic() - started
    assert code == 3
    assert took < 10  # not the model's 4 waits of 5 s for each of three files
    lines = err.splitlines()
    assert lines[0] == (f"phonetrust: waiting for TFTP 127.0.0.1:{port} to send CTLSEP{MAC}.tlv: attempt 1 of 4, "
                        "5 s each")
    assert f"phonetrust: TFTP 127.0.0.1:{port}: not asking for ITLSEP{MAC}.tlv: the 1.5 s deadline" in err
    assert "not asked: the 1.5 s deadline had passed" in out


def test_an_http_server_that_drips_is_held_to_the_same_deadline(tmp_path, capsys):
    stop = threading.Event()
    listener = socket.create_server(("127.0.0.1", 0))

    def drip() -> None:
        listener.settimeout(0.1)
        held = []
        while not stop.is_set():
            with contextlib.suppress(OSError):
                connection, _ = listener.accept()
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
                held.append(connection)
            for connection in held:
                with contextlib.suppress(OSError):
                    connection.send(b"a")
        for connection in held:
            connection.close()

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    try:
        started = time.monotonic()
        _, out, _ = boot(capsys, "--tftp", f"127.0.0.1:{closed_udp_port()}", "--state", str(tmp_path / "phone"),
                            "--http-port", str(listener.getsockname()[1]), "--deadline", "1.5", "--json")
        took = time.monotonic() - started
    finally:
        stop.set()
        thread.join(5)
        listener.close()
    assert took < 10  # the first boot issues a MIC too; the deadline alone is what the reasons below pin
    files = json.loads(out)["files"]
    assert [(entry["result"], entry["reason"]) for entry in files] == [
        ("failed", "not asked: the 1.5 s deadline had passed")] * len(files)


def test_booting_another_phones_flash_is_refused_unless_forced(tmp_path, capsys):
    state = tmp_path / "phone"
    FlashStore(state).save(Flash(), model="CP-8861", device=f"SEP{MAC}")
    port = closed_udp_port()
    code, out, err = main(["phone", "boot", "--model", "CP-7975", "--mac", MAC, "--tftp", f"127.0.0.1:{port}",
                           "--state", str(state)]), *capsys.readouterr()
    assert (code, out) == (2, "")
    assert err == (f"phonetrust: {state} holds the flash of CP-8861 SEP{MAC}, not of CP-7975 SEP{MAC}: "
                   "give this phone its own --state (or --force to boot it from that flash)\n")
    code, out, _ = main(["phone", "boot", "--model", "CP-7975", "--mac", MAC, "--tftp", f"127.0.0.1:{port}",
                         "--state", str(state), "--force", "--deadline", "0.5"]), *capsys.readouterr()
    assert code == 3 and out.startswith(f"CP-7975 SEP{MAC} booted against")


def test_boot_help_documents_the_exit_statuses(capsys):
    with pytest.raises(SystemExit):
        main(["phone", "boot", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "Exit status: 0 the boot ran to its end" in text and "3 nothing was reachable" in text
    assert "--deadline SECONDS" in text


@pytest.mark.parametrize("action", ["boot", "erase", "factory-reset", "show"])
def test_every_phone_option_is_described_in_help(action):
    phone = next(a for a in build_parser()._subparsers._group_actions[0].choices["phone"]._actions
                 if a.dest == "phone_command")
    for option in phone.choices[action]._actions:
        assert option.help, f"phone {action} {option.option_strings} has no description"
