"""A phone's state folder under faults: damaged after the fact, or a save killed at any moment.

Loading gives the flash that was saved, whole, or a FlashStoreError that says
what is wrong; never a flash with a piece missing (a CTL that does not parse
counts as absent, and the next CTL would be taken on trust). The kill -9 of a
phone mid-boot is tests/test_flash.py; here the save itself is killed, with
state large enough that a kill lands inside it.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from minicluster import MAC, MiniCluster, TvsDouble, serve_files

from phone.device.phone import Phone
from phone.device.flash import FlashStore, FlashStoreError
from phone.firmware.machine import Flash
from phone.catalogue import get_model
from phone.firmware.trust import CachedCertificate

CONFIG = f"SEP{MAC}.cnf.xml.sgn"


@pytest.fixture
def saved(tmp_path) -> tuple[Path, Path, Flash]:
    """A state folder holding one generation with every kind of file."""
    cluster = MiniCluster(mixed_mode=True)
    files = cluster.files()
    flash = Flash(ctl=files[f"CTLSEP{MAC}.tlv"], itl=files[f"ITLSEP{MAC}.tlv"], config=cluster.config(),
                  config_name=CONFIG, tvs_cache=(CachedCertificate(cluster.tvs.der, frozenset({0, 2}), 1e9),))
    FlashStore(tmp_path).save(flash, model="CP-8861", device=f"SEP{MAC}")
    generation = tmp_path / (tmp_path / "CURRENT").read_text()
    assert FlashStore(tmp_path).load() == flash
    return tmp_path, generation, flash


def truncate(path: Path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


def flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def edit_meta(change: Callable[[dict], object]) -> Callable[[Path, Path], None]:
    def apply(state: Path, generation: Path) -> None:
        meta = json.loads((generation / "meta.json").read_text())
        result = change(meta)
        (generation / "meta.json").write_text(json.dumps(meta if result is None else result))

    return apply


def replace_cache(document: object) -> Callable[[Path, Path], None]:
    """tvs-cache.json rewritten, with meta.json's checksum made to match (a deliberate edit)."""

    def apply(state: Path, generation: Path) -> None:
        data = json.dumps(document).encode()
        (generation / "tvs-cache.json").write_bytes(data)
        edit_meta(lambda meta: meta["files"].__setitem__("tvs-cache.json", hashlib.sha256(data).hexdigest()))(
            state, generation)

    return apply


def swap_dir(name: str) -> Callable[[Path, Path], None]:
    def apply(state: Path, generation: Path) -> None:
        (generation / name).unlink()
        (generation / name).mkdir()

    return apply


