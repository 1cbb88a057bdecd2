"""Replay: a Session fed by a recording shows exactly what the live session showed, tick by tick."""

from __future__ import annotations

import bisect
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from textual.geometry import Region
from textual.widget import Widget

from canary_tui.cli.records import recordings, replay
from canary_tui.core.actions import Actor, Verb
from canary_tui.core.frames import Frame
from canary_tui.core.state import Phase
from canary_tui.records.recording import Recorder, Recording, RecordingError
from canary_tui.session.inprocess import InProcessSession
from canary_tui.session.model import DashboardModel
from canary_tui.session.replay import ReplaySession
from canary_tui.tui.app import make_app
from canary_tui.tui.replay import ReplayApp, ReplayStatus, make_replay_app
from canary_tui.tui.screens.dialogs import TextScreen
from canary_tui.tui.screens.evidence import EvidenceScreen
from canary_tui.tui.widgets.activity import ActivityLog
from canary_tui.tui.widgets.gauges import SLOGauges
from canary_tui.tui.widgets.graphs import ComparisonGraph
from canary_tui.tui.widgets.verdicts import VerdictTable
from tests.conftest import ALICE, make_rig
from tests.test_recording import Recorded, busy_script, record_session, start_recording
from tests.tui_support import settle

VIEWER = Actor("viewer")
GRAPH_WINDOW_S = 300.0  # ComparisonGraph's default window
PANE = 12  # activity lines compared (more than the pane ever shows)
RECORDINGS = Path(__file__).parents[1] / "recordings"


def view(model: DashboardModel) -> tuple[Frame, list[Any], list[Any]]:
    """What the dashboard draws from its model: the frame, the graphs' points, the pane."""
    f = model.frame
    assert f is not None
    frame = replace(f, points=(), activity=(), full=False, sample=None)
    points = [p for p in model.points if p.t >= f.now - GRAPH_WINDOW_S]
    return frame, points, list(model.activity)[-PANE:]


@pytest.fixture(scope="module")
def session_views(tmp_path_factory: pytest.TempPathFactory) -> tuple[Recorded, list[Any]]:
    """A recorded session (engine's own windows) with the live dashboard model's view after
    every frame."""
    tmp = tmp_path_factory.mktemp("views")
    live = DashboardModel()
    views: list[Any] = []

    def script(rig: Any) -> None:
        def watch(frame: Frame) -> None:
            live.apply(frame)
            views.append(view(live))

        rig.engine.subscribe(watch)
        busy_script(rig)

    recorded = record_session(tmp, script=script, engine_windows=True)
    return recorded, views  # views[i] is what the live dashboard drew after frame i


def test_stepping_shows_what_the_live_dashboard_showed_at_every_tick(
    session_views: tuple[Recorded, list[Any]],
) -> None:
    recorded, views = session_views
    session = ReplaySession.open(recorded.path, identity=VIEWER)
    model = DashboardModel()
    session._on_frame = model.apply
    session.seek(0)
    assert view(model) == views[0]
    checked = 0
    while not session.at_end:
        session.step(1)
        assert view(model) == views[session.position], f"frame {session.position}"
        checked += 1
    assert checked >= session.ticks == session.tick > 30
    assert session.current.state.phase is Phase.ROLLED_BACK


def test_seeking_anywhere_shows_what_the_live_dashboard_showed(
    session_views: tuple[Recorded, list[Any]],
) -> None:
    recorded, views = session_views
    session = ReplaySession.open(recorded.path, identity=VIEWER)
    for i in [*range(len(views)), 3, 40, 0, 17]:  # every frame, then jumps back and forth
        model = DashboardModel()
        session._on_frame = model.apply
        session.seek(i)
        assert view(model) == views[i], f"frame {i}"


def test_playing_delivers_frames_on_recorded_time_at_speed(
    session_views: tuple[Recorded, list[Any]],
) -> None:
    recorded, views = session_views
    session = ReplaySession.open(recorded.path, identity=VIEWER)
    model = DashboardModel()
    session._on_frame = model.apply
    session.seek(0)
    assert session.advance(100.0) == 0  # paused: nothing moves
    session.set_speed(10.0)
    session.play()
    tick_s = recorded.rig.engine.settings.tick_s
    assert session.advance(tick_s / 10.0) >= 1 and session.position >= 1
    times = [f.now for f in recorded.frames]
    session.advance(1.0)  # 10 recorded seconds later
    assert session.position == bisect.bisect_right(times, session.playhead) - 1
    assert view(model) == views[session.position]
    while session.playing:
        session.advance(1.0)
    assert session.at_end and view(model) == views[-1]
    session.play()  # at the end, play starts over
    assert session.position == 0 and session.playing


