"""What every command shares: failing with one clear line, the exit codes, the clock for
--speed, building the engine once this process holds the canary's lock (with its recording,
its recovery and the fault-injection hook), closing what it holds, and the common options."""

from __future__ import annotations

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

from canary_tui.config.build import Built, build_engine
from canary_tui.config.loader import ConfigError
from canary_tui.config.schema import Config
from canary_tui.core.clock import Clock, VirtualClock
from canary_tui.session.lock import CanaryLock

EXIT_PROMOTED, EXIT_ROLLED_BACK, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 3
MIN_WIDTH, MIN_HEIGHT = 40, 12


def fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    click.echo(f"canary-tui: {message}", err=True)
    sys.exit(code)


def scenario_help() -> str:
    from adapters.simulator import SCENARIOS

    return "; ".join(f"{s.name}: {s.description}" for s in SCENARIOS.values())


MAX_SPEED = 1000.0  # faster than this the loop cannot keep up with its own ticks: use 'max'


def clock_for(speed: str, config: Config) -> Clock:
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


def build(config: Config, clock: Clock, audit: Path | None, mode: str = "run") -> Built:
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
    LOCKS[built.engine.info.name] = lock
    install_crash_hook(built)
    from canary_tui.cli.records import start_recording

    start_recording(built.engine, config)
    return built


CRASH_ENV = "CANARY_TUI_CRASH_AT"
LOCKS: dict[str, CanaryLock] = {}  # the canary locks this process holds, by canary


def install_crash_hook(built: Built) -> None:
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


def recovery_of(built: Built) -> Any:
    """What the audit log says of the last run (an unconfirmed kill, an open intent)."""
    from canary_tui.engine.recovery import recover
    from canary_tui.records.audit import AuditError

    try:
        return recover(built.audit_path)
    except AuditError as exc:
        fail(str(exc))


def via_prometheus(built: Built, url: str | None, exporter_port: int) -> None:
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


def check_terminal() -> None:
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


def keymap_of(config: Config | None = None) -> dict[str, str]:
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


def check_theme(theme: str | None) -> str:
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


def close_built(built: Built) -> None:
    """Flush and release what the loop holds, each with a bounded wait: webhooks, Events,
    the audit log, the canary's lock."""
    if built.alerter is not None:
        built.alerter.close()
    built.engine.close()
    built.engine.audit.close()
    lock = LOCKS.pop(built.engine.info.name, None)
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
                     help="Simulated behaviour of the canary. " + scenario_help()),
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
