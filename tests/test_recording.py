"""Session recordings: round trip, seeking equals what the engine had, crashes, bad files, secrets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from canary_tui.core.actions import Verb
from canary_tui.core.frames import Frame
from canary_tui.core.metrics import Sample
from canary_tui.records import chunks, columns
from canary_tui.records.recording import (
    FORMAT_VERSION,
    Recorder,
    RecorderOptions,
    Recording,
    RecordingError,
    default_directory,
    recording_name,
)
from canary_tui.records.redact import MASK, Scrubber, redact, scrub_text, secret_values
from canary_tui.session.replay import ReplaySession
from tests.conftest import ALICE, BOB, Rig, make_rig
from tests.support.processes import child_setup

SMALL = RecorderOptions(chunk_frames=4, chunk_seconds=10.0, snapshot_frames=7, fsync=False)
HISTORY_S, KEEP = 30.0, 6  # small windows, so that trimming happens within a short session


@dataclass
class Recorded:
    path: Path
    frames: list[Frame]  # every frame the recorder was given
    fulls: list[Frame]  # engine.full_frame() right after each of them
    rig: Rig


def busy_script(rig: Rig) -> None:
    """Ticks, a note, pause and resume, a join, a stale (refused) step, then the loop's rollback."""
    engine = rig.engine
    rig.ticks(4)
    engine.note_presence("alice", True, ("alice",))
    rig.act(Verb.ANNOTATE, ALICE, version=None, reason="watching the canary")
    rig.ticks(3)
    rig.act(Verb.PAUSE, ALICE)
    rig.ticks(2)
    rig.act(Verb.RESUME, BOB)
    rig.act(Verb.STEP_FORWARD, ALICE, version=engine.state.version - 1)
    rig.ticks(200, until=lambda e: e.state.terminal)
    rig.ticks(8)
    engine.note_presence("alice", False, ())


@dataclass
class InProgress:
    """A session being recorded: the rig, its recorder, and what the recorder was given."""

    rig: Rig
    recorder: Recorder
    frames: list[Frame]
    fulls: list[Frame]

    def close(self) -> Recorded:
        self.rig.engine.stop("test over")
        self.recorder.close()
        assert self.recorder.error is None
        return Recorded(self.recorder.path, self.frames, self.fulls, self.rig)


def start_recording(
    tmp_path: Path,
    scenario: str = "error-regression",
    seed: int = 1,
    *,
    options: RecorderOptions = SMALL,
    config: dict[str, Any] | None = None,
    threaded: bool = False,
    name: str = "session.ctrec",
    engine_windows: bool = False,
) -> InProgress:
    """A rig whose frames are recorded; small graph and activity windows unless
    `engine_windows` (the engine's own: history_s 600, activity_keep 200)."""
    rig = make_rig(tmp_path, scenario, seed)
    engine = rig.engine
    if not engine_windows:
        engine.settings = replace(engine.settings, history_s=HISTORY_S, activity_keep=KEEP)
        engine._activity = deque(engine._activity, maxlen=KEEP)
    recorder = Recorder.create(
        None,
        engine.info,
        engine.plan,
        config if config is not None else {"canary": {"name": "checkout"}},
        path=tmp_path / name,
        started_at=rig.clock.now(),
        host="test-host",
        history_s=engine.settings.history_s,
        activity_keep=engine.settings.activity_keep,
        tick_s=engine.settings.tick_s,
        options=options,
        threaded=threaded,
    )
    going = InProgress(rig, recorder, [], [])

    def capture(frame: Frame) -> None:
        going.frames.append(frame)
        going.fulls.append(engine.full_frame())

    engine.subscribe(recorder.on_frame)
    engine.subscribe(capture)
    return going


def record_session(
    tmp_path: Path,
    scenario: str = "error-regression",
    seed: int = 1,
    *,
    script: Callable[[Rig], None] = busy_script,
    **kw: Any,
) -> Recorded:
    """Record `script` played on a seeded simulator in virtual time."""
    going = start_recording(tmp_path, scenario, seed, **kw)
    script(going.rig)
    return going.close()


@pytest.fixture(scope="module")
def recorded(tmp_path_factory: pytest.TempPathFactory) -> Recorded:
    return record_session(tmp_path_factory.mktemp("rec"))


def all_chunks(path: Path) -> list[tuple[chunks.ChunkInfo, list[bytes]]]:
    """Every chunk of a file with its parts decompressed (the test's own reader)."""
    data = path.read_bytes()
    out, offset = [], chunks.PREAMBLE.size
    with path.open("rb") as f:
        while offset < len(data) - chunks.TRAILER.size:
            info, payload = chunks.read_chunk(f, offset, len(data))
            parts = [chunks.decompress(info, payload, i) for i in range(len(info.meta["z"]))]
            out.append((info, parts))
            offset = info.end
    return out


