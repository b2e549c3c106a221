"""Checks of command-line values at the CLI edge, before any work starts: numbers finite and in
range (typer's ``min=``/``max=`` let NaN through, and infinity where there is no bound), output
folders and files writable. Each failure is a ConfigError naming the option."""

from __future__ import annotations

import math
import os
from pathlib import Path

from harness.errors import ConfigError


def number(
    value: float,
    option: str,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
) -> float:
    """``value`` when it is finite and within ``[low, high]`` (``(low, high]`` with
    ``low_open``); ConfigError naming ``option`` otherwise."""
    if not math.isfinite(value):
        raise ConfigError(f"{option} must be a finite number, got {value}")
    too_low = low is not None and (value <= low if low_open else value < low)
    too_high = high is not None and value > high
    if too_low or too_high:
        lo = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
        hi = "" if high is None else f"<= {high:g}"
        rule = " and ".join(r for r in (lo, hi) if r)
        raise ConfigError(f"{option} must be {rule}, got {value:g}")
    return value


def _nearest_existing(path: Path) -> Path:
    p = path.absolute()
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def writable_dir(path: Path, option: str) -> Path:
    """``path`` when it is a folder this process can write into, or can be created as one;
    ConfigError naming ``option`` otherwise (a file in the way, no write permission)."""
    if path.exists():
        if not path.is_dir():
            raise ConfigError(f"{option} {path} is a file, not a folder; pick a folder")
        if not os.access(path, os.W_OK | os.X_OK):
            raise ConfigError(f"{option} {path} is not writable; pick a folder you can write to")
        return path
    base = _nearest_existing(path)
    if not base.is_dir():
        raise ConfigError(
            f"{option} {path} cannot be created: {base} is a file, not a folder; pick another path"
        )
    if not os.access(base, os.W_OK | os.X_OK):
        raise ConfigError(
            f"{option} {path} cannot be created: {base} is not writable; pick a folder you can "
            "write to"
        )
    return path


def writable_file(path: Path, option: str) -> Path:
    """``path`` when it can be written as a file (its folder writable or creatable, and it is
    not a folder); ConfigError naming ``option`` otherwise."""
    if path.is_dir():
        raise ConfigError(f"{option} {path} is a folder; give a file name")
    if path.exists() and not os.access(path, os.W_OK):
        raise ConfigError(f"{option} {path} is not writable; pick another file")
    writable_dir(path.parent, option)
    return path