def test_jumps_between_actions_and_verdict_changes(
    session_views: tuple[Recorded, list[Any]],
) -> None:
    recorded, _ = session_views
    session = ReplaySession.open(recorded.path, identity=VIEWER)
    marks = session.recording.marks
    seen = []
    while session.next_action():
        seen.append(session.position)
    assert seen == marks.actions and not session.next_action()
    back = []
    while session.prev_action():
        back.append(session.position)
    assert back == marks.actions[-2::-1]
    session.seek(0)
    changes = []
    while session.next_verdict_change():
        changes.append(session.position)
    assert changes == marks.verdicts and session.prev_verdict_change()


async def test_actions_are_refused_and_read_only_says_why(tmp_path: Path) -> None:
    path = record_session(tmp_path).path
    session = ReplaySession.open(path, identity=VIEWER)
    assert session.read_only == f"replay of {path.name}" and session.identity == VIEWER
    outcome = await session.submit(Verb.KILL, expected_version=None)
    assert not outcome.ok and "actions are disabled: replay of" in outcome.message
    got: list[Frame] = []
    await session.attach(got.append)
    assert got and got[0].full
    await session.detach()


def test_parse_time(tmp_path: Path) -> None:
    session = ReplaySession.open(record_session(tmp_path).path, identity=VIEWER)
    start, end = session.recording.start_time, session.recording.end_time
    session.seek(10)
    now = session.current.now
    assert session.parse_time("22:13:30") == 1_700_000_010.0  # UTC, on the recording's day
    assert session.parse_time("22:14") == 1_700_000_040.0
    assert session.parse_time("+30s") == now + 30 and session.parse_time("-1m") == now - 60
    assert session.parse_time("1m30s") == start + 90 and session.parse_time("90") == start + 90
    assert session.parse_time("50%") == pytest.approx(start + (end - start) / 2)
    for bad in ("soon", "25:00:00", "+", "1x"):
        with pytest.raises(ValueError, match="HH:MM:SS"):
            session.parse_time(bad)


def test_a_damaged_chunk_found_while_playing_ends_the_replay_there(tmp_path: Path) -> None:
    recorded = record_session(tmp_path)
    data = bytearray(recorded.path.read_bytes())
    with Recording.open(recorded.path) as rec:
        victim = rec._chunks[6]
    data[victim.end - 2] ^= 0x55
    recorded.path.write_bytes(bytes(data))
    session = ReplaySession.open(recorded.path, identity=VIEWER)
    session.set_speed(60.0)
    session.play()
    for _ in range(50):
        session.advance(1.0)
    assert not session.playing and session.frames == victim.first
    assert session.position == victim.first - 1 and session.problem and "damaged" in session.problem
    session.seek(10_000)
    assert session.position == victim.first - 1


def test_nothing_to_replay_is_an_error(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, "healthy")
    recorder = Recorder.create(tmp_path, rig.engine.info, rig.engine.plan, threaded=False)
    recorder.close()
    with pytest.raises(RecordingError, match="no frames"):
        ReplaySession.open(recorder.path)


# --- the replay app ----------------------------------------------------------------------------------


def widget_text(widget: Widget) -> str:
    lines = widget.render_lines(Region(0, 0, widget.size.width, widget.size.height))
    return "\n".join(strip.text for strip in lines)


def dashboard_texts(app: Any) -> dict[str, str]:
    screen = app.screen
    out = {f"graph-{g.id}": widget_text(g) for g in screen.query(ComparisonGraph)}
    out["verdicts"] = widget_text(screen.query_one(VerdictTable))
    out["gauges"] = widget_text(screen.query_one(SLOGauges))
    out["activity"] = "\n".join(str(line) for line in screen.query_one(ActivityLog).lines[-PANE:])
    return out


async def test_the_replayed_screen_equals_the_live_screen_at_each_tick(tmp_path: Path) -> None:
    """Live app and replay app: graphs, verdicts, gauges and the activity pane drawn the
    same, tick after tick (the replay's terminal is one row taller, for its status line)."""
    going = start_recording(tmp_path, engine_windows=True)
    rig = going.rig
    live_app = make_app(InProcessSession(rig.engine, ALICE))
    captured: list[tuple[int, dict[str, str]]] = []
    async with live_app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        for n in range(36):
            rig.ticks(1)
            if n == 7:
                await settle(pilot)
                rig.act(Verb.ANNOTATE, ALICE, version=None, reason="looking at the p99")
            if n % 5 == 4:
                await settle(pilot)
                captured.append((len(going.frames) - 1, dashboard_texts(live_app)))
    assert rig.engine.state.phase is Phase.ROLLED_BACK  # the last captures are after it
    session = ReplaySession.open(going.close().path, identity=VIEWER)
    app = make_replay_app(session)
    async with app.run_test(size=(120, 41)) as pilot:
        await settle(pilot)
        for index, live in captured:
            session.seek(index)
            await settle(pilot)
            assert dashboard_texts(app) == live, f"frame {index}"
        session.seek(captured[0][0] - 1)
        session.step(1)  # arriving by stepping draws the same as arriving by seeking
        await settle(pilot)
        assert dashboard_texts(app) == captured[0][1]


