"""Secrets never reach a recording: mask them in the config, and scrub them out of any text.

`redact(config)` masks the values of keys that name secrets (token, password, secret,
authorization, bearer, api_key, ... in any case, at any depth) and credentials inside URLs
(`user:pass@host`, `?token=...`). `Scrubber` removes the same shapes, plus every secret value
found in the config, from any text about to be written (activity lines, warnings, adapter
errors), so an error message that quotes a token does not leak it either.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "***"

_SECRET_KEY = re.compile(
    r"token|passw|pwd|secret|authori[sz]ation|bearer|api[_-]?key|apikey|private[_-]?key"
    r"|access[_-]?key|credential|cookie|session[_-]?id|signature",
    re.IGNORECASE,
)
_URL_USERINFO = re.compile(
    r"(?P<scheme>\b[a-z][a-z0-9+.-]*://)(?P<userinfo>[^\s/@\"'<>?#]+)@", re.I
)
_QUERY_SECRET = re.compile(
    r"(?P<key>[?&;](?:access_token|id_token|refresh_token|token|api_key|apikey|api-key|key"
    r"|password|passwd|pwd|secret|client_secret|auth|signature|sig|jwt|credential"
    r"|x-amz-signature|x-amz-security-token)=)(?P<value>[^&\s\"'#<>]+)",
    re.IGNORECASE,
)
_AUTH_SCHEME = re.compile(
    r"(?P<scheme>\b(?:bearer|basic|token)\s+)(?P<cred>[A-Za-z0-9._~+/=-]{8,})", re.IGNORECASE
)
_MIN_LITERAL = 4  # shorter secret values are not scrubbed from free text (too many false hits)


def is_secret_key(key: str) -> bool:
    """Whether a config key names a secret (token, password, Authorization, api_key, ...)."""
    return bool(_SECRET_KEY.search(key))


def _looks_like_credential(cred: str) -> bool:
    # "Bearer eyJ.x.y", "Basic dXNlcjpw": not plain words such as "basic authentication".
    return any(c.isdigit() or c in "._~+/=-" for c in cred) or not cred.isalpha()


def scrub_text(text: str) -> str:
    """`text` with URL credentials, secret query parameters and bearer/basic credentials masked."""
    if "://" in text:
        text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", text)
    if "=" in text:
        text = _QUERY_SECRET.sub(lambda m: f"{m['key']}{MASK}", text)

    def auth(m: re.Match[str]) -> str:
        return f"{m['scheme']}{MASK}" if _looks_like_credential(m["cred"]) else m[0]

    return _AUTH_SCHEME.sub(auth, text)


def redact(config: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of `config` with every secret value masked (see the module docstring)."""
    out = _redact(dict(config), secret=False)
    assert isinstance(out, dict)
    return out


def _redact(value: Any, *, secret: bool) -> Any:
    if isinstance(value, Mapping):
        named = str(value.get("name", value.get("key", "")))
        out: dict[str, Any] = {}
        for k, v in value.items():
            hide = secret or is_secret_key(str(k)) or (k == "value" and is_secret_key(named))
            out[str(k)] = _redact(v, secret=hide)
        return out
    if isinstance(value, list | tuple):
        return [_redact(v, secret=secret) for v in value]
    if secret and value is not None and value != "":
        return MASK
    if isinstance(value, str):
        return scrub_text(value)
    return value


def secret_values(config: Mapping[str, Any]) -> list[str]:
    """The secret strings in `config` (values of secret keys, URL credentials, query tokens)."""
    found: list[str] = []
    _collect(config, False, found)
    return sorted({s for s in found if len(s) >= _MIN_LITERAL}, key=len, reverse=True)


def _collect(value: Any, secret: bool, found: list[str]) -> None:
    if isinstance(value, Mapping):
        named = str(value.get("name", value.get("key", "")))
        for k, v in value.items():
            hide = secret or is_secret_key(str(k)) or (k == "value" and is_secret_key(named))
            _collect(v, hide, found)
    elif isinstance(value, list | tuple):
        for v in value:
            _collect(v, secret, found)
    elif isinstance(value, str | int | float) and not isinstance(value, bool):
        text = str(value)
        if secret:
            found.append(text)
        creds = (m["cred"] for m in _AUTH_SCHEME.finditer(text))
        found.extend(c for c in creds if _looks_like_credential(c))
        for m in _URL_USERINFO.finditer(text):
            user, colon, password = m["userinfo"].partition(":")
            found.append(m["userinfo"])
            found.append(password if colon else user)  # a user name alone is not a secret
        found.extend(m["value"] for m in _QUERY_SECRET.finditer(text))


class Scrubber:
    """Scrubs a string before it is written: known secret values, then the generic shapes.

    Strings repeat (metric names, phases, verdict words), so results are remembered.
    """

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._literals = sorted({s for s in secrets if len(s) >= _MIN_LITERAL}, key=len)[::-1]
        self._seen: dict[str, str] = {}

    def __call__(self, text: str) -> str:
        done = self._seen.get(text)
        if done is not None:
            return done
        out = text
        for literal in self._literals:
            if literal in out:
                out = out.replace(literal, MASK)
        out = scrub_text(out)
        if len(text) <= 64:  # names and words repeat; long texts (why, notes) rarely do
            if len(self._seen) > 10_000:
                self._seen.clear()
            self._seen[text] = out
        return out

    def tree(self, value: Any) -> Any:
        """A copy of a JSON-like value with every string (keys too) scrubbed."""
        if isinstance(value, Mapping):
            return {self(str(k)): self.tree(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.tree(v) for v in value]
        return self(value) if isinstance(value, str) else value
