"""Showing a fleet's results: the per-model table (rich or plain), summaries from a database, HTML.

- ``summary_from_db(connection)``: the ``FleetSummary`` of everything a results
  database holds (one run, or the shards merged into it): each phone's last
  step, per model. Seconds: shards of one fleet ran side by side, so a step
  lasts as long as its slowest shard; other runs add up.
- ``print_table(summary, stream)``: a rich table on a terminal, aligned plain
  text otherwise.
- ``html_report(summary, timeline, …)``: one self-contained page (inline CSS,
  SVG and a few lines of script; no server, no font or file from elsewhere):
  the run's date and the tool's version, the scenario's title and steps, the
  outcome chart per model, expected vs actual per model, the boot timeline
  and a per-phone table (device, model, load, outcome, reason) that the
  page's search box filters and its column headers sort. The rows are
  written once; filtering only hides them, so the page stays quick at tens
  of thousands of phones.
"""

from __future__ import annotations

import datetime
import html
import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, Any

import attrs

from phone import __version__
from phone.fleet import db
from phone.fleet.per_phone import PhoneLine, phone_lines
from phone.fleet.summary import OUTCOMES, FleetSummary, StepSummary, count

COLUMNS = (("phones", "phones"), ("accepted", "accepted"), ("rejected", "rejected"), ("unchanged", "unchanged"),
           ("failed", "failed"), ("unsupported", "unsupported"), ("erase_needed", "erase needed"),
           ("through_tvs", "via TVS"))
COLOURS = {"accepted": "#2e7d32", "rejected": "#c62828", "unchanged": "#9e9e9e", "failed": "#ef6c00",
           "unsupported": "#6a1b9a"}


def summary_from_db(connection: sqlite3.Connection) -> FleetSummary:
    run_rows = db.runs(connection)
    if not run_rows:
        return FleetSummary(0, 0, 0.0, {})
    counted = {json.loads(run["params"]).get("counted_step") for run in run_rows}
    counted_step = counted.pop() if len(counted) == 1 else None
    complete = all(run["finished"] is not None for run in run_rows)
    stopped_after = None
    if not complete:
        # Interrupted or killed: count the last step every phone finished, never one it did not reach.
        finished = [step["name"] for step in db.steps(connection) if step["finished"] is not None]
        stopped_after = finished[-1] if finished else None
        if counted_step not in finished:
            counted_step = stopped_after
    last = db.last_boots(connection, counted_step)
    phones = len(last) if counted_step is None else len(db.last_boots(connection))
    side_by_side = len({run["phones"] for run in run_rows}) == 1 and len({run["shard"] for run in run_rows}) == len(run_rows)
    grouped: dict[tuple[int, str], list[dict]] = {}
    for step in db.steps(connection):
        grouped.setdefault((step["step_index"], step["name"]) if side_by_side else (step["run_id"], step["name"]),
                           []).append(step)
    steps = []
    for position, ((_, name), parts) in enumerate(grouped.items()):
        durations = [(part["finished"] or part["started"]) - part["started"] for part in parts]
        run_ids = [part["run_id"] for part in parts]
        lsc = "lsc_installed" if db.has_column(connection, "lsc_installed") else "0"
        rows = connection.execute(
            f"SELECT model, outcome, erase_needed, through_tvs, {lsc}, "
            f"{'registration' if db.has_registration(connection) else 'NULL'} FROM boots WHERE step = ? AND run_id IN "
            f"({', '.join('?' * len(run_ids))}) AND step_index = ?", (name, *run_ids, parts[0]["step_index"]))
        by_model = count(rows)
        boots = sum(counts["phones"] for counts in by_model.values())
        seconds = max(durations) if side_by_side else sum(durations)
        steps.append(StepSummary(position, name, boots, seconds, by_model))
    return FleetSummary(phones=phones, boots=sum(step.boots for step in steps),
                        seconds=sum(step.seconds for step in steps),
                        by_model=count((b.model, b.outcome, b.erase_needed, b.through_tvs, b.lsc_installed,
                                        b.registration)
                                       for b in last.values()),
                        steps=tuple(steps), complete=complete,
                        counted=counted_step or (steps[-1].name if steps and complete else None),
                        stopped_after=stopped_after)