# --- round trip ----------------------------------------------------------------------------------


def test_every_frame_reads_back_exactly(recorded: Recorded) -> None:
    with Recording.open(recorded.path) as rec:
        assert rec.complete and rec.problem is None
        assert rec.frames == len(recorded.frames) > 40
        assert list(rec.iter_frames()) == recorded.frames
        assert [rec.frame(i) for i in (0, 5, rec.frames - 1)] == [
            recorded.frames[i] for i in (0, 5, len(recorded.frames) - 1)
        ]
        assert rec.info == recorded.rig.engine.info and rec.plan == recorded.rig.engine.plan


def test_full_frame_at_any_frame_is_what_the_engine_would_have_sent(recorded: Recorded) -> None:
    """The heart of seeking: a client attaching at frame i gets exactly this full frame."""
    with Recording.open(recorded.path) as rec:
        assert len(rec._snaps) >= 3  # snapshots were used, and folding across them too
        for i, expected in enumerate(recorded.fulls):
            got = rec.full_frame_at(i)
            assert got == expected, f"frame {i}"
        assert len(recorded.fulls[-1].activity) == KEEP  # the activity window did fill up
        assert recorded.fulls[-1].points[0].t > recorded.frames[1].now  # and points were trimmed


def test_full_frame_at_with_a_cold_cache_in_random_order(recorded: Recorded) -> None:
    with Recording.open(recorded.path) as rec:
        for i in (37, 3, len(recorded.fulls) - 1, 0, 19, 8):
            rec._cache.clear()
            assert rec.full_frame_at(i) == recorded.fulls[i]


def test_header_ticks_times_and_marks(recorded: Recorded) -> None:
    frames = recorded.frames
    with Recording.open(recorded.path) as rec:
        h = rec.header
        assert (h.host, h.history_s, h.activity_keep, h.format) == (
            "test-host",
            HISTORY_S,
            KEEP,
            FORMAT_VERSION,
        )
        assert h.started_at == frames[0].now == rec.start_time and rec.end_time == frames[-1].now
        ticks = [i for i, f in enumerate(frames) if f.points and not f.full]
        assert rec.ticks == len(ticks)
        assert [i for i in range(rec.frames) if rec.is_tick(i)] == ticks
        assert [rec.tick_number(i) for i in ticks] == list(range(1, len(ticks) + 1))
        assert rec.next_tick(ticks[3]) == ticks[4] and rec.prev_tick(ticks[4]) == ticks[3]
        assert rec.next_tick(ticks[-1]) is None and rec.prev_tick(ticks[0]) is None
        assert [rec.time_of(i) for i in range(rec.frames)] == [f.now for f in frames]
        assert rec.index_at(frames[10].now) == max(
            i for i, f in enumerate(frames) if f.now <= frames[10].now
        )
        assert rec.index_at(0.0) == 0 and rec.index_at(1e12) == rec.frames - 1
        actions = [
            i
            for i, f in enumerate(frames)
            if not f.full and any(a.kind in ("intent", "refused") for a in f.activity)
        ]
        assert rec.marks.actions == actions and len(actions) >= 5
        phases = [
            i for i in range(1, len(frames)) if frames[i].state.phase != frames[i - 1].state.phase
        ]
        assert rec.marks.phases == phases
        assert rec.marks.verdicts and all(
            {v.metric: v.status for v in frames[i].verdicts}
            != {v.metric: v.status for v in frames[i - 1].verdicts}
            for i in rec.marks.verdicts
        )


def test_threaded_and_inline_writers_write_the_same_bytes(tmp_path: Path) -> None:
    a = record_session(tmp_path / "a", threaded=False)
    b = record_session(tmp_path / "b", threaded=True)
    assert a.path.read_bytes() == b.path.read_bytes()


