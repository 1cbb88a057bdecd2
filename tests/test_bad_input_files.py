"""Files that are not what a command expects (binary, other text or JSON, empty, a directory, a
FIFO nobody writes to, /dev/zero, a record a newer version wrote): `audit tail`, `report` and
`replay` give one clear line and exit 2, never silence, a traceback or a hang."""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from canary_tui.records.audit import AuditLog
from tests.support.processes import child_setup, popen, stop

REPO = Path(__file__).resolve().parents[1]
NOT_A_LOG = "is not an audit log: line 1 is not an audit record"


def canary(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "canary_tui.cli", *args], cwd=REPO, capture_output=True,
        text=True, timeout=timeout, stdin=subprocess.DEVNULL, preexec_fn=child_setup,
    )  # fmt: skip


def one_error(out: subprocess.CompletedProcess[str], expected: str) -> None:
    assert out.returncode == 2, (out.returncode, out.stdout, out.stderr)
    assert out.stdout == ""
    lines = out.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("canary-tui: "), out.stderr
    assert expected in lines[0], lines[0]


def write_log(path: Path, n: int = 3) -> bytes:
    log = AuditLog(path, fsync=False)
    for i in range(n):
        log.append({"type": "intent", "time": 1000.0 + i, "verb": "pause",
                    "actor": {"name": "alice"}})  # fmt: skip
    log.close()
    return path.read_bytes()


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    made = {
        "binary": os.urandom(4000).replace(b"\n", b"") + b"\n" + os.urandom(100),
        "binary-no-newline": os.urandom(4000).replace(b"\n", b""),
        "text": b"hello\nworld\n",
        "json-not-records": b'{"a": 1}\n[1, 2]\n"x"\n',
        "record-like": b'{"seq": "x", "type": "result", "hash": 5}\n',
        "deep-json": b"[" * 100_000 + b"]" * 100_000 + b"\n",
    }
    out = {}
    for name, data in made.items():
        out[name] = tmp_path / name
        out[name].write_bytes(data)
    out["fifo"] = tmp_path / "fifo"
    os.mkfifo(out["fifo"])
    out["directory"] = tmp_path / "dir"
    out["directory"].mkdir()
    out["empty"] = tmp_path / "empty"
    out["empty"].write_bytes(b"")
    return out


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("binary", NOT_A_LOG),
        ("binary-no-newline", NOT_A_LOG),
        ("text", NOT_A_LOG),
        ("json-not-records", NOT_A_LOG),
        ("record-like", NOT_A_LOG),
        ("deep-json", NOT_A_LOG),
        ("directory", "Is a directory"),
    ],
)
def test_audit_tail_refuses_what_is_not_an_audit_log(
    files: dict[str, Path], name: str, expected: str
) -> None:
    one_error(canary("audit", "tail", str(files[name])), expected)


def test_audit_tail_on_dev_zero_missing_fifo_and_empty(files: dict[str, Path]) -> None:
    one_error(canary("audit", "tail", "/dev/zero"), "line 1 is longer than 1 MiB")
    one_error(canary("audit", "tail", str(files["empty"].with_name("nope"))), "No such file")
    for name in ("fifo", "empty"):  # nothing to read (and nobody writing): no records, exit 0
        out = canary("audit", "tail", str(files[name]))
        assert out.returncode == 0 and out.stdout == ""
        assert out.stderr.strip() == f"canary-tui: {files[name]}: no records yet"


def test_audit_tail_prints_a_damaged_log_with_a_warning(tmp_path: Path) -> None:
    log = tmp_path / "a.jsonl"
    good = write_log(log)
    n = len(good.splitlines())  # the records, and a header record where the log has one
    last = good.splitlines(True)[-1]
    log.write_bytes(good + b"\x00\xffgarbage\n" + last + b'{"seq": 99, "ty')
    out = canary("audit", "tail", "-n", "100", str(log))
    assert out.returncode == 0
    printed = out.stdout.splitlines()
    assert len(printed) == n + 1 and printed[-1] == printed[n - 1]
    assert sum("alice asks: pause" in line for line in printed) == 4
    # the torn last line (a crash mid-write) is not a damaged line; the garbage is
    assert f"1 line(s) are not audit records (line {n + 1})" in out.stderr
    assert len(out.stderr.splitlines()) == 1