@pytest.fixture
def replay_app(tmp_path: Path) -> tuple[ReplayApp, ReplaySession]:
    session = ReplaySession.open(record_session(tmp_path).path, identity=VIEWER)
    return make_replay_app(session), session


async def test_player_keys(replay_app: tuple[ReplayApp, ReplaySession]) -> None:
    app, s = replay_app
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        status = app.screen.query_one(ReplayStatus)
        assert s.position == 0 and "REPLAY" in status.render().plain
        assert "PAUSED" in status.render().plain and app.timer is None  # nothing runs paused
        await pilot.press("space")
        assert s.playing and app.timer is not None and "PLAYING" in status.render().plain
        await pilot.press("space")
        assert not s.playing and app.timer is None
        await pilot.press("full_stop", "full_stop", "right")
        assert s.tick == 3
        await pilot.press("comma", "left")
        assert s.tick == 1
        await pilot.press("plus", "plus")
        assert s.speed == 10.0
        await pilot.press("minus")
        assert s.speed == 2.0
        await pilot.press("4")
        assert s.speed == 60.0 and "60x" in status.render().plain
        await pilot.press("1")
        assert s.speed == 1.0
        await pilot.press("home", "n")  # the first action: the audited start at 0%
        assert s.position == s.recording.marks.actions[0]
        await pilot.press("n", "N")
        assert s.position == s.recording.marks.actions[0]
        await pilot.press("home", "b")
        assert s.position == s.recording.marks.verdicts[0]
        await pilot.press("end")
        assert s.at_end
        await pilot.press("n")
        await settle(pilot)
        assert any("no later action" in n.message for n in app._notifications)
        await pilot.press("g")
        assert isinstance(app.screen, TextScreen)
        await pilot.press("5", "0", "percent_sign", "enter")
        await settle(pilot)
        middle = s.recording.index_at(s.parse_time("50%"))
        assert app.screen is app.dashboard and s.position == middle
        await pilot.press("g", *"soon", "enter")
        await settle(pilot)
        assert s.position == middle
        assert any("cannot read 'soon'" in n.message for n in app._notifications)


async def test_live_action_keys_are_refused_in_replay(
    replay_app: tuple[ReplayApp, ReplaySession],
) -> None:
    app, s = replay_app
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        s.seek(5)
        version = s.current.state.version
        for key in ("k", "s", "p", "P", "a", "d"):
            await pilot.press(key)
            await settle(pilot, 1)
        assert app.screen is app.dashboard  # no confirmation or note dialog opened
        assert s.current.state.version == version
        assert all("actions are disabled: replay of" in n.message for n in app._notifications)
        assert len(app._notifications) >= 1
        assert all(app.screen.check_action(a, ()) is False for a in ("kill", "step_forward"))


async def test_playing_on_the_timer_reaches_the_end_and_stops(tmp_path: Path) -> None:
    session = ReplaySession.open(record_session(tmp_path).path, identity=VIEWER)
    app = make_replay_app(session)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        session.set_speed(60.0)
        await pilot.press("space")
        for _ in range(200):
            app._on_timer()  # what the interval timer calls; driven here, not waited for
            app._last_tick -= 1.0  # as if a second had passed
            if not session.playing:
                break
        await settle(pilot)
        assert session.at_end and app.timer is None
        assert "PAUSED" in app.screen.query_one(ReplayStatus).render().plain


async def test_cut_short_is_said_at_start_and_in_the_status(tmp_path: Path) -> None:
    path = record_session(tmp_path).path
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    session = ReplaySession.open(path, identity=VIEWER)
    app = make_replay_app(session, ascii_only=True)
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(pilot)
        assert "CUT SHORT" in app.screen.query_one(ReplayStatus).render().plain
        assert any("cut short" in n.message for n in app._notifications)


# --- the shipped recordings --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "outcome", "by"),
    [
        ("auto-rollback", Phase.ROLLED_BACK, "auto-rollback"),
        ("manual-kill", Phase.ROLLED_BACK, "alice"),
        ("pair-promotion", Phase.PROMOTED, "alice"),
    ],
)
def test_shipped_recordings(name: str, outcome: Phase, by: str) -> None:
    path = RECORDINGS / f"{name}.ctrec"
    assert path.stat().st_size < 200_000
    with Recording.open(path) as rec:
        assert rec.complete and rec.problem is None
        last = rec.frame(rec.frames - 1)
        assert last.state.phase is outcome and last.state.last_change is not None
        assert last.state.last_change.actor == by
        actors = {a.actor for f in rec.iter_frames() for a in f.activity if a.kind == "intent"}
        if name == "pair-promotion":
            assert {"alice", "bob"} <= actors
            assert any(a.kind == "refused" for f in rec.iter_frames() for a in f.activity)
    session = ReplaySession.open(path, identity=VIEWER)
    session.seek(session.frames - 1)
    assert session.current.state.phase is outcome


