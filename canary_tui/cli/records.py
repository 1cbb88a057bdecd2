"""Recording in `canary-tui`: the replay, report and recordings commands, and the one call
that makes every live session record itself (`start_recording`).

cli.py registers the commands on its group (`cli.add_command(replay)` ...). Every bad input
(a missing, empty, truncated, damaged, foreign or newer-version file, an unwritable output)
ends in one clear message on stderr and exit code 2, never a traceback. A recording cut short
still replays and reports up to its last whole chunk, with a warning saying so.
"""

from __future__ import annotations

import atexit
import math
import os
import stat
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from canary_tui.records.recording import (
    SUFFIX,
    Recorder,
    Recording,
    RecordingError,
    default_directory,
)

if TYPE_CHECKING:
    from canary_tui.config.schema import Config
    from canary_tui.engine.loop import Engine
    from canary_tui.records.audit import AuditHead

#: A directory for recordings, or "off" to record nothing (tests, throwaway runs).
ENV_DIR = "CANARY_TUI_RECORDINGS"
#: How long the exit waits for the recording's last chunk, index and trailer.
EXIT_WAIT_S = 10.0


def _fail(message: str, code: int = 2) -> NoReturn:
    from canary_tui.cli.common import fail

    fail(message, code=code)


def _warn(message: str) -> None:
    click.echo(f"canary-tui: warning: {message}", err=True)


#: Replay faster than this shows nothing a person can follow (use `g` to jump instead).
MAX_REPLAY_SPEED = 10_000.0


def _check_recording_path(file: Path) -> None:
    """Refuse what is not a regular file before opening it: a recording is read with seeks, and
    a FIFO or a device would block or read forever. Missing files and directories are left to
    Recording.open, which says so."""
    try:
        mode = file.stat().st_mode
    except OSError:
        return
    if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
        _fail(f"{file} is not a regular file (a recording is a file a session wrote)")


def _echo(text: str) -> None:
    """Print; a reader that stops early (`| head`) ends the output quietly."""
    try:
        click.echo(text, nl=False)
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)


def recording_directory() -> Path | None:
    """Where live sessions record: $CANARY_TUI_RECORDINGS, else the state directory;
    None when that variable says "off"."""
    value = os.environ.get(ENV_DIR, "").strip()
    if value.lower() in ("off", "no", "0", "false", "none"):
        return None
    return Path(value).expanduser() if value else default_directory()


def start_recording(
    engine: Engine, config: Config | None = None, directory: Path | None = None
) -> Recorder | None:
    """Record `engine`'s session from now on: subscribe a Recorder (secrets in `config` are
    masked), anchor its audit log's head in it as the log grows, and close it (a bounded
    wait) when the process exits. Call before the loop starts. A recording that cannot be
    created is a warning, never a reason not to run the canary."""
    where = directory or recording_directory()
    if where is None:
        return None
    s = engine.settings
    audit = engine.audit
    try:
        recorder = Recorder.create(
            where,
            engine.info,
            engine.plan,
            config.model_dump(mode="json") if config is not None else {},
            started_at=engine.clock.now(),
            history_s=s.history_s,
            activity_keep=s.activity_keep,
            tick_s=s.tick_s,
            audit_head=audit.head,
            audit_log=str(audit.path.resolve()),
        )
    except RecordingError as exc:
        _warn(f"{exc}; this session is not recorded")
        return None
    engine.subscribe(recorder.on_frame)
    audit.add_listener(recorder.on_audit)
    atexit.register(recorder.close, EXIT_WAIT_S)
    return recorder


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--speed",
    type=float,
    default=1.0,
    show_default=True,
    help="Play at this speed (1, 2, 10, 60 or any positive number).",
)
@click.option("--paused", is_flag=True, help="Open paused at the first frame (space plays).")
@click.option("--ascii", "ascii_only", is_flag=True, help="Draw with ASCII only.")
@click.option("--theme", default=None, help="Colour theme (default: the last one picked).")
def replay(file: Path, speed: float, paused: bool, ascii_only: bool, theme: str | None) -> None:
    """Replay a recorded session in the dashboard (space plays and pauses, ? lists the keys)."""
    from canary_tui.cli.common import check_terminal as _check_terminal
    from canary_tui.cli.common import check_theme as _check_theme
    from canary_tui.session.identity import local_actor
    from canary_tui.session.replay import ReplaySession

    if not (speed > 0 and math.isfinite(speed) and speed <= MAX_REPLAY_SPEED):
        _fail(f"--speed must be a positive number up to {MAX_REPLAY_SPEED:g}, got {speed:g}")
    _check_recording_path(file)
    try:
        session = ReplaySession.open(file, identity=local_actor())
    except RecordingError as exc:
        _fail(str(exc))
    if session.problem:
        _warn(f"{file}: {session.problem}")
    chosen = _check_theme(theme)
    _check_terminal()
    from canary_tui.tui.replay import make_replay_app

    session.set_speed(speed)
    app = make_replay_app(session, theme=chosen, ascii_only=ascii_only, playing=not paused)
    app.run()


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path),
    default=None,
    help="Write the report here (default: standard output).",
)
@click.option("--html", "as_html", is_flag=True, help="A self-contained HTML page, not Markdown.")
def report(file: Path, output: Path | None, as_html: bool) -> None:
    """Write a postmortem timeline of a recording: summary, actions, phases, key metrics."""
    from canary_tui.records.report import build_report, render_html, render_markdown

    _check_recording_path(file)
    try:
        with Recording.open(file) as rec:
            if rec.frames == 0:
                _fail(f"{file}: the recording holds no frames ({rec.problem or 'empty'})")
            built = build_report(rec)
    except RecordingError as exc:
        _fail(str(exc))
    if built.problem:
        _warn(f"{file}: {built.problem}")
    text = render_html(built) if as_html else render_markdown(built)
    if output is None:
        _echo(text)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        _fail(f"cannot write {output}: {exc.strerror or exc}")


