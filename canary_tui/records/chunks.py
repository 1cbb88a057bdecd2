"""The recording file's bytes: a preamble, checksummed zstd chunks, and an end trailer.

    preamble  b"CTREC\\0" + format version (u16, big-endian)
    chunk     b"CK" kind(1) flags(1) first(u32) count(u32) t_first(f64) t_last(f64)
              meta_len(u32) payload_len(u32) crc32(u32) | meta (JSON) | parts (zstd frames)
    trailer   b"CTRECEND" + offset of the index chunk (u64), written last on a clean close

The CRC covers the chunk header, meta and payload, so a chunk torn by a crash or altered on
disk is detected before anything in it is believed. Kinds: H header, F frames, S snapshot,
I index.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import zstandard

MAGIC = b"CTREC\x00"
FORMAT_VERSION = 1
PREAMBLE = struct.Struct(">6sH")
_HEAD = struct.Struct(">2scBIIddII")
_CRC = struct.Struct(">I")
CHUNK_HEAD_SIZE = _HEAD.size + _CRC.size
TRAILER = struct.Struct(">8sQ")
TRAILER_MAGIC = b"CTRECEND"
KINDS = frozenset("HFSI")
MAX_META = 1 << 20  # a chunk's meta is a few hundred bytes; more means a damaged file
MAX_PAYLOAD = 256 << 20
MAX_RAW = 512 << 20


class ChunkError(Exception):
    """A chunk cannot be read; the message says what is wrong with it."""


@dataclass(frozen=True, slots=True)
class ChunkInfo:
    """Where a chunk is and what it holds, read from its header (no decompression)."""

    kind: str
    offset: int
    first: int
    count: int
    t_first: float
    t_last: float
    meta: dict[str, Any] = field(default_factory=dict)
    size: int = 0

    @property
    def end(self) -> int:
        return self.offset + self.size

    def to_list(self) -> list[Any]:
        return [
            self.kind,
            self.offset,
            self.first,
            self.count,
            self.t_first,
            self.t_last,
            self.meta,
            self.size,
        ]

    @classmethod
    def from_list(cls, item: Any) -> ChunkInfo:
        kind, offset, first, count, t_first, t_last, meta, size = item
        if kind not in KINDS or not isinstance(meta, dict):
            raise ValueError("bad index entry")
        return cls(
            str(kind),
            int(offset),
            int(first),
            int(count),
            float(t_first),
            float(t_last),
            meta,
            int(size),
        )


def pack_chunk(
    kind: str,
    parts: Sequence[bytes],
    compressor: zstandard.ZstdCompressor,
    *,
    first: int = 0,
    count: int = 0,
    t_first: float = 0.0,
    t_last: float = 0.0,
    meta: dict[str, Any] | None = None,
) -> bytes:
    """One chunk's bytes: header, meta, and each of `parts` compressed on its own (so that a
    reader can decompress one part without the others)."""
    packed = [compressor.compress(p) for p in parts]
    sizes = {"raw": [len(p) for p in parts], "z": [len(p) for p in packed]}
    meta_bytes = json.dumps({**(meta or {}), **sizes}, separators=(",", ":")).encode()
    payload = b"".join(packed)
    head = _HEAD.pack(
        b"CK", kind.encode(), 0, first, count, t_first, t_last, len(meta_bytes), len(payload)
    )
    crc = zlib.crc32(payload, zlib.crc32(meta_bytes, zlib.crc32(head)))
    return b"".join((head, _CRC.pack(crc), meta_bytes, payload))


def read_chunk(f: BinaryIO, offset: int, file_size: int) -> tuple[ChunkInfo, bytes]:
    """The chunk at `offset`, checked; returns its info and its still-compressed payload."""
    if offset + CHUNK_HEAD_SIZE > file_size:
        raise ChunkError(f"the file ends inside a chunk header at byte {offset}")
    f.seek(offset)
    raw_head = f.read(CHUNK_HEAD_SIZE)
    if len(raw_head) < CHUNK_HEAD_SIZE:
        raise ChunkError(f"the file ends inside a chunk header at byte {offset}")
    head = raw_head[: _HEAD.size]
    tag, kind_b, _flags, first, count, t_first, t_last, meta_len, payload_len = _HEAD.unpack(head)
    (crc,) = _CRC.unpack(raw_head[_HEAD.size :])
    kind = kind_b.decode("latin-1")
    if tag != b"CK" or kind not in KINDS:
        raise ChunkError(f"no chunk starts at byte {offset} (damaged data)")
    if meta_len > MAX_META or payload_len > MAX_PAYLOAD:
        raise ChunkError(f"the chunk at byte {offset} declares an impossible size")
    size = CHUNK_HEAD_SIZE + meta_len + payload_len
    if offset + size > file_size:
        raise ChunkError(f"the last chunk, at byte {offset}, is incomplete")
    body = f.read(meta_len + payload_len)
    if len(body) < meta_len + payload_len:
        raise ChunkError(f"the last chunk, at byte {offset}, is incomplete")
    if zlib.crc32(body, zlib.crc32(head)) != crc:
        raise ChunkError(f"the chunk at byte {offset} is damaged (checksum mismatch)")
    try:
        meta = json.loads(body[:meta_len])
    except (ValueError, RecursionError) as exc:
        raise ChunkError(f"the chunk at byte {offset} has unreadable metadata") from exc
    if not isinstance(meta, dict):
        raise ChunkError(f"the chunk at byte {offset} has unreadable metadata")
    info = ChunkInfo(kind, offset, first, count, t_first, t_last, meta, size)
    return info, body[meta_len:]


def decompress(info: ChunkInfo, payload: bytes, part: int = 0) -> bytes:
    """Part `part` of the chunk, decompressed; refuses sizes the writer never produces."""
    raw_sizes, z_sizes = info.meta.get("raw"), info.meta.get("z")
    if not (
        isinstance(raw_sizes, list)
        and isinstance(z_sizes, list)
        and len(raw_sizes) == len(z_sizes)
        and 0 <= part < len(z_sizes)
        and all(type(n) is int and 0 <= n <= MAX_RAW for n in raw_sizes)
        and all(type(n) is int and n >= 0 for n in z_sizes)
        and sum(z_sizes) == len(payload)
    ):
        raise ChunkError(f"the chunk at byte {info.offset} declares impossible sizes")
    start = sum(z_sizes[:part])
    data, raw_len = payload[start : start + z_sizes[part]], raw_sizes[part]
    try:
        if zstandard.frame_content_size(data) != raw_len:
            raise ChunkError(f"the chunk at byte {info.offset} is damaged (size mismatch)")
        raw = zstandard.ZstdDecompressor().decompress(data, max_output_size=raw_len)
    except zstandard.ZstdError as exc:
        raise ChunkError(f"the chunk at byte {info.offset} cannot be decompressed") from exc
    if len(raw) != raw_len:
        raise ChunkError(f"the chunk at byte {info.offset} is damaged (size mismatch)")
    return raw
