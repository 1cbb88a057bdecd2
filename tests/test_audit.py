"""The audit log's hash chain: tampering is caught and named; torn tails are recovered."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from canary_tui.records.audit import AuditError, AuditLog, read_records, verify
from tests.support.processes import child_setup


def write_log(path: Path, n: int = 5) -> None:
    log = AuditLog(path)
    for i in range(n):
        log.append(
            {
                "type": "intent",
                "time": 1000.0 + i,
                "verb": "step_forward",
                "actor": {"name": "alice", "kind": "person"},
            }
        )
    log.close()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "canary_tui.cli", *args], capture_output=True, text=True, timeout=60,
        stdin=subprocess.DEVNULL, preexec_fn=child_setup,
    )  # fmt: skip


def test_intact_chain_verifies(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    write_log(p)
    assert verify(p).ok and verify(p).records == 5
    out = cli("audit", "verify", str(p))
    assert out.returncode == 0 and "OK, 5 records" in out.stdout


def test_appending_continues_the_chain_across_restarts(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    write_log(p, 3)
    write_log(p, 2)
    assert verify(p).ok and [r["seq"] for r in read_records(p)] == [
        0,
        1,
        2,
        3,
        4,
        5,
    ]  # 0: the header


def _lines(p: Path) -> list[str]:
    return p.read_text().splitlines(keepends=True)


@pytest.mark.parametrize("how", ["edit", "remove", "reorder", "insert", "garble"])
def test_tampering_is_caught_at_the_first_broken_record(tmp_path: Path, how: str) -> None:
    p = tmp_path / "a.jsonl"
    write_log(p)
    lines = _lines(p)
    if how == "edit":
        rec = json.loads(lines[2])
        rec["actor"]["name"] = "mallory"
        lines[2] = json.dumps(rec) + "\n"
        expect = 3
    elif how == "remove":
        del lines[2]
        expect = 3
    elif how == "reorder":
        lines[1], lines[2] = lines[2], lines[1]
        expect = 2
    elif how == "insert":
        lines.insert(1, lines[0])
        expect = 2
    else:
        lines[3] = lines[3][:20] + "\n"
        expect = 4
    p.write_text("".join(lines))
    result = verify(p)
    assert not result.ok and result.bad_line == expect
    out = cli("audit", "verify", str(p))
    assert out.returncode == 1
    assert f"line {expect}" in out.stderr and "Traceback" not in out.stderr


def test_a_rehashed_edit_is_still_caught_by_the_next_record(tmp_path: Path) -> None:
    from canary_tui.records.audit import record_hash

    p = tmp_path / "a.jsonl"
    write_log(p)
    lines = _lines(p)
    rec = json.loads(lines[1])
    rec["verb"] = "promote"
    rec["hash"] = record_hash(rec)
    lines[1] = json.dumps(rec) + "\n"
    p.write_text("".join(lines))
    assert verify(p).bad_line == 3


def test_torn_last_line_from_a_crash_is_dropped_on_reopen(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    write_log(p, 3)
    with p.open("a") as f:
        f.write('{"type": "intent", "seq": 4, "tim')
    log = AuditLog(p)
    log.append({"type": "intent", "time": 1.0})
    log.close()
    assert verify(p).ok and verify(p).records == 4


def test_refuses_to_append_to_a_tampered_log(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    write_log(p)
    lines = _lines(p)
    del lines[1]
    p.write_text("".join(lines))
    with pytest.raises(AuditError, match="broken at line 2"):
        AuditLog(p)


def test_unwritable_or_missing_paths_give_clear_messages(tmp_path: Path) -> None:
    blocker = tmp_path / "plain-file"
    blocker.write_text("")
    # A path below a regular file cannot be created, even by root.
    with pytest.raises(AuditError, match="cannot open audit log"):
        AuditLog(blocker / "audit.jsonl")
    with pytest.raises(AuditError, match="cannot (open|read) audit log .*directory"):
        AuditLog(tmp_path)  # a directory
    out = cli("audit", "verify", str(tmp_path / "missing.jsonl"))
    assert out.returncode == 2 and "cannot read audit log" in out.stderr


def test_tail_prints_readable_lines(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    write_log(p, 4)
    out = cli("audit", "tail", str(p), "-n", "2")
    assert out.returncode == 0
    lines = out.stdout.strip().splitlines()
    assert len(lines) == 2 and "#3" in lines[0] and "alice asks: step forward" in lines[0]


@pytest.mark.parametrize("kind", ["fifo", "device", "directory"])
def test_an_audit_log_that_is_not_a_regular_file_is_one_clear_line(
    tmp_path: Path, kind: str
) -> None:
    """A FIFO hung `audit verify`, /dev/zero read forever with growing memory."""
    import os

    if kind == "fifo":
        path = tmp_path / "log.fifo"
        os.mkfifo(path)
    elif kind == "device":
        path = Path("/dev/zero")
    else:
        path = tmp_path
    out = cli("audit", "verify", str(path))
    assert out.returncode == 2, out
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert (len(lines) == 1 and "not a regular file" in lines[0]) or "a directory" in lines[0]
    assert "Traceback" not in out.stderr
    config = Path(__file__).resolve().parents[1] / "examples" / "checkout.yaml"
    run = cli("run", "--headless", "--speed", "max", "--config", str(config), "--audit", str(path))
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert str(path) in run.stderr