# --- the command -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "cannot open"),
        (b"", "is empty"),
        (b'{"seq": 1}\n', "not a canary-tui recording"),
        (b"CTREC\x00\x00\x09" + b"\x00" * 50, "newer canary-tui"),
    ],
)
def test_replay_command_bad_files(tmp_path: Path, content: bytes | None, message: str) -> None:
    path = tmp_path / "bad.ctrec"
    if content is not None:
        path.write_bytes(content)
    result = CliRunner().invoke(replay, [str(path)])
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.output + result.stderr
    assert result.stderr.startswith("canary-tui: ") and result.stderr.count("\n") == 1


def test_replay_command_warns_cut_short_then_needs_a_terminal(tmp_path: Path) -> None:
    path = record_session(tmp_path).path
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    result = CliRunner().invoke(replay, [str(path)])
    assert result.exit_code == 2
    assert "warning" in result.stderr and "cut short" in result.stderr
    assert "needs a terminal" in result.stderr
    bad_speed = CliRunner().invoke(replay, [str(path), "--speed", "0"])
    assert bad_speed.exit_code == 2 and "--speed" in bad_speed.stderr


def test_recordings_lists_files_and_says_what_is_wrong(tmp_path: Path) -> None:
    first = record_session(tmp_path / "a", name="checkout-20231114T221320Z.ctrec").path
    second = record_session(tmp_path / "b", name="checkout-20231114T230000Z.ctrec").path
    where = tmp_path / "recs"
    where.mkdir()
    (where / first.name).write_bytes(first.read_bytes())
    data = second.read_bytes()
    (where / second.name).write_bytes(data[: len(data) // 2])
    (where / "junk.ctrec").write_bytes(b"hello")
    result = CliRunner().invoke(recordings, ["--dir", str(where)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:3] == ["FILE", "CANARY", "STARTED"]
    assert "complete, rolled back" in lines[1] and "2023-11-14 22:13:20" in lines[1]
    assert "cut short" in lines[2] and "unreadable: not a canary-tui recording" in lines[3]
    empty = CliRunner().invoke(recordings, ["--dir", str(tmp_path / "none")])
    assert empty.exit_code == 0 and "no recordings in" in empty.output


def test_start_recording_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from canary_tui.cli.records import start_recording
    from canary_tui.config.demo import demo_config

    rig = make_rig(tmp_path, "healthy")
    monkeypatch.setenv("CANARY_TUI_RECORDINGS", "off")
    assert start_recording(rig.engine) is None
    monkeypatch.setenv("CANARY_TUI_RECORDINGS", str(tmp_path / "recs"))
    recorder = start_recording(rig.engine, demo_config("healthy", 0))
    assert recorder is not None
    rig.ticks(3)
    recorder.close()
    assert recorder.path.parent == tmp_path / "recs" and recorder.path.name.startswith("checkout-")
    with Recording.open(recorder.path) as rec:
        assert rec.frames == 4 and rec.header.config["canary"]["name"] == "checkout"
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("CANARY_TUI_RECORDINGS", str(tmp_path / "file" / "recs"))
    assert start_recording(rig.engine) is None
    assert "this session is not recorded" in capsys.readouterr().err


def test_the_model_remembers_new_points_until_they_are_drawn(tmp_path: Path) -> None:
    """A tick's points, then an action's frame (no points) before the dashboard renders:
    the points are still to be drawn."""
    rig = make_rig(tmp_path, "healthy")
    frames: list[Frame] = []
    rig.engine.subscribe(frames.append)
    rig.ticks(1)
    rig.act(Verb.ANNOTATE, ALICE, version=None, reason="looking")
    model = DashboardModel()
    model.apply(frames[0])
    model.points_changed = False  # the first frame was drawn
    assert frames[-2].points and not frames[-1].points
    for frame in frames[-2:]:
        model.apply(frame)
    assert model.points_changed


async def test_evidence_follows_the_replay(replay_app: tuple[ReplayApp, ReplaySession]) -> None:
    """A postmortem author reads each verdict in full at any moment of the recording."""
    app, s = replay_app
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        await pilot.press("end", "b")  # the first verdict change
        await settle(pilot)
        await pilot.press("e")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, EvidenceScreen)
        assert screen.shown == (s.current.verdicts, s.current.now) and s.current.verdicts
        s.step(1)
        await settle(pilot)
        assert screen.shown == (s.current.verdicts, s.current.now)
        await pilot.press("escape")
        assert app.screen is app.dashboard
