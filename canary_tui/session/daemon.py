"""The session daemon: owns one canary's loop and serves it on a Unix socket to many clients.

Identity comes from the kernel (SO_PEERCRED), never from what a client says. Actions from all
clients go through the engine's one path, serialised; a promote waits a short grace so that a
kill pressed at the same moment wins. The daemon outlives its clients: an SSH drop only ends a
client, and the loop carries on with auto-rollback armed.
"""

from __future__ import annotations

import asyncio
import contextlib
import grp
import logging
import os
import pwd
import signal
import socket
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from canary_tui import __version__
from canary_tui.core.actions import Action, ActionOutcome, Actor, Source, Verb
from canary_tui.core.codec import frame_to_dict
from canary_tui.core.frames import Frame
from canary_tui.engine.loop import Engine
from canary_tui.engine.recovery import Recovery
from canary_tui.engine.runner import EngineRunner
from canary_tui.session.lock import CanaryLock, LockHeld
from canary_tui.session.protocol import (
    HELLO_TIMEOUT_S,
    MAX_MESSAGE_BYTES,
    PROTOCOL_VERSION,
    ProtocolError,
    decode,
    encode,
)
from canary_tui.session.watchdog import watch_loop

log = logging.getLogger("canary_tui.daemon")

CLIENT_QUEUE = 2000  # frames a slow client may lag behind before it is dropped


class DaemonError(Exception):
    """The daemon cannot start (lock held, socket unusable); the message says why."""


@dataclass(frozen=True, slots=True)
class Peer:
    pid: int
    uid: int
    gid: int
    user: str
    ssh_client: str | None
    tty: str | None = None


def peer_of(sock: socket.socket) -> Peer:
    """The connecting process's credentials, from the kernel."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", raw)
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = f"uid{uid}"
    return Peer(pid, uid, gid, user, _ssh_client_of(pid), _tty_of(pid))


def _tty_of(pid: int) -> str | None:
    try:
        target = os.readlink(f"/proc/{pid}/fd/0")
    except OSError:
        return None
    return target.removeprefix("/dev/") if target.startswith("/dev/pts/") else None


def _ssh_client_of(pid: int) -> str | None:
    """The SSH client address of the peer's login, from its environment in /proc."""
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for item in env:
        for key in (b"SSH_CONNECTION=", b"SSH_CLIENT="):
            if item.startswith(key):
                fields_ = item[len(key) :].split()
                return fields_[0].decode(errors="replace") if fields_ else None
    return None


def is_operator(peer: Peer, operators: Sequence[str]) -> bool:
    """Empty `operators`: anyone who can reach the socket may act. Else users or @groups."""
    if not operators:
        return True
    if peer.user in operators:
        return True
    groups = {g.gr_name for g in grp.getgrall() if peer.user in g.gr_mem}
    with contextlib.suppress(KeyError):
        groups.add(grp.getgrgid(peer.gid).gr_name)
    return any(op.startswith("@") and op[1:] in groups for op in operators)


@dataclass
class Client:
    peer: Peer
    actor: Actor
    operator: bool
    since: float
    queue: asyncio.Queue[bytes | None] = field(default_factory=lambda: asyncio.Queue(CLIENT_QUEUE))

    @property
    def label(self) -> str:
        where = f"@{self.actor.ssh_client}" if self.actor.ssh_client else ""
        return f"{self.actor.name}{where} ({self.peer.tty or f'pid {self.peer.pid}'})"


