"""The `canary-tui` command: demo, run (with a dashboard or headless), audit verify/tail.

Every failure a person can cause (a bad config, an unknown scenario, an unwritable audit
path, a terminal too small) ends in one clear message and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from canary_tui import __version__
from canary_tui.config.build import Built, build_engine
from canary_tui.config.loader import ConfigError, load_config
from canary_tui.config.schema import Config
from canary_tui.core.clock import Clock, VirtualClock
from canary_tui.core.frames import Frame
from canary_tui.core.state import Phase
from canary_tui.session.lock import CanaryLock

EXIT_PROMOTED, EXIT_ROLLED_BACK, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 3
MIN_WIDTH, MIN_HEIGHT = 40, 12


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    click.echo(f"canary-tui: {message}", err=True)
    sys.exit(code)


def _scenario_help() -> str:
    from adapters.simulator import SCENARIOS

    return "; ".join(f"{s.name}: {s.description}" for s in SCENARIOS.values())


MAX_SPEED = 1000.0  # faster than this the loop cannot keep up with its own ticks: use 'max'


def _clock_for(speed: str, config: Config) -> Clock:
    from canary_tui.engine.clocks import ScaledClock, WallClock

    simulated = config.source.kind == "simulator" and config.router.kind == "simulator"
    if speed == "max":
        if not simulated:
            fail("--speed max runs in virtual time and needs the simulator for metrics and router")
        return VirtualClock(start=time.time())
    try:
        factor = float(speed)
    except ValueError:
        fail(f"--speed must be a positive number or 'max', got {speed!r}")
    if not 0 < factor <= MAX_SPEED:
        fail(
            f"--speed must be a positive number up to {MAX_SPEED:g}, or 'max' for virtual time "
            f"with no waiting; got {speed!r}"
        )
    if factor != 1.0 and not simulated:
        fail("--speed other than 1 only works with the simulator (real clusters run in real time)")
    return WallClock() if factor == 1.0 else ScaledClock(factor)


def _build(config: Config, clock: Clock, audit: Path | None, mode: str = "run") -> Built:
    """The engine for `config`, recording itself (closed at exit), once this process holds
    the canary's lock: one loop per canary, whatever the mode."""
    import atexit

    from canary_tui.session.lock import LockHeld

    lock = CanaryLock(config.canary.name, mode)
    try:
        lock.acquire()
    except (LockHeld, OSError) as exc:
        fail(str(exc))
    atexit.register(lock.release)
    try:
        built = build_engine(config, clock, audit_path=audit)
    except ConfigError as exc:
        fail(str(exc))
    _LOCKS[built.engine.info.name] = lock
    _install_crash_hook(built)
    from canary_tui.cli_records import start_recording

    start_recording(built.engine, config)
    return built


CRASH_ENV = "CANARY_TUI_CRASH_AT"
_LOCKS: dict[str, CanaryLock] = {}  # the canary locks this process holds, by canary


def _install_crash_hook(built: Built) -> None:
    """For the fault-injection tests only: `CANARY_TUI_CRASH_AT=after_intent:kill` kills this
    process with SIGKILL at that point of the action path (after_intent, after_router,
    after_result; the verb, or `any`)."""
    spec = os.environ.get(CRASH_ENV)
    if not spec:
        return
    point, _, verb = spec.partition(":")

    def crash(at: str, what: Any) -> None:
        if at == point and verb in ("", "any", str(what.value)):
            os.kill(os.getpid(), signal.SIGKILL)

    built.engine.crash_hook = crash


def _recovery(built: Built) -> Any:
    """What the audit log says of the last run (an unconfirmed kill, an open intent)."""
    from canary_tui.engine.recovery import recover
    from canary_tui.records.audit import AuditError

    try:
        return recover(built.audit_path)
    except AuditError as exc:
        fail(str(exc))


def _via_prometheus(built: Built, url: str | None, exporter_port: int) -> None:
    """Demo only: serve the simulator's counters on /metrics and read them back through the
    Prometheus at `url` instead of straight from the simulator."""
    if url is None:
        return
    from adapters.registry import AdapterConfigError
    from adapters.simulator_exporter import demo_source_via_prometheus

    info = built.engine.info
    try:
        demo = demo_source_via_prometheus(
            built.context.shared["simulator"], url, exporter_port=exporter_port,
            stable_version=info.stable_version, canary_version=info.canary_version,
        )  # fmt: skip
    except (AdapterConfigError, OSError) as exc:
        fail(f"--prometheus: {exc}")
    built.engine.source = demo.source
    built.engine.info = replace(info, metrics=f"prometheus {url}")
    built.engine.note(
        f"metrics via Prometheus at {url}; it must scrape {demo.exporter.url} as job "
        f"canary-tui-demo: {' '.join(demo.scrape_config.split())}"
    )


