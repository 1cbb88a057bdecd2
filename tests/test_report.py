"""`canary-tui report`: the postmortem timeline made from a recording."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from canary_tui.cli.records import report
from canary_tui.core.verdict import Status
from canary_tui.records.recording import Recording
from canary_tui.records.report import build_report, render_html, render_markdown
from canary_tui.records.textplot import Series, text_plot
from tests.test_recording import record_session

RECORDINGS = Path(__file__).parents[1] / "recordings"


def shipped(name: str) -> str:
    with Recording.open(RECORDINGS / f"{name}.ctrec") as rec:
        return render_markdown(build_report(rec))


def summary(markdown: str) -> dict[str, str]:
    rows = re.findall(r"^\| ([^|]+) \| (.+) \|$", markdown.split("## Timeline")[0], re.M)
    return {k.strip(): v.strip() for k, v in rows}


def test_automatic_rollback_summary_matches_the_frames(tmp_path: Path) -> None:
    recorded = record_session(tmp_path)
    with Recording.open(recorded.path) as rec:
        r = build_report(rec)
    frames = recorded.frames
    first = next(
        i for i, f in enumerate(frames) if any(v.status is Status.FAIL for v in f.verdicts)
    )
    back = next(i for i, f in enumerate(frames) if f.state.phase.value == "rolled_back")
    assert r.first_fail == frames[first].now and r.rollback == frames[back].now
    assert r.rollback_by == "auto-rollback" and r.outcome == "rolled_back"
    served = [
        f.sample.canary
        for f in frames[first : back + 1]
        if f.points and f.sample and f.sample.canary
    ]
    assert r.failing_requests == sum(c.requests for c in served) > 0
    assert r.failing_errors == sum(c.errors for c in served)
    kill = next(a for a in r.actions if a.what == "kill")
    assert kill.automatic and kill.result == "killed the canary" and len(kill.seqs) == 2
    assert any(
        e.startswith("errors: canary ") and ": FAIL (canary n=" in e for e in kill.evidence
    ), kill.evidence
    refused = [a for a in r.actions if a.result.startswith("refused: ")]
    assert refused and refused[0].actor == "alice" and "bob" in refused[0].result
    phases = [p.phase for p in r.phases]
    assert [p for i, p in enumerate(phases) if i == 0 or p != phases[i - 1]] == [
        "progressing",
        "paused",
        "progressing",
        "rolled back",
    ]
    assert r.phases[0].by == "start" and r.phases[-1].by == "auto-rollback"
    assert any("alice joined" in text for _, text in r.events)


def test_markdown_of_the_shipped_automatic_rollback() -> None:
    md = shipped("auto-rollback")
    s = summary(md)
    assert md.startswith("# Canary report: checkout v1.41.0 → v1.42.0\n")
    assert s["Outcome"].startswith("rolled back at ") and s["Outcome"].endswith("by auto-rollback")
    assert re.fullmatch(r"\d+ s", s["First failing verdict → rollback"])
    assert re.match(r"[\d,]+ \([\d,]+ errors, [\d.]+%\)", s["Canary requests while failing"])
    assert "| auto-rollback (rule) | kill |" in md
    assert "### Evidence of the automatic decisions" in md
    assert re.search(r"  - errors: canary [\d.]+% vs baseline .*: FAIL \(canary n=[\d,]+", md)
    for heading in ("## Phase changes", "## Key metrics around the decisive moments"):
        assert heading in md
    plots = re.findall(r"```text\n(.*?)```", md, re.S)
    assert plots and all("| the moment" in p and "error rate %" in p for p in plots)
    assert "latency p99 ms" in plots[0] and "-56" in plots[0] and "+20 s" in plots[0]


def test_markdown_of_the_shipped_manual_kill() -> None:
    md = shipped("manual-kill")
    s = summary(md)
    assert s["Outcome"].endswith("by alice") and s["First failing verdict"] == "none"
    assert "| alice | kill | p99 regression on the canary (INC-4711) | killed the canary |" in md
    assert "| alice | annotate | canary p99 climbing, baseline flat |" in md
    assert "0 automatic, 2 by people (alice)" in s["Actions"]


def test_markdown_of_the_shipped_pair_promotion() -> None:
    md = shipped("pair-promotion")
    s = summary(md)
    assert s["Outcome"].startswith("promoted at ")
    assert "by people (alice, bob)" in s["Actions"]
    assert "| bob | step forward | dashboards look clean, moving on |" in md
    assert re.search(r"\| alice \| step forward \|  \| refused: bob stepped forward", md)
    assert "| alice | promote | all steps passed; promoting | promoted the canary" in md
    assert "alice: alice joined" in md and "bob: bob joined" in md and "bob: bob left" in md


def test_html_is_one_self_contained_page() -> None:
    with Recording.open(RECORDINGS / "auto-rollback.ctrec") as rec:
        page = render_html(build_report(rec))
    assert page.startswith("<!doctype html>") and page.rstrip().endswith("</html>")
    for outside in ("<script", "src=", "href=", "http://", "https://", "@import"):
        assert outside not in page
    assert "<h2>Timeline of actions</h2>" in page and "auto-rollback (rule)" in page
    assert "<pre>error rate %" in page and "&lt;" not in page.split("<pre>")[0][-10:]


def test_a_cut_short_recording_reports_what_it_has_and_says_so(tmp_path: Path) -> None:
    path = record_session(tmp_path).path
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with Recording.open(path) as rec:
        md = render_markdown(build_report(rec))
    assert "> **Note:** this recording is incomplete: cut short" in md
    assert summary(md)["Outcome"] == "progressing"


def test_report_command(tmp_path: Path) -> None:
    src = RECORDINGS / "auto-rollback.ctrec"
    out = CliRunner().invoke(report, [str(src)])
    assert out.exit_code == 0 and out.output.startswith("# Canary report")
    md_file, html_file = tmp_path / "r.md", tmp_path / "r.html"
    assert CliRunner().invoke(report, [str(src), "-o", str(md_file)]).exit_code == 0
    assert md_file.read_text() == out.output
    assert CliRunner().invoke(report, [str(src), "--html", "-o", str(html_file)]).exit_code == 0
    assert html_file.read_text().startswith("<!doctype html>")
    cut = record_session(tmp_path / "rec").path
    data = cut.read_bytes()
    cut.write_bytes(data[: len(data) * 2 // 3])
    partial = CliRunner().invoke(report, [str(cut)])
    assert partial.exit_code == 0 and "warning" in partial.stderr and "cut short" in partial.stderr


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (None, [], "cannot open"),
        (b"", [], "is empty"),
        (b"PK\x03\x04zip", [], "not a canary-tui recording"),
        (b"CTREC\x00\x00\x07" + b"\x00" * 50, [], "newer canary-tui"),
        ("good", ["-o", "/nonexistent/dir/r.md"], "cannot write"),
    ],
)
def test_report_command_bad_input(
    tmp_path: Path, content: bytes | str | None, args: list[str], message: str
) -> None:
    path = tmp_path / "x.ctrec"
    if content == "good":
        path = RECORDINGS / "manual-kill.ctrec"
    elif isinstance(content, bytes):
        path.write_bytes(content)
    result = CliRunner().invoke(report, [str(path), *args])
    assert result.exit_code == 2 and message in result.stderr
    assert "Traceback" not in result.stderr and result.stderr.count("\n") == 1


def test_text_plot() -> None:
    plot = text_plot(
        "t",
        [
            Series("a", ".", [(-10.0, 1.0), (0.0, 2.0)]),
            Series("b", "*", [(-10.0, 1.0), (5.0, 3.0)]),
        ],
        x_range=(-10.0, 10.0),
        mark_x=0.0,
        width=21,
        height=5,
    )
    lines = plot.splitlines()
    assert lines[0] == "t" and lines[1].startswith("3.00 |") and lines[5].startswith("1.00 |")
    assert lines[5][6] == "#"  # both series at (-10, 1)
    assert all(line[16] in "|.*#" for line in lines[2:6])  # the moment, at x = 0
    assert lines[3][16] == "." and lines[1][21] == "*"
    assert "-10" in lines[7] and "+10 s" in lines[7] and "| the moment" in lines[8]
    assert "no data" in text_plot("t", [Series("a", ".", [])], x_range=(0, 1))


def test_an_action_that_failed_at_the_router_closes_its_intent(tmp_path: Path) -> None:
    """A failed result is its own kind of line ("failed"): the report still pairs it with its
    intent instead of listing it as a loose event."""
    from canary_tui.core.actions import Verb
    from tests.conftest import ALICE

    def script(rig):  # type: ignore[no-untyped-def]
        rig.ticks(2)
        rig.service.fail_next_router_calls(1)
        rig.act(Verb.STEP_FORWARD, ALICE)
        rig.ticks(2)

    with Recording.open(record_session(tmp_path, "healthy", script=script).path) as rec:
        report = build_report(rec)
    step = [a for a in report.actions if a.actor == "alice"]
    assert len(step) == 1 and "failed at the router" in step[0].result
    assert not [e for _, e in report.events if "failed at the router" in e]
