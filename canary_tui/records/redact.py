"""Secrets never reach a recording: mask them in the config, and scrub them out of any text.

`redact(config)` masks the values of keys that name secrets (token, password, secret,
authorization, bearer, api_key, ... in any case, at any depth), credentials inside URLs
(`user:pass@host`, `?token=...`), and the path and query of webhook URLs (Slack and others
put the secret in the path). `Scrubber` removes the same shapes, plus every secret value
found in the config, from any text about to be written (activity lines, warnings, adapter
errors), so an error message that quotes a token does not leak it either.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

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
_HOOK_KEY = re.compile(r"hook|callback|notify[_-]?url", re.IGNORECASE)
_MIN_SEGMENT = 8  # a URL's path segment or query value shorter than this is not scrubbed
_MIN_LITERAL = 4  # shorter secret values are not scrubbed from free text (too many false hits)


def mask_url(url: str) -> str:
    """A URL whose path and query may be secret, with only scheme and host kept."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    if not parts.scheme or not parts.hostname:
        return MASK
    port = f":{parts.port}" if _port(parts.netloc) else ""
    return f"{parts.scheme}://{parts.hostname}{port}/{MASK}"


def _port(netloc: str) -> bool:
    host = netloc.rpartition("@")[2]
    return ":" in host.rpartition("]")[2]


def url_secrets(url: str) -> list[str]:
    """The parts of a URL that may be secret, as they could appear in any text: the whole
    URL, its user info and password, its path and query, and each path segment and query
    value (the short, common ones excepted), raw and percent-decoded."""
    found = {url}
    try:
        parts = urlsplit(url)
    except ValueError:
        return [url]
    whole = [parts.path, parts.query, parts.fragment, parts.netloc.rpartition("@")[0]]
    whole.append(parts.password or "")
    segments = parts.path.split("/") + [kv.partition("=")[2] for kv in parts.query.split("&")]
    common = {"/services", "/hooks", "/api", "/webhook", "/webhooks", "/"}
    pieces = [p for p in whole if len(p) >= _MIN_LITERAL and p not in common]
    pieces += [p for p in segments if len(p) >= _MIN_SEGMENT and p.lower() != "webhooks"]
    for piece in pieces:
        found.update({piece, unquote(piece)})
    return sorted(found, key=len, reverse=True)


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
    out = _redact(dict(config), secret=False, hook=False)
    return out if isinstance(out, dict) else {}


def _redact(value: Any, *, secret: bool, hook: bool) -> Any:
    if isinstance(value, Mapping):
        named = str(value.get("name", value.get("key", "")))
        out: dict[str, Any] = {}
        for k, v in value.items():
            hide = secret or is_secret_key(str(k)) or (k == "value" and is_secret_key(named))
            out[str(k)] = _redact(v, secret=hide, hook=hook or bool(_HOOK_KEY.search(str(k))))
        return out
    if isinstance(value, list | tuple):
        return [_redact(v, secret=secret, hook=hook) for v in value]
    if secret and value is not None and value != "":
        return MASK
    if isinstance(value, str):
        if hook and "://" in value:
            return mask_url(value)
        return scrub_text(value)
    return value


def secret_values(config: Mapping[str, Any]) -> list[str]:
    """The secret strings in `config` (values of secret keys, URL credentials, query tokens)."""
    found: list[str] = []
    _collect(config, False, False, found)
    return sorted({s for s in found if len(s) >= _MIN_LITERAL}, key=len, reverse=True)


def _collect(value: Any, secret: bool, hook: bool, found: list[str]) -> None:
    if isinstance(value, Mapping):
        named = str(value.get("name", value.get("key", "")))
        for k, v in value.items():
            hide = secret or is_secret_key(str(k)) or (k == "value" and is_secret_key(named))
            _collect(v, hide, hook or bool(_HOOK_KEY.search(str(k))), found)
    elif isinstance(value, list | tuple):
        for v in value:
            _collect(v, secret, hook, found)
    elif isinstance(value, str | int | float) and not isinstance(value, bool):
        text = str(value)
        if secret:
            found.append(text)
        if hook and "://" in text:
            found.extend(url_secrets(text))
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
