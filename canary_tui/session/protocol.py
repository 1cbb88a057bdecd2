"""The daemon's wire protocol: versioned JSON messages, one per line, with a size limit.

client -> daemon: hello {protocol, mode: attach|status}, action {id, verb, expected_version,
reason}, stop {then: hold|kill}, bye.
daemon -> client: welcome {protocol, you, role, read_only}, frame {frame}, result {id, outcome},
status {...}, error {message}.
"""

from __future__ import annotations

import json
from typing import Any

PROTOCOL_VERSION = 1
MAX_MESSAGE_BYTES = 4 * 1024 * 1024  # a full frame with 10 min of history is ~200 KB
HELLO_TIMEOUT_S = 5.0


class ProtocolError(Exception):
    """A message that breaks the protocol; the connection is dropped with this reason."""


def encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), allow_nan=False).encode() + b"\n"


def decode(line: bytes) -> dict[str, Any]:
    try:
        message = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"not a JSON message: {exc}") from exc
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ProtocolError("a message must be a JSON object with a 'type'")
    return message
