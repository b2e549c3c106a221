"""Atomic file output: the one way the project writes a file that someone may read while it is
being written or after a crash. A temp file beside the target is filled, given the usual umask
permissions and moved onto the target in one ``os.replace``; on error it is removed, so readers
see the old file or the new one, never half of one."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_output(target: Path, suffix: str = ".tmp") -> Iterator[str]:
    """Yield a temp path beside ``target``; on success it replaces ``target`` (with the usual
    umask permissions), on error it is removed, so readers never see a half-written file."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    os.close(fd)
    try:
        yield tmp
        publish(tmp, target)
    finally:
        Path(tmp).unlink(missing_ok=True)


def publish(tmp: str, target: Path) -> None:
    """Give a finished temp file the usual umask permissions and move it onto ``target``."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    os.replace(tmp, target)


def atomic_write_bytes(target: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``target`` atomically; returns the target path."""
    path = Path(target)
    with atomic_output(path) as tmp:
        Path(tmp).write_bytes(data)
    return path


def atomic_write_text(target: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``target`` atomically; returns the target path."""
    return atomic_write_bytes(target, text.encode("utf-8"))


def atomic_write_json(target: str | os.PathLike[str], obj: Any, **dumps: Any) -> Path:
    """Write ``obj`` as JSON (``json.dumps(obj, **dumps)`` plus a newline) atomically."""
    return atomic_write_text(target, json.dumps(obj, **dumps) + "\n")
