"""A Session over the daemon's Unix socket: the TUI uses it exactly like the in-process one."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from dataclasses import replace
from pathlib import Path
from typing import Any

from canary_tui.core.actions import ActionOutcome, Actor, Verb
from canary_tui.core.codec import frame_from_dict
from canary_tui.core.frames import CanaryInfo, Frame
from canary_tui.core.plan import RampPlan
from canary_tui.session.base import FrameHandler
from canary_tui.session.protocol import (
    MAX_MESSAGE_BYTES,
    PROTOCOL_VERSION,
    ProtocolError,
    decode,
    encode,
)

ACTION_TIMEOUT_S = 60.0


class SessionUnavailable(Exception):
    """No daemon answers, or it refused us; the message says what to do."""


async def _connect(path: Path) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    try:
        return await asyncio.open_unix_connection(str(path), limit=MAX_MESSAGE_BYTES)
    except FileNotFoundError as exc:
        raise SessionUnavailable(f"no session daemon at {path}") from exc
    except ConnectionRefusedError as exc:
        raise SessionUnavailable(
            f"the session daemon at {path} is not running (stale socket)"
        ) from exc
    except PermissionError as exc:
        raise SessionUnavailable(
            f"not allowed to connect to {path} (ask for the pairing group)"
        ) from exc


async def query_status(path: Path, timeout: float = 3.0) -> dict[str, Any]:
    """Ask a daemon for its status without attaching (for `canary-tui ls`)."""
    reader, writer = await _connect(path)
    try:
        writer.write(encode({"type": "hello", "protocol": PROTOCOL_VERSION, "mode": "status"}))
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), timeout)
        message = decode(line)
        if message["type"] == "error":
            raise SessionUnavailable(str(message.get("message")))
        return message
    finally:
        writer.close()


class SocketSession:
    """Attach to a session daemon. Frames arrive on the caller's event loop."""

    detachable = True

    def __init__(self, path: Path) -> None:
        self.path = path
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._identity = Actor("?")
        self._read_only: str | None = None
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ids = itertools.count(1)
        self._task: asyncio.Task[None] | None = None
        self._info: CanaryInfo | None = None
        self._plan: RampPlan | None = None
        self._seq = -1
        self._last: Frame | None = None
        self.closed_reason: str | None = None

    @property
    def identity(self) -> Actor:
        return self._identity

    @property
    def read_only(self) -> str | None:
        return self._read_only

    async def connect(self) -> None:
        """Say hello and read the welcome; raises SessionUnavailable with the daemon's reason."""
        self._reader, self._writer = await _connect(self.path)
        self._writer.write(
            encode({"type": "hello", "protocol": PROTOCOL_VERSION, "mode": "attach"})
        )
        await self._writer.drain()
        try:
            welcome = decode(await asyncio.wait_for(self._reader.readline(), 10))
        except (TimeoutError, ProtocolError) as exc:
            raise SessionUnavailable(
                f"the daemon at {self.path} did not welcome us: {exc}"
            ) from exc
        if welcome["type"] == "error":
            raise SessionUnavailable(f"the daemon refused us: {welcome.get('message')}")
        if welcome["type"] != "welcome":
            raise SessionUnavailable(f"unexpected first message {welcome['type']!r}")
        self._identity = Actor.from_dict(welcome["you"])
        self._read_only = welcome.get("read_only")

    async def attach(self, on_frame: FrameHandler) -> None:
        if self._reader is None:
            await self.connect()
        self._task = asyncio.create_task(self._receive(on_frame))

    async def _receive(self, on_frame: FrameHandler) -> None:
        if self._reader is None:
            raise SessionUnavailable("not connected")
        reason = "the session daemon closed the connection"
        try:
            while True:
                line = await self._reader.readline()
                if not line:
                    break
                message = decode(line)
                kind = message["type"]
                if kind == "frame":
                    frame = self._frame(message["frame"])
                    if frame is not None:
                        self._last = frame
                        on_frame(frame)
                elif kind in ("result", "stopped"):
                    future = self._pending.pop(int(message.get("id") or 0), None)
                    if future is None and kind == "stopped":
                        future = self._pending.pop(0, None)
                    if future is not None and not future.done():
                        future.set_result(message)
                elif kind == "error":
                    reason = f"the daemon dropped us: {message.get('message')}"
                    break
        except (ConnectionError, ProtocolError, ValueError) as exc:
            reason = f"lost the session daemon: {exc}"
        self.closed_reason = reason
        for future in self._pending.values():
            if not future.done():
                future.set_exception(SessionUnavailable(reason))
        if self._last is not None:
            on_frame(replace(self._last, full=False, points=(), activity=(),
                             warning=f"DISCONNECTED: {reason}", loop="stopped",
                             loop_detail=f"disconnected: {reason}"))  # fmt: skip

    def _frame(self, data: dict[str, Any]) -> Frame | None:
        if "info" in data:
            self._info = CanaryInfo(**data["info"])
            from canary_tui.core.codec import plan_from_list

            self._plan = plan_from_list(data["plan"])
        if self._info is None:
            return None  # nothing can be drawn before the first full frame
        frame = frame_from_dict(data, info=self._info, plan=self._plan)
        seq = frame.seq
        if frame.heartbeat:
            return frame if seq >= self._seq else None
        if not frame.full and seq <= self._seq:
            return None  # already contained in the full frame we got on attach
        self._seq = seq
        return frame

    async def _send(self, message: dict[str, Any], key: int) -> asyncio.Future[dict[str, Any]]:
        """Send a request; its answer arrives on the returned future. Raises (not sent)."""
        if self._writer is None or self.closed_reason is not None:
            raise SessionUnavailable(self.closed_reason or "not attached")
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        self._writer.write(encode(message))
        await self._writer.drain()
        return future

    async def _request(self, message: dict[str, Any], key: int) -> dict[str, Any]:
        future = await self._send(message, key)
        return await asyncio.wait_for(future, ACTION_TIMEOUT_S)

    async def submit(
        self, verb: Verb, *, expected_version: int | None, reason: str = ""
    ) -> ActionOutcome:
        request_id = next(self._ids)
        message = {"type": "action", "id": request_id, "verb": verb.value,
                   "expected_version": expected_version, "reason": reason}  # fmt: skip
        try:
            future = await self._send(message, request_id)
        except (SessionUnavailable, ConnectionError) as exc:
            return ActionOutcome(False, verb, f"not sent: {exc or 'connection lost'}", -1)
        try:
            reply = await asyncio.wait_for(future, ACTION_TIMEOUT_S)
        except (SessionUnavailable, TimeoutError, ConnectionError) as exc:
            # Sent: the daemon may well have applied it. Never say it did not happen.
            why = str(exc) or f"no answer within {ACTION_TIMEOUT_S:.0f} s"
            await self._refresh()
            return ActionOutcome(
                False, verb,
                f"outcome unknown: {verb.label} was sent but {why}; it may have applied: "
                "check the header and the activity pane", -1,
            )  # fmt: skip
        finally:
            self._pending.pop(request_id, None)
        o = reply["outcome"]
        return ActionOutcome(bool(o["ok"]), Verb(o["verb"]), str(o["message"]), int(o["version"]),
                             str(o.get("action_id", "")))  # fmt: skip

    async def _refresh(self) -> None:
        """Ask for the whole state again (after an action of unknown outcome)."""
        if self._writer is None or self.closed_reason is not None:
            return
        with contextlib.suppress(Exception):
            self._writer.write(encode({"type": "refresh"}))
            await self._writer.drain()

    async def stop_daemon(self, then: str) -> str:
        """Ask the daemon to stop the loop (`then`: hold or kill). Returns its answer."""
        reply = await self._request({"type": "stop", "then": then}, 0)
        return str(reply.get("message", ""))

    async def detach(self) -> None:
        if self._writer is not None:
            with contextlib.suppress(Exception):
                self._writer.write(encode({"type": "bye"}))
                await self._writer.drain()
            self._writer.close()
        if self._task is not None:
            self._task.cancel()
