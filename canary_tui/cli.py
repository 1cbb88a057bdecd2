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


def _build(config: Config, clock: Clock, audit: Path | None) -> Built:
    """The engine for `config`, recording itself (closed at exit)."""
    try:
        built = build_engine(config, clock, audit_path=audit)
    except ConfigError as exc:
        fail(str(exc))
    from canary_tui.cli_records import start_recording

    start_recording(built.engine, config)
    return built


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
    runner = EngineRunner(built.engine)
    runner.start()
    from canary_tui.tui.settings import wants_ascii

    app = make_app(
        InProcessSession(built.engine, local_actor()),
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
        built.engine.audit.close()
    if runner.error is not None:
        fail(f"the loop stopped on an error: {runner.error}")


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
                     help="How canary and baseline are compared."),
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
    Environment:
      NO_COLOR                 start in the monochrome theme
      TERM, COLORTERM          a terminal without colour (dumb, vt100): the same
      LC_ALL, LC_CTYPE, LANG   not UTF-8: draw with ASCII only (as --ascii)
      SSH_CONNECTION           set: animations off
      CANARY_TUI_OUTPUT        raw: send Textual's output as is (default: only style changes)
    """


@cli.command()
@speed_option("Time runs this many times faster than the wall clock.")
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
    """Run the dashboard on the embedded simulator (no cluster needed)."""
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
        built = _build(config, clock, audit_path)
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
    help="No dashboard: print one JSON line per event and exit 0 promoted, "
    "1 rolled back, 2 error, 3 interrupted.",
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
    """Run the loop for the canary in a config file, with the dashboard or headless."""
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        fail(str(exc))
    clock = _clock_for(speed, config)
    if headless:
        sys.exit(run_headless(_build(config, clock, audit_path), emit=_emit_json))
    look = _check_theme(theme)
    keymap = _keymap(config)
    _check_terminal()
    if in_process:
        built = _build(config, clock, audit_path)
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
    """The loop with no UI; returns the exit code for the canary's outcome."""
    from canary_tui.engine.runner import EngineRunner

    engine = built.engine

    def emit_frame(frame: Frame) -> None:
        for event in frame_events(frame):
            emit(event)

    engine.subscribe(emit_frame)
    runner = EngineRunner(engine, stop_when_terminal=True)
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
        emit({"event": "end", "outcome": "error", "message": str(runner.error), "exit": EXIT_ERROR})
        return EXIT_ERROR
    if interrupted and not state.terminal:
        engine.stop(f"interrupted by signal {interrupted[0]} at {state.weight}%")
        emit(
            {
                "event": "end",
                "outcome": "interrupted",
                "weight": state.weight,
                "exit": EXIT_INTERRUPTED,
            }
        )
        return EXIT_INTERRUPTED
    code = EXIT_PROMOTED if state.phase is Phase.PROMOTED else EXIT_ROLLED_BACK
    engine.stop(f"canary {state.phase.label}")
    emit({"event": "end", "outcome": state.phase.value, "exit": code})
    engine.audit.close()
    return code