def columns_of(summary: FleetSummary) -> tuple[tuple[str, str], ...]:
    """The per-model table's columns: "unsupported" only when some phone was (a run whose CUCM release
    supports every phone reads as it always did)."""
    return tuple(column for column in COLUMNS if column[0] != "unsupported" or summary.total("unsupported"))


def _rows(summary: FleetSummary) -> list[list[str]]:
    columns = columns_of(summary)
    rows = [[model, *(str(counts.get(key, 0)) for key, _ in columns)] for model, counts in summary.by_model.items()]
    rows.append(["total", *(str(summary.total(key)) for key, _ in columns)])
    return rows


def headline(summary: FleetSummary) -> str:
    text = (f"{summary.phones} phones, {summary.boots} boots in {len(summary.steps)} step(s), "
            f"{summary.seconds:.1f} s of booting ({summary.boots_per_second:.0f} boots/s)")
    if not summary.complete:
        text += (f"; the run stopped after step {summary.stopped_after} (incomplete: results so far)"
                 if summary.stopped_after else "; the run stopped before its first step finished (incomplete)")
    return text


def print_table(summary: FleetSummary, stream: IO[str], *, rich_output: bool | None = None) -> None:
    """The per-model outcome of each phone's last step: a rich table on a terminal, plain text otherwise."""
    if rich_output is None:
        rich_output = stream.isatty()
    title = f"after step: {summary.counted}" if summary.counted else "no step"
    headers = ["model", *(label for _, label in columns_of(summary))]
    rows = _rows(summary)
    if rich_output:
        from rich.console import Console
        from rich.table import Table

        table = Table(title=f"Fleet outcome ({title})")
        for position, header in enumerate(headers):
            table.add_column(header, justify="left" if position == 0 else "right",
                             style={"accepted": "green", "rejected": "red", "erase needed": "bold red"}.get(header))
        for row in rows[:-1]:
            table.add_row(*row)
        table.add_section()
        table.add_row(*rows[-1], style="bold")
        console = Console(file=stream)
        console.print(table)
        console.print(headline(summary))
        return
    widths = [max(len(header), *(len(row[i]) for row in rows)) for i, header in enumerate(headers)]
    stream.write(f"Fleet outcome ({title})\n")
    for row in [headers, *rows]:
        stream.write("  ".join(cell.ljust(widths[0]) if i == 0 else cell.rjust(widths[i])
                               for i, cell in enumerate(row)).rstrip() + "\n")
    stream.write(headline(summary) + "\n")