def _attach_dashboard(
    canary: str, serve_args: list[str], *, theme: str, ascii_only: bool, keymap: dict[str, str]
) -> None:
    """Reuse the canary's session daemon, or start one, then attach this terminal to it."""
    from canary_tui.session.launch import ensure_daemon

    try:
        path, started = ensure_daemon(canary, serve_args)
    except RuntimeError as exc:
        fail(str(exc))
    if not started:
        click.echo(f"attaching to the running session for {canary!r}", err=True)
    _attach_to(path, theme=theme, ascii_only=ascii_only, keymap=keymap)


def _attach_to(path: Path, *, theme: str, ascii_only: bool, keymap: dict[str, str]) -> None:
    import asyncio

    from canary_tui.session.client import SessionUnavailable, SocketSession, query_status
    from canary_tui.tui.app import make_app

    try:
        asyncio.run(query_status(path))
    except (SessionUnavailable, OSError, ValueError) as exc:
        fail(str(exc))
    from canary_tui.tui.settings import wants_ascii

    app = make_app(
        SocketSession(path),
        theme=theme,
        ascii_only=wants_ascii(ascii_only),
        persist_theme=True,
        keymap=keymap,
    )
    app.run()
    if app.return_code:
        sys.exit(app.return_code)


def _check_terminal() -> None:
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        fail(
            "the dashboard needs a terminal; "
            "for pipelines use `canary-tui run --config FILE --headless`"
        )
    size = shutil.get_terminal_size(fallback=(0, 0))
    if size.columns < MIN_WIDTH or size.lines < MIN_HEIGHT:
        fail(
            f"terminal too small: {size.columns}x{size.lines}; the dashboard needs at least "
            f"{MIN_WIDTH}x{MIN_HEIGHT} (or use `run --headless`)"
        )


def _keymap(config: Config | None = None) -> dict[str, str]:
    """The user's keys (settings.yaml `keys:`), overridden by the config's; fails on conflicts."""
    from canary_tui.tui.keymap import check_keymap
    from canary_tui.tui.settings import load_settings

    saved = load_settings().get("keys")
    keymap = {str(k): str(v) for k, v in saved.items()} if isinstance(saved, dict) else {}
    if config is not None:
        keymap.update(config.keys)
    problems = check_keymap(keymap)
    if problems:
        fail("\n".join(problems))
    return keymap


def _check_theme(theme: str | None) -> str:
    """The theme to start with: --theme (which must exist), else the saved or NO_COLOR one."""
    from textual.theme import BUILTIN_THEMES

    from canary_tui.tui.settings import initial_theme, load_user_themes
    from themes import load_builtin_themes

    if theme is None:
        return initial_theme(None)  # a saved name that is gone falls back with a notice
    known = [t.name for t in load_builtin_themes()] + [t.name for t in load_user_themes().themes]
    known += sorted(BUILTIN_THEMES)
    if theme not in known:
        fail(f"unknown theme {theme!r}; known: {', '.join(known)}")
    return theme


def _run_dashboard(built: Built, *, theme: str, ascii_only: bool, keymap: dict[str, str]) -> None:
    from canary_tui.engine.runner import EngineRunner
    from canary_tui.session.identity import local_actor
    from canary_tui.session.inprocess import InProcessSession
    from canary_tui.tui.app import make_app

    _check_terminal()
    runner = EngineRunner(built.engine, resume=_recovery(built), restart=True)
    runner.start()
    from canary_tui.tui.settings import wants_ascii

    app = make_app(
        InProcessSession(built.engine, local_actor(), runner=runner),
        theme=theme,
        ascii_only=wants_ascii(ascii_only),
        persist_theme=True,
        keymap=keymap,
    )
    try:
        app.run()
    finally:
        runner.stop()
        built.engine.stop("dashboard closed: loop stopped")
        _close(built)
    if runner.error is not None and not runner.running:
        fail(f"the loop stopped on an error: {runner.error}")


def _close(built: Built) -> None:
    """Flush and release what the loop holds, each with a bounded wait: webhooks, Events,
    the audit log, the canary's lock."""
    if built.alerter is not None:
        built.alerter.close()
    built.engine.close()
    built.engine.audit.close()
    lock = _LOCKS.pop(built.engine.info.name, None)
    if lock is not None:
        lock.release()