def test_file_name_default_directory_and_no_overwrite(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert recording_name("check out/x", 1_700_000_000.0) == "check_out_x-20231114T221320Z.ctrec"
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert default_directory() == tmp_path / "state" / "canary-tui" / "recordings"
    rig = make_rig(tmp_path, "healthy")
    made = [
        Recorder.create(
            None, rig.engine.info, rig.engine.plan, started_at=1_700_000_000.0, threaded=False
        )
        for _ in range(2)
    ]
    for r in made:
        r.close()
    assert [r.path.name for r in made] == [
        "checkout-20231114T221320Z.ctrec",
        "checkout-20231114T221320Z-2.ctrec",
    ]
    assert all(r.path.parent == default_directory() for r in made)


def test_a_write_failure_stops_the_recording_never_the_loop(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, "healthy")
    recorder = Recorder.create(
        tmp_path, rig.engine.info, rig.engine.plan, threaded=False, options=SMALL
    )
    rig.engine.subscribe(recorder.on_frame)
    recorder._handle.close()  # the disk goes away
    rig.ticks(10)
    assert recorder.error is not None and "stopped" in recorder.error
    recorder.close()


def test_a_full_queue_drops_frames_and_says_so(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, "healthy")
    options = replace(SMALL, queue_size=1)
    recorder = Recorder.create(tmp_path, rig.engine.info, rig.engine.plan, options=options)
    recorder._queue.put(object())  # type: ignore[union-attr]  # the writer is busy
    for _ in range(3):
        recorder.on_frame(rig.engine.full_frame())
    assert recorder.dropped >= 2
    recorder.close()
    with Recording.open(recorder.path) as rec:
        assert rec.dropped == recorder.dropped


# --- crashes and bad files -------------------------------------------------------------------------


def test_every_truncation_replays_its_whole_chunks_and_says_cut_short(
    recorded: Recorded, tmp_path: Path
) -> None:
    data = recorded.path.read_bytes()
    boundaries = {info.end: info for info, _ in all_chunks(recorded.path)}
    frames_before = {}
    for end in sorted(boundaries):
        frames_before[end] = max(
            [i.first + i.count for i in boundaries.values() if i.kind == "F" and i.end <= end],
            default=0,
        )
    cut = tmp_path / "cut.ctrec"
    for size in range(0, len(data) - 1, 211):
        cut.write_bytes(data[:size])
        try:
            rec = Recording.open(cut)
        except RecordingError as exc:
            assert size < min(boundaries), (size, exc)  # only a file without its header fails
            continue
        with rec:
            whole = max([e for e in boundaries if e <= size], default=0)
            assert rec.frames == frames_before.get(whole, 0)
            assert not rec.complete and rec.problem and rec.problem.startswith("cut short")
            assert list(rec.iter_frames()) == recorded.frames[: rec.frames]


def test_kill_minus_nine_mid_session_replays_up_to_the_last_whole_chunk(tmp_path: Path) -> None:
    out = tmp_path / "killed.ctrec"
    code = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        from canary_tui.records.recording import Recorder, RecorderOptions
        from tests.conftest import make_rig
        rig = make_rig(Path({str(tmp_path)!r}), "error-regression", 1)
        rec = Recorder.create(None, rig.engine.info, rig.engine.plan, path=Path({str(out)!r}),
                              options=RecorderOptions(chunk_frames=5), threaded=False)
        rig.engine.subscribe(rec.on_frame)
        rig.ticks(13)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[1], check=False,
                          preexec_fn=child_setup)  # fmt: skip
    assert proc.returncode == -signal.SIGKILL
    with Recording.open(out) as rec:
        assert not rec.complete and rec.problem and "cut short" in rec.problem
        # 14 frames published. The audited start at frame 1 closes a chunk at once (actions
        # are urgent), then chunks of 5 end at frames 6 and 11: 12 whole frames, 2 cut off.
        assert rec.frames == 12
        assert len(list(rec.iter_frames())) == 12


def test_a_damaged_chunk_ends_the_recording_just_before_it(
    recorded: Recorded, tmp_path: Path
) -> None:
    data = bytearray(recorded.path.read_bytes())
    frames_chunks = [info for info, _ in all_chunks(recorded.path) if info.kind == "F"]
    victim = frames_chunks[5]
    data[victim.end - 3] ^= 0xFF
    bad = tmp_path / "bad.ctrec"
    bad.write_bytes(bytes(data))
    with Recording.open(bad) as rec:  # the index is intact: the damage shows when read
        assert rec.complete
        with pytest.raises(RecordingError, match="damaged"):
            list(rec.iter_frames())
        assert rec.frames == victim.first and not rec.complete
        assert rec.problem and "checksum" in rec.problem
        assert list(rec.iter_frames()) == recorded.frames[: victim.first]
        assert rec.full_frame_at(victim.first - 1) == recorded.fulls[victim.first - 1]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"CTR", "cut short before its header"),
        (b'{"seq": 1, "type": "session"}\n', "not a canary-tui recording (it looks like JSON"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not a canary-tui recording"),
        (chunks.PREAMBLE.pack(chunks.MAGIC, FORMAT_VERSION + 1) + b"\x00" * 40, "newer canary-tui"),
        (chunks.PREAMBLE.pack(chunks.MAGIC, FORMAT_VERSION) + b"CK", "header cannot be read"),
    ],
)
def test_bad_files_give_one_clear_message(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "x.ctrec"
    path.write_bytes(content)
    with pytest.raises(RecordingError, match=message.replace("(", r"\(")):
        Recording.open(path)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="cannot open"):
        Recording.open(tmp_path / "nope.ctrec")
    with pytest.raises(RecordingError):
        Recording.open(tmp_path)


