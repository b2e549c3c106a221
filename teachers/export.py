"""``harness teachers export DIR --format F OUT``: a teacher dataset's vocabulary and per-scene
pools in the layout another trainer reads.

- ``drivejepa``: what Drive-JEPA's Bench2Drive training code loads (``compute_b2d_score.py``):
  ``OUT/<N>.npy``, float32 (N, 40, 3), poses t = 0.1 .. 4.0 s in the ego **rear-axle** frame at
  t = 0 (x forward, y **left**, yaw counter-clockwise, as nuPlan / NAVSIM), and per scene
  ``OUT/b2d_anchors_scores_index_<N>/<scene_id>.npy``, int64 (P,), the vocabulary entries that
  passed (EPDMS >= threshold, at most 256, random, seeded).
- ``numpy``: ``OUT/vocabulary.npy`` float32 (N, 40, 3) in the harness ego frame (box centre at
  t = 0, x forward, y right, yaw clockwise), ``OUT/pools.npz`` with ``scene_id`` (S,) str,
  ``offsets`` (S + 1,) int64 and ``index`` (offsets[-1],) int64: scene s's pool is
  ``index[offsets[s]:offsets[s + 1]]``.
- ``parquet``: ``OUT/vocabulary.parquet`` (``entry`` int32, ``poses`` list<float32>[120], the
  harness ego frame) and ``OUT/pools.parquet`` (``scene_id`` str, ``vocab_index`` list<int64>).

Every format also writes ``OUT/export.json``: format, N, the vocabulary id / hash / provenance,
the dataset's manifest summary and the frame. Files are written atomically.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from numpy.typing import NDArray

from harness.errors import ConfigError
from harness.geometry import wrap_angle
from harness.io import atomic_output, atomic_write_json
from harness.world.timing import HORIZON_STEPS
from teachers.dataset import load_dataset
from teachers.vocabulary import Vocabulary, load_registered, load_vocabulary

FORMATS = ("drivejepa", "numpy", "parquet")
DRIVEJEPA_INDEX_DIR = "b2d_anchors_scores_index_{n}"  # Drive-JEPA's per-scene index folder
EXPORT_INFO = "export.json"

Float = NDArray[np.float64]
Int = NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class Exported:
    """What an export holds, read back: ``vocabulary`` (N, 40, 3) in the harness ego frame and
    ``pools`` scene_id -> (P,) int64 entry indices, in the dataset's scene order."""

    vocabulary: Float
    pools: dict[str, Int]


def centre_to_rear_axle(traj: Float, rear_axle_to_center_m: float) -> Float:
    """Harness ego-frame poses (..., 3) (box centre at t = 0, y right, yaw clockwise) -> the rear
    axle's poses in the rear-axle frame at t = 0 with y left and yaw counter-clockwise."""
    d = rear_axle_to_center_m
    x = traj[..., 0] - d * np.cos(traj[..., 2]) + d
    y = traj[..., 1] - d * np.sin(traj[..., 2])
    return np.stack([x, -y, wrap_angle(-traj[..., 2])], axis=-1)


def rear_axle_to_centre(traj: Float, rear_axle_to_center_m: float) -> Float:
    """Inverse of :func:`centre_to_rear_axle`."""
    d = rear_axle_to_center_m
    yaw = wrap_angle(-traj[..., 2])
    y = -traj[..., 1]
    x = traj[..., 0] - d
    return np.stack([x + d * np.cos(yaw), y + d * np.sin(yaw), yaw], axis=-1)


def dataset_vocabulary(manifest: dict[str, Any], dataset: Path) -> Vocabulary:
    """The vocabulary a dataset was scored with: its registered id, else its file in the
    dataset folder; the hash must match the manifest's."""
    info = manifest.get("vocabulary") or {}
    if info.get("id"):
        vocab = load_registered(str(info["id"]))
    elif info.get("path"):
        vocab = load_vocabulary(dataset / str(info["path"]))
    else:
        raise ConfigError(f"{dataset}'s manifest names no vocabulary; regenerate it")
    if info.get("sha256") not in (None, vocab.sha256):
        raise ConfigError(
            f"{dataset} was scored with vocabulary {info.get('sha256')}, this one is "
            f"{vocab.sha256}; use the harness version that made the dataset"
        )
    return vocab


def _rear_axle_m() -> float:
    from harness.dynamics.vehicle import LINCOLN_MKZ_2017

    return float(LINCOLN_MKZ_2017.rear_axle_to_center_m)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_output(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, array, allow_pickle=False)