F = TypeVar("F", bound=Callable[..., Any])


def look_options(command: F) -> F:
    """The dashboard's look: shared by every command that opens it."""
    command = click.option("--ascii", "ascii_only", is_flag=True, help="Draw with ASCII only.")(
        command
    )
    return click.option(
        "--theme",
        default=None,
        help="Colour theme (default: the last one picked with `t`; canary-mono under NO_COLOR).",
    )(command)


def speed_option(help: str) -> Callable[[F], F]:
    """--speed: how fast the simulator's time runs (each command says what it allows)."""
    return click.option("--speed", default="1", show_default=True, help=help)


def audit_option(help: str) -> Callable[[F], F]:
    """--audit: where the audit log goes (each command says what it overrides)."""
    return click.option(
        "--audit", "audit_path", type=click.Path(path_type=Path), default=None, help=help
    )


in_process_option = click.option(
    "--in-process",
    is_flag=True,
    help="Run the loop inside this terminal instead of a session daemon "
    "(it then stops when the dashboard closes).",
)


def simulator_options(command: F) -> F:
    """The demo canary's knobs, shared by `demo` and `serve --demo`."""
    options = [
        click.option("--scenario", default="healthy", show_default=True, metavar="NAME",
                     help="Simulated behaviour of the canary. " + _scenario_help()),
        click.option("--rate", default=2000.0, show_default=True,
                     type=click.FloatRange(min=1, max=1e6),
                     help="Simulated requests per second, both variants together."),
        click.option("--seed", default=0, show_default=True, type=int,
                     help="Simulator random seed."),
        click.option("--judge", type=click.Choice(["sequential", "threshold"]),
                     default="sequential", show_default=True,
                     help="How canary and baseline are compared: sequential (anytime-valid "
                          "statistics, safe to look at every tick) or threshold (rates over a "
                          "window against fixed limits)."),
        click.option("--prometheus", "prometheus_url", default=None, metavar="URL",
                     help="Read the simulator's metrics back through this Prometheus (which "
                          "must scrape the demo's /metrics endpoint; the activity pane shows "
                          "the job)."),
        click.option("--exporter-port", default=9479, show_default=True,
                     type=click.IntRange(1, 65535),
                     help="With --prometheus: where the simulator serves /metrics."),
    ]  # fmt: skip
    for option in reversed(options):
        command = option(command)
    return command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="canary-tui")
def cli() -> None:
    """A terminal operations console for live canary deployments.

    Live canary-vs-baseline graphs, SLO gauges and verdicts; one key to step, pause,
    shadow, kill or promote; every action in a hash-chained audit log; and the automated
    rollback loop, which also runs headless.

    \b
    Words used here:
      canary    the new version, given a share of the traffic (its weight)
      baseline  the version it replaces, serving the rest
      judge     compares canary with baseline per metric, every tick: PASS,
                FAIL (auto-rollback kills the canary) or WAIT (not proven yet)
      shadow    mirror a copy of live requests to the canary (answers dropped)
      headless  no dashboard: JSON lines and an exit code, for pipelines
      session   the loop runs in a daemon; dashboards attach and may leave

    \b
    Start here:
      canary-tui demo             the dashboard on a simulated canary
      canary-tui COMMAND --help   every command has an example

    \b
    Environment:
      NO_COLOR                 start in the monochrome theme
      TERM, COLORTERM          a terminal without colour (dumb, vt100): the same
      LC_ALL, LC_CTYPE, LANG   not UTF-8: draw with ASCII only (as --ascii)
      SSH_CONNECTION           set: animations off
      CANARY_TUI_OUTPUT        raw: send Textual's output unchanged (default:
                               only the style changes)
    """