@pytest.fixture(scope="module")
def small_file(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    def short(rig: Rig) -> None:
        rig.ticks(6)
        rig.act(Verb.ANNOTATE, ALICE, version=None, reason="note")
        rig.ticks(6)

    return record_session(
        tmp_path_factory.mktemp("fuzz"), "healthy", script=short
    ).path.read_bytes()


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_fuzzed_files_never_raise_anything_but_recording_error(
    small_file: bytes, tmp_path: Path, data: st.DataObject
) -> None:
    blob = bytearray(small_file)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "cut", "insert", "delete", "zero"]))
        at = data.draw(st.integers(0, max(len(blob) - 1, 0)))
        if op == "flip" and blob:
            blob[at] ^= data.draw(st.integers(1, 255))
        elif op == "cut":
            del blob[at:]
        elif op == "insert":
            blob[at:at] = data.draw(st.binary(min_size=1, max_size=40))
        elif op == "delete":
            del blob[at : at + data.draw(st.integers(1, 200))]
        elif op == "zero":
            blob[at : at + 16] = bytes(min(16, len(blob) - at))
    path = tmp_path / "fuzz.ctrec"
    path.write_bytes(bytes(blob))
    try:
        rec = Recording.open(path)
    except RecordingError as exc:
        assert str(exc)
        return
    with rec:
        try:
            session = ReplaySession(rec, identity=ALICE)
        except RecordingError:
            session = None
        if session is not None:  # what the player does never raises either
            for move in (lambda: session.seek(rec.frames // 2), lambda: session.step(1),
                         lambda: session.step(-2), session.play, lambda: session.advance(99.0),
                         session.next_action, session.prev_verdict_change):  # fmt: skip
                move()
            assert session.tick >= 0
        for i in (0, rec.frames // 2, rec.frames - 1, rec.frames + 3):
            try:
                rec.full_frame_at(i)
                rec.frame(i)
                rec.index_at(rec.start_time + 7)
            except RecordingError:
                pass
        try:
            for _ in rec.iter_frames():
                pass
        except RecordingError:
            assert rec.problem


# --- secrets ---------------------------------------------------------------------------------------

SECRETS = {
    "token": "tok-3141592653-secret",
    "password": "hunter2hunter2",
    "authorization": "Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig123",
    "url_password": "s3cr3t-pass",
    "query_token": "qtok-271828",
    "api_key": "AKIA1234567890",
    "basic": "dXNlcjpwYXNzd29yZA==",
    "webhook": "XyZwebhookPathToken42",
}
WEBHOOK = f"https://hooks.slack.com/services/T0001/B0002/{SECRETS['webhook']}"


def planted_config() -> dict[str, Any]:
    return {
        "canary": {"name": "checkout"},
        "source": {
            "kind": "prometheus",
            "url": f"https://admin:{SECRETS['url_password']}@prom.example:9090/api?token={SECRETS['query_token']}&step=5",
            "headers": {"Authorization": SECRETS["authorization"]},
            "auth": {"Password": SECRETS["password"], "user": "admin"},
            "extra_headers": [{"name": "X-API-Key", "value": SECRETS["api_key"]}],
        },
        "router": {"kind": "argo", "TOKEN": SECRETS["token"], "proxy": f"Basic {SECRETS['basic']}"},
        "alerts": {"webhooks": [{"url": WEBHOOK, "timeout": 5}]},
    }


class LeakySource:
    """A metric source whose errors quote the token and the URL, as real clients' errors do."""

    def fetch(self, start: float, end: float) -> Sample:
        raise RuntimeError(
            f"401 from https://admin:{SECRETS['url_password']}@prom.example:9090/api"
            f"?token={SECRETS['query_token']} (token {SECRETS['token']}, "
            f"Authorization: {SECRETS['authorization']}; alert to {WEBHOOK})"
        )


def test_secrets_never_reach_the_file(tmp_path: Path) -> None:
    def leaky(rig: Rig) -> None:
        rig.ticks(5)
        real = rig.engine.source
        rig.engine.source = LeakySource()  # type: ignore[assignment]
        rig.ticks(3)
        rig.act(
            Verb.ANNOTATE, ALICE, version=None, reason=f"found token {SECRETS['token']} in logs"
        )
        rig.engine.source = real
        rig.ticks(3)

    recorded = record_session(tmp_path, "healthy", script=leaky, config=planted_config())
    assert any("401 from" in a.text for f in recorded.frames for a in f.activity)
    raw = recorded.path.read_bytes()
    decompressed = b"".join(p for _, parts in all_chunks(recorded.path) for p in parts)
    assert b"401 from" in decompressed  # the error itself is kept ...
    for name, secret in SECRETS.items():
        for blob in (raw, decompressed):
            assert secret.encode() not in blob, name  # ... and no secret in it, anywhere
    with Recording.open(recorded.path) as rec:
        config = rec.header.config
        assert config["source"]["headers"]["Authorization"] == MASK
        assert config["source"]["auth"] == {"Password": MASK, "user": "admin"}
        assert config["router"]["TOKEN"] == MASK
        assert config["source"]["url"] == "https://***@prom.example:9090/api?token=***&step=5"
        assert config["alerts"]["webhooks"] == [
            {"url": "https://hooks.slack.com/***", "timeout": 5}
        ]
        texts = [a.text for f in rec.iter_frames() for a in f.activity]
        assert any("https://***@prom.example" in t and "token ***" in t for t in texts)


def test_redact_masks_secret_keys_at_any_depth_and_case() -> None:
    config = planted_config()
    out = redact(config)
    assert out["source"]["extra_headers"] == [{"name": "X-API-Key", "value": MASK}]
    assert out["router"]["proxy"] == "Basic ***"
    assert out["source"]["kind"] == "prometheus" and out["canary"] == {"name": "checkout"}
    assert redact({"Client_Secret": {"a": 1}, "session_id": None, "apiKey": ""}) == {
        "Client_Secret": {"a": MASK},
        "session_id": None,
        "apiKey": "",
    }
    assert config["router"]["TOKEN"] == SECRETS["token"]  # the input is left alone
    assert set(SECRETS.values()) <= set(secret_values(config)) | {SECRETS["authorization"]}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("GET https://u:p@h/x failed", "GET https://***@h/x failed"),
        ("https://ghp_abc123@github.com/o/r", "https://***@github.com/o/r"),
        ("http://h/q?a=1&access_token=zzz&b=2", "http://h/q?a=1&access_token=***&b=2"),
        ("Authorization: Bearer abc.def-123", "Authorization: Bearer ***"),
        ("basic authentication failed", "basic authentication failed"),
        ("canary 0.53% vs baseline 0.41%: PASS", "canary 0.53% vs baseline 0.41%: PASS"),
        ("mail alice@example.com", "mail alice@example.com"),
    ],
)
def test_scrub_text(text: str, expected: str) -> None:
    assert scrub_text(text) == expected