CORRUPTIONS: dict[str, tuple[Callable[[Path, Path], None], str]] = {
    "CURRENT: binary junk": (lambda s, g: (s / "CURRENT").write_bytes(b"\xff\xfe\x00junk"), "not a flash generation"),
    "CURRENT: empty": (lambda s, g: (s / "CURRENT").write_bytes(b""), "not a flash generation"),
    "CURRENT: a path out": (lambda s, g: (s / "CURRENT").write_text("../../etc"), "not a flash generation"),
    "CURRENT: a megabyte of text": (lambda s, g: (s / "CURRENT").write_text("gen-" * 250_000),
                                    "not a flash generation"),
    "CURRENT: a folder": (lambda s, g: ((s / "CURRENT").unlink(), (s / "CURRENT").mkdir()),
                          r"CURRENT: not a regular file \(a folder\)"),
    "generation missing": (lambda s, g: shutil.rmtree(g), "not a flash generation"),
    "generation is a file": (lambda s, g: (shutil.rmtree(g), g.write_text("x")), "not a flash generation"),
    "CTL truncated": (lambda s, g: truncate(g / "CTLFile.tlv", 100), "CTLFile.tlv: 100 bytes whose SHA-256"),
    "CTL emptied": (lambda s, g: truncate(g / "CTLFile.tlv", 0), "CTLFile.tlv: 0 bytes whose SHA-256"),
    "CTL one bit flipped": (lambda s, g: flip(g / "CTLFile.tlv"), "CTLFile.tlv: .* SHA-256 is not the one saved"),
    "CTL missing": (lambda s, g: (g / "CTLFile.tlv").unlink(), "CTLFile.tlv: missing"),
    "CTL a folder": (swap_dir("CTLFile.tlv"), r"CTLFile.tlv: not a regular file \(a folder\)"),
    "ITL truncated": (lambda s, g: truncate(g / "ITLFile.tlv", 1000), "ITLFile.tlv: 1000 bytes"),
    "ITL missing": (lambda s, g: (g / "ITLFile.tlv").unlink(), "ITLFile.tlv: missing"),
    "config truncated": (lambda s, g: truncate(g / CONFIG, 10), f"{CONFIG}: 10 bytes"),
    "config missing": (lambda s, g: (g / CONFIG).unlink(), f"{CONFIG}: missing"),
    "TVS cache truncated": (lambda s, g: truncate(g / "tvs-cache.json", 5), "tvs-cache.json: 5 bytes"),
    "meta.json missing": (lambda s, g: (g / "meta.json").unlink(), "meta.json: missing"),
    "meta.json truncated": (lambda s, g: truncate(g / "meta.json", 7), "meta.json: unreadable"),
    "meta.json a list": (edit_meta(lambda meta: []), "meta.json: missing, or without the list"),
    "meta.json without checksums": (edit_meta(lambda meta: meta.pop("files")), "without the list of the files"),
    "meta.json config name leaves the folder": (edit_meta(lambda meta: meta.update(config_name="../../x")),
                                                "names the configuration '../../x'"),
    "meta.json config name absolute": (edit_meta(lambda meta: meta.update(config_name="/etc/hostname")),
                                       "names the configuration '/etc/hostname'"),
    "meta.json config name a number": (edit_meta(lambda meta: meta.update(config_name=5)),
                                       "names the configuration '5'"),
    "cache: not a list": (replace_cache({"a": 1}), "not a list of cached certificates"),
    "cache: entry without certificate": (replace_cache([{"roles": [0], "expires": 1}]),
                                         "not a list of cached certificates"),
    "cache: certificate not base64": (replace_cache([{"certificate": "!!!", "roles": [0], "expires": 1}]),
                                      "not a list of cached certificates"),
    "cache: roles not a list": (replace_cache([{"certificate": "AA==", "roles": 5, "expires": 1}]),
                                "not a list of cached certificates"),
    "cache: expiry not a number": (replace_cache([{"certificate": "AA==", "roles": [0], "expires": "x"}]),
                                   "not a list of cached certificates"),
}


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_a_damaged_state_folder_is_a_clear_error_never_a_partial_flash(saved, corruption):
    state, generation, _ = saved
    damage, expected = CORRUPTIONS[corruption]
    damage(state, generation)
    with pytest.raises(FlashStoreError, match=expected) as caught:
        FlashStore(state).load()
    message = str(caught.value)
    assert "\n" not in message and len(message) < 400


def test_a_trust_list_that_appears_in_a_generation_after_the_save_is_refused(tmp_path):
    FlashStore(tmp_path).save(Flash(itl=b"itl"))
    generation = tmp_path / (tmp_path / "CURRENT").read_text()
    (generation / "CTLFile.tlv").write_bytes(b"a CTL slipped in")
    with pytest.raises(FlashStoreError, match="CTLFile.tlv: a file the save did not write"):
        FlashStore(tmp_path).load()


def test_a_marker_with_a_newline_still_names_its_generation(saved):
    state, generation, flash = saved
    (state / "CURRENT").write_text(generation.name + "\n")
    assert FlashStore(state).load() == flash