# -- HTML -------------------------------------------------------------------------------------

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em;color:#222;max-width:70em}
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:2em}
table{border-collapse:collapse}td,th{padding:.25em .7em;border-bottom:1px solid #ddd;text-align:right}
td:first-child,th:first-child{text-align:left}
table.phones td,table.phones th{text-align:left}table.phones th{cursor:pointer}
th[aria-sort=ascending]::after{content:" \\25B2"}th[aria-sort=descending]::after{content:" \\25BC"}tr.total td{font-weight:bold;border-top:2px solid #888}
.legend span{display:inline-block;margin-right:1.2em}.legend i{display:inline-block;width:.9em;height:.9em;
margin-right:.3em;vertical-align:middle}svg text{font-size:12px;fill:#222}.note{color:#666}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def outcome_chart(summary: FleetSummary) -> str:
    """Stacked horizontal bars: per model, the share of each outcome of its last step (inline SVG)."""
    models = list(summary.by_model.items())
    label_width, bar_width, row, top = 110, 520, 28, 10
    height = top + row * len(models) + 10
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{label_width + bar_width + 280}" height="{height}" '
             f'role="img" aria-label="outcome per model">']
    for position, (model, counts) in enumerate(models):
        y = top + position * row
        total = max(1, counts.get("phones", 0))
        parts.append(f'<text x="0" y="{y + 15}">{_e(model)}</text>')
        x = float(label_width)
        for outcome in OUTCOMES:
            value = counts.get(outcome, 0)
            if not value:
                continue
            width = bar_width * value / total
            parts.append(f'<rect x="{x:.1f}" y="{y}" width="{width:.1f}" height="20" fill="{COLOURS[outcome]}">'
                         f'<title>{_e(model)}: {value} {outcome}</title></rect>')
            if width > 30:
                parts.append(f'<text x="{x + width / 2:.1f}" y="{y + 15}" text-anchor="middle" '
                             f'style="fill:#fff">{value}</text>')
            x += width
        erase = counts.get("erase_needed", 0)
        note = f"{counts.get('phones', 0)} phones" + (f", {erase} need a hand erase" if erase else "")
        parts.append(f'<text x="{label_width + bar_width + 8}" y="{y + 15}">{_e(note)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def timeline_chart(name: str, completions: list[float], *, bins: int = 40) -> str:
    """A histogram of boot completion times (seconds after the step's start) for one step."""
    width, height, left, bottom, right = 680, 160, 40, 28, 30
    if not completions:
        return f"<p class=note>{_e(name)}: no boot.</p>"
    end = max(max(completions), 1e-3)
    size = end / bins
    counts = [0] * bins
    for value in completions:
        counts[min(bins - 1, max(0, int(value / size)))] += 1
    peak = max(counts)
    bar = (width - left - right) / bins
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="boot completions over time, step {_e(name)}">',
             f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#888"/>',
             f'<text x="0" y="12">{peak}</text><text x="0" y="{height - bottom}">0</text>']
    for position, value in enumerate(counts):
        h = (height - bottom - 16) * value / peak if peak else 0
        x = left + position * bar
        parts.append(f'<rect x="{x:.1f}" y="{height - bottom - h:.1f}" width="{max(bar - 1, 1):.1f}" '
                     f'height="{h:.1f}" fill="#1565c0"><title>{value} boots ended {position * size:.2f}-'
                     f'{(position + 1) * size:.2f} s</title></rect>')
    for fraction in (0, 0.25, 0.5, 0.75, 1):
        x = left + (width - left - right) * fraction
        parts.append(f'<text x="{x:.1f}" y="{height - 8}" text-anchor="middle">{end * fraction:.1f} s</text>')
    parts.append("</svg>")
    return "".join(parts)


_SCRIPT = """
(function () {
  var table = document.getElementById("phones");
  if (!table) return;
  var body = table.tBodies[0], heads = table.tHead.rows[0].cells;
  var rows = Array.prototype.slice.call(body.rows);
  var texts = rows.map(function (row) {
    return Array.prototype.map.call(row.cells, function (cell) { return cell.textContent; }).join("\\t").toLowerCase();
  });
  var search = document.getElementById("phone-search"), shown = document.getElementById("phone-shown");
  search.addEventListener("input", function () {
    var wanted = search.value.trim().toLowerCase(), count = 0;
    for (var i = 0; i < rows.length; i++) {
      var hide = wanted !== "" && texts[i].indexOf(wanted) < 0;
      if (rows[i].hidden !== hide) rows[i].hidden = hide;
      if (!hide) count++;
    }
    shown.textContent = count;
  });
  Array.prototype.forEach.call(heads, function (head, column) {
    head.addEventListener("click", function () {
      var direction = head.getAttribute("aria-sort") === "ascending" ? -1 : 1;
      Array.prototype.forEach.call(heads, function (other) { other.removeAttribute("aria-sort"); });
      head.setAttribute("aria-sort", direction > 0 ? "ascending" : "descending");
      var order = rows.map(function (row, i) { return [row.cells[column].textContent, i]; });
      order.sort(function (a, b) { return a[0] < b[0] ? -direction : a[0] > b[0] ? direction : a[1] - b[1]; });
      var fragment = document.createDocumentFragment();
      order.forEach(function (entry) { fragment.appendChild(rows[entry[1]]); });
      body.appendChild(fragment);
    });
  });
})();
"""

#: Per-phone table columns: (header, PhoneLine attribute).
PHONE_COLUMNS = (("device", "device"), ("model", "model"), ("load", "load"), ("outcome", "outcome"),
                 ("reason", "reason"), ("CUCM releases", "cucm_releases"))
#: What the per-phone rows can show of an expectation.
CHECKED = ("outcome", "erase_needed", "code")


def _expected_text(expected: Mapping[str, Any]) -> str:
    return ", ".join(f"{key} {value}".replace("_", " ") for key, value in expected.items()) or "-"


def expectation_rows(expected: Mapping[str, Mapping[str, Any]], lines: Sequence[PhoneLine],
                     codes: Mapping[str, str] | None = None) -> list[tuple[str, str, str, bool]]:
    """Per model with an expectation: (model, expected, actual, held). ``held``: every phone of the
    model showed the expected outcome, erase-needed flag and rejection code (the fields a stored
    row holds); ``codes``: device -> its rejection codes."""
    table = []
    for model, expectation in expected.items():
        mine = [line for line in lines if line.model == model]
        outcomes: dict[str, int] = {}
        for line in mine:
            outcomes[line.outcome] = outcomes.get(line.outcome, 0) + 1
        erase = sum(line.erase_needed for line in mine)
        actual = ", ".join(f"{count} {outcome}" for outcome, count in outcomes.items()) or "no phone"
        if erase:
            actual += f"; {erase} need a hand erase"

        def holds(line: PhoneLine, expectation: Mapping[str, Any] = expectation) -> bool:
            if "outcome" in expectation and line.outcome != expectation["outcome"]:
                return False
            if "erase_needed" in expectation and line.erase_needed != expectation["erase_needed"]:
                return False
            return "code" not in expectation or expectation["code"] in (codes or {}).get(line.device, "").split(",")

        table.append((model, _expected_text(expectation), actual, bool(mine) and all(map(holds, mine))))
    return table


@attrs.frozen
class RunAbout:
    """What the report says of the run itself: when, which tool, which scenario, what it expected."""

    date: str = ""
    version: str = __version__
    scenario: str = ""
    steps: tuple[tuple[str, str], ...] = ()          # (name, title) of each step
    counted: str | None = None
    expected: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict)   # model -> field -> value


def _about_html(about: RunAbout) -> str:
    parts = [f"<p>Run {_e(about.date or '-')}; phonetrust {_e(about.version)}.</p>"]
    if about.scenario:
        parts.append(f"<h2>Scenario: {_e(about.scenario)}</h2>")
    if about.steps:
        parts.append("<ol>" + "".join(
            f"<li><b>{_e(name)}</b>{': ' + _e(title) if title else ''}"
            f"{' <i>(counted)</i>' if name == about.counted else ''}</li>" for name, title in about.steps) + "</ol>")
    return "".join(parts)


def _expectations_html(rows: list[tuple[str, str, str, bool]], counted: str | None) -> str:
    if not rows:
        return ""
    body = "".join(f"<tr><td>{_e(model)}</td><td style='text-align:left'>{_e(expected)}</td>"
                   f"<td style='text-align:left'>{_e(actual)}</td><td>{'held' if held else '<b>not held</b>'}</td></tr>"
                   for model, expected, actual, held in rows)
    return (f"<h2>Expected vs actual after step {_e(counted or '-')}</h2>"
            "<table><tr><th>model</th><th>expected</th><th>actual</th><th></th></tr>" + body + "</table>")


def _phones_html(lines: Sequence[PhoneLine]) -> str:
    if not lines:
        return ""
    heads = "".join(f'<th title="sort">{_e(header)}</th>' for header, _ in PHONE_COLUMNS)
    body = "\n".join("<tr>" + "".join(f"<td>{_e(getattr(line, name))}</td>" for _, name in PHONE_COLUMNS) + "</tr>"
                     for line in lines)
    return (f'<h2>Phones</h2><p><label>Search <input id="phone-search" type="search"></label> '
            f'<span class="note"><span id="phone-shown">{len(lines)}</span> of {len(lines)} phones shown; '
            f'click a column header to sort.</span></p>'
            f'<table id="phones" class="phones"><thead><tr>{heads}</tr></thead><tbody>\n{body}\n</tbody></table>')


def html_report(summary: FleetSummary, timeline: Iterable[tuple[str, float]], *, title: str = "Fleet report",
                parameters: dict[str, object] | None = None, about: RunAbout | None = None,
                phones: Sequence[PhoneLine] = (), codes: Mapping[str, str] | None = None) -> str:
    """The whole page. ``timeline``: (step name, seconds from the step's start to a boot's end) per boot;
    ``phones``: the per-phone table (each phone at the counted step); ``codes``: device -> rejection codes,
    for the expectations that name one."""
    about = about or RunAbout()
    per_step: dict[str, list[float]] = {}
    for name, seconds in timeline:
        per_step.setdefault(name, []).append(seconds)
    legend = "".join(f'<span><i style="background:{colour}"></i>{outcome}</span>' for outcome, colour in COLOURS.items())
    headers = "".join(f"<th>{_e(label)}</th>" for label in ["model", *(label for _, label in columns_of(summary))])
    body = []
    rows = _rows(summary)
    for position, row in enumerate(rows):
        css = ' class="total"' if position == len(rows) - 1 else ""
        body.append(f"<tr{css}>" + "".join(f"<td>{_e(cell)}</td>" for cell in row) + "</tr>")
    steps = "".join(
        f"<tr><td>{_e(step.name)}</td><td>{step.boots}</td><td>{step.seconds:.2f}</td>"
        f"<td>{step.boots_per_second:.0f}</td>"
        + "".join(f"<td>{sum(c.get(o, 0) for c in step.by_model.values())}</td>" for o in OUTCOMES)
        + f"<td>{sum(c.get('erase_needed', 0) for c in step.by_model.values())}</td></tr>"
        for step in summary.steps)
    timelines = "".join(f"<h3>{_e(name)}</h3>{timeline_chart(name, values)}" for name, values in per_step.items())
    params = ""
    if parameters:
        params = "<h2>Run</h2><table>" + "".join(
            f"<tr><td>{_e(key)}</td><td style='text-align:left'>{_e(value)}</td></tr>"
            for key, value in parameters.items()) + "</table>"
    incomplete = "" if summary.complete else "<p><b>The run did not finish: these are the results stored so far.</b></p>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title><style>{_STYLE}</style></head>
<body><h1>{_e(title)}</h1>
{_about_html(about)}
<p>{_e(headline(summary))}</p>{incomplete}
<h2>Outcome per model after step {_e(summary.counted or "-")}</h2>
<p class="legend">{legend}</p>
{outcome_chart(summary)}
<table><tr>{headers}</tr>{''.join(body)}</table>
{_expectations_html(expectation_rows(about.expected, phones, codes), summary.counted)}
<h2>Steps</h2>
<table><tr><th>step</th><th>boots</th><th>seconds</th><th>boots/s</th>{''.join(f'<th>{o}</th>' for o in OUTCOMES)}<th>erase needed</th></tr>{steps}</table>
<h2>Boot timeline</h2><p class="note">Boots ended per interval after each step's start.</p>
{timelines}
{params}
{_phones_html(phones)}
<script>{_SCRIPT}</script>
</body></html>
"""


def about_run(run_rows: Sequence[dict[str, Any]], counted: str | None) -> RunAbout:
    """The date, version and scenario a results database recorded (the first run's)."""
    if not run_rows:
        return RunAbout(counted=counted)
    params = json.loads(run_rows[0]["params"] or "{}")
    date = datetime.datetime.fromtimestamp(run_rows[0]["started"], datetime.timezone.utc)
    return RunAbout(date=date.strftime("%Y-%m-%d %H:%M:%S UTC"), version=params.get("version") or __version__,
                    scenario=params.get("scenario_title") or params.get("scenario") or "",
                    steps=tuple((name, title) for name, title in params.get("scenario_steps") or ()),
                    counted=counted, expected=params.get("expected") or {})


def html_from_db(connection: sqlite3.Connection, *, title: str = "Fleet report") -> str:
    summary = summary_from_db(connection)
    run_rows = db.runs(connection)
    parameters: dict[str, object] = {}
    if len(run_rows) == 1:
        run = run_rows[0]
        parameters = {key: run[key] for key in ("phones", "phone_count", "shard", "mac_prefix", "workers",
                                                "concurrency", "jitter", "rate", "target", "host")}
    elif run_rows:
        parameters = {"runs": len(run_rows), "shards": ", ".join(sorted({run["shard"] for run in run_rows}))}
    timeline = ((step, seconds) for _, step, seconds, _ in db.completion_times(connection))
    lines = phone_lines(connection, summary.counted)
    codes = {f"SEP{mac}": boot.codes for mac, boot in db.last_boots(connection, summary.counted).items()}
    return html_report(summary, timeline, title=title, parameters=parameters,
                       about=about_run(run_rows, summary.counted), phones=lines, codes=codes)
