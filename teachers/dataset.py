"""The teacher dataset on disk: schemas, part files, the merge, the manifest, and the reader.

Layout of ``DIR`` (documented in docs/TEACHERS.md, versioned by FORMAT_VERSION):
``manifest.json``, ``scenes.parquet``, ``teachers.parquet``, ``agents.parquet``,
``lights.parquet``; while generating, ``parts/<name>.<table>.parquet`` plus a
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

FORMAT_VERSION = 2  # 2: scenes.vocab_pool; the default 8,192-entry vocabulary
PAST_STEPS = 16  # ego history poses (t - 1.5 .. t at 0.1 s)
TABLES = ("scenes", "teachers", "agents", "lights")
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
            ("n_agents", pa.int32()),
            ("n_lights", pa.int32()),
            ("n_candidates", pa.int32()),
            ("n_vocabulary", pa.int32()),
            ("n_lattice", pa.int32()),
            ("n_expert", pa.int32()),
            ("n_passed", pa.int32()),
            ("n_teachers", pa.int32()),
            ("coverage", pa.float64()),
            ("max_gap_m", pa.float64()),
            ("vocab_pool", pa.list_(pa.int64())),
        ]
    ),  # fmt: skip
    "teachers": pa.schema(
        [
            ("scene_id", pa.string()),
            ("rank", pa.int16()),
            ("source", pa.string()),
            ("poses", _poses(HORIZON_STEPS)),
        ]
        + [(name, pa.float64()) for name in SUB_SCORES]
        + [("progress_m", pa.float64()), ("reactive", pa.bool_())]
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
    (N, P, 3) arrays, flattened row-major)."""
    schema = SCHEMAS[name]
    arrays = []
    for f in schema:
        v = columns[f.name]
        if pa.types.is_fixed_size_list(f.type):
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
    """Write a part's four tables, then its marker (the part counts as finished only then)."""
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
    """Concatenate the named parts (in order) into the four dataset tables, then write the
    manifest (last, so a dataset with a manifest is complete)."""
    names = list(parts)
    for table in TABLES:
        pieces = [pq.read_table(out_dir / PARTS_DIR / f"{p}.{table}.parquet") for p in names]
        merged = pa.concat_tables(pieces) if pieces else empty_table(table)
        write_table(merged.cast(SCHEMAS[table]), out_dir / f"{table}.parquet")
    write_json({"format_version": FORMAT_VERSION, **manifest}, out_dir / MANIFEST)


@dataclass(frozen=True, eq=False)
class TeacherDataset:
    """A loaded dataset: the manifest and one pandas frame per table."""

    manifest: dict[str, Any]
    scenes: pd.DataFrame
    teachers: pd.DataFrame
    agents: pd.DataFrame
    lights: pd.DataFrame


def load_dataset(path: str | os.PathLike[str]) -> TeacherDataset:
    """Read a dataset directory; ConfigError when it is incomplete or of another version."""
    d = Path(path)
    mf = d / MANIFEST
    if not mf.is_file():
        raise ConfigError(f"{d} has no {MANIFEST}; run gen-teachers to completion with --out {d}")
    manifest = json.loads(mf.read_text(encoding="utf-8"))
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ConfigError(
            f"{d} is teacher dataset format {manifest.get('format_version')}; this harness reads "
            f"{FORMAT_VERSION}: regenerate it"
        )
    frames = {t: pq.read_table(d / f"{t}.parquet").to_pandas() for t in TABLES}
    return TeacherDataset(manifest=manifest, **frames)


def poses_array(column: pd.Series, steps: int = HORIZON_STEPS) -> NDArray[np.float64]:
    """A pose column (flattened [x, y, yaw] lists) as an (N, steps, 3) array."""
    if len(column) == 0:
        return np.zeros((0, steps, 3))
    return np.stack(column.to_numpy()).astype(np.float64).reshape(len(column), steps, 3)
