"""Who is at the keyboard, from the operating system (never from what a client claims)."""

from __future__ import annotations

import os
import pwd
import socket

from canary_tui.core.actions import Actor


def local_actor() -> Actor:
    """The OS user of this process, the host, and the SSH client address when there is one."""
    try:
        user = pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        user = f"uid{os.getuid()}"
    ssh = os.environ.get("SSH_CONNECTION") or os.environ.get("SSH_CLIENT") or ""
    ssh_client = ssh.split()[0] if ssh.split() else None
    return Actor(user, kind="person", host=socket.gethostname(), ssh_client=ssh_client)