def test_scrubber_masks_known_values_in_any_text() -> None:
    scrub = Scrubber(["s3cr3t-value", "ab"])
    assert scrub("oops: s3cr3t-value leaked") == "oops: *** leaked"
    assert scrub("ab stays: too short to hunt for") == "ab stays: too short to hunt for"
    assert scrub.tree({"k s3cr3t-value": ["s3cr3t-value", 1]}) == {"k ***": ["***", 1]}


# --- the column layout -----------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**12), 10**12)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(rows=st.lists(json_values, max_size=8))
def test_columns_round_trip_and_single_rows(rows: list[Any]) -> None:
    data = json.loads(json.dumps(columns.encode(rows)))
    assert columns.decode(data) == rows
    for i, row in enumerate(rows):
        assert columns.decode_row(data, i) == row


def test_columns_reject_what_encode_never_writes() -> None:
    good = columns.encode([{"a": 1}, {"a": 2}])
    for bad in (
        [],
        {"k": [], "s": [0], "c": []},
        {**good, "c": [[1]]},
        {**good, "k": ["x"]},
        {**good, "s": [True]},
    ):
        with pytest.raises(ValueError):
            columns.decode(bad)
    with pytest.raises(ValueError):
        columns.decode_row(good, 5)


def test_os_helpers_do_not_leak_file_descriptors(recorded: Recorded) -> None:
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        with Recording.open(recorded.path) as rec:
            rec.full_frame_at(rec.frames - 1)
    assert len(os.listdir("/proc/self/fd")) <= before
