"""Finding and loading towns by name: `$HARNESS_MAPS`, then `$CARLA_ROOT`, then the built-in towns.
Every `$HARNESS_MAPS` entry must be an existing folder (a stale or mistyped one is an error).

`load_town` caches each built Town per process, keyed by the resolved file's identity (path, size,
modification time), so a file edited on disk is reloaded and two names of one file share a Town.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ConfigError, MapLoadError, UnknownTownError
from harness.maps.builtin import builtin_names, builtin_xodr
from harness.maps.town import Town

ORIGIN_HARNESS_MAPS = "HARNESS_MAPS"
ORIGIN_CARLA_ROOT = "CARLA_ROOT"
ORIGIN_BUILTIN = "builtin"
CARLA_OPENDRIVE_SUBDIR = Path("CarlaUE4/Content/Carla/Maps/OpenDrive")
XODR_SUFFIX = ".xodr"


@dataclass(frozen=True)
class TownFile:
    """Where a town name resolves to: `origin` (HARNESS_MAPS | CARLA_ROOT | builtin) and the .xodr
    `path` (None for built-in towns, whose text is generated)."""

    name: str
    origin: str
    path: Path | None


def _maps_folder(entry: str) -> Path:
    """One ``$HARNESS_MAPS`` entry as a folder; ConfigError when it is not one (a relative entry
    is resolved from the current folder, so it names that too)."""
    folder = Path(entry).expanduser()
    if folder.is_dir():
        return folder
    where = "" if folder.is_absolute() else f" (relative to the current folder {Path.cwd()})"
    raise ConfigError(
        f"$HARNESS_MAPS names {entry}, which is not a folder{where}; set it to the folder(s) "
        "holding the .xodr files, ':'-separated, preferably as absolute paths"
    )


def search_locations() -> list[tuple[str, Path | None]]:
    """(origin, folder) pairs in search order, from the current environment; builtin has no folder.
    A ``$HARNESS_MAPS`` entry that is not a folder is a ConfigError, not silently skipped."""
    out: list[tuple[str, Path | None]] = []
    for entry in os.environ.get("HARNESS_MAPS", "").split(os.pathsep):
        if entry.strip():
            out.append((ORIGIN_HARNESS_MAPS, _maps_folder(entry.strip())))
    carla_root = os.environ.get("CARLA_ROOT", "").strip()
    if carla_root:
        out.append((ORIGIN_CARLA_ROOT, Path(carla_root).expanduser() / CARLA_OPENDRIVE_SUBDIR))
    out.append((ORIGIN_BUILTIN, None))
    return out


def _describe_locations(locations: list[tuple[str, Path | None]]) -> str:
    return "; ".join(
        f"${o} folder {f}" if f is not None else "built-in towns" for o, f in locations
    )


def available_towns() -> list[TownFile]:
    """Every resolvable town, in search order; the first occurrence of a name wins."""
    found: dict[str, TownFile] = {}
    for origin, folder in search_locations():
        names: list[tuple[str, Path | None]]
        if folder is None:
            names = [(n, None) for n in builtin_names()]
        elif folder.is_dir():
            names = [(p.stem, p) for p in sorted(folder.glob(f"*{XODR_SUFFIX}")) if p.is_file()]
        else:
            names = []
        for name, path in names:
            found.setdefault(name, TownFile(name=name, origin=origin, path=path))
    return list(found.values())


def resolve_town(name: str) -> TownFile:
    """The file a town name loads from; UnknownTownError lists every place searched and the names."""
    stem = name[: -len(XODR_SUFFIX)] if name.endswith(XODR_SUFFIX) else name
    locations = search_locations()
    for origin, folder in locations:
        if folder is None:
            if stem in builtin_names():
                return TownFile(name=stem, origin=origin, path=None)
        elif (folder / f"{stem}{XODR_SUFFIX}").is_file():
            return TownFile(name=stem, origin=origin, path=folder / f"{stem}{XODR_SUFFIX}")
    available = available_towns()
    for town in available:  # a unique case-insensitive match ("town05", "harness01") is accepted
        if town.name.lower() == stem.lower():
            return town
    names = ", ".join(t.name for t in available) or "none"
    raise UnknownTownError(
        f"unknown town {name!r}: no {stem}{XODR_SUFFIX} in {_describe_locations(locations)}. "
        f"Available towns: {names}. Put the .xodr file in a folder listed in $HARNESS_MAPS "
        "(':'-separated) or set $CARLA_ROOT to a CARLA install."
    )


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise MapLoadError(
            f"cannot read OpenDRIVE file {path} ({exc}); check the file exists, is readable and is UTF-8 XML"
        ) from exc


@functools.cache
def _load_cached(name: str, origin: str, path: str | None, size: int, mtime_ns: int) -> Town:
    """Build a Town once per file identity (size and mtime make an edited file a new entry)."""
    del size, mtime_ns  # part of the cache key only
    if path is None:
        return Town.from_xodr(name, builtin_xodr(name), origin, None)
    return Town.from_xodr(name, _read_text(Path(path)), origin, Path(path))


def load_town(name: str) -> Town:
    """Resolve and load a town by name, cached per process (see the module docstring)."""
    tf = resolve_town(name)
    if tf.path is None:
        return _load_cached(tf.name, tf.origin, None, 0, 0)
    resolved = tf.path.resolve()
    try:
        st = resolved.stat()
    except OSError as exc:
        raise MapLoadError(
            f"cannot read OpenDRIVE file {tf.path} ({exc}); check the file exists and is readable"
        ) from exc
    return _load_cached(tf.name, tf.origin, str(resolved), st.st_size, st.st_mtime_ns)


def clear_town_cache() -> None:
    """Forget every loaded Town (tests, long-lived services that swap map folders)."""
    _load_cached.cache_clear()