def test_a_phone_on_a_damaged_folder_refuses_to_start_and_leaves_the_folder_as_it_was(saved):
    state, generation, _ = saved
    truncate(generation / "CTLFile.tlv", 100)
    before = {path.name: path.read_bytes() for path in generation.iterdir()}
    cluster = MiniCluster(mixed_mode=True)
    with pytest.raises(FlashStoreError, match="the flash generation is damaged"):
        Phone(get_model("CP-8861"), MAC, fetch=serve_files(cluster.files()), ask_tvs=TvsDouble(cluster),
              store=FlashStore(state))
    assert {path.name: path.read_bytes() for path in generation.iterdir()} == before


@pytest.mark.parametrize("command", [["boot", "--model", "CP-8861", "--mac", MAC, "--tftp", "127.0.0.1:9"],
                                     ["show"], ["erase"]])
def test_the_command_line_reports_a_damaged_folder_in_one_line(saved, command):
    state, generation, _ = saved
    flip(generation / "ITLFile.tlv")
    done = subprocess.run([sys.executable, "-m", "phone", "phone", *command, "--state", str(state)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "ITLFile.tlv" in lines[0] and "damaged" in lines[0], done.stderr


# -- a hostile state folder: links, FIFOs, devices ----------------------------------------


def test_a_symlinked_marker_temp_file_is_replaced_not_written_through(saved, tmp_path_factory):
    state, _, flash = saved
    outside = tmp_path_factory.mktemp("outside") / "precious.txt"
    outside.write_text("keep me")
    (state / ".CURRENT.tmp").symlink_to(outside)
    FlashStore(state).save(Flash(itl=b"itl2"))
    assert outside.read_text() == "keep me"
    assert not (state / "CURRENT").is_symlink()
    assert FlashStore(state).load() == Flash(itl=b"itl2")


def _fifo(path: Path) -> None:
    path.unlink(missing_ok=True)
    os.mkfifo(path)


def _link_to_dev_zero(path: Path) -> None:
    path.unlink(missing_ok=True)
    path.symlink_to("/dev/zero")


HOSTILE_ENTRIES = {
    "CURRENT a FIFO": (lambda s, g: _fifo(s / "CURRENT"), "CURRENT: not a regular file"),
    "CURRENT linked to /dev/zero": (lambda s, g: _link_to_dev_zero(s / "CURRENT"), "CURRENT: a symbolic link"),
    "ITL linked to /dev/zero": (lambda s, g: _link_to_dev_zero(g / "ITLFile.tlv"), "ITLFile.tlv: a symbolic link"),
    "meta.json linked to /dev/zero": (lambda s, g: _link_to_dev_zero(g / "meta.json"), "meta.json: a symbolic link"),
    "meta.json a FIFO": (lambda s, g: _fifo(g / "meta.json"), "meta.json: not a regular file"),
    "ITL of 5 MB": (lambda s, g: (g / "ITLFile.tlv").write_bytes(bytes(5 << 20)), "ITLFile.tlv: more than"),
}


@pytest.mark.timeout(20)
@pytest.mark.parametrize("entry", list(HOSTILE_ENTRIES))
def test_a_link_fifo_or_endless_file_in_the_state_folder_is_a_clear_error_not_a_hang(saved, entry):
    state, generation, _ = saved
    plant, expected = HOSTILE_ENTRIES[entry]
    plant(state, generation)
    with pytest.raises(FlashStoreError, match=expected) as caught:
        FlashStore(state).load()
    assert "\n" not in str(caught.value)


@pytest.mark.timeout(20)
def test_phone_show_on_a_fifo_marker_is_one_line_not_a_hang(saved):
    state, _, _ = saved
    _fifo(state / "CURRENT")
    done = subprocess.run([sys.executable, "-m", "phone", "phone", "show", "--state", str(state)],
                          capture_output=True, text=True, timeout=15)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "CURRENT: not a regular file" in done.stderr


# -- kill -9 during FlashStore.save ---------------------------------------------------------

#: Two large flashes, A and B (a 65 KB ITL, a 20 KB CTL, a 40 KB config, 300 cached certificates:
#: 0.5 MB in all). Source text, because the child process that saves them builds them too; the
#: trust lists (real, signed: a flash keeps them parsed) are made once here and read from ``lists``.
_BIG_FLASH = textwrap.dedent("""
    import hashlib
    from pathlib import Path
    from phone.firmware.machine import Flash
    from phone.firmware.trust import CachedCertificate

    def big_flash(tag, lists):
        def blob(name, size):
            return (hashlib.sha256((tag + name).encode()).digest() * (size // 32 + 1))[:size]
        cache = tuple(CachedCertificate(blob(f"cert{i}", 900), frozenset({0, i % 4}), 1e9 + i) for i in range(300))
        return Flash(ctl=Path(lists, "ctl" + tag).read_bytes(), itl=Path(lists, "itl" + tag).read_bytes(),
                     config=blob("cfg", 40_000), config_name=f"SEP{tag}.cnf.xml", tvs_cache=cache)
""")

_SAVER = _BIG_FLASH + textwrap.dedent("""
    import sys
    from phone.device.flash import FlashStore
    store = FlashStore(sys.argv[1])
    versions = [big_flash("A", sys.argv[2]), big_flash("B", sys.argv[2])]
    store.save(versions[0], model="CP-8861")
    print("ready", flush=True)
    turn = 0
    while True:  # every moment is inside a save or between two
        turn += 1
        store.save(versions[turn % 2], model="CP-8861")
""")


def _big_list(tag: str, role: int, size: int) -> bytes:
    """A signed trust list of about ``size`` bytes (one record per node certificate)."""
    from conftest import SEED_TIME, node_identity, rsa_key

    from phone.wire.certs import cucm_subject, make_certificate
    from phone.wire.signing import build_trust_list, make_record
    from phone.wire.tlv import Role

    signer = node_identity("cucm-big")
    key = rsa_key(1024, "big-records")
    records = [make_record(signer.certificate, Role.SAST)]
    while sum(len(record.encode()) for record in records) < size:
        node = make_certificate(cucm_subject(f"big-{tag}-{len(records)}"), key, not_before=SEED_TIME,
                                serial=0x3000 + len(records))
        records.append(make_record(node.certificate, role))
    return build_trust_list(records, signer, filename=f"{tag}.tlv", timestamp=1).data


def _write_big_lists(folder: Path) -> Path:
    from phone.wire.tlv import Role

    folder.mkdir()
    for tag in ("A", "B"):
        (folder / f"ctl{tag}").write_bytes(_big_list(f"ctl{tag}", Role.CCM_TFTP, 20_000))
        (folder / f"itl{tag}").write_bytes(_big_list(f"itl{tag}", Role.TVS, 65_000))
    return folder


@pytest.mark.slow
def test_kill_9_at_random_moments_of_a_save_leaves_the_old_or_the_new_flash(tmp_path):
    namespace: dict = {}
    exec(_BIG_FLASH, namespace)  # noqa: S102 - the same builder the child runs
    lists = _write_big_lists(tmp_path / "lists")
    versions = [namespace["big_flash"]("A", lists), namespace["big_flash"]("B", lists)]
    assert all(flash.ctl is not None and flash.itl is not None for flash in versions)
    chooser = random.Random(20240608)
    kills, interrupted = 20, 0
    for round_number in range(kills):
        state = tmp_path / f"state{round_number}"
        child = subprocess.Popen([sys.executable, "-c", _SAVER, str(state), str(lists)], stdout=subprocess.PIPE,
                                 text=True)
        assert child.stdout.readline().strip() == "ready"
        time.sleep(chooser.uniform(0.0, 0.15))
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        child.stdout.close()
        # More than CURRENT and one generation: the kill landed inside a save.
        interrupted += len([p for p in state.iterdir() if p.name != "CURRENT"]) > 1
        loaded = FlashStore(state).load()
        assert loaded in versions, round_number
        FlashStore(state).save(loaded)  # the next save clears what the killed one left
        assert sorted(p.name for p in state.iterdir()) == ["CURRENT", (state / "CURRENT").read_text()]
        assert FlashStore(state).load() == loaded
    assert interrupted >= kills // 2, interrupted  # measured: 30 of 30 kills landed inside a save