@cli.command()
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="The canary's YAML configuration.",
)
@click.option("--demo", "demo_mode", is_flag=True, help="Serve the demo canary on the simulator.")
@speed_option("Simulator only: time factor.")
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

    Use it under nohup or a service manager; `canary-tui attach` opens a dashboard on it.
    """
    from canary_tui.config.demo import demo_config
    from canary_tui.engine.loop import state_from_audit
    from canary_tui.records.audit import AuditError, last_session_state
    from canary_tui.session.daemon import DaemonError, SessionDaemon, run_daemon
    from canary_tui.session.sockets import lock_path, socket_path

    if demo_mode == (config_path is not None):
        fail("serve needs exactly one of --config FILE or --demo")
    if demo_mode:
        from adapters.simulator import SCENARIOS

        if scenario not in SCENARIOS:
            fail(f"unknown scenario {scenario!r}; known: {', '.join(SCENARIOS)}")
        config = demo_config(scenario, seed, judge=judge, rate=rate)
    else:
        assert config_path is not None
        try:
            config = load_config(config_path)
        except ConfigError as exc:
            fail(str(exc))
    if speed == "max":
        fail("--speed max is for `run --headless` only; a session daemon runs in real time")
    clock = _clock_for(speed, config)
    built = _build(config, clock, audit_path)
    if prometheus_url is not None:
        if not demo_mode:
            fail("--prometheus is for the demo; a config names its source under `source:`")
        _via_prometheus(built, prometheus_url, exporter_port)
    try:
        previous = last_session_state(built.audit_path)
    except AuditError as exc:
        fail(str(exc))
    resume = state_from_audit(previous, clock.now()) if previous else None
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
    )
    try:
        run_daemon(daemon)
    except DaemonError as exc:
        fail(str(exc))


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
    click.echo(f"{'CANARY':<20} {'PHASE':<12} {'WEIGHT':>6} {'STEP':>5}  {'SINCE':<8} ATTACHED")
    for r in rows:
        since = datetime.fromtimestamp(r["since"], UTC).strftime("%H:%M:%S")
        people = [a["user"] + (f"@{a['ssh_client']}" if a.get("ssh_client") else "")
                  for a in r["attached"]]  # fmt: skip
        who = ", ".join(people) or f"nobody (unattended: {r['unattended']})"
        step = f"{r['step']}/{r['steps']}"
        click.echo(
            f"{r['canary']:<20} {r['phase']:<12} {r['weight']:>5}% {step:>5}  {since:<8} {who}"
        )


@cli.command()
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
@click.option("--preset", default=None, help="Metrics preset (default: guessed from the object).")
@click.option(
    "--config",
    "config_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Take plan, metrics, SLOs, judge, loop and source settings from this file.",
)
@click.option("--headless", is_flag=True, help="No dashboard: JSON lines and an exit code.")
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
    config_path: Path | None,
    headless: bool,
    in_process: bool,
    dry_run: bool,
    theme: str | None,
    ascii_only: bool,
) -> None:
    """Watch an existing canary: rollout/NAME, virtualservice/NAME, httproute/NAME or
    deployment/NAME. The router comes from the object; metrics from --prometheus or --config.

    The generated config is written under ~/.local/state/canary-tui/watch/ and printed, so
    the same session can be started again with `canary-tui run --config FILE`.
    """
    import yaml

    from adapters.kubernetes.discover import discover
    from canary_tui.core.ports import RouterError
    from canary_tui.paths import state_dir

    base: dict[str, Any] = {}
    if config_path is not None:
        try:
            base = load_config(config_path).model_dump(mode="json", exclude_defaults=True)
        except ConfigError as exc:
            fail(str(exc))
    try:
        found = discover(target, namespace=namespace, context=context, kubeconfig=kubeconfig)
    except RouterError as exc:
        fail(f"{target}: {exc}")
    click.echo(f"canary-tui: {found.summary}", err=True)
    name = target.partition("/")[2]
    data = dict(base)
    data["canary"] = {**base.get("canary", {}), "name": base.get("canary", {}).get("name", name)}
    data["canary"].setdefault("namespace", found.settings.get("namespace", "default"))
    data["router"] = found.router_section()
    if found.plan_weights:
        holds = [step.get("hold", 60) for step in base.get("plan", [])] or [60]
        data["plan"] = [{"weight": w, "hold": holds[min(i, len(holds) - 1)]}
                        for i, w in enumerate(found.plan_weights) if 0 < w < 100]  # fmt: skip
    if prometheus_url is not None:
        data["source"] = {"kind": "prometheus", "url": prometheus_url,
                          "preset": preset or found.preset}  # fmt: skip
    elif base.get("source", {}).get("kind", "simulator") == "simulator":
        fail("watch needs real metrics: pass --prometheus URL, or --config FILE with a source")
    if dry_run:
        click.echo(yaml.safe_dump(data, sort_keys=False), nl=False)
        return
    out = state_dir() / "watch" / f"{data['canary']['name']}.yaml"
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
def audit_verify(file: Path) -> None:
    """Check the hash chain; name the first broken record. Exit 1 if broken."""
    from canary_tui.records.audit import AuditError, verify

    try:
        result = verify(file)
    except AuditError as exc:
        fail(str(exc))
    if result.ok:
        click.echo(f"{file}: OK, {result.records} records, chain intact")
        return
    fail(
        f"{file}: BROKEN at record on line {result.bad_line}: {result.reason} "
        f"({result.records} records before it are intact)",
        code=1,
    )


@audit.command("tail")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("-n", "--lines", default=20, show_default=True, type=click.IntRange(min=0))
@click.option("-f", "--follow", is_flag=True, help="Keep printing records as they arrive.")
@click.option("--json", "as_json", is_flag=True, help="Print the raw JSON records.")
def audit_tail(file: Path, lines: int, follow: bool, as_json: bool) -> None:
    """Print the last records of an audit log, one line each."""
    from canary_tui.cli_audit import tail_command

    tail_command(file, lines, follow, as_json)


from canary_tui.cli_records import COMMANDS as RECORDING_COMMANDS  # noqa: E402

for _command in RECORDING_COMMANDS:
    cli.add_command(_command)


def main() -> None:
    try:
        cli.main(prog_name="canary-tui", standalone_mode=True)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
