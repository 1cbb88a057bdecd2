"""Processes the tests start do not depend on the signal dispositions pytest inherited, and die
with the test: under `nohup` (SIGHUP ignored), in a shell's background job (SIGINT ignored), or
with signals blocked, a test that signals its child still sees it die."""

from __future__ import annotations

import ast
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from tests.support.processes import die_with_parent, popen, stop

REPO = Path(__file__).resolve().parents[1]
HOSTILE_IGNORED = (signal.SIGHUP, signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGUSR1)
HOSTILE_BLOCKED = {signal.SIGTERM, signal.SIGUSR2, signal.SIGHUP}


def _mask(signals: tuple[signal.Signals, ...] | set[signal.Signals]) -> int:
    return sum(1 << (int(s) - 1) for s in signals)


def _proc_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


@contextlib.contextmanager
def hostile_dispositions() -> Iterator[None]:
    """This process as `nohup`, a background job and a careless CI runner would start it."""
    before = {s: signal.getsignal(s) for s in HOSTILE_IGNORED}
    for s in HOSTILE_IGNORED:
        signal.signal(s, signal.SIG_IGN)
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, HOSTILE_BLOCKED)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        for s, handler in before.items():
            signal.signal(s, handler)


def _hostile_preexec() -> None:
    for s in HOSTILE_IGNORED:
        signal.signal(s, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_BLOCK, HOSTILE_BLOCKED)


def test_a_spawned_child_starts_with_default_dispositions_and_an_empty_mask() -> None:
    with hostile_dispositions():
        inherited = subprocess.Popen(
            ["sleep", "60"], stdin=subprocess.DEVNULL, preexec_fn=die_with_parent
        )
        reset = popen(["sleep", "60"])
    try:
        # without the reset the child really inherits them (so this test can fail) ...
        status = _proc_status(inherited.pid)
        assert int(status["SigIgn"], 16) & _mask(HOSTILE_IGNORED) == _mask(HOSTILE_IGNORED)
        assert int(status["SigBlk"], 16) & _mask(HOSTILE_BLOCKED) == _mask(HOSTILE_BLOCKED)
        # ... and with it the child ignores and blocks nothing
        status = _proc_status(reset.pid)
        assert int(status["SigIgn"], 16) == 0 and int(status["SigBlk"], 16) == 0
        # SIGHUP, as in the daemon test, ends it at once
        os.kill(reset.pid, signal.SIGHUP)
        assert reset.wait(10) == -signal.SIGHUP
    finally:
        stop(inherited)
        stop(reset)


def test_a_spawned_child_dies_with_the_process_that_started_it(tmp_path: Path) -> None:
    """A stand-in for the test process starts a child the helper's way and is SIGKILLed
    (no teardown runs): the child is killed with it."""
    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from tests.support.processes import popen\n"
        "child = popen(['sleep', '600'])\n"
        "print(child.pid, flush=True)\n"
        "import time; time.sleep(600)\n"
    )
    parent = popen([sys.executable, "-c", code, str(REPO)], stdout=subprocess.PIPE)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert _proc_status(child)["State"][0] in "SR"
        parent.kill()
        parent.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if _proc_status(child)["State"][0] in "ZX":  # dead, waiting to be reaped
                    break
            except FileNotFoundError:
                break
            time.sleep(0.05)
        else:
            os.kill(child, signal.SIGKILL)
            raise AssertionError("the child outlived the process that started it")
    finally:
        stop(parent)


def test_the_sighup_daemon_test_passes_under_nohup_with_int_and_term_ignored() -> None:
    """The daemon test that SIGHUPs a client, in a pytest started the way `nohup` and a shell's
    background job start it, with SIGTERM, SIGHUP and SIGUSR2 blocked as well."""
    test = (
        "tests/session/test_daemon.py::"
        "test_kill9_and_sighup_of_a_client_leave_daemon_and_others_running"
    )

    def preexec() -> None:
        _hostile_preexec()
        die_with_parent()

    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test],
        cwd=REPO, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        preexec_fn=preexec,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "1 passed" in out.stdout


SPAWNERS = {"Popen", "run", "call", "check_call", "check_output"}


def _spawn_calls(tree: ast.AST) -> Iterator[ast.Call]:
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in SPAWNERS
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "subprocess"
        ):
            yield node


def test_every_process_the_tests_start_resets_its_signals() -> None:
    """Every subprocess call in tests/ passes a preexec_fn (child_setup, or reset_signals where
    the forking thread may end before the test); processes.py's own helpers do it for them."""
    missing = []
    for path in sorted((REPO / "tests").rglob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for call in _spawn_calls(tree):
            if not any(k.arg == "preexec_fn" for k in call.keywords):
                missing.append(f"{path.relative_to(REPO)}:{call.lineno}")
    assert not missing, f"subprocess calls without preexec_fn=child_setup: {missing}"
    source = (REPO / "tests" / "support" / "processes.py").read_text()
    assert "pty.fork()" in source and "child_setup()" in source.split("pty.fork()", 1)[1]


def test_daemons_the_product_detached_for_a_test_are_stopped_by_their_lock(
    tmp_path: Path,
) -> None:
    """A daemon in a session of its own (as `demo` in tmux or over ssh starts one) is out of
    PDEATHSIG's reach: stop_daemons finds it by the lock in the test's runtime directory."""
    from tests.session.conftest import make_daemon
    from tests.support.processes import stop_daemons

    d = make_daemon(tmp_path)
    d.start()
    try:
        assert d.proc is not None and d.proc.poll() is None
        assert stop_daemons(tmp_path / "run") == [d.proc.pid]
        assert d.proc.wait(10) is not None
        assert stop_daemons(tmp_path / "run") == []  # nothing left, and no stranger signalled
    finally:
        d.stop()
