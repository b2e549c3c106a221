"""The teacher dataset on disk: schemas, part files, the merge, the manifest, and the reader.

Layout of ``DIR`` (documented in docs/TEACHERS.md, versioned by FORMAT_VERSION):
``manifest.json``, ``scenes.parquet``, ``teachers.parquet``, ``pool.parquet``,
``agents.parquet``, ``lights.parquet``; while generating, ``parts/<name>.<table>.parquet`` plus a
``parts/<name>.done.json`` marker written last (a part without its marker is redone), and the
inputs ``episodes/`` and ``vocabulary.npz``. Every file is written to a temp file and renamed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from harness.errors import ConfigError
from harness.io import atomic_output
from harness.world.timing import HORIZON_STEPS

FORMAT_VERSION = 2  # 2 (issue 10): scenario fields, manoeuvre modes, the per-scene pool
PAST_STEPS = 16  # ego history poses (t - 1.5 .. t at 0.1 s)
TABLES = ("scenes", "teachers", "pool", "agents", "lights")
SUB_SCORES = ("nc", "dac", "ddc", "tlc", "ep", "ttc", "lk", "c", "hc", "ec", "pdms", "epdms")
PARTS_DIR = "parts"
MANIFEST = "manifest.json"


def _poses(n: int) -> pa.DataType:
    return pa.list_(pa.float64(), n * 3)


SCHEMAS: dict[str, pa.Schema] = {
    "scenes": pa.schema(
        [
            ("scene_id", pa.string()),
            ("town", pa.string()),
            ("route_id", pa.string()),
            ("frame", pa.int64()),
            ("time_s", pa.float64()),
            ("ego_x", pa.float64()),
            ("ego_y", pa.float64()),
            ("ego_yaw", pa.float64()),
            ("ego_speed", pa.float64()),
            ("ego_accel", pa.float64()),
            ("ego_yaw_rate", pa.float64()),
            ("command", pa.int8()),
            ("command_name", pa.string()),
            ("past_poses", _poses(PAST_STEPS)),
            ("past_speed", pa.list_(pa.float64(), PAST_STEPS)),
            ("expert_future", _poses(HORIZON_STEPS)),
            ("scenario_type", pa.string()),
            ("scenario_name", pa.string()),
            ("scenario_triggered", pa.bool_()),
            ("n_agents", pa.int32()),
            ("n_scenario_agents", pa.int32()),
            ("n_lights", pa.int32()),
            ("n_candidates", pa.int32()),
            ("n_vocabulary", pa.int32()),
            ("n_lattice", pa.int32()),
            ("n_expert", pa.int32()),
            ("n_passed", pa.int32()),
            ("n_teachers", pa.int32()),
            ("n_pool", pa.int32()),
            ("n_modes_available", pa.int32()),
            ("n_modes_kept", pa.int32()),
            ("coverage", pa.float64()),
            ("max_gap_m", pa.float64()),
        ]
    ),  # fmt: skip
    "teachers": pa.schema(
        [
            ("scene_id", pa.string()),
            ("rank", pa.int16()),
            ("source", pa.string()),
            ("poses", _poses(HORIZON_STEPS)),
            ("lane_mode", pa.string()),
            ("speed_mode", pa.string()),
        ]
        + [(name, pa.float64()) for name in SUB_SCORES]
        + [("progress_m", pa.float64()), ("reactive", pa.bool_())]
    ),  # fmt: skip
    "pool": pa.schema(
        [
            ("scene_id", pa.string()),
            ("source", pa.string()),
            ("vocab_index", pa.int32()),
            ("poses", _poses(HORIZON_STEPS)),
            ("lane_mode", pa.string()),
            ("speed_mode", pa.string()),
            ("epdms", pa.float64()),
            ("progress_m", pa.float64()),
        ]
    ),  # fmt: skip
    "agents": pa.schema(
        [
            ("scene_id", pa.string()),
            ("agent_id", pa.int64()),
            ("kind", pa.string()),
            ("t_index", pa.int8()),
            ("x", pa.float64()),
            ("y", pa.float64()),
            ("yaw", pa.float64()),
            ("length", pa.float64()),
            ("width", pa.float64()),
            ("speed", pa.float64()),
            ("scenario", pa.bool_()),
        ]
    ),  # fmt: skip
    "lights": pa.schema(
        [
            ("scene_id", pa.string()),
            ("light_id", pa.string()),
            ("light_index", pa.int32()),
            ("t_index", pa.int8()),
            ("state", pa.string()),
            ("stop_area", pa.string()),
        ]
    ),  # fmt: skip
}


def table_from_columns(name: str, columns: dict[str, Any]) -> pa.Table:
    """An Arrow table of ``name``'s schema from column values (lists or arrays; pose columns as
    (N, P, 3) arrays, flattened row-major; a pose column holding None rows is nullable)."""
    schema = SCHEMAS[name]
    arrays = []
    for f in schema:
        v = columns[f.name]
        if pa.types.is_fixed_size_list(f.type) and any(x is None for x in v):
            rows = [None if x is None else np.asarray(x, np.float64).reshape(-1) for x in v]
            arrays.append(pa.array(rows, type=f.type))
        elif pa.types.is_fixed_size_list(f.type):
            flat = np.asarray(v, dtype=np.float64).reshape(-1)
            arrays.append(pa.FixedSizeListArray.from_arrays(pa.array(flat), f.type.list_size))
        else:
            arrays.append(pa.array(v, type=f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def empty_table(name: str) -> pa.Table:
    """A table of ``name``'s schema with no rows."""
    return SCHEMAS[name].empty_table()


