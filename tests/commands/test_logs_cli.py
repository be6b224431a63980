"""``phonetrust logs parse|check|diff`` as DESIGN.md describes them."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from phone.cli import main

REAL = Path(__file__).resolve().parents[2] / "logs" / "real"
KEYS = ["line", "dialect", "seq", "level", "date", "time", "pid", "tid", "process", "message"]


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_parse_json_prints_one_object_per_entry_with_the_contract_keys(capsys):
    code, out, _ = run(capsys, "logs", "parse", "--json", str(REAL / "s2-7975-tvs-etoken.as-published.log"))
    objects = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and len(objects) == 20
    assert all(list(o) == KEYS for o in objects)
    assert objects[0] == {
        "line": 4, "dialect": "java79xx", "seq": 8074, "level": "NOT", "date": None,
        "time": "23:00:22.335499", "pid": None, "tid": None, "process": "SECD",
        "message": "setupSocketToTvsProxy: Connected to TVS proxy server",
    }


def test_parse_json_gives_unread_lines_dialect_null_and_raw_text(capsys, tmp_path):
    path = write(tmp_path, "x.log", "admin: show ctl\n")
    _, out, _ = run(capsys, "logs", "parse", "--json", path)
    assert json.loads(out) == dict.fromkeys(KEYS) | {"line": 1, "message": "admin: show ctl"}


def test_parse_without_json_prints_an_aligned_table(capsys):
    code, out, _ = run(capsys, "logs", "parse", str(REAL / "s1i-8861-itl-verified.log"))
    header, first, *_ = out.splitlines()
    assert code == 0
    assert header.split() == ["LINE", "DIALECT", "SEQ", "LEVEL", "DATE", "TIME", "PID:TID", "PROCESS", "MESSAGE"]
    assert first.split()[:7] == ["4", "enterprise", "3287", "NOT", "Nov", "29", "06:34:00.499372"]
    assert header.index("MESSAGE") == first.index("Hashes match")


def test_parse_reads_standard_input_for_dash(capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"17:21:51.831 |   debug tvsHandleQueryCertReq\n")))
    _, out, _ = run(capsys, "logs", "parse", "--json", "-")
    assert json.loads(out)["message"] == "tvsHandleQueryCertReq"


def test_parse_unwrap_joins_a_wrapped_web_copy(capsys):
    _, out, _ = run(capsys, "logs", "parse", "--json", "--unwrap", str(REAL / "seed-s2-7975-phone-request.wrapped.log"))
    assert json.loads(out.splitlines()[-1])["message"] == "tvsReqFlushTvsCertCache: Sent Request to TVS proxy, len: 3708"


@pytest.mark.parametrize("name", sorted(p.name for p in REAL.glob("s[0-9]*.log")))
def test_check_passes_every_reference_file(capsys, name):
    assert run(capsys, "logs", "check", str(REAL / name))[0] == 0


def test_check_lists_the_lines_no_dialect_reads_and_exits_1(capsys, tmp_path):
    path = write(tmp_path, "x.log", "admin:\n8074: NOT 23:00:22.335499 SECD: x\n\n// a comment\n8075 garbage\n")
    code, out, err = run(capsys, "logs", "check", path)
    assert code == 1
    assert out.splitlines() == [f"{path}:1: no dialect reads: admin:", f"{path}:5: no dialect reads: 8075 garbage"]
    assert "2 line(s)" in err


def test_check_points_at_the_entry_a_wrapped_fragment_continues(capsys):
    path = str(REAL / "seed-s2-7975-phone-request.wrapped.log")
    code, out, _ = run(capsys, "logs", "check", path)
    assert code == 1 and out.strip().endswith("len: 3708  (continues the entry of line 5? try --unwrap)")
    assert run(capsys, "logs", "check", "--unwrap", path)[0] == 0


def test_diff_of_a_run_on_copy_and_its_split_copy_is_equivalent(capsys):
    code, out, _ = run(capsys, "logs", "diff", str(REAL / "s3b-7975-tvs-regenerated.as-published.log"),
                       str(REAL / "s3b-7975-tvs-regenerated.split.log"))
    assert code == 0 and out.strip() == "16 events, equivalent"


def test_diff_masks_numbers_times_addresses_and_hex(capsys, tmp_path):
    a = write(tmp_path, "a.log",
              "3287 INF Nov 29 06:33:59.395199 SECUREAPP-Attempting connect to TVS server addr [192.168.11.32]\n"
              "3303 DEB Nov 29 06:33:59.399974 SECUREAPP-Added SSL connection handle 0x40e01270, connDesc 11\n"
              "18:01:06.345 | debug 57 01 03 00 00 00 03 e9\n")
    b = write(tmp_path, "b.log",
              "12 INF Dec 01 10:00:00.000001 (346:1887) SECUREAPP-Attempting connect to TVS server addr [10.0.0.7]\n"
              "13 DEB Dec 01 10:00:00.000002 (346:1887) SECUREAPP-Added SSL connection handle 0x2b2d2ac0, connDesc 9\n"
              "09:00:00.000 | debug 57 01 01 00 00 00 03 ea\n")
    assert run(capsys, "logs", "diff", a, b)[0] == 0


def test_diff_shows_missing_extra_and_reordered_events(capsys, tmp_path):
    a = write(tmp_path, "a.log", "1: NOT 10:00:00.000001 SECD: alpha\n2: NOT 10:00:00.000002 SECD: beta\n"
                                 "3: NOT 10:00:00.000003 SECD: gamma\n4: NOT 10:00:00.000004 SECD: delta 4\n")
    b = write(tmp_path, "b.log", "1: NOT 10:00:00.000001 SECD: beta\n2: NOT 10:00:00.000002 SECD: gamma\n"
                                 "3: NOT 10:00:00.000003 SECD: alpha\n4: NOT 10:00:00.000004 SECD: epsilon\n")
    code, out, _ = run(capsys, "logs", "diff", a, b)
    assert code == 1
    assert out.splitlines() == [
        "~ reordered  A:1 B:3  NOT SECD: alpha",
        "- missing    A:4  NOT SECD: delta 4",
        "+ extra      B:4  NOT SECD: epsilon",
        "4 vs 4 events: 1 missing, 1 extra, 1 reordered",
    ]


@pytest.mark.parametrize("command", ["parse", "check"])
def test_missing_file_is_one_line_on_stderr_and_exit_2(capsys, tmp_path, command):
    code, out, err = run(capsys, "logs", command, str(tmp_path / "nope.log"))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "No such file or directory" in err


def test_binary_file_is_one_line_on_stderr_and_exit_2(capsys, tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(b"\x57\x01\x03\x00\x00\x00\x03\xe9")
    code, out, err = run(capsys, "logs", "check", str(path))
    assert (code, out) == (2, "")
    assert err == f"phonetrust: {path}: binary data (NUL byte at offset 3), expected a text console log\n"


def test_diff_with_a_missing_second_file_exits_2(capsys, tmp_path):
    assert run(capsys, "logs", "diff", str(REAL / "s1a-8861-ctl-download.log"), str(tmp_path / "nope"))[0] == 2


def test_console_script_never_prints_a_traceback_for_bad_input(tmp_path):
    path = tmp_path / "x.bin"
    path.write_bytes(bytes(range(256)))
    done = subprocess.run([sys.executable, "-m", "phone", "logs", "parse", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "Traceback" not in done.stderr and done.stdout == ""