def _write_parquet(path: Path, table: pa.Table) -> None:
    with atomic_output(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def export_dataset(dataset: str | os.PathLike[str], fmt: str, out: str | os.PathLike[str]) -> dict[str, Any]:
    """Write the export of ``dataset`` in ``fmt`` under ``out``; returns the export.json dict."""
    if fmt not in FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    d, o = Path(dataset), Path(out)
    ds = load_dataset(d)
    vocab = dataset_vocabulary(ds.manifest, d)
    n = vocab.size
    ids = [str(s) for s in ds.scenes.scene_id]
    pools = [np.asarray(p, dtype=np.int64) for p in ds.scenes.vocab_pool]
    for sid, p in zip(ids, pools, strict=True):
        if p.size and (p.min() < 0 or p.max() >= n):
            raise ConfigError(f"scene {sid} of {d} has pool entries outside 0..{n - 1}")
    o.mkdir(parents=True, exist_ok=True)
    d_rear = _rear_axle_m()
    if fmt == "drivejepa":
        _save_npy(o / f"{n}.npy", centre_to_rear_axle(vocab.trajectories, d_rear).astype(np.float32))
        folder = o / DRIVEJEPA_INDEX_DIR.format(n=n)
        folder.mkdir(exist_ok=True)
        for sid, p in zip(ids, pools, strict=True):
            _save_npy(folder / f"{sid}.npy", p)
    elif fmt == "numpy":
        _save_npy(o / "vocabulary.npy", vocab.trajectories.astype(np.float32))
        offsets = np.concatenate([[0], np.cumsum([len(p) for p in pools])]).astype(np.int64)
        index = np.concatenate(pools) if pools else np.zeros(0, np.int64)
        with atomic_output(o / "pools.npz") as tmp, open(tmp, "wb") as fh:
            np.savez(fh, scene_id=np.asarray(ids, dtype=str), offsets=offsets, index=index)
    else:
        flat = vocab.trajectories.astype(np.float32).reshape(-1)
        poses = pa.FixedSizeListArray.from_arrays(pa.array(flat), HORIZON_STEPS * 3)
        _write_parquet(o / "vocabulary.parquet", pa.table(
            {"entry": pa.array(np.arange(n, dtype=np.int32)), "poses": poses}))  # fmt: skip
        _write_parquet(o / "pools.parquet", pa.table({
            "scene_id": pa.array(ids, pa.string()),
            "vocab_index": pa.array([p.tolist() for p in pools], pa.list_(pa.int64())),
        }))  # fmt: skip
    m = ds.manifest
    info = {
        "format": fmt,
        "size": n,
        "scenes": len(ids),
        "pool_entries": int(sum(len(p) for p in pools)),
        "vocabulary": {"id": vocab.vocabulary_id, "sha256": vocab.sha256},
        "dataset": {"path": str(d.resolve()), "town": m.get("town"),
                    "format_version": m.get("format_version"), "threshold": m.get("threshold")},
        "frame": ("drivejepa: rear axle at t = 0, x forward, y left, yaw counter-clockwise; "
                  f"rear axle {d_rear} m behind the box centre" if fmt == "drivejepa" else
                  "harness ego frame: box centre at t = 0, x forward, y right, yaw clockwise"),
        "dt_s": 0.1,
        "poses": "t = 0.1 .. 4.0 s, [x, y, yaw]",
    }  # fmt: skip
    atomic_write_json(o / EXPORT_INFO, info, indent=2)
    return info


def read_export(out: str | os.PathLike[str]) -> Exported:
    """Read an export back (any format) into the harness frame: the round trip of
    :func:`export_dataset`."""
    import json

    o = Path(out)
    info_path = o / EXPORT_INFO
    if not info_path.is_file():
        raise ConfigError(f"{o} has no {EXPORT_INFO}; write it with `harness teachers export`")
    info = json.loads(info_path.read_text(encoding="utf-8"))
    fmt, n = info["format"], int(info["size"])
    if fmt == "drivejepa":
        vocab = rear_axle_to_centre(np.load(o / f"{n}.npy").astype(np.float64), _rear_axle_m())
        folder = o / DRIVEJEPA_INDEX_DIR.format(n=n)
        pools = {p.stem: np.load(p) for p in sorted(folder.glob("*.npy"))}
    elif fmt == "numpy":
        vocab = np.load(o / "vocabulary.npy").astype(np.float64)
        with np.load(o / "pools.npz") as z:
            off, idx = z["offsets"], z["index"]
            pools = {str(s): idx[off[i] : off[i + 1]] for i, s in enumerate(z["scene_id"])}
    else:
        t = pq.read_table(o / "vocabulary.parquet")
        vocab = np.asarray(t.column("poses").combine_chunks().flatten(), np.float64).reshape(
            n, HORIZON_STEPS, 3
        )
        p = pq.read_table(o / "pools.parquet").to_pydict()
        pools = {s: np.asarray(v, np.int64) for s, v in zip(p["scene_id"], p["vocab_index"], strict=True)}
    return Exported(vocabulary=vocab, pools=pools)
