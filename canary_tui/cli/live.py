"""The commands that drive a canary's loop with people watching: `demo`, `run` (dashboard or
headless), `serve` (the session daemon), `attach` and `ls`, and how a dashboard is opened on a
session."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from canary_tui.cli.common import (
    LOCKS,
    audit_option,
    build,
    check_terminal,
    check_theme,
    clock_for,
    close_built,
    fail,
    in_process_option,
    keymap_of,
    look_options,
    recovery_of,
    simulator_options,
    speed_option,
    via_prometheus,
)
from canary_tui.cli.group import cli
from canary_tui.cli.headless import emit_json, run_headless
from canary_tui.config.build import Built
from canary_tui.config.loader import ConfigError, load_config


def attach_dashboard(
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
    attach_to(path, theme=theme, ascii_only=ascii_only, keymap=keymap)


def attach_to(path: Path, *, theme: str, ascii_only: bool, keymap: dict[str, str]) -> None:
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


def run_dashboard(built: Built, *, theme: str, ascii_only: bool, keymap: dict[str, str]) -> None:
    from canary_tui.engine.runner import EngineRunner
    from canary_tui.session.identity import local_actor
    from canary_tui.session.inprocess import InProcessSession
    from canary_tui.tui.app import make_app

    check_terminal()
    runner = EngineRunner(built.engine, resume=recovery_of(built), restart=True)
    runner.start()
    from canary_tui.tui.settings import wants_ascii

    app = make_app(
        InProcessSession(built.engine, local_actor(), runner=runner),
        theme=theme,
        ascii_only=wants_ascii(ascii_only),
        persist_theme=True,
        keymap=keymap,
    )
    health = ("running", "")
    try:
        app.run()
    finally:
        health = runner.health()  # as the dashboard left it (a recovered error is no failure)
        runner.stop()
        built.engine.stop("dashboard closed: loop stopped")
        close_built(built)
    if health[0] == "stopped" and runner.error is not None:
        fail(f"the loop stopped on an error: {runner.error}")


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
    theme = check_theme(theme)
    config = demo_config(scenario, seed, judge=judge, rate=rate)
    clock = clock_for(speed, config)
    check_terminal()
    if prometheus_url is not None and speed != "1":
        fail("--prometheus needs --speed 1: Prometheus scrapes in real time")
    if in_process:
        built = build(config, clock, audit_path, mode="demo --in-process")
        via_prometheus(built, prometheus_url, exporter_port)
        run_dashboard(built, theme=theme, ascii_only=ascii_only, keymap=keymap_of(config))
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
    attach_dashboard(
        config.canary.name, serve_args, theme=theme, ascii_only=ascii_only, keymap=keymap_of(config)
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
    clock = clock_for(speed, config)
    if headless:
        sys.exit(run_headless(build(config, clock, audit_path, mode="run --headless"),
                              emit=emit_json))  # fmt: skip
    look = check_theme(theme)
    keymap = keymap_of(config)
    check_terminal()
    if in_process:
        built = build(config, clock, audit_path, mode="run --in-process")
        run_dashboard(built, theme=look, ascii_only=ascii_only, keymap=keymap)
        return
    serve_args = ["--config", str(config_path.resolve()), "--speed", speed]
    if audit_path is not None:
        serve_args += ["--audit", str(audit_path.resolve())]
    attach_dashboard(
        config.canary.name, serve_args, theme=look, ascii_only=ascii_only, keymap=keymap
    )


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
    clock = clock_for(speed, config)
    if prometheus_url is not None and not demo_mode:
        fail("--prometheus is for the demo; a config names its source under `source:`")
    built = build(config, clock, audit_path, mode="serve")
    via_prometheus(built, prometheus_url, exporter_port)
    resume = recovery_of(built)
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
        lock=LOCKS.get(config.canary.name),
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

    theme = check_theme(theme)
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
    keymap = keymap_of()
    check_terminal()
    attach_to(path, theme=theme, ascii_only=ascii_only, keymap=keymap)


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
            f"{r['canary']:<20} {phase:<12} {r['weight']:>5}% {step:>5}  {loop:<8} {since:<8} {who}"
        )
        if loop != "running" and r.get("loop_detail"):
            click.echo(f"  LOOP {loop.upper()}: {r['loop_detail']}")