@click.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path),
    default=None,
    help="Where to look (default: the user's state directory, canary-tui/recordings).",
)
def recordings(directory: Path | None) -> None:
    """List recorded sessions: canary, start, length, ticks, size, outcome."""
    where = directory or default_directory()
    if where.exists() and not where.is_dir():
        _fail(f"{where} is not a directory")
    try:
        files = sorted(where.glob(f"*{SUFFIX}")) if where.is_dir() else []
    except OSError as exc:
        _fail(f"cannot list {where}: {exc.strerror or exc}")
    if not files:
        click.echo(f"no recordings in {where}")
        return
    rows = [("FILE", "CANARY", "STARTED (UTC)", "LENGTH", "TICKS", "SIZE", "STATE")]
    for path in files:
        rows.append(_describe(path))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    _echo(
        "".join(
            "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + "\n"
            for r in rows
        )
    )


def _describe(path: Path) -> tuple[str, str, str, str, str, str, str]:
    try:
        size = _size(path.stat().st_size)
    except OSError as exc:
        return (path.name, "?", "?", "?", "?", "?", f"unreadable: {exc.strerror or exc}")
    try:
        with Recording.open(path) as rec:
            start = datetime.fromtimestamp(rec.start_time, UTC).strftime("%Y-%m-%d %H:%M:%S")
            length = _length(rec.end_time - rec.start_time)
            state = "complete" if rec.complete else "cut short"
            if rec.frames:
                try:
                    state += ", " + rec.frame(rec.frames - 1).state.phase.label
                except RecordingError:
                    state = "damaged"
            return (path.name, rec.info.name, start, length, str(rec.ticks), size, state)
    except RecordingError as exc:
        why = str(exc).removeprefix(f"{path}").lstrip(": ").removeprefix("is ")
        return (path.name, "?", "?", "?", "?", size, f"unreadable: {why}")


def _size(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.0f} KB" if n >= 1e3 else f"{n} B"


def _length(seconds: float) -> str:
    s = max(0, round(seconds))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def audit_verify_command(file: Path, against: str | None, legacy: bool) -> None:
    """`canary-tui audit verify FILE [--against RECORDING|SEQ:HASH] [--legacy]`: check the
    chain, and with --against that the log still holds the head its anchor saw. Exit 0 if
    all holds, 1 if the log is broken, empty, headerless or cut short, 2 on bad input."""
    from canary_tui.records.audit import AuditError, verify, verify_against

    if against is None:
        try:
            result = verify(file, legacy=legacy)
        except AuditError as exc:
            _fail(str(exc))
        if result.ok and result.records == 0:
            click.echo(
                f"{file}: OK, header only (no records yet), chain intact; only --against can "
                "tell whether records were cut off its end"
            )
            return
        if result.ok:
            note = "" if result.header else " (a legacy log with no header record)"
            click.echo(f"{file}: OK, {result.records} records, chain intact{note}")
            return
        if result.problem == "broken":
            _fail(
                f"{file}: BROKEN at record on line {result.bad_line}: {result.reason} "
                f"({result.records} records before it are intact)",
                code=1,
            )
        _fail(f"{file}: NOT OK: {result.reason}", code=1)
    anchors, source = _anchors(against)
    try:
        check = verify_against(file, anchors, legacy=legacy)
    except AuditError as exc:
        _fail(str(exc))
    if check.ok:
        click.echo(f"{file}: {check.message} (anchors from {source})")
        return
    _fail(f"{file}: {check.message} (anchors from {source})", code=1)


def _anchors(against: str) -> tuple[list[AuditHead], str]:
    """The anchors `--against` names: a recording's, or one head written as SEQ:HASH (the
    value of an annotation or Event)."""
    from canary_tui.records.audit import AuditHead

    path = Path(against)
    if not path.exists():
        try:
            return [AuditHead.parse(against)], f"the head {against[:24]}…"
        except ValueError:
            _fail(
                f"--against {against}: no such file, and not an audit head "
                "(give a recording, or SEQ:SHA256 as kept in an annotation or Event)"
            )
    try:
        with Recording.open(path) as rec:
            anchors, named = list(rec.audit_anchors), rec.header.audit_log
    except RecordingError as exc:
        _fail(f"--against: {exc}")
    if not anchors:
        _fail(
            f"--against {path}: the recording holds no anchor of an audit log (written before "
            "recordings kept one, or the session wrote no audit record before it stopped)",
            code=1,
        )
    return anchors, f"recording {path}" + (f", of audit log {named}" if named else "")


COMMANDS = (replay, report, recordings)
