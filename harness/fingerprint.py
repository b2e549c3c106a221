"""Run fingerprints: the settings a resumed run must share with the run it continues (eval's
``run.json``, gen-teachers' ``settings.json``). Files are fingerprinted by content, so a route
file or agent edited in place is told apart from the one the run started with."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from harness.errors import ConfigError

SHORT_VALUE_CHARS = 70  # longer values are elided in a difference message


def file_sha256(path: str | os.PathLike[str] | None) -> str:
    """SHA-256 of a file's content ('' when ``path`` is None or not a file, e.g. a registered
    agent name)."""
    if path is None:
        return ""
    p = Path(path).expanduser()
    if not p.is_file():
        return ""
    return hashlib.sha256(p.read_bytes()).hexdigest()


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    if len(text) <= SHORT_VALUE_CHARS:
        return text
    half = SHORT_VALUE_CHARS // 2 - 2
    return text[:half] + "..." + text[-half:]


def fingerprint_diff(stored: dict[str, Any], now: dict[str, Any], prefix: str = "") -> list[str]:
    """'key: old -> new' for every key whose value differs between two fingerprints (a key only
    one of them has counts as differing); nested settings are compared key by key
    ('selection.k: 8 -> 2')."""
    out: list[str] = []
    for k in sorted(set(now) | set(stored)):
        old, new = stored.get(k), now.get(k)
        if isinstance(old, dict) and isinstance(new, dict):
            out += fingerprint_diff(old, new, f"{prefix}{k}.")
        elif _normal(old) != _normal(new):
            out.append(f"{prefix}{k}: {_short(old)} -> {_short(new)}")
    return out


def _normal(value: Any) -> Any:
    """The value as it reads back from JSON (tuples become lists), for comparison."""
    return json.loads(json.dumps(value, default=str))


def check_settings_file(path: Path, now: dict[str, Any], holds: str) -> bool:
    """Whether the settings file ``path`` of a resumable output folder exists; when it does, it
    must read back and match ``now``, else a ConfigError says '<folder> holds <holds> with other
    settings (what differs)' (or that the file is unreadable) and what to do."""
    if not path.is_file():
        return False
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path} is unreadable ({exc}); pick another --out") from exc
    diff = fingerprint_diff(stored if isinstance(stored, dict) else {}, now)
    if diff:
        raise ConfigError(
            f"{path.parent} holds {holds} with other settings ({'; '.join(diff)}); "
            "resume with the same options or pick another --out"
        )
    return True
