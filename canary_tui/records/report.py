"""A postmortem's raw material from a recording: summary, timeline, phases, plots.

`build_report(recording)` reads every frame once and gathers what a postmortem needs: the
outcome, the time from the first failing verdict to the rollback, what the canary served
while it was failing, every action (who, when, why, what became of it, its audit records)
with the evidence behind automatic decisions, the phase changes, the other events (joins,
leaves, warnings, no data), and the key metrics around the decisive moments.
`render_markdown` and `render_html` turn that into text a postmortem document can paste.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import UTC, datetime

from canary_tui.core.frames import Frame, SeriesPoint
from canary_tui.core.policy import AUTO_ADVANCE, AUTO_ROLLBACK
from canary_tui.core.state import Phase
from canary_tui.core.verdict import Status, Verdict
from canary_tui.records.recording import Recording, RecordingError, RecordingHeader
from canary_tui.records.textplot import Series, text_plot

RULES = frozenset({AUTO_ROLLBACK.name, AUTO_ADVANCE.name})
BEFORE_S, AFTER_S = 180.0, 60.0  # the plots' window around a decisive moment


@dataclass
class Action:
    """One action on the timeline: an intent and its result, or a refusal."""

    t: float
    actor: str
    what: str
    why: str = ""
    result: str = ""
    seqs: list[int] = field(default_factory=list)
    evidence: list[str] = field(default_factory=list)

    @property
    def automatic(self) -> bool:
        return self.actor in RULES


@dataclass(frozen=True, slots=True)
class PhaseChange:
    t: float
    phase: str
    step: int
    weight: int
    by: str


@dataclass(frozen=True, slots=True)
class Moment:
    t: float
    title: str


@dataclass
class Report:
    header: RecordingHeader
    start: float
    end: float
    ticks: int = 0
    problem: str | None = None
    outcome: str = "unfinished"
    first_fail: float | None = None
    first_fail_metrics: list[str] = field(default_factory=list)
    rollback: float | None = None
    rollback_by: str = ""
    promoted: float | None = None
    failing_requests: float = 0.0
    failing_errors: float = 0.0
    actions: list[Action] = field(default_factory=list)
    phases: list[PhaseChange] = field(default_factory=list)
    events: list[tuple[float, str]] = field(default_factory=list)
    points: list[SeriesPoint] = field(default_factory=list)
    moments: list[Moment] = field(default_factory=list)


def build_report(rec: Recording) -> Report:
    """Read the recording once (up to a damaged chunk, if any) and gather the report."""
    report = Report(rec.header, rec.start_time, rec.end_time)
    last: Frame | None = None
    open_actions: dict[str, Action] = {}
    seen_points: set[float] = set()
    failing_ticks: list[Frame] = []
    try:
        for frame in rec.iter_frames():
            _fold(report, frame, last, open_actions, seen_points, failing_ticks)
            last = frame
    except RecordingError:
        pass  # the recording now ends before the damage; rec.problem says so
    report.problem = rec.problem
    if last is not None:
        report.end = last.now
        report.outcome = last.state.phase.value
    end = report.rollback if report.rollback is not None else report.end
    for f in failing_ticks:
        if f.now <= end and f.sample is not None and f.sample.canary is not None:
            report.failing_requests += f.sample.canary.requests
            report.failing_errors += f.sample.canary.errors
    report.moments = _moments(report)
    return report


def _fold(
    report: Report,
    frame: Frame,
    last: Frame | None,
    open_actions: dict[str, Action],
    seen_points: set[float],
    failing_ticks: list[Frame],
) -> None:
    """Add one frame of a recording to the report."""
    _fold_points(report, frame, seen_points)
    _fold_verdicts(report, frame, failing_ticks)
    if not frame.full:
        for entry in frame.activity:
            _activity(report, frame, entry.kind, entry.actor, entry.text, entry.seq, open_actions)
    _fold_phase(report, frame, last)


def _fold_points(report: Report, frame: Frame, seen_points: set[float]) -> None:
    """The graph points (each once) and the count of ticks."""
    for p in frame.points:
        if p.t not in seen_points:
            seen_points.add(p.t)
            report.points.append(p)
    if frame.points and not frame.full:
        report.ticks += 1


def _fold_verdicts(report: Report, frame: Frame, failing_ticks: list[Frame]) -> None:
    """The first failing verdict before any rollback, and every tick from it on."""
    failing = [v for v in frame.verdicts if v.status is Status.FAIL]
    if failing and report.first_fail is None and report.rollback is None:
        report.first_fail = frame.now
        report.first_fail_metrics = [v.metric for v in failing]
    if report.first_fail is not None and frame.points and not frame.full:
        failing_ticks.append(frame)


def _fold_phase(report: Report, frame: Frame, last: Frame | None) -> None:
    """Phase, step and weight changes, and when the canary was rolled back or promoted."""
    s = frame.state
    before = last.state if last is not None else None
    if before is None or (s.phase, s.step_index, s.weight) != (
        before.phase, before.step_index, before.weight
    ):  # fmt: skip
        by = s.last_change.actor if s.last_change is not None and before is not None else "start"
        report.phases.append(PhaseChange(frame.now, s.phase.label, s.step_index + 1, s.weight, by))
    if before is None or s.phase is before.phase:
        return
    if s.phase is Phase.ROLLED_BACK and report.rollback is None:
        report.rollback = frame.now
        report.rollback_by = s.last_change.actor if s.last_change is not None else "?"
    elif s.phase is Phase.PROMOTED and report.promoted is None:
        report.promoted = frame.now


def _activity(
    report: Report,
    frame: Frame,
    kind: str,
    actor: str,
    text: str,
    seq: int | None,
    open_actions: dict[str, Action],
) -> None:
    seqs = [seq] if seq is not None else []
    if kind == "intent":
        what, _, why = text.partition(": ")
        action = Action(frame.now, actor, what, why, seqs=seqs)
        if action.automatic:
            action.evidence = [_evidence(v) for v in frame.verdicts]
        report.actions.append(action)
        open_actions[actor] = action
    elif kind in ("result", "failed"):  # a failed result closes its intent too
        pending = open_actions.pop(actor) if actor in open_actions else None
        if pending is None:
            report.actions.append(Action(frame.now, actor, text, result=text, seqs=seqs))
        else:
            pending.result, pending.seqs = text, pending.seqs + seqs
    elif kind == "refused":
        what, _, why = text.partition(" refused: ")
        why = why.removeprefix("refused: ")
        report.actions.append(Action(frame.now, actor, what, result=f"refused: {why}", seqs=seqs))
    elif kind != "verdict":
        report.events.append((frame.now, f"{actor}: {text}" + (f" #{seq}" if seq else "")))


def _evidence(v: Verdict) -> str:
    """The verdict's own words (metric, rates, effect, interval, tolerance, status, as the
    judge wrote them), then the counts behind them and the p-value."""
    return f"{v.why} ({v.evidence.counts_text()})"


def _moments(report: Report) -> list[Moment]:
    found: list[Moment] = []
    if report.first_fail is not None:
        found.append(Moment(report.first_fail, "First failing verdict"))
    if report.rollback is not None:
        found.append(Moment(report.rollback, f"Rollback by {report.rollback_by}"))
    if report.promoted is not None:
        found.append(Moment(report.promoted, "Promotion"))
    found.sort(key=lambda m: m.t)
    merged: list[Moment] = []
    for m in found:
        if merged and m.t - merged[-1].t < 30.0:
            merged[-1] = Moment(merged[-1].t, f"{merged[-1].title}; {m.title.lower()}")
        else:
            merged.append(m)
    return merged


# --- rendering ---------------------------------------------------------------------------------


def _clock(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%H:%M:%S")


def _stamp(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _offset(t: float, start: float) -> str:
    s = max(0, round(t - start))
    return (
        f"+{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"
        if s >= 3600
        else f"+{s // 60}:{s % 60:02d}"
    )


def _duration(seconds: float) -> str:
    s = max(0, round(seconds))
    if s < 120:
        return f"{s} s"
    return f"{s // 60} min {s % 60} s" if s < 7200 else f"{s // 3600} h {s % 3600 // 60} min"


def summary_rows(r: Report) -> list[tuple[str, str]]:
    info = r.header.info
    outcome = r.outcome.replace("_", " ")
    if r.rollback is not None:
        outcome += (
            f" at {_clock(r.rollback)} UTC ({_offset(r.rollback, r.start)}) by {r.rollback_by}"
        )
    elif r.promoted is not None:
        outcome += f" at {_clock(r.promoted)} UTC ({_offset(r.promoted, r.start)})"
    rows = [
        ("Service", f"{info.service} (namespace {info.namespace}, canary {info.name})"),
        ("Versions", f"stable {info.stable_version} → canary {info.canary_version}"),
        ("Outcome", outcome),
        (
            "Recorded",
            f"{_stamp(r.start)} → {_clock(r.end)} UTC ({_duration(r.end - r.start)}), "
            f"{r.ticks} ticks, host {r.header.host or '?'}, canary-tui {r.header.tool_version}",
        ),
    ]
    if r.first_fail is not None:
        rows.append(
            (
                "First failing verdict",
                f"{_clock(r.first_fail)} UTC ({_offset(r.first_fail, r.start)}): "
                + ", ".join(r.first_fail_metrics),
            )
        )
        if r.rollback is not None:
            rows.append(("First failing verdict → rollback", _duration(r.rollback - r.first_fail)))
        else:
            rows.append(("First failing verdict → rollback", "no rollback"))
        share = f", {r.failing_errors / r.failing_requests:.2%}" if r.failing_requests else ""
        rows.append(
            (
                "Canary requests while failing",
                f"{r.failing_requests:,.0f} ({r.failing_errors:,.0f} errors{share}), in the "
                "ticks from the first failing verdict to the rollback",
            )
        )
    else:
        rows.append(("First failing verdict", "none"))
    people = sorted({a.actor for a in r.actions if not a.automatic})
    automatic = sum(a.automatic for a in r.actions)
    by_people = len(r.actions) - automatic
    rows.append(
        (
            "Actions",
            f"{len(r.actions)}: {automatic} automatic, {by_people} by people"
            + (f" ({', '.join(people)})" if people else ""),
        )
    )
    return rows


def _series(points: list[SeriesPoint], at: float, get: str, label: str, marker: str) -> Series:
    scale = 100.0 if get.startswith("err_") else 1.0
    values = ((p.t - at, getattr(p, get)) for p in points if not p.no_data)
    return Series(label, marker, [(x, y * scale) for x, y in values if y is not None])


def _plots(r: Report) -> list[tuple[str, str]]:
    out = []
    for m in r.moments:
        near = [p for p in r.points if m.t - BEFORE_S <= p.t <= m.t + AFTER_S]
        window = (max(-BEFORE_S, r.start - m.t), min(AFTER_S, max(r.end - m.t, 1.0)))
        plots = [
            text_plot(
                title,
                [
                    _series(near, m.t, f"{field}_baseline", "baseline", "."),
                    _series(near, m.t, f"{field}_canary", "canary", "*"),
                ],
                x_range=window,
                mark_x=0.0,
            )
            for title, field in (("error rate %", "err"), ("latency p99 ms", "p99"))
        ]
        heading = f"{m.title} at {_clock(m.t)} UTC ({_offset(m.t, r.start)})"
        out.append((heading, "\n\n".join(plots)))
    return out


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(r: Report) -> str:
    info = r.header.info
    lines = [f"# Canary report: {info.service} {info.stable_version} → {info.canary_version}", ""]
    if r.problem:
        lines += [f"> **Note:** this recording is incomplete: {r.problem}", ""]
    lines += ["## Summary", "", "| | |", "|---|---|"]
    lines += [f"| {k} | {_md(v)} |" for k, v in summary_rows(r)]
    lines += ["", "## Timeline of actions", ""]
    if r.actions:
        lines += [
            "| Time (UTC) | +t | Who | What | Why | Result | Audit |",
            "|---|---|---|---|---|---|---|",
        ]
        for a in r.actions:
            who = f"{a.actor} (rule)" if a.automatic else a.actor
            audit = ", ".join(f"#{s}" for s in a.seqs)
            lines.append(
                f"| {_clock(a.t)} | {_offset(a.t, r.start)} | {_md(who)} | {_md(a.what)} | "
                f"{_md(a.why)} | {_md(a.result)} | {audit} |"
            )
        evidence = [a for a in r.actions if a.automatic and a.evidence]
        if evidence:
            lines += ["", "### Evidence of the automatic decisions", ""]
            for a in evidence:
                lines.append(f"- **{_clock(a.t)} {a.actor}: {_md(a.what)}**")
                lines += [f"  - {_md(e)}" for e in a.evidence]
    else:
        lines.append("No actions were taken.")
    lines += ["", "## Phase changes", "", "| Time (UTC) | +t | Phase | Step | Weight | By |"]
    lines.append("|---|---|---|---|---|---|")
    for p in r.phases:
        lines.append(
            f"| {_clock(p.t)} | {_offset(p.t, r.start)} | {p.phase} | {p.step} | {p.weight}% | "
            f"{_md(p.by)} |"
        )
    if r.events:
        lines += ["", "## Other events (joins, leaves, warnings, no data)", ""]
        lines += [f"- {_clock(t)} {_md(text)}" for t, text in r.events]
    plots = _plots(r)
    if plots:
        lines += ["", "## Key metrics around the decisive moments"]
        for title, text in plots:
            lines += ["", f"### {title}", "", "```text", text, "```"]
    return "\n".join(lines) + "\n"


def render_html(r: Report) -> str:
    """A self-contained page (no scripts, no external files) with the same content."""
    info = r.header.info
    e = html.escape
    title = f"Canary report: {info.service} {info.stable_version} → {info.canary_version}"
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{e(title)}</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;"
        "padding:0 1rem;color:#222}table{border-collapse:collapse;margin:.5rem 0}"
        "td,th{border:1px solid #ccc;padding:.25rem .5rem;text-align:left;vertical-align:top}"
        "th{background:#f3f3f3}pre{background:#f7f7f7;padding:.75rem;overflow-x:auto}"
        ".note{background:#fff4d6;padding:.5rem 1rem;border-left:4px solid #e69f00}</style>",
        "</head><body>",
        f"<h1>{e(title)}</h1>",
    ]
    if r.problem:
        parts.append(
            f'<p class="note"><b>Note:</b> this recording is incomplete: {e(r.problem)}</p>'
        )

    def table(head: list[str], rows: list[list[str]]) -> str:
        cells = "".join(f"<th>{e(h)}</th>" for h in head)
        body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows)
        return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"

    parts += ["<h2>Summary</h2>", table(["", ""], [list(row) for row in summary_rows(r)])]
    parts.append("<h2>Timeline of actions</h2>")
    if r.actions:
        rows = [
            [
                _clock(a.t),
                _offset(a.t, r.start),
                f"{a.actor} (rule)" if a.automatic else a.actor,
                a.what,
                a.why,
                a.result,
                ", ".join(f"#{s}" for s in a.seqs),
            ]
            for a in r.actions
        ]
        parts.append(table(["Time (UTC)", "+t", "Who", "What", "Why", "Result", "Audit"], rows))
        for a in (a for a in r.actions if a.automatic and a.evidence):
            items = "".join(f"<li>{e(x)}</li>" for x in a.evidence)
            parts.append(
                f"<p><b>{e(_clock(a.t))} {e(a.actor)}: {e(a.what)}</b></p><ul>{items}</ul>"
            )
    else:
        parts.append("<p>No actions were taken.</p>")
    phase_rows = [
        [_clock(p.t), _offset(p.t, r.start), p.phase, str(p.step), f"{p.weight}%", p.by]
        for p in r.phases
    ]
    parts += [
        "<h2>Phase changes</h2>",
        table(["Time (UTC)", "+t", "Phase", "Step", "Weight", "By"], phase_rows),
    ]
    if r.events:
        items = "".join(f"<li>{e(_clock(t))} {e(text)}</li>" for t, text in r.events)
        parts += ["<h2>Other events</h2>", f"<ul>{items}</ul>"]
    plots = _plots(r)
    if plots:
        parts.append("<h2>Key metrics around the decisive moments</h2>")
        for heading, text in plots:
            parts += [f"<h3>{e(heading)}</h3>", f"<pre>{e(text)}</pre>"]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