@cli.command()
@speed_option(
    "Time runs this many times faster than the wall clock, up to 1000. ('max', virtual "
    "time with no waiting at all, is for `run --headless`.)"
)
@audit_option("Audit log file (default: under the user's state directory).")
@in_process_option
@simulator_options
@look_options
def demo(
    prometheus_url: str | None,
    exporter_port: int,
    in_process: bool,
    scenario: str,
    speed: str,
    rate: float,
    seed: int,
    audit_path: Path | None,
    judge: str,
    theme: str | None,
    ascii_only: bool,
) -> None:
    """Run the dashboard on the embedded simulator (no cluster needed): a synthetic
    `checkout` service whose canary ramps 5% -> 10% -> 25% -> 50% -> 75% -> 100%. The loop
    runs in a session daemon (see `attach`), unless --in-process."""
    from adapters.simulator import SCENARIOS
    from canary_tui.config.demo import demo_config

    if scenario not in SCENARIOS:
        fail(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
    theme = _check_theme(theme)
    config = demo_config(scenario, seed, judge=judge, rate=rate)
    clock = _clock_for(speed, config)
    _check_terminal()
    if prometheus_url is not None and speed != "1":
        fail("--prometheus needs --speed 1: Prometheus scrapes in real time")
    if in_process:
        built = _build(config, clock, audit_path, mode="demo --in-process")
        _via_prometheus(built, prometheus_url, exporter_port)
        _run_dashboard(built, theme=theme, ascii_only=ascii_only, keymap=_keymap(config))
        return
    serve_args = [
        "--demo",
        "--rate",
        str(rate),
        "--scenario",
        scenario,
        "--seed",
        str(seed),
        "--speed",
        speed,
        "--judge",
        judge,
    ]
    if prometheus_url is not None:
        serve_args += ["--prometheus", prometheus_url]
        serve_args += ["--exporter-port", str(exporter_port)]
    if audit_path is not None:
        serve_args += ["--audit", str(audit_path.resolve())]
    _attach_dashboard(
        config.canary.name, serve_args, theme=theme, ascii_only=ascii_only, keymap=_keymap(config)
    )


@cli.command()
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(path_type=Path),
    help="The canary's YAML configuration.",
)
@click.option(
    "--headless",
    is_flag=True,
    help="Headless, for pipelines: no dashboard; print one JSON line per event and exit 0 "
    "promoted, 1 rolled back, 2 error, 3 did not finish (interrupted, or the loop stopped).",
)
@speed_option("Simulator only: time factor, or 'max' for virtual time with no waiting.")
@audit_option("Audit log file (overrides the config's audit.path).")
@in_process_option
@look_options
def run(
    in_process: bool,
    config_path: Path,
    headless: bool,
    speed: str,
    audit_path: Path | None,
    theme: str | None,
    ascii_only: bool,
) -> None:
    """Run the loop for the canary in a config file, with the dashboard or headless (no
    dashboard: JSON lines and an exit code)."""
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        fail(str(exc))
    clock = _clock_for(speed, config)
    if headless:
        sys.exit(run_headless(_build(config, clock, audit_path, mode="run --headless"),
                              emit=_emit_json))  # fmt: skip
    look = _check_theme(theme)
    keymap = _keymap(config)
    _check_terminal()
    if in_process:
        built = _build(config, clock, audit_path, mode="run --in-process")
        _run_dashboard(built, theme=look, ascii_only=ascii_only, keymap=keymap)
        return
    serve_args = ["--config", str(config_path.resolve()), "--speed", speed]
    if audit_path is not None:
        serve_args += ["--audit", str(audit_path.resolve())]
    _attach_dashboard(
        config.canary.name, serve_args, theme=look, ascii_only=ascii_only, keymap=keymap
    )


