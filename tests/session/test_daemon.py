"""The session daemon: pairing, presence, conflicts, faults a client can cause, restarts."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from canary_tui.core.actions import Verb
from canary_tui.core.state import Phase
from canary_tui.records.audit import read_records, verify
from canary_tui.session.client import SessionUnavailable, SocketSession, query_status
from tests.session.conftest import Daemon, Watcher, make_daemon


async def test_two_clients_share_one_session_with_presence(daemon: Daemon) -> None:
    a = await Watcher(daemon.socket).attach()
    b = await Watcher(daemon.socket).attach()
    assert a.frames[0].full and len(a.frames[0].activity) >= 1
    await b.until(lambda: len(b.last.presence) == 2, "both clients in the presence list")
    await a.started()
    out = await a.session.submit(Verb.PAUSE, expected_version=a.last.state.version)
    assert out.ok, out.message
    await b.until(lambda: b.last.state.phase is Phase.PAUSED, "b to see a's pause")
    assert any("paused the canary" in e.text for f in b.frames for e in f.activity)
    status = await query_status(daemon.socket)
    assert status["phase"] == "paused" and len(status["attached"]) == 2
    await b.session.detach()
    await a.until(lambda: len(a.last.presence) == 1, "b's leave")
    assert any("left" in e.text for f in a.frames for e in f.activity)
    await a.session.detach()


async def test_unattended_hold_then_following_when_attached(daemon: Daemon) -> None:
    # Nobody attached yet: the policy is hold, so after several holds it is still at step 1.
    await asyncio.sleep(3.0)  # 30 s of simulated time at --speed 10: longer than one hold
    status = await query_status(daemon.socket)
    assert status["step"] == 1 and status["attached"] == []
    a = await Watcher(daemon.socket).attach()
    await a.until(lambda: a.last.state.step_index >= 1, "auto-advance once attached", timeout=20)
    await a.session.detach()


async def test_conflicting_promote_and_kill_kill_wins(daemon: Daemon) -> None:
    a = await (await Watcher(daemon.socket).attach()).started()
    b = await Watcher(daemon.socket).attach()
    version = a.last.state.version
    promote, kill = await asyncio.gather(
        a.session.submit(Verb.PROMOTE, expected_version=version),
        b.session.submit(Verb.KILL, expected_version=version),
    )
    assert kill.ok and not promote.ok
    assert promote.message.startswith("refused:") and "killed the canary" in promote.message
    records = list(read_records(daemon.audit))
    kinds = [(r["type"], r.get("verb")) for r in records if r.get("verb") in ("kill", "promote")]
    assert ("result", "kill") in kinds and ("refused", "promote") in kinds
    assert kinds.index(("result", "kill")) < kinds.index(("refused", "promote"))
    await a.session.detach()
    await b.session.detach()


async def test_a_viewer_cannot_act_and_the_refusal_is_audited(tmp_path: Path) -> None:
    d = make_daemon(tmp_path, operators="[alice, '@nobody-group']")
    d.start()
    try:
        w = await Watcher(d.socket).attach()
        assert w.session.read_only is not None and "viewer" in w.session.read_only
        out = await w.session.submit(Verb.KILL, expected_version=None)
        assert not out.ok and "viewer" in out.message
        assert w.last.state.phase is Phase.PROGRESSING
        refused = [r for r in read_records(d.audit) if r["type"] == "refused"]
        assert refused and refused[-1]["verb"] == "kill"
        await w.session.detach()
    finally:
        d.stop()


def _client_process(d: Daemon) -> subprocess.Popen[bytes]:
    code = (
        "import asyncio\n"
        "from canary_tui.session.client import SocketSession\n"
        "async def main():\n"
        f"    s = SocketSession(__import__('pathlib').Path({str(d.socket)!r}))\n"
        "    await s.attach(lambda f: None)\n"
        "    print('attached', flush=True)\n"
        "    await asyncio.sleep(3600)\n"
        "asyncio.run(main())\n"
    )
    proc = d.spawn([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline().strip() == b"attached"
    return proc


async def test_kill9_and_sighup_of_a_client_leave_daemon_and_others_running(daemon: Daemon) -> None:
    w = await Watcher(daemon.socket).attach()
    for sig in (signal.SIGKILL, signal.SIGHUP):
        proc = _client_process(daemon)
        await w.until(lambda: len(w.last.presence) == 2, "the second client")
        os.kill(proc.pid, sig)
        proc.wait(10)
        await w.until(
            lambda: len(w.last.presence) == 1, f"the client killed by {sig.name} to leave"
        )
        seen = len(w.frames)
        await w.until(lambda seen=seen: len(w.frames) > seen + 3, "frames to keep coming")
    assert daemon.proc is not None and daemon.proc.poll() is None
    await w.session.detach()


def _raw(path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(str(path))
    s.settimeout(10)
    return s


def _read_all(s: socket.socket) -> bytes:
    data = b""
    try:
        while chunk := s.recv(65536):
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return data


async def test_garbage_huge_silent_and_wrong_version_clients_are_dropped(daemon: Daemon) -> None:
    w = await Watcher(daemon.socket).attach()
    garbage = _raw(daemon.socket)
    garbage.sendall(b"\x00\xffnot json at all\n")
    assert b"not a JSON message" in _read_all(garbage)
    huge = _raw(daemon.socket)
    # The daemon may reset the connection before all of it is sent; its log says why.
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        huge.sendall(b"{" + b"x" * (5 * 1024 * 1024))
    _read_all(huge)
    version = _raw(daemon.socket)
    version.sendall(json.dumps({"type": "hello", "protocol": 99}).encode() + b"\n")
    answer = _read_all(version)
    assert b"protocol version 99 is not spoken here" in answer
    silent = _raw(daemon.socket)
    t0 = time.monotonic()
    assert b"no hello within" in _read_all(silent)
    assert time.monotonic() - t0 < 9
    log = daemon.log.read_text()
    assert "not a JSON message" in log and "larger than" in log and "no hello within" in log
    seen = len(w.frames)
    await w.until(lambda: len(w.frames) > seen + 2, "the attached client to carry on")
    assert len(w.last.presence) == 1
    for s in (garbage, huge, version, silent):
        s.close()
    await w.session.detach()


async def test_client_of_another_version_gets_a_clear_message(daemon: Daemon) -> None:
    from canary_tui.session import protocol

    old = protocol.PROTOCOL_VERSION
    try:
        import canary_tui.session.client as client_mod

        client_mod.PROTOCOL_VERSION = 0  # type: ignore[attr-defined]
        try:
            await SocketSession(daemon.socket).connect()
            raise AssertionError("connected with a wrong protocol version")
        except SessionUnavailable as exc:
            assert "protocol version 0 is not spoken here" in str(exc)
    finally:
        client_mod.PROTOCOL_VERSION = old  # type: ignore[attr-defined]


def test_second_daemon_for_the_same_canary_names_the_holder(daemon: Daemon) -> None:
    out = daemon.cli("serve", "--config", str(daemon.config))
    assert out.returncode == 2
    assert daemon.proc is not None and f"pid {daemon.proc.pid}" in out.stderr
    assert "already driven by another loop" in out.stderr and "Traceback" not in out.stderr
    assert "serve" in out.stderr  # the holder's mode


def test_ls_lists_live_sessions(daemon: Daemon) -> None:
    out = daemon.cli("ls")
    assert out.returncode == 0
    assert "checkout" in out.stdout and "progressing" in out.stdout
    assert "nobody (unattended: hold)" in out.stdout


async def test_kill9_of_the_daemon_mid_burst_then_restart(tmp_path: Path) -> None:
    d = make_daemon(tmp_path)
    d.start()
    w = await Watcher(d.socket).attach()

    async def burst() -> None:
        for _ in range(40):
            await w.session.submit(Verb.STEP_FORWARD, expected_version=w.last.state.version)
            await w.session.submit(Verb.STEP_BACK, expected_version=w.last.state.version)

    task = asyncio.create_task(burst())
    await asyncio.sleep(0.3)
    d.kill9()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert d.socket.exists()  # the dead daemon's socket is left behind
    cluster = json.loads((tmp_path / "cluster.json").read_text())
    # Every router call has its intent before it: the last result's routing matches the file
    # or there is an intent with no result yet (the kill hit between router call and result).
    records = list(read_records(d.audit))
    results = {r["id"] for r in records if r["type"] == "result"}
    intents = [r for r in records if r["type"] == "intent"]
    assert all(r["id"] in {i["id"] for i in intents} for r in records if r["type"] == "result")
    for r in records:
        if r["type"] == "result":
            ids_before = [x["id"] for x in records[: records.index(r)] if x["type"] == "intent"]
            assert r["id"] in ids_before
    assert len(intents) - len(results) <= 1
    d.start()  # a new daemon: removes the stale socket, resumes
    try:
        assert verify(d.audit).ok
        w2 = await Watcher(d.socket).attach()
        assert w2.last.state.weight == cluster["weight"], "resumed from the router's state"
        resumed = [r for r in read_records(d.audit) if r.get("event") == "start"]
        assert "resumed" in resumed[-1]["message"]
        await w2.session.detach()
    finally:
        d.stop()


async def test_stop_from_the_last_client_kills_then_exits(daemon: Daemon) -> None:
    w = await Watcher(daemon.socket).attach()
    answer = await w.session.stop_daemon("kill")
    assert "stopping" in answer
    assert daemon.proc is not None
    daemon.proc.wait(15)
    assert not daemon.socket.exists()
    records = list(read_records(daemon.audit))
    assert records[-1]["event"] == "stop" and records[-1]["state"]["phase"] == "rolled_back"
    assert verify(daemon.audit).ok


def test_socket_and_directory_are_private(daemon: Daemon) -> None:
    import stat

    assert stat.S_IMODE(daemon.socket.stat().st_mode) == 0o600
    assert stat.S_IMODE(daemon.socket.parent.stat().st_mode) == 0o700


def test_operators_by_user_and_group() -> None:
    import grp
    import pwd

    from canary_tui.session.daemon import Peer, is_operator

    me = pwd.getpwuid(os.getuid())
    group = grp.getgrgid(me.pw_gid).gr_name
    peer = Peer(os.getpid(), me.pw_uid, me.pw_gid, me.pw_name, None)
    assert is_operator(peer, [])
    assert is_operator(peer, [me.pw_name])
    assert is_operator(peer, [f"@{group}"])
    assert not is_operator(peer, ["someone-else", "@no-such-group-here"])