def write_table(table: pa.Table, path: Path) -> None:
    """One Parquet file, written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def write_json(obj: Any, path: Path) -> None:
    """One JSON file, written atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8") as fh:
        json.dump(obj, fh, indent=2, sort_keys=True)
        fh.write("\n")


def part_done(out_dir: Path, part: str) -> Path:
    """The completion marker of a part."""
    return out_dir / PARTS_DIR / f"{part}.done.json"


def write_part(
    out_dir: Path, part: str, tables: dict[str, pa.Table], stats: dict[str, Any]
) -> None:
    """Write a part's tables, then its marker (the part counts as finished only then)."""
    for name in TABLES:
        write_table(tables[name], out_dir / PARTS_DIR / f"{part}.{name}.parquet")
    write_json(stats, part_done(out_dir, part))


def finished_parts(out_dir: Path) -> dict[str, dict[str, Any]]:
    """Stats of every finished part, by part name."""
    parts = out_dir / PARTS_DIR
    if not parts.is_dir():
        return {}
    out: dict[str, dict[str, Any]] = {}
    for marker in sorted(parts.glob("*.done.json")):
        out[marker.name[: -len(".done.json")]] = json.loads(marker.read_text(encoding="utf-8"))
    return out


def merge_parts(out_dir: Path, parts: Iterable[str], manifest: dict[str, Any]) -> None:
    """Concatenate the named parts (in order) into the dataset tables, then write the
    manifest (last, so a dataset with a manifest is complete)."""
    names = list(parts)
    for table in TABLES:
        pieces = [pq.read_table(out_dir / PARTS_DIR / f"{p}.{table}.parquet") for p in names]
        merged = pa.concat_tables(pieces) if pieces else empty_table(table)
        write_table(merged.cast(SCHEMAS[table]), out_dir / f"{table}.parquet")
    write_json({"format_version": FORMAT_VERSION, **manifest}, out_dir / MANIFEST)


@dataclass(frozen=True, eq=False)
class TeacherDataset:
    """A loaded dataset: the manifest and one pandas frame per table. ``scenes.vocab_pool`` is
    not stored: the reader derives it from ``pool`` (each scene's pool entries drawn from the
    vocabulary, ascending: Drive-JEPA's per-scene index list), so the exports, the service
    parity and the pool checks all read the one stored pool."""

    manifest: dict[str, Any]
    scenes: pd.DataFrame
    teachers: pd.DataFrame
    pool: pd.DataFrame
    agents: pd.DataFrame
    lights: pd.DataFrame


def load_dataset(path: str | os.PathLike[str]) -> TeacherDataset:
    """Read a dataset directory; ConfigError when it is incomplete or of another version (an
    older one is refused with the gen-teachers command that regenerates it)."""
    d = Path(path)
    mf = d / MANIFEST
    if not mf.is_file():
        raise ConfigError(f"{d} has no {MANIFEST}; run gen-teachers to completion with --out {d}")
    manifest = json.loads(mf.read_text(encoding="utf-8"))
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ConfigError(
            f"{d} is teacher dataset format {manifest.get('format_version')}; this harness reads "
            f"format {FORMAT_VERSION}: regenerate it with {regenerate_command(manifest, d)}"
        )
    frames = {t: pq.read_table(d / f"{t}.parquet").to_pandas() for t in TABLES}
    frames["scenes"]["vocab_pool"] = vocab_pools(frames["scenes"].scene_id, frames["pool"])
    return TeacherDataset(manifest=manifest, **frames)


def vocab_pools(scene_ids: pd.Series, pool: pd.DataFrame) -> list[list[int]]:
    """Per scene of ``scene_ids`` the vocabulary indices of its ``pool`` rows (the entries with
    ``vocab_index >= 0``), ascending; an empty list for a scene without any."""
    vocab = pool[pool.vocab_index >= 0]
    by_scene: dict[str, list[int]] = {}
    for sid, v in zip(vocab.scene_id, vocab.vocab_index, strict=True):
        by_scene.setdefault(str(sid), []).append(int(v))
    return [sorted(by_scene.get(str(s), [])) for s in scene_ids]


def regenerate_command(manifest: dict[str, Any], old: Path) -> str:
    """The gen-teachers command that rebuilds a dataset like ``old`` in a new folder (its town
    and route file when the manifest names them)."""
    town = manifest.get("town") or "TOWN"
    routes = (manifest.get("routes") or {}).get("file")
    parts = ["harness gen-teachers", f"--town {town}"]
    if routes:
        parts.append(f"--routes {routes}")
    parts.append(f"--out {old.parent / (old.name + '_v' + str(FORMAT_VERSION))}")
    return " ".join(parts)


def poses_array(column: pd.Series, steps: int = HORIZON_STEPS) -> NDArray[np.float64]:
    """A pose column (flattened [x, y, yaw] lists) as an (N, steps, 3) array."""
    if len(column) == 0:
        return np.zeros((0, steps, 3))
    return np.stack(column.to_numpy()).astype(np.float64).reshape(len(column), steps, 3)