class SessionDaemon:
    """Serve `engine` on `socket_path` until stopped. Run with `asyncio.run(daemon.serve())`."""

    def __init__(
        self,
        engine: Engine,
        *,
        socket_path: Path,
        lock_path: Path,
        operators: Sequence[str] = (),
        group: str | None = None,
        promote_grace_s: float = 0.15,
        stop_when_terminal: bool = False,
        resume: Recovery | None = None,
        lock: CanaryLock | None = None,
    ) -> None:
        self.engine = engine
        self.socket_path = socket_path
        self.lock_path = lock_path
        self.operators = tuple(operators)
        self.group = group
        self.promote_grace_s = promote_grace_s
        self.stop_when_terminal = stop_when_terminal
        self.clients: dict[int, Client] = {}
        self.started = time.time()
        self._ids = 0
        self.lock = lock or CanaryLock(engine.info.name, "serve", lock_path)
        self._stopping: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.runner = EngineRunner(engine, resume=resume, restart=True)

    # --- start-up ------------------------------------------------------------------------
    def acquire(self) -> None:
        """Take the per-canary lock, clear a dead daemon's socket, prepare the directory."""
        directory = self.socket_path.parent
        directory.mkdir(parents=True, exist_ok=True)
        os.chmod(directory, 0o770 if self.group else 0o700)
        if self.group:
            try:
                os.chown(directory, -1, grp.getgrnam(self.group).gr_gid)
            except (KeyError, PermissionError) as exc:
                raise DaemonError(
                    f"cannot share {directory} with group {self.group!r}: {exc}"
                ) from exc
        if not self.lock.held:
            try:
                self.lock.acquire()
            except LockHeld as exc:
                raise DaemonError(str(exc)) from None
        if self.socket_path.exists() or self.socket_path.is_symlink():
            log.info("removing the stale socket of a dead daemon: %s", self.socket_path)
            self.socket_path.unlink()

    def release(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.socket_path.unlink()
        self.lock.release()

    # --- serving -------------------------------------------------------------------------
    async def serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        self.acquire()
        try:
            server = await asyncio.start_unix_server(
                self._handle, path=str(self.socket_path), limit=MAX_MESSAGE_BYTES
            )
        except OSError as exc:  # e.g. 'AF_UNIX path too long' under a deep runtime dir
            self.release()
            raise DaemonError(
                f"cannot listen on {self.socket_path}: {exc.strerror or exc} (a Unix socket "
                "path holds at most 107 bytes: set CANARY_TUI_RUNTIME_DIR to a shorter "
                "directory)"
            ) from None
        os.chmod(self.socket_path, 0o660 if self.group else 0o600)
        if self.group:
            os.chown(self.socket_path, -1, grp.getgrnam(self.group).gr_gid)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                self._loop.add_signal_handler(sig, self.request_stop, f"signal {sig.name}")
        unsubscribe = self.engine.subscribe(self._from_engine_thread)
        self.engine.set_attended(False)
        await asyncio.to_thread(self.runner.start)
        watchdog = asyncio.create_task(watch_loop(self.runner, self._heartbeat,
                                                  on_change=self._health_changed))  # fmt: skip
        log.info("serving %s on %s (pid %d)", self.engine.info.name, self.socket_path, os.getpid())
        try:
            await self._stopping.wait()
        finally:
            watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watchdog
            unsubscribe()
            server.close()
            for client in list(self.clients.values()):
                client.queue.put_nowait(None)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2)
            await asyncio.to_thread(self._shutdown)
            self.release()
            log.info("stopped: %s", self._stop_reason)

    def _shutdown(self) -> None:
        """Stop the loop, audit the stop, flush what is queued (bounded), close the log."""
        self.runner.stop()
        self.engine.stop(self._stop_reason)
        self.engine.close()
        self.engine.audit.close()

    _stop_reason = "daemon stopped"

    def request_stop(self, reason: str = "daemon stopped") -> None:
        self._stop_reason = reason
        if self._stopping is not None:
            self._stopping.set()

    def _from_engine_thread(self, frame: Frame) -> None:
        if self._loop is not None:
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._broadcast, frame)

    def _heartbeat(self, frame: Frame) -> None:
        """The watchdog's frame: the loop's health and the time, every second."""
        self._broadcast(frame)

    def _health_changed(self, health: tuple[str, str]) -> None:
        status, detail = health
        if status == "running":
            log.info("the loop is running again")
        else:
            log.error("the loop is %s: %s", status, detail)

    def _broadcast(self, frame: Frame) -> None:
        if frame.full:
            return  # full frames are made per client at attach time
        data = encode({"type": "frame", "frame": frame_to_dict(frame, with_header=False)})
        for cid, client in list(self.clients.items()):
            try:
                client.queue.put_nowait(data)
            except asyncio.QueueFull:
                log.warning("dropping %s: %d frames behind", client.label, CLIENT_QUEUE)
                self._drop(cid)
        if self.stop_when_terminal and frame.state.terminal and not frame.heartbeat:
            self.request_stop(f"canary {frame.state.phase.label}")

    def _drop(self, cid: int) -> None:
        client = self.clients.get(cid)
        if client is not None:
            with contextlib.suppress(asyncio.QueueFull):
                client.queue.put_nowait(None)

    def presence(self) -> tuple[str, ...]:
        return tuple(sorted(c.label for c in self.clients.values()))

    def status(self) -> dict[str, Any]:
        s = self.engine.state
        return {
            "type": "status",
            "canary": self.engine.info.name,
            "pid": os.getpid(),
            "phase": s.phase.value,
            "weight": s.weight,
            "step": s.step_index + 1,
            "steps": len(self.engine.plan),
            "armed": s.armed,
            "kill_pending": s.kill is not None,
            "hold": s.hold,
            "loop": self.runner.health()[0],
            "loop_detail": self.runner.health()[1],
            "attached": [
                {"user": c.actor.name, "ssh_client": c.actor.ssh_client, "since": c.since}
                for c in self.clients.values()
            ],
            "since": self.started,
            "unattended": self.engine.unattended,
        }

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        try:
            peer = peer_of(sock)
        except OSError as exc:
            log.warning("rejecting a connection without peer credentials: %s", exc)
            writer.close()
            return
        self._ids += 1
        cid = self._ids
        try:
            await self._session(cid, peer, reader, writer)
        except ProtocolError as exc:
            log.warning("dropping client pid %d (%s): %s", peer.pid, peer.user, exc)
            with contextlib.suppress(Exception):
                writer.write(encode({"type": "error", "message": str(exc)}))
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            client = self.clients.pop(cid, None)
            if client is not None:
                log.info("%s left", client.label)
                # At shutdown this handler is cancelled: the presence note is not worth a
                # traceback, and the loop's own stop record follows.
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.to_thread(self.engine.note_presence, client.label, False,
                                            self.presence())  # fmt: skip
                    if not self.clients:
                        await asyncio.to_thread(self.engine.set_attended, False)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _read(
        self, reader: asyncio.StreamReader, timeout: float | None = None
    ) -> dict[str, Any] | None:
        try:
            line = await asyncio.wait_for(reader.readuntil(b"\n"), timeout)
        except TimeoutError as exc:
            raise ProtocolError(f"no hello within {HELLO_TIMEOUT_S:.0f} s") from exc
        except asyncio.LimitOverrunError as exc:
            raise ProtocolError(f"message larger than {MAX_MESSAGE_BYTES} bytes") from exc
        except asyncio.IncompleteReadError as exc:
            if exc.partial.strip():
                raise ProtocolError("connection closed in the middle of a message") from exc
            return None
        return decode(line)

    async def _session(self, cid: int, peer: Peer, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> None:  # fmt: skip
        hello = await self._read(reader, HELLO_TIMEOUT_S)
        if hello is None:
            return
        if hello.get("type") != "hello":
            raise ProtocolError(f"expected hello, got {hello.get('type')!r}")
        if hello.get("protocol") != PROTOCOL_VERSION:
            raise ProtocolError(
                f"protocol version {hello.get('protocol')!r} is not spoken here (this daemon, "
                f"canary-tui {__version__}, speaks {PROTOCOL_VERSION}); use the same "
                "canary-tui version for the daemon and its clients"
            )
        if hello.get("mode") == "status":
            writer.write(encode(self.status()))
            await writer.drain()
            return
        actor = Actor(
            peer.user, kind="person", host=socket.gethostname(), ssh_client=peer.ssh_client
        )
        operator = is_operator(peer, self.operators)
        client = Client(peer, actor, operator, time.time())
        read_only = (
            None
            if operator
            else (
                f"viewer: {peer.user} is not an operator (operators: {', '.join(self.operators)})"
            )
        )
        writer.write(encode({"type": "welcome", "protocol": PROTOCOL_VERSION,
                             "you": actor.to_dict(), "operator": operator,
                             "read_only": read_only, "canary": self.engine.info.name}))  # fmt: skip
        # The full frame goes first; frames published after it follow through the broadcast.
        full = await asyncio.to_thread(self.engine.full_frame)
        client.queue.put_nowait(encode({"type": "frame", "frame": frame_to_dict(full)}))
        self.clients[cid] = client
        role = "operator" if operator else "viewer"
        log.info("%s joined (pid %d, %s)", client.label, peer.pid, role)
        await asyncio.to_thread(self.engine.set_attended, True)
        await asyncio.to_thread(self.engine.note_presence, client.label, True, self.presence())
        sender = asyncio.create_task(self._send(client, writer))
        receiving: asyncio.Task[dict[str, Any] | None] | None = None
        try:
            while True:
                receiving = asyncio.create_task(self._read(reader))
                done, _ = await asyncio.wait(
                    {receiving, sender}, return_when=asyncio.FIRST_COMPLETED
                )
                if receiving not in done:
                    return  # the sender ended: dropped for lagging, or the daemon is stopping
                message = receiving.result()
                if message is None or message.get("type") == "bye":
                    return
                await self._on_message(client, message, writer)
        finally:
            sender.cancel()
            if receiving is not None:
                receiving.cancel()

    async def _send(self, client: Client, writer: asyncio.StreamWriter) -> None:
        while True:
            data = await client.queue.get()
            if data is None:
                return
            writer.write(data)
            await writer.drain()

    async def _on_message(self, client: Client, message: dict[str, Any],
                          writer: asyncio.StreamWriter) -> None:  # fmt: skip
        kind = message.get("type")
        if kind == "action":
            await self._on_action(client, message)
        elif kind == "refresh":  # after an action of unknown outcome: the whole state again
            full = await asyncio.to_thread(self.engine.full_frame)
            self._reply(client, {"type": "frame", "frame": frame_to_dict(full)})
        elif kind == "stop":
            then = message.get("then")
            if then not in ("hold", "kill"):
                raise ProtocolError("stop needs then: hold or kill")
            if not client.operator:
                self._reply(client, {"type": "stopped", "ok": False,
                                     "message": "only operators can stop the loop"})  # fmt: skip
                return
            if then == "kill":
                kill = Action(Verb.KILL, client.actor, Source.KEY, None,
                              reason="stopping the session daemon")  # fmt: skip
                await asyncio.to_thread(self.engine.submit, kill)
            self._reply(client, {"type": "stopped", "ok": True, "message": f"stopping ({then})"})
            self.request_stop(f"stopped by {client.label} ({then})")
        else:
            raise ProtocolError(f"unknown message type {kind!r}")

    def _reply(self, client: Client, message: dict[str, Any]) -> None:
        with contextlib.suppress(asyncio.QueueFull):
            client.queue.put_nowait(encode(message))

    async def _on_action(self, client: Client, message: dict[str, Any]) -> None:
        try:
            verb = Verb(str(message.get("verb")))
        except ValueError as exc:
            raise ProtocolError(f"unknown verb {message.get('verb')!r}") from exc
        request_id = message.get("id")
        expected = message.get("expected_version")
        if verb is Verb.KILL:
            if expected is not None and not isinstance(expected, int):
                raise ProtocolError("expected_version must be an integer or null")
        elif not isinstance(expected, int) or isinstance(expected, bool):
            raise ProtocolError(
                f"{verb.value} needs expected_version (the state version it was issued "
                "against); only kill may go without"
            )
        reason = str(message.get("reason", ""))[:2000]
        action = Action(verb, client.actor, Source.KEY, expected, reason=reason)
        if not client.operator:
            why = f"refused: {client.actor.name} is a viewer, not an operator"
            await asyncio.to_thread(self.engine.audit_refusal, action, why)
            outcome = ActionOutcome(False, verb, why, self.engine.state.version)
        else:
            if verb is Verb.PROMOTE:
                # A kill pressed at the same moment by someone else must win over a promote.
                await asyncio.sleep(self.promote_grace_s)
            outcome = await asyncio.to_thread(self.engine.submit, action)
        self._reply(client, {"type": "result", "id": request_id, "outcome": outcome.to_dict()})


def run_daemon(daemon: SessionDaemon) -> None:
    """Run until stopped; raises DaemonError before serving when it cannot start."""
    asyncio.run(daemon.serve())
