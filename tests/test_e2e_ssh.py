"""End to end over real SSH: Debian's sshd on 127.0.0.1, `ssh -tt` into the demo, an SSH drop,
and a second login that attaches to the same live session. Skipped only where sshd is not
installed and CI is not set (CI installs openssh-server)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from canary_tui.records.audit import read_records, verify
from tests.support.processes import child_setup, free_port, stop, stop_daemons
from tests.test_e2e_tmux import Tmux

SSHD = "/usr/sbin/sshd"
REPO = Path(__file__).resolve().parents[1]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not os.path.exists(SSHD) and not os.environ.get("CI"),
                       reason="openssh-server is not installed"),
    pytest.mark.skipif(os.geteuid() != 0 and not os.environ.get("CI"),
                       reason="sshd for another user needs root here"),
]  # fmt: skip


class Sshd:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.key = tmp / "id_ed25519"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        host_key = self.tmp / "host_ed25519"
        for key in (host_key, self.key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                           check=True, preexec_fn=child_setup)  # fmt: skip
        auth = self.tmp / "authorized_keys"
        auth.write_text(Path(f"{self.key}.pub").read_text())
        auth.chmod(0o600)
        config = self.tmp / "sshd_config"
        config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n"
            f"AuthorizedKeysFile {auth}\nPidFile {self.tmp / 'sshd.pid'}\n"
            "PermitRootLogin prohibit-password\nPasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
            "ClientAliveInterval 1\nClientAliveCountMax 2\nAcceptEnv LANG\n"
        )
        Path("/run/sshd").mkdir(exist_ok=True)
        self.proc = subprocess.Popen(
            [SSHD, "-D", "-f", str(config), "-E", str(self.tmp / "sshd.log")],
            stdin=subprocess.DEVNULL, preexec_fn=child_setup,
        )  # fmt: skip
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.1)
        raise AssertionError(f"sshd did not start: {(self.tmp / 'sshd.log').read_text()}")

    def ssh_command(self, remote: str) -> str:
        return (f"ssh -tt -p {self.port} -i {self.key} -o StrictHostKeyChecking=no "
                f"-o UserKnownHostsFile=/dev/null -o LogLevel=ERROR root@127.0.0.1 '{remote}'")  # fmt: skip

    def stop(self) -> None:
        if self.proc is not None:
            stop(self.proc)


@pytest.fixture
def sshd(tmp_path: Path) -> Iterator[Sshd]:
    assert shutil.which("ssh"), "openssh-client is missing"
    server = Sshd(tmp_path)
    server.start()
    yield server
    server.stop()


def test_ssh_drop_keeps_the_loop_and_a_second_login_attaches(sshd: Sshd, tmp_path: Path) -> None:
    env = (f"CANARY_TUI_RUNTIME_DIR={tmp_path / 'run'} XDG_STATE_HOME={tmp_path / 'state'} "
           f"TERM=xterm-256color")  # fmt: skip
    audit = tmp_path / "audit.jsonl"
    python = sys.executable
    demo = f"cd {REPO} && {env} {python} -m canary_tui.cli demo --speed 4 --audit {audit}"
    first = Tmux(tmp_path / "first")
    (tmp_path / "first").mkdir()
    first.start(sshd.ssh_command(demo))
    second = Tmux(tmp_path / "second")
    (tmp_path / "second").mkdir()
    local_env = {**os.environ, "CANARY_TUI_RUNTIME_DIR": str(tmp_path / "run"),
                 "XDG_STATE_HOME": str(tmp_path / "state")}  # fmt: skip
    try:
        first.wait_for(lambda s: "PROGRESSING" in s and "error rate" in s, "the demo over ssh")
        first.keys("p")
        first.wait_for(lambda s: "PAUSED" in s, "PAUSED over ssh")
        ssh_pid = int(
            first.run("display-message", "-p", "-t", first.session, "#{pane_pid}").strip()
        )
        os.kill(ssh_pid, signal.SIGKILL)  # the connection drops
        time.sleep(1.0)
        ls = subprocess.run([python, "-m", "canary_tui.cli", "ls", "--json"], cwd=REPO,
                            env=local_env, capture_output=True, text=True, timeout=30,
                            preexec_fn=child_setup)  # fmt: skip
        assert '"phase": "paused"' in ls.stdout, ls
        second.start(sshd.ssh_command(f"cd {REPO} && {env} {python} -m canary_tui.cli attach"))
        second.wait_for(lambda s: "PAUSED" in s and "checkout" in s, "the same session over ssh")
        second.keys("k")
        second.wait_for(lambda s: "ROLLED BACK" in s, "the kill over the second login")
    finally:
        first.kill()
        second.kill()
        stop_daemons(tmp_path / "run")
    records = list(read_records(audit))
    pause = next(r for r in records if r.get("verb") == "pause" and r["type"] == "result")
    kill = next(r for r in records if r.get("verb") == "kill" and r["type"] == "result")
    for rec in (pause, kill):
        assert rec["actor"]["ssh_client"] == "127.0.0.1"
        assert rec["actor"]["name"] == "root"
    joined = [r for r in records if r["type"] == "session"]
    assert joined[0]["event"] == "start"
    time.sleep(0.5)
    assert verify(audit).ok