def _emit_json(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def frame_events(frame: Frame) -> list[dict[str, Any]]:
    """The JSON events a frame stands for in headless output."""
    events: list[dict[str, Any]] = []
    for entry in frame.activity:
        events.append(
            {
                "event": "activity",
                "time": entry.t,
                "kind": entry.kind,
                "actor": entry.actor,
                "text": entry.text,
                "seq": entry.seq,
            }
        )
    if frame.points:
        s = frame.state
        events.append(
            {
                "event": "tick",
                "time": frame.now,
                "phase": s.phase.value,
                "step": s.step_index + 1,
                "steps": len(frame.plan),
                "weight": s.weight,
                "armed": s.armed,
                "no_data": frame.no_data,
                "verdicts": [
                    {"metric": v.metric, "status": v.status.value, "why": v.why}
                    for v in frame.verdicts
                ],
            }
        )
    return events


def run_headless(built: Built, emit: Callable[[dict[str, Any]], None]) -> int:
    """The loop with no UI; returns the exit code for the canary's outcome.

    Events go through a bounded queue to a writer thread: a stalled or closed stdout never
    stops the loop (events are then dropped and counted). If the loop stops on an error,
    the run exits 3 (it did not finish), like an interruption.
    """
    from canary_tui.engine.runner import EngineRunner

    engine = built.engine
    out = EventWriter(emit)
    engine.subscribe(out.frame)
    runner = EngineRunner(engine, stop_when_terminal=True, resume=_recovery(built))
    interrupted: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        interrupted.append(signum)
        runner.stop(timeout=0)

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        runner.start()
        runner.join()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    state = engine.state
    if runner.error is not None:
        engine.stop(f"loop stopped on an error: {runner.error}")
        out.put({"event": "end", "outcome": "loop-stopped", "message": str(runner.error),
                 "weight": state.weight, "exit": EXIT_INTERRUPTED})  # fmt: skip
        code = EXIT_INTERRUPTED
    elif interrupted and not state.terminal:
        engine.stop(f"interrupted by signal {interrupted[0]} at {state.weight}%")
        out.put({"event": "end", "outcome": "interrupted", "weight": state.weight,
                 "exit": EXIT_INTERRUPTED})  # fmt: skip
        code = EXIT_INTERRUPTED
    else:
        code = EXIT_PROMOTED if state.phase is Phase.PROMOTED else EXIT_ROLLED_BACK
        engine.stop(f"canary {state.phase.label}")
        out.put({"event": "end", "outcome": state.phase.value, "exit": code})
    _close(built)
    out.close()
    return code


class EventWriter:
    """Headless output off the loop's thread: a bounded queue and a writer thread."""

    def __init__(self, emit: Callable[[dict[str, Any]], None], size: int = 10_000) -> None:
        import queue
        import threading

        self.emit = emit
        self.dropped = 0
        self.broken: str | None = None
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue(size)
        self._thread = threading.Thread(target=self._run, name="headless-out", daemon=True)
        self._thread.start()

    def frame(self, frame: Frame) -> None:
        """Engine subscriber: never blocks."""
        for event in frame_events(frame):
            self.put(event)

    def put(self, event: dict[str, Any]) -> None:
        import queue

        if self.broken is not None:
            return
        try:
            self._queue.put_nowait(event)
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            if event is None:
                return
            if self.broken is not None:
                continue
            try:
                self.emit(event)
            except (OSError, ValueError) as exc:  # EPIPE, a closed stdout: stop writing
                self.broken = str(exc) or type(exc).__name__

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued (bounded wait), then stop."""
        import contextlib
        import queue

        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout)
        self._thread.join(timeout)
        if self.dropped:
            with contextlib.suppress(OSError, ValueError):
                click.echo(f"canary-tui: {self.dropped} events were dropped: the output "
                           "did not keep up", err=True)  # fmt: skip


@cli.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="The canary's YAML configuration.",
)
@click.option("--demo", "demo_mode", is_flag=True, help="Serve the demo canary on the simulator.")
@speed_option("Simulator only: time factor, up to 1000 (not 'max': a daemon runs in real time).")
@audit_option("Audit log file (overrides the config's audit.path).")
@click.option(
    "--exit-when-done",
    is_flag=True,
    help="Stop the daemon once the canary is promoted or rolled back.",
)
@simulator_options
def serve(
    config_path: Path | None,
    demo_mode: bool,
    scenario: str,
    rate: float,
    seed: int,
    judge: str,
    speed: str,
    audit_path: Path | None,
    prometheus_url: str | None,
    exporter_port: int,
    exit_when_done: bool,
) -> None:
    """Run a session daemon with no dashboard: it owns the loop; terminals attach to it.

    It needs exactly one of --config FILE (your canary) or --demo (the simulated one).
    Use it under nohup or a service manager; `canary-tui attach` opens a dashboard on it.
    """
    from canary_tui.config.demo import demo_config
    from canary_tui.session.daemon import DaemonError, SessionDaemon, run_daemon
    from canary_tui.session.sockets import lock_path, socket_path

    if demo_mode == (config_path is not None):
        fail("serve needs exactly one of --config FILE or --demo")
    if demo_mode:
        from adapters.simulator import SCENARIOS

        if scenario not in SCENARIOS:
            fail(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
        config = demo_config(scenario, seed, judge=judge, rate=rate)
    elif config_path is None:
        fail("serve needs exactly one of --config FILE or --demo")
    else:
        try:
            config = load_config(config_path)
        except ConfigError as exc:
            fail(str(exc))
    if speed == "max":
        fail("--speed max is for `run --headless` only; a session daemon runs in real time")
    clock = _clock_for(speed, config)
    if prometheus_url is not None and not demo_mode:
        fail("--prometheus is for the demo; a config names its source under `source:`")
    built = _build(config, clock, audit_path, mode="serve")
    _via_prometheus(built, prometheus_url, exporter_port)
    resume = _recovery(built)
    import logging

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    daemon = SessionDaemon(
        built.engine,
        socket_path=socket_path(config.canary.name),
        lock_path=lock_path(config.canary.name),
        operators=config.session.operators,
        group=config.session.group,
        stop_when_terminal=exit_when_done,
        resume=resume,
        lock=_LOCKS.get(config.canary.name),
    )
    try:
        run_daemon(daemon)
    except DaemonError as exc:
        fail(str(exc))
    finally:
        if built.alerter is not None:
            built.alerter.close()


@cli.command()
@click.argument("name", required=False)
@look_options
def attach(name: str | None, theme: str | None, ascii_only: bool) -> None:
    """Open a dashboard on a running session (the only one, or NAME)."""
    from canary_tui.session.sockets import list_sockets, socket_path

    theme = _check_theme(theme)
    if name is None:
        sockets = list_sockets()
        if not sockets:
            fail("no live sessions; start one with `canary-tui demo` or `canary-tui serve`")
        if len(sockets) > 1:
            names = ", ".join(p.stem for p in sockets)
            example = sockets[0].stem
            fail(f"several live sessions ({names}): name one, e.g. `canary-tui attach {example}`")
        path = sockets[0]
    else:
        path = socket_path(name)
        if not path.exists():
            fail(f"no live session named {name!r} (see `canary-tui ls`)")
    keymap = _keymap()
    _check_terminal()
    _attach_to(path, theme=theme, ascii_only=ascii_only, keymap=keymap)


@cli.command("ls")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per session.")
def list_sessions(as_json: bool) -> None:
    """List live sessions: canary, phase, weight, who is attached, since when."""
    import asyncio
    from datetime import UTC, datetime

    from canary_tui.session.client import SessionUnavailable, query_status
    from canary_tui.session.sockets import list_sockets

    rows = []
    for path in list_sockets():
        try:
            rows.append(asyncio.run(query_status(path)))
        except (SessionUnavailable, OSError, TimeoutError, ValueError):
            continue  # a dead daemon's socket: the next daemon for it cleans it up
    if as_json:
        for row in rows:
            click.echo(json.dumps(row))
        return
    if not rows:
        click.echo("no live sessions")
        return
    click.echo(f"{'CANARY':<20} {'PHASE':<12} {'WEIGHT':>6} {'STEP':>5}  {'LOOP':<8} "
               f"{'SINCE':<8} ATTACHED")  # fmt: skip
    for r in rows:
        since = datetime.fromtimestamp(r["since"], UTC).strftime("%H:%M:%S")
        people = [a["user"] + (f"@{a['ssh_client']}" if a.get("ssh_client") else "")
                  for a in r["attached"]]  # fmt: skip
        who = ", ".join(people) or f"nobody (unattended: {r['unattended']})"
        step = f"{r['step']}/{r['steps']}"
        phase = "KILL PENDING" if r.get("kill_pending") else r["phase"]
        loop = str(r.get("loop", "?"))
        click.echo(
            f"{r['canary']:<20} {phase:<12} {r['weight']:>5}% {step:>5}  {loop:<8} "
            f"{since:<8} {who}"
        )
        if loop != "running" and r.get("loop_detail"):
            click.echo(f"  LOOP {loop.upper()}: {r['loop_detail']}")


@cli.command(
    epilog="Example: canary-tui watch httproute/foo-route -n shop --prometheus "
    "http://prometheus:9090"
)
@click.argument("target", metavar="KIND/NAME")
@click.option("-n", "--namespace", default=None, help="Namespace (default: the context's).")
@click.option("--context", default=None, help="kubeconfig context (default: the current one).")
@click.option("--kubeconfig", default=None, type=click.Path(), help="kubeconfig file.")
@click.option(
    "--prometheus",
    "prometheus_url",
    default=None,
    metavar="URL",
    help="Prometheus to read the canary's metrics from.",
)
@click.option(
    "--preset",
    default=None,
    help="Metrics preset: generic, istio, linkerd, nginx (default: guessed from the object).",
)
@click.option(
    "--stable-version",
    default=None,
    metavar="VALUE",
    help="The stable pods' value of the variant label (default: read from the cluster).",
)
@click.option(
    "--canary-version",
    default=None,
    metavar="VALUE",
    help="The canary pods' value of the variant label (default: read from the cluster).",
)
@click.option(
    "--variant-label",
    default=None,
    metavar="LABEL",
    help="The metrics label that tells stable from canary (default: the preset's, or the "
    "pod label that differs, e.g. version).",
)
@click.option(
    "--rule",
    default="",
    metavar="N|NAME",
    help="HTTPRoute: the rule (index or name); VirtualService: the HTTP route's name.",
)
@click.option(
    "--stable",
    default="",
    metavar="NAME",
    help="The stable backend (HTTPRoute), subset or host (VirtualService) or Deployment.",
)
@click.option(
    "--canary",
    default="",
    metavar="NAME",
    help="The canary backend (HTTPRoute), subset or host (VirtualService) or Deployment.",
)
@click.option(
    "--api-version",
    default="",
    metavar="VERSION",
    help="The object's API version (default: what the server serves: HTTPRoute v1, else "
    "v1beta1; VirtualService v1beta1, v1, v1alpha3).",
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Take plan, metrics, SLOs, judge, loop and source settings from this file.",
)
@click.option("--headless", is_flag=True,
              help="No dashboard: JSON lines and an exit code (for pipelines).")
@click.option("--in-process", is_flag=True, help="Run the loop in this terminal, no daemon.")
@click.option("--dry-run", is_flag=True, help="Print the config it would run, and exit.")
@look_options
def watch(
    target: str,
    namespace: str | None,
    context: str | None,
    kubeconfig: str | None,
    prometheus_url: str | None,
    preset: str | None,
    stable_version: str | None,
    canary_version: str | None,
    variant_label: str | None,
    rule: str,
    stable: str,
    canary: str,
    api_version: str,
    config_path: Path | None,
    headless: bool,
    in_process: bool,
    dry_run: bool,
    theme: str | None,
    ascii_only: bool,
) -> None:
    """Watch an existing canary: rollout/NAME, virtualservice/NAME, httproute/NAME or
    deployment/NAME, adopting its live weights (watching never writes to the cluster).

    The router, the plan (a Rollout's own steps) and the variants' label values (from the
    Rollout's ReplicaSets, the DestinationRule subsets, the backend Services' selectors or the
    Deployments' pod labels) come from the cluster; --stable-version, --canary-version and
    --variant-label say otherwise. Where discovery cannot decide (an HTTPRoute whose backends
    are not named *-stable/*-canary and do not differ in weight), it lists the rules it saw:
    pass --rule, --stable and --canary. It prints the queries it will run before starting.

    --config FILE merges with discovery field by field: the file wins over discovery (router
    options such as mirror_percent are kept), the flags win over the file, and canary.name
    defaults to NAME (two targets with one metrics file get two sessions and audit logs).

    The generated config is written under ~/.local/state/canary-tui/watch/ and printed, so
    the same session can be started again with `canary-tui run --config FILE`.
    """
    import yaml

    from adapters.kubernetes.discover import Choices, discover
    from adapters.registry import AdapterConfigError
    from canary_tui.cli_watch import WatchFlags, build_data, check, query_lines, read_file
    from canary_tui.core.ports import RouterError
    from canary_tui.paths import state_dir

    file_data: dict[str, Any] = {}
    lines: dict[Any, int] = {}
    where = f"watch {target}"
    if config_path is not None:
        try:
            file_data, lines = read_file(config_path)
        except ConfigError as exc:
            fail(str(exc))
        where = str(config_path)
    choices = Choices(rule=rule, stable=stable, canary=canary, api_version=api_version)
    try:
        found = discover(
            target, namespace=namespace, context=context, kubeconfig=kubeconfig, choices=choices
        )
    except RouterError as exc:
        fail(f"{target}: {exc}")
    flags = WatchFlags(
        prometheus_url=prometheus_url, preset=preset, stable_version=stable_version,
        canary_version=canary_version, variant_label=variant_label, rule=rule, stable=stable,
        canary=canary, api_version=api_version,
    )  # fmt: skip
    try:
        data, notes = build_data(target, found, flags, file_data)
        config = check(data, lines, where)
    except ConfigError as exc:
        fail(str(exc))
    if config.source.kind == "simulator":
        fail("watch needs real metrics: pass --prometheus URL, or --config FILE with a source")
    click.echo(f"canary-tui: {found.summary}", err=True)
    if found.variants is not None:
        v = found.variants
        click.echo(
            f"canary-tui: variants: pod label {v.label}: stable {v.stable!r}, canary "
            f"{v.canary!r} (from {v.source})",
            err=True,
        )
    for note in notes:
        click.echo(f"canary-tui: note: {note}", err=True)
    try:
        for line in query_lines(config):
            click.echo(f"canary-tui: {line}", err=True)
    except AdapterConfigError as exc:
        fail(str(exc))
    if dry_run:
        click.echo(yaml.safe_dump(data, sort_keys=False), nl=False)
        return
    out = state_dir() / "watch" / f"{config.canary.name}.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    click.echo(f"canary-tui: config written to {out}", err=True)
    ctx = click.get_current_context()
    ctx.invoke(
        run,
        config_path=out,
        headless=headless,
        speed="1",
        audit_path=None,
        theme=theme,
        ascii_only=ascii_only,
        in_process=in_process,
    )


@cli.group()
def audit() -> None:
    """Check and read audit logs."""


@audit.command("verify")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--against",
    metavar="RECORDING|SEQ:HASH",
    default=None,
    help="Also check the log's tail against an anchor of its head kept outside it: a session "
    "recording (which anchors the head as the log grows), or SEQ:SHA256 as kept in an "
    "annotation or Event. Records cut off the end of the log are reported.",
)
@click.option(
    "--legacy", is_flag=True, help="Accept a log with no header record (written by old versions)."
)
def audit_verify(file: Path, against: str | None, legacy: bool) -> None:
    """Check the hash chain; name the first broken record.

    Exit 0 if intact; 1 if a record is broken, the file is empty or has no header record, or
    (with --against) records are missing from its tail; 2 if a file cannot be read.
    """
    from canary_tui.cli_records import audit_verify_command

    audit_verify_command(file, against, legacy)


@audit.command("tail")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("-n", "--lines", default=20, show_default=True, type=click.IntRange(min=0),
              help="How many of the last records to print (0: none, e.g. with -f).")
@click.option("-f", "--follow", is_flag=True, help="Keep printing records as they arrive.")
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON records.")
def audit_tail(file: Path, lines: int, follow: bool, as_json: bool) -> None:
    """Print the last records of an audit log, one line each."""
    from canary_tui.cli_audit import tail_command

    tail_command(file, lines, follow, as_json)


from canary_tui.cli_records import COMMANDS as RECORDING_COMMANDS  # noqa: E402

for _command in RECORDING_COMMANDS:
    cli.add_command(_command)

#: Per command (its path under `canary-tui`): the summary for the command list (short enough
#: for 80 columns, never cut mid-phrase) and one example line, shown under its --help.
HELP: dict[str, tuple[str, str]] = {
    "demo": ("The dashboard on a simulated canary (no cluster needed)",
             "canary-tui demo --scenario error-regression --speed 5"),
    "run": ("Run the loop for a config file, dashboard or headless",
            "canary-tui run --config canary.yaml --headless"),
    "serve": ("Run the loop as a session daemon (--config or --demo)",
              "nohup canary-tui serve --config canary.yaml &"),
    "attach": ("Open a dashboard on a running session",
               "canary-tui attach checkout"),
    "ls": ("List live sessions and who is attached",
           "canary-tui ls --json"),
    "watch": ("Watch a canary already in the cluster (KIND/NAME)",
              "canary-tui watch rollout/checkout -n shop --prometheus http://prom:9090"),
    "audit": ("Check (verify) and read (tail) audit logs",
              "canary-tui audit verify ~/.local/state/canary-tui/audit/checkout.jsonl"),
    "audit verify": ("Check an audit log's hash chain",
                     "canary-tui audit verify ~/.local/state/canary-tui/audit/checkout.jsonl"),
    "audit tail": ("Print the last records of an audit log",
                   "canary-tui audit tail -n 50 -f checkout.jsonl"),
    "replay": ("Replay a recorded session in the dashboard",
               "canary-tui replay --speed 10 recordings/auto-rollback.ctrec"),
    "report": ("A postmortem timeline (Markdown or HTML) of a recording",
               "canary-tui report --html -o report.html recordings/auto-rollback.ctrec"),
    "recordings": ("List recorded sessions",
                   "canary-tui recordings"),
}  # fmt: skip


def _document(group: click.Group, prefix: str = "") -> None:
    """Give every command its summary and its example (from HELP)."""
    for name, command in group.commands.items():
        path = f"{prefix}{name}"
        summary, example = HELP.get(path, (None, None))
        if summary is not None:
            command.short_help = summary
        if example is not None:
            command.epilog = f"\b\nExample:\n  {example}"
        if isinstance(command, click.Group):
            _document(command, f"{path} ")


_document(cli)


def main() -> None:
    try:
        cli.main(prog_name="canary-tui", standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
