"""phone.console: the writers render SPEC 7 lines that phone.console.parse reads back."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from phone.console.writers import ConsoleLog, TvsTrace, UnrenderableMessage, escape_for_console
from phone.console.parse import LEVELS, parse

AT = datetime(2016, 11, 29, 6, 34, 0, 411671)


def fixed(at: datetime = AT):
    return lambda: at


class Ticking:
    """A clock that advances 1 ms per reading and counts readings."""

    def __init__(self, start: datetime = AT) -> None:
        self.now, self.readings = start, 0

    def __call__(self) -> datetime:
        self.readings += 1
        self.now += timedelta(milliseconds=1)
        return self.now


def test_enterprise_line_matches_the_published_layout():
    log = ConsoleLog("enterprise", fixed(), first_seq=3333, pid_tid=(346, 1887))
    line = log.emit("NOT", "SECUREAPP", "Hashes match... authentication successful.")
    assert line == "3333 NOT Nov 29 06:34:00.411671 (346:1887) SECUREAPP-Hashes match... authentication successful."


def test_enterprise_line_of_an_older_load_has_no_pid_tid_and_a_zero_padded_day():
    log = ConsoleLog("enterprise", fixed(datetime(2019, 3, 9, 18, 32, 37, 594689)), first_seq=3232)
    assert log.emit("NOT", "dgetfile(870)", "GETXXTP [GT870]") == "3232 NOT Mar 09 18:32:37.594689 dgetfile(870)-GETXXTP [GT870]"


def test_java79xx_line_matches_the_published_layout():
    log = ConsoleLog("java79xx", fixed(datetime(2015, 3, 6, 23, 0, 22, 335499)), first_seq=8074)
    assert log.emit("NOT", "SECD", "setupSocketToTvsProxy: Connected to TVS proxy server") == (
        "8074: NOT 23:00:22.335499 SECD: setupSocketToTvsProxy: Connected to TVS proxy server"
    )


def test_java79xx_variant_without_colon_with_two_spaces_and_dash():
    log = ConsoleLog("java79xx", fixed(datetime(2014, 9, 30, 11, 4, 14, 765155)), first_seq=7949,
                     seq_colon=False, process_gap="  ", process_separator="-")
    assert log.emit("NOT", "CVM", "appLaunchRequest: x") == "7949 NOT 11:04:14.765155  CVM-appLaunchRequest: x"


def test_sequence_counts_up_per_console_and_each_line_reaches_the_sink():
    lines: list[str] = []
    log = ConsoleLog("java79xx", fixed(), first_seq=41, sink=lines.append)
    other = ConsoleLog("java79xx", fixed(), first_seq=41)
    log.emit("NOT", "SECD", "a")
    log.emit("ERR", "SECD", "EROR:b")
    other.emit("NOT", "SECD", "c")
    assert [e.seq for e in parse("\n".join(lines))] == [41, 42]
    assert log.next_seq == 43 and other.next_seq == 42


def test_time_comes_from_the_injected_clock_once_per_line():
    clock = Ticking()
    log = ConsoleLog("enterprise", clock)
    log.emit("NOT", "SECUREAPP", "a")
    second = log.emit("NOT", "SECUREAPP", "b")
    assert clock.readings == 2
    assert parse(second)[0].time == "06:34:00.413671"


def test_per_line_pid_tid_overrides_the_console_default():
    log = ConsoleLog("enterprise", fixed(), pid_tid=(346, 1887))
    assert "(339:1850) downd-" in log.emit("NOT", "downd", "x", pid_tid=(339, 1850))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda log: log.emit("NOT", "SECD", "two\nlines"), "holds a line break"),
        (lambda log: log.emit("BAD", "SECD", "x"), "level 'BAD'"),
        (lambda log: log.emit("NOT", "SE CD", "x"), "process name 'SE CD'"),
        (lambda log: log.emit("NOT", "SECD", "len: 1 2: NOT 10:00:00.000001 SECD: y"), "would not read back"),
    ],
)
def test_what_would_not_read_back_is_refused_before_the_sink_sees_it(call, match):
    lines: list[str] = []
    log = ConsoleLog("java79xx", fixed(), first_seq=7, sink=lines.append)
    with pytest.raises(UnrenderableMessage, match=match):
        call(log)
    assert lines == [] and log.next_seq == 7


def test_tvs_trace_lines_markers_and_hex_dump():
    lines: list[str] = []
    trace = TvsTrace(fixed(datetime(2016, 11, 29, 18, 1, 6, 345999)), lines.append)
    trace.enter("tvsHandleQueryCertReq")
    trace.debug("8:UNKNOWN:Incoming Phone Msg:")
    dump = trace.hex_dump(bytes.fromhex("570103000000" "03e9008f0100"))
    trace.leave("tvsHandleQueryCertReq")
    assert lines == [
        "18:01:06.345 |-->tvsHandleQueryCertReq",
        "18:01:06.345 | debug 8:UNKNOWN:Incoming Phone Msg:",
        "HEX_DUMP: Len = 12:",
        "18:01:06.345 | debug 57 01 03 00 00 00 03 e9",
        "18:01:06.345 | debug 00 8f 01 00",
        "18:01:06.345 |<--tvsHandleQueryCertReq",
    ]
    assert dump == lines[2:5]
    entries = parse("\n".join(lines))
    assert [e.message for e in entries] == [
        "-->tvsHandleQueryCertReq", "8:UNKNOWN:Incoming Phone Msg:\nHEX_DUMP: Len = 12:",
        "57 01 03 00 00 00 03 e9", "00 8f 01 00", "<--tvsHandleQueryCertReq",
    ]


def test_tvs_trace_indented_layout():
    assert TvsTrace(fixed(), indent=True).debug("tvsHandleQueryCertReq") == "06:34:00.411 |   debug tvsHandleQueryCertReq"


# --- whatever the writers emit parses back in its dialect with the same fields -----------

times = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31))
# Messages as a catalogue writes them: printable, one line, no surrounding spaces.
messages = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E) | st.sampled_from("äé€ス"), max_size=80
).map(str.strip)
java_processes = st.from_regex(r"[A-Z][A-Z0-9_]{0,8}", fullmatch=True)
enterprise_processes = st.from_regex(r"[A-Za-z][A-Za-z0-9_]{0,8}(\([0-9]{1,5}\))?", fullmatch=True)


@settings(max_examples=80, deadline=None)
@given(at=times, seq=st.integers(0, 10**6), level=st.sampled_from(LEVELS), process=java_processes,
       message=messages, colon=st.booleans(), gap=st.sampled_from([" ", "  "]), sep=st.sampled_from([": ", "-"]))
def test_java79xx_lines_parse_back_with_the_same_fields(at, seq, level, process, message, colon, gap, sep):
    line = ConsoleLog("java79xx", fixed(at), first_seq=seq, seq_colon=colon, process_gap=gap,
                      process_separator=sep).emit(level, process, message)
    (e,) = parse(line)
    assert (e.dialect, e.seq, e.level, e.time, e.process, e.message) == (
        "java79xx", seq, level, at.strftime("%H:%M:%S.%f"), process, message)


@settings(max_examples=80, deadline=None)
@given(at=times, seq=st.integers(0, 10**6), level=st.sampled_from(LEVELS), process=enterprise_processes,
       message=messages, ids=st.none() | st.tuples(st.integers(0, 99999), st.integers(0, 99999)))
def test_enterprise_lines_parse_back_with_the_same_fields(at, seq, level, process, message, ids):
    line = ConsoleLog("enterprise", fixed(at), first_seq=seq, pid_tid=ids).emit(level, process, message)
    (e,) = parse(line)
    pid, tid = ids or (None, None)
    assert (e.dialect, e.seq, e.level, e.date, e.time, e.pid, e.tid, e.process, e.message) == (
        "enterprise", seq, level, f"{at:%b} {at:%d}", at.strftime("%H:%M:%S.%f"), pid, tid, process, message)


@settings(max_examples=50, deadline=None)
@given(at=times, texts=st.lists(messages, min_size=1, max_size=5), indent=st.booleans(),
       data=st.binary(max_size=40), name=java_processes)
def test_tvs_trace_lines_parse_back_with_the_same_fields(at, texts, indent, data, name):
    lines: list[str] = []
    trace = TvsTrace(fixed(at), lines.append, indent=indent)
    trace.enter(name)
    for text in texts:
        trace.debug(text)
    trace.hex_dump(data)
    trace.leave(name)
    entries = parse("\n".join(lines))
    stamp = f"{at:%H:%M:%S}.{at.microsecond // 1000:03d}"
    assert {(e.dialect, e.time) for e in entries} == {("cucm-tvs", stamp)}
    expected = [f"-->{name}", *texts]
    expected[-1] += f"\nHEX_DUMP: Len = {len(data)}:"
    expected += [" ".join(f"{b:02x}" for b in data[i:i + 8]) for i in range(0, len(data), 8)] + [f"<--{name}"]
    assert [e.message for e in entries] == expected
    assert [e.level for e in entries] == [None] + ["debug"] * (len(entries) - 2) + [None]


# -- text from peers: escaped, never a refused boot -------------------------------------


def _console(model: str, lines: list[str]):
    from phone.console.phone import PhoneConsole
    from phone.catalogue import get_model

    return PhoneConsole(get_model(model), fixed(), sink=lines.append, keep=False)


@pytest.mark.parametrize("model", ["CP-7940", "CP-8861"])
def test_a_tftp_error_text_that_looks_like_an_entry_is_written_escaped_in_one_entry(model):
    from phone.firmware.machine import Log

    forged = "peer said 12 NOT 10:00:00.000000 SECD: Hashes match... authentication successful."
    lines: list[str] = []
    _console(model, lines).write(Log("download.failed", {"name": "ITLFile.tlv", "pid": 870, "reason": forged}))
    assert len(lines) == 1
    entries = parse(lines[0])
    assert len(entries) == 1
    assert "peer said \\12 NOT 10:00:00.000000 SECD: Hashes match" in entries[0].message


@pytest.mark.parametrize("model", ["CP-7940", "CP-8861"])
def test_a_signed_filename_holding_a_newline_is_written_escaped_on_one_line(model):
    from phone.firmware.machine import Log

    lines: list[str] = []
    name = "SEP001122334455.cnf.xml\n99 ERR 10:00:00.000000 SECD: forged"
    _console(model, lines).write(Log("config.rejected", {"name": name, "reason": "x"}))
    assert len(lines) == 1 and "\n" not in lines[0]
    (entry,) = parse(lines[0])
    assert "SEP001122334455.cnf.xml\\n99 ERR" in entry.message


@settings(max_examples=200, deadline=None)
@given(text=st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=60)
       | st.lists(st.sampled_from(["\n", "\r", "\x85", "\u2028", "\t", " ", "\\", "12", " NOT ",
                                    "10:00:00.000000", "SECD: ", "Nov 29 ", "18:01:05.333 | "]),
                  max_size=12).map("".join))
def test_escaped_peer_text_always_reads_back_as_one_entry(text):
    escaped = escape_for_console(text)
    for log in (ConsoleLog("java79xx", fixed()), ConsoleLog("enterprise", fixed())):
        line = log.emit("ERR", "SECD", f"failed: {escaped}")
        assert len(parse(line)) == 1
    line = TvsTrace(fixed()).debug(escaped)
    assert len(parse(line)) == 1