def test_audit_tail_describes_what_it_can_and_prints_json_for_the_rest(tmp_path: Path) -> None:
    log = tmp_path / "a.jsonl"
    odd = {"seq": 1, "type": "result", "hash": "h", "time": "yesterday", "actor": 5}
    log.write_text(json.dumps(odd) + "\n")
    out = canary("audit", "tail", str(log))
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("#1 result: (a record this version cannot describe")
    raw = canary("audit", "tail", "--json", str(log))
    assert json.loads(raw.stdout) == odd


def test_audit_tail_follows_new_records_and_stops_when_the_log_is_cut(tmp_path: Path) -> None:
    log = tmp_path / "a.jsonl"
    write_log(log, 2)
    proc = popen(
        [sys.executable, "-m", "canary_tui.cli", "audit", "tail", "-f", "-n", "1", str(log)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        assert b"#2 alice asks: pause" in _line(proc.stdout)
        more = AuditLog(log, fsync=False)
        more.append({"type": "refused", "time": 2000.0, "verb": "kill", "message": "viewer",
                     "actor": {"name": "bob"}})  # fmt: skip
        more.close()
        assert b"#3 bob: kill refused: viewer" in _line(proc.stdout)
        log.write_bytes(b"")
        assert proc.wait(30) == 2
        assert proc.stderr is not None
        assert b"became shorter than what was already read" in proc.stderr.read()
    finally:
        stop(proc)


def _line(stream: object, timeout: float = 30) -> bytes:
    fd = stream.fileno()  # type: ignore[attr-defined]
    deadline = time.monotonic() + timeout
    data = b""
    while not data.endswith(b"\n"):
        ready, _, _ = select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise AssertionError(f"no line within {timeout} s (got {data!r})")
        chunk = os.read(fd, 1)
        if not chunk:
            break
        data += chunk
    return data


@pytest.mark.parametrize("command", ["report", "replay"])
@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("fifo", "is not a regular file"),
        ("binary", "is not a canary-tui recording"),
        ("text", "is not a canary-tui recording"),
        ("json-not-records", "is not a canary-tui recording"),
        ("empty", "is empty: the session recorded nothing"),
        ("directory", "Is a directory"),
    ],
)
def test_report_and_replay_refuse_what_is_not_a_recording(
    files: dict[str, Path], command: str, name: str, expected: str
) -> None:
    one_error(canary(command, str(files[name])), expected)


def test_report_and_replay_refuse_devices_and_unusable_speeds(files: dict[str, Path]) -> None:
    one_error(canary("report", "/dev/zero"), "/dev/zero is not a regular file")
    one_error(canary("replay", "/dev/zero"), "/dev/zero is not a regular file")
    for speed in ("inf", "nan", "0", "1e9"):
        one_error(
            canary("replay", "--speed", speed, str(files["binary"])),
            "--speed must be a positive number up to 10000",
        )


@settings(max_examples=200, deadline=None, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(
    data=st.binary(max_size=2000)
    | st.lists(
        st.sampled_from([b'{"seq": 1, "type": "intent", "hash": "h"}', b"{}", b"[]", b"null",
                         b'{"seq": true, "type": "x", "hash": "h"}', b"\xff\xfe", b"", b"{",
                         b'{"seq": 1e999, "type": "x", "hash": "h"}', b"[" * 5000]),
        max_size=8,
    ).map(b"\n".join),
)  # fmt: skip
def test_the_audit_reader_gives_records_or_one_reason(tmp_path: Path, data: bytes) -> None:
    from canary_tui.cli.audit_tail import LogReader, NotAnAuditLog, is_record

    log = tmp_path / "fuzz.jsonl"
    log.write_bytes(data)
    reader = LogReader(log)
    try:
        records = reader.read()
    except NotAnAuditLog as exc:
        assert str(exc).startswith(str(log)) and "\n" not in str(exc)
        return
    assert all(is_record(r) for r in records) and len(records) == reader.records
