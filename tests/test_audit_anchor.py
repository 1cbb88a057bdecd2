"""The audit chain's tail is anchored outside the log: cutting, emptying or rewriting the
tail is caught by `audit verify --against`, and an empty or headerless log is never "OK"."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from canary_tui.cli.records import start_recording
from canary_tui.records.audit import (
    GENESIS,
    AuditHead,
    AuditLog,
    canonical,
    read_head,
    read_records,
    record_hash,
    verify,
    verify_against,
)
from canary_tui.records.recording import Recorder, RecorderOptions, Recording
from tests.conftest import ALICE, Rig, make_rig
from tests.support.processes import child_setup

ROOT = Path(__file__).parents[1]


def cli(*args: str, optimize: bool = False) -> subprocess.CompletedProcess[str]:
    flags = ["-O"] if optimize else []
    return subprocess.run(
        [sys.executable, *flags, "-m", "canary_tui.cli", *args],
        capture_output=True, text=True, timeout=60, cwd=ROOT, preexec_fn=child_setup,
    )  # fmt: skip


def recorded_session(tmp_path: Path) -> tuple[Rig, Path]:
    """A session rolled back by the loop, recorded the way every live session is."""
    rig = make_rig(tmp_path, "error-regression", 1)
    recorder = start_recording(rig.engine, None, tmp_path / "recordings")
    assert recorder is not None
    rig.ticks(5)
    rig.engine.note("a note for the record")
    from canary_tui.core.actions import Verb

    rig.act(Verb.ANNOTATE, ALICE, version=None, reason="looks odd")
    rig.ticks(200, until=lambda e: e.state.terminal)
    rig.ticks(3)
    rig.engine.stop("test over")
    rig.engine.audit.close()
    assert recorder.close(30) and recorder.error is None
    return rig, recorder.path


@pytest.fixture
def session(tmp_path: Path) -> tuple[Rig, Path]:
    return recorded_session(tmp_path)


def cut_tail(path: Path, n: int) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-n]))


# --- the head and its form ---------------------------------------------------------------


def test_head_round_trips_as_text_and_rejects_other_text() -> None:
    head = AuditHead(45, "ab" * 32)
    assert AuditHead.parse(str(head)) == head
    assert AuditHead.parse(f" 45:{'AB' * 32} ") == head
    for bad in ("", "45", "x:" + "ab" * 32, "45:abc", f"-1:{'ab' * 32}", "45:" + "g" * 64):
        with pytest.raises(ValueError, match="not an audit head"):
            AuditHead.parse(bad)
    assert AuditHead.from_json([3, "ab" * 32]) == AuditHead(3, "ab" * 32)
    assert AuditHead.from_json({"seq": 3, "hash": "ab" * 32}) == AuditHead(3, "ab" * 32)
    for bad_json in (None, [3], [True, "ab" * 32], ["3", "ab" * 32], [3, "zz"], [-1, "ab" * 32]):
        assert AuditHead.from_json(bad_json) is None


def test_a_new_log_starts_with_a_header_and_reports_its_head_after_each_append(
    tmp_path: Path,
) -> None:
    p = tmp_path / "a.jsonl"
    log = AuditLog(p, fsync=False)
    seen: list[AuditHead] = []
    log.add_listener(seen.append)
    first = next(read_records(p))
    assert first["type"] == "header" and first["format"] == 1 and first["seq"] == 0
    assert log.head() == AuditHead(0, first["hash"])
    for i in range(3):
        rec = log.append({"type": "note", "time": float(i), "message": f"n{i}"})
        assert log.head() == AuditHead(rec["seq"], rec["hash"]) == seen[-1]
    assert [h.seq for h in seen] == [1, 2, 3]  # numbered as before headers
    log.close()
    assert read_head(p) == seen[-1]
    reopened = AuditLog(p, fsync=False)  # continuing a log writes no second header
    assert reopened.head() == seen[-1]
    reopened.close()
    assert [r["type"] for r in read_records(p)].count("header") == 1


def test_a_failing_listener_never_fails_the_record(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a.jsonl", fsync=False)

    def broken(head: AuditHead) -> None:
        raise RuntimeError("anchor down")

    log.add_listener(broken)
    rec = log.append({"type": "note", "time": 0.0})
    assert log.head().seq == rec["seq"] == 1
    log.close()


# --- empty and headerless files ------------------------------------------------------------


def test_an_empty_file_is_not_ok(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    p.write_bytes(b"")
    result = verify(p)
    assert not result.ok and result.problem == "empty"
    out = cli("audit", "verify", str(p))
    assert out.returncode == 1 and "OK" not in out.stdout
    assert "empty" in out.stderr and "Traceback" not in out.stderr


def legacy_log(p: Path, n: int) -> None:
    """A log as canary-tui wrote them before headers: the chain starts with a record."""
    prev = GENESIS
    with p.open("wb") as f:
        for seq in range(1, n + 1):
            rec = {"type": "note", "time": float(seq), "seq": seq, "prev": prev}
            rec["hash"] = record_hash(rec)
            prev = rec["hash"]
            f.write(canonical(rec) + b"\n")


def test_a_headerless_log_is_not_ok_unless_accepted_as_legacy(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    legacy_log(p, 3)
    result = verify(p)
    assert not result.ok and result.problem == "headerless" and result.records == 3
    out = cli("audit", "verify", str(p))
    assert out.returncode == 1 and "no header record" in out.stderr and "--legacy" in out.stderr
    out = cli("audit", "verify", "--legacy", str(p))
    assert out.returncode == 0 and "OK, 3 records" in out.stdout and "legacy" in out.stdout
    # Old logs stay usable: appended to (no header slipped in the middle), read, tailed.
    log = AuditLog(p, fsync=False)
    log.append({"type": "note", "time": 9.0})
    log.close()
    assert verify(p, legacy=True).ok and verify(p, legacy=True).records == 4
    assert cli("audit", "tail", str(p)).returncode == 0


def test_a_header_only_log_verifies(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    AuditLog(p, fsync=False).close()
    out = cli("audit", "verify", str(p))
    assert out.returncode == 0 and "OK, header only" in out.stdout
    assert "--against" in out.stdout


# --- the recording anchors the head --------------------------------------------------------


def test_the_recording_anchors_every_head_and_the_final_one(session: tuple[Rig, Path]) -> None:
    rig, rec_path = session
    end = read_head(rig.audit_path)
    hashes = {r["seq"]: r["hash"] for r in read_records(rig.audit_path)}
    with Recording.open(rec_path) as rec:
        assert rec.complete
        assert rec.audit_anchor == end  # the session's stop record, written after the last frame
        assert rec.header.audit_log == str(rig.audit_path.resolve())
        anchors = rec.audit_anchors
    assert all(hashes[a.seq] == a.hash for a in anchors)
    seqs = [a.seq for a in anchors]
    assert seqs == sorted(seqs) and len(set(seqs)) >= 3  # it grew with the log
    kill = max(r["seq"] for r in read_records(rig.audit_path) if r.get("verb") == "kill")
    assert kill in seqs  # written before the session's stop record: anchored on its own
    assert verify_against(rig.audit_path, anchors).ok


def test_each_record_is_anchored_as_it_is_written_before_the_next_frame(tmp_path: Path) -> None:
    """Inline writer: every audit record's head is in the file as soon as it is appended
    (the kill's intent is anchored before the router is even called)."""
    rig = make_rig(tmp_path, "error-regression", 1)
    audit = rig.engine.audit
    path = tmp_path / "inline.ctrec"
    recorder = Recorder.create(
        None, rig.engine.info, rig.engine.plan, path=path, audit_head=audit.head,
        options=RecorderOptions(fsync=False), threaded=False,
    )  # fmt: skip
    rig.engine.subscribe(recorder.on_frame)
    audit.add_listener(recorder.on_audit)
    seen: list[tuple[int, list[int]]] = []

    def after_each(head: AuditHead) -> None:  # runs after the recorder's own listener
        recorder.flush()
        with Recording.open(path) as rec:
            seen.append((head.seq, [a.seq for a in rec.audit_anchors]))

    rig.ticks(2)
    audit.add_listener(after_each)
    rig.ticks(200, until=lambda e: e.state.terminal)
    rig.engine.stop("over")
    recorder.close()
    assert seen and all(seq in anchored for seq, anchored in seen), seen
    with Recording.open(path) as rec:
        assert rec.audit_anchor == audit.head()


def test_verify_against_the_recording_passes_then_catches_a_cut_tail(
    session: tuple[Rig, Path],
) -> None:
    rig, rec_path = session
    audit = rig.audit_path
    out = cli("audit", "verify", str(audit), "--against", str(rec_path))
    assert out.returncode == 0, out.stderr
    assert "OK" in out.stdout and "tail matches the anchor" in out.stdout
    end = read_head(audit)
    cut_tail(audit, 3)
    assert verify(audit).ok  # the chain alone cannot see it ...
    out = cli("audit", "verify", str(audit), "--against", str(rec_path))
    assert out.returncode == 1 and "Traceback" not in out.stderr  # ... the anchor does
    assert f"the log ends at seq {end.seq - 3} but the anchor saw seq {end.seq}" in out.stderr
    assert end.hash in out.stderr and "at least 3 records were cut off" in out.stderr
    # python -O changes nothing
    optimized = cli("audit", "verify", str(audit), "--against", str(rec_path), optimize=True)
    assert (optimized.returncode, optimized.stderr) == (out.returncode, out.stderr)


def test_emptying_the_log_is_caught_against_the_recording(session: tuple[Rig, Path]) -> None:
    rig, rec_path = session
    rig.audit_path.write_bytes(b"")
    out = cli("audit", "verify", str(rig.audit_path), "--against", str(rec_path))
    assert out.returncode == 1 and "the log is empty but the anchor saw seq" in out.stderr


def test_a_rewritten_tail_is_caught(session: tuple[Rig, Path]) -> None:
    rig, rec_path = session
    cut_tail(rig.audit_path, 2)
    log = AuditLog(rig.audit_path, fsync=False)  # a forger re-extends the chain
    for i in range(2):
        log.append({"type": "note", "time": float(i), "message": "nothing happened"})
    log.close()
    assert verify(rig.audit_path).ok
    out = cli("audit", "verify", str(rig.audit_path), "--against", str(rec_path))
    assert out.returncode == 1 and "REWRITTEN" in out.stderr


def test_verify_against_a_head_given_as_text(session: tuple[Rig, Path]) -> None:
    rig, _ = session
    end = read_head(rig.audit_path)
    out = cli("audit", "verify", str(rig.audit_path), "--against", str(end))
    assert out.returncode == 0 and "OK" in out.stdout
    cut_tail(rig.audit_path, 1)
    out = cli("audit", "verify", str(rig.audit_path), "--against", str(end))
    assert out.returncode == 1 and f"ends at seq {end.seq - 1}" in out.stderr
    out = cli("audit", "verify", str(rig.audit_path), "--against", "not-a-file-nor-a-head")
    assert out.returncode == 2 and "not an audit head" in out.stderr


def test_a_recording_cut_short_keeps_its_anchors_and_never_accuses_an_intact_log(
    session: tuple[Rig, Path], tmp_path: Path
) -> None:
    rig, rec_path = session
    data = rec_path.read_bytes()
    heads = {r["seq"]: r["hash"] for r in read_records(rig.audit_path)}
    seen_anchor = False
    for size in range(len(data) - 1, 0, -max(1, len(data) // 60)):
        cut = tmp_path / "cut.ctrec"
        cut.write_bytes(data[:size])
        try:
            rec = Recording.open(cut)
        except Exception:
            continue
        with rec:
            anchors = rec.audit_anchors
        assert all(heads[a.seq] == a.hash for a in anchors)
        if anchors:
            seen_anchor = True
            assert verify_against(rig.audit_path, anchors).ok
    assert seen_anchor


def test_an_old_recording_without_anchors_is_read_and_named_as_such(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, "healthy", 0)
    path = tmp_path / "old.ctrec"
    recorder = Recorder.create(
        None, rig.engine.info, rig.engine.plan, path=path,
        options=RecorderOptions(fsync=False), threaded=False,
    )  # fmt: skip
    rig.engine.subscribe(recorder.on_frame)
    rig.ticks(5)
    recorder.close()
    with Recording.open(path) as rec:
        assert rec.frames >= 5 and rec.audit_anchors == [] and rec.audit_anchor is None
        assert rec.header.audit_log is None
    out = cli("audit", "verify", str(rig.audit_path), "--against", str(path))
    assert out.returncode == 1 and "holds no anchor" in out.stderr
    out = cli("audit", "verify", str(rig.audit_path), "--against", str(tmp_path / "a.jsonl.x"))
    assert out.returncode == 2


def test_a_broken_chain_is_reported_before_the_anchor(session: tuple[Rig, Path]) -> None:
    rig, rec_path = session
    lines = rig.audit_path.read_bytes().splitlines(keepends=True)
    rec = json.loads(lines[2])
    rec["message"] = "edited"
    lines[2] = json.dumps(rec).encode() + b"\n"
    rig.audit_path.write_bytes(b"".join(lines))
    out = cli("audit", "verify", str(rig.audit_path), "--against", str(rec_path))
    assert out.returncode == 1 and "BROKEN at record on line 3" in out.stderr


def test_the_shipped_recordings_made_before_anchors_still_open() -> None:
    shipped = sorted((ROOT / "recordings").glob("*.ctrec"))
    assert shipped
    for path in shipped:
        with Recording.open(path) as rec:
            assert rec.frames > 0 and rec.complete
            assert rec.audit_anchors == [] and rec.header.audit_log is None
            assert len(list(rec.iter_frames(0, 5))) == 5
