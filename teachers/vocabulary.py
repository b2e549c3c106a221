"""Trajectory vocabulary: k-means cluster centres of the expert's 4 s futures (Drive-JEPA's MTD
vocabulary), stored in the ego frame at t = 0 and placed in a scene by the ego pose.

Local frame: x along the ego heading, y the heading rotated +90 deg (CARLA's right, see
:func:`harness.geometry.to_local`), yaw relative to the ego's; 40 poses at t = 0.1 .. 4.0 s.
The artifact is one compressed ``.npz`` (float32 trajectories) with its provenance as JSON
inside, written atomically. Vocabularies shipped with the package are *registered* by id
(:data:`REGISTERED`); :data:`DEFAULT_VOCABULARY_ID` is the one gen-teachers and the service use
unless told otherwise (built by ``harness teachers vocabulary build``, see
``teachers.vocabulary_build``).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from harness.errors import ConfigError
from harness.geometry import to_local, to_world, wrap_angle
from harness.io import atomic_output
from harness.world.timing import HORIZON_STEPS

VOCABULARY_FORMAT_VERSION = 2  # 2: float32 trajectories, compressed; 1 (float64) still read
READABLE_FORMATS = (1, 2)
DATA_DIR = Path(__file__).resolve().parent / "data"  # package data: registered vocabularies
DEFAULT_VOCABULARY_ID = "carla-8192-v1"
REGISTERED = {DEFAULT_VOCABULARY_ID: "vocabulary_carla_8192_v1.npz"}  # id -> file in DATA_DIR
MAX_VOCABULARY_SIZE = 8192  # Drive-JEPA's vocabulary size [trajectories]
KMEANS_ITERATIONS = 25  # Lloyd iterations after k-means++ seeding
KMEANS_CHUNK_ROWS = 2048  # rows per distance block (bounds memory at N x K)
KMEANS_PP_SAMPLE = 20000  # k-means++ seeding runs on at most this many futures

Float = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class Vocabulary:
    """``trajectories`` (V, 40, 3) [x, y, yaw] in the ego frame at t = 0 (box centre);
    ``provenance``: how it was built (sources, counts, seed, requested / actual size)."""

    trajectories: Float
    provenance: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        t = self.trajectories
        if t.ndim != 3 or t.shape[1:] != (HORIZON_STEPS, 3):
            raise ConfigError(f"vocabulary trajectories must be (V, 40, 3), got {t.shape}")

    @property
    def size(self) -> int:
        """V."""
        return int(self.trajectories.shape[0])

    @property
    def vocabulary_id(self) -> str | None:
        """The registered id this vocabulary was loaded by (None: a file or an in-memory one)."""
        v = self.provenance.get("id")
        return str(v) if v is not None else None

    @property
    def sha256(self) -> str:
        """Hash of the float32 trajectories (:func:`trajectories_sha256`)."""
        return trajectories_sha256(self.trajectories)

    def in_world(self, ego_pose: Float) -> Float:
        """The trajectories (V, 40, 3) placed at ``ego_pose`` [x, y, yaw] (world frame)."""
        xy = to_world(self.trajectories[..., :2], ego_pose[:2], ego_pose[2])
        yaw = wrap_angle(self.trajectories[..., 2] + ego_pose[2])
        return np.concatenate([xy, yaw[..., None]], axis=-1)


def trajectories_sha256(trajectories: Float) -> str:
    """SHA-256 of trajectories (V, 40, 3) as little-endian float32, C order: the identity of a
    vocabulary's content, whatever file it came from."""
    return hashlib.sha256(np.ascontiguousarray(trajectories, dtype="<f4").tobytes()).hexdigest()


def futures_to_local(futures: Float, origins: Float) -> Float:
    """World futures (N, 40, 3) -> ego frame of the matching origin poses (N, 3)."""
    xy = to_local(futures[..., :2], origins[:, None, :2], origins[:, None, 2])
    yaw = wrap_angle(futures[..., 2] - origins[:, None, 2])
    return np.concatenate([xy, yaw[..., None]], axis=-1)


def _sq_dist(x: Float, c: Float) -> Float:
    """Squared distances (N, K) between rows of x (N, D) and c (K, D)."""
    return np.maximum((x * x).sum(1)[:, None] - 2.0 * x @ c.T + (c * c).sum(1)[None], 0.0)


def _assign(x: Float, c: Float) -> tuple[NDArray[np.int64], Float]:
    """Nearest centre index and squared distance per row, in blocks of KMEANS_CHUNK_ROWS."""
    labels = np.empty(len(x), dtype=np.int64)
    d2 = np.empty(len(x))
    for lo in range(0, len(x), KMEANS_CHUNK_ROWS):
        d = _sq_dist(x[lo : lo + KMEANS_CHUNK_ROWS], c)
        labels[lo : lo + len(d)] = d.argmin(1)
        d2[lo : lo + len(d)] = d[np.arange(len(d)), labels[lo : lo + len(d)]]
    return labels, d2


def kmeans(
    x: Float, k: int, seed: int = 0, iterations: int = KMEANS_ITERATIONS
) -> tuple[Float, NDArray[np.int64]]:
    """Vectorised k-means (k-means++ seeding on a subsample, then Lloyd iterations) of rows x
    (N, D) into k <= N centres. Empty clusters are re-seeded at the worst-fitted row.
    Returns (centres (k, D), labels (N,))."""
    n = len(x)
    if not 1 <= k <= n:
        raise ConfigError(f"k-means needs 1 <= k <= N rows, got k={k}, N={n}")
    rng = np.random.default_rng(seed)
    pool = x if n <= KMEANS_PP_SAMPLE else x[rng.choice(n, KMEANS_PP_SAMPLE, replace=False)]
    centres = np.empty((k, x.shape[1]))
    centres[0] = pool[rng.integers(len(pool))]
    best = _sq_dist(pool, centres[:1])[:, 0]
    for j in range(1, k):
        total = best.sum()
        i = (
            int(rng.choice(len(pool), p=best / total))
            if total > 0
            else int(rng.integers(len(pool)))
        )
        centres[j] = pool[i]
        best = np.minimum(best, _sq_dist(pool, centres[j : j + 1])[:, 0])
    labels = np.zeros(n, dtype=np.int64)
    for _ in range(iterations):
        new_labels, d2 = _assign(x, centres)
        counts = np.bincount(new_labels, minlength=k)
        sums = np.zeros_like(centres)
        np.add.at(sums, new_labels, x)
        moved = centres.copy()
        filled = counts > 0
        moved[filled] = sums[filled] / counts[filled, None]
        empty = np.flatnonzero(~filled)
        if empty.size:
            worst = np.argsort(d2)[::-1][: empty.size]
            moved[empty] = x[worst]
        converged = np.array_equal(new_labels, labels) and empty.size == 0
        centres, labels = moved, new_labels
        if converged:
            break
    return centres, labels


def build_vocabulary(
    futures_local: Float, size: int, seed: int = 0, provenance: dict[str, Any] | None = None
) -> Vocabulary:
    """k-means over local futures (N, 40, 3) on their (x, y) poses; each centre's yaw is the
    circular mean of its members' yaws. The size is capped by the number of distinct futures
    (both numbers go to the provenance)."""
    if not 1 <= size <= MAX_VOCABULARY_SIZE:
        raise ConfigError(f"vocabulary size must be in 1..{MAX_VOCABULARY_SIZE}, got {size}")
    f = np.asarray(futures_local, dtype=np.float64)
    if f.ndim != 3 or f.shape[1:] != (HORIZON_STEPS, 3) or len(f) == 0:
        raise ConfigError(
            f"need expert futures (N >= 1, 40, 3) to build a vocabulary, got {f.shape}"
        )
    flat = f[..., :2].reshape(len(f), -1)
    distinct = int(len(np.unique(np.round(flat, 2), axis=0)))
    k = min(size, distinct)
    centres, labels = kmeans(flat, k, seed)
    s = np.zeros((k, HORIZON_STEPS))
    c = np.zeros((k, HORIZON_STEPS))
    np.add.at(s, labels, np.sin(f[..., 2]))
    np.add.at(c, labels, np.cos(f[..., 2]))
    traj = np.concatenate([centres.reshape(k, HORIZON_STEPS, 2), np.arctan2(s, c)[..., None]], -1)
    prov = {
        "format_version": VOCABULARY_FORMAT_VERSION,
        "method": "k-means (k-means++ seeding, Lloyd) on ego-frame (x, y) of 4 s expert futures",
        "requested_size": int(size),
        "size": int(k),
        "futures": int(len(f)),
        "distinct_futures": distinct,
        "seed": int(seed),
        **(provenance or {}),
    }
    return Vocabulary(trajectories=traj, provenance=prov)


def save_vocabulary(vocab: Vocabulary, path: str | os.PathLike[str]) -> Path:
    """Write the vocabulary (float32, compressed) and its provenance to one ``.npz`` (temp file
    + os.replace); the provenance gets the format version."""
    out = Path(path)
    prov = {**vocab.provenance, "format_version": VOCABULARY_FORMAT_VERSION}
    with atomic_output(out) as tmp, open(tmp, "wb") as fh:
        np.savez_compressed(
            fh,
            trajectories=vocab.trajectories.astype(np.float32),
            provenance=np.array(json.dumps(prov, sort_keys=True)),
        )
    return out


def load_vocabulary(path: str | os.PathLike[str]) -> Vocabulary:
    """Read a vocabulary written by :func:`save_vocabulary`; ConfigError for other files."""
    p = Path(path)
    try:
        with np.load(p, allow_pickle=False) as z:
            traj = np.asarray(z["trajectories"], dtype=np.float64)
            prov = json.loads(str(z["provenance"]))
    except (OSError, KeyError, ValueError) as exc:
        raise ConfigError(
            f"{p} is not a trajectory vocabulary ({exc}); build one with "
            "`harness teachers vocabulary build`"
        ) from exc
    if prov.get("format_version") not in READABLE_FORMATS:
        raise ConfigError(
            f"{p} has vocabulary format {prov.get('format_version')}, this harness reads "
            f"{READABLE_FORMATS}; rebuild it with `harness teachers vocabulary build`"
        )
    return Vocabulary(trajectories=traj, provenance=prov)


def registered_ids() -> tuple[str, ...]:
    """Ids a request or an option may name."""
    return tuple(sorted(REGISTERED))


@lru_cache(maxsize=4)
def load_registered(vocabulary_id: str) -> Vocabulary:
    """A registered vocabulary by id (cached per process; ConfigError for an unknown id or a
    file whose content does not match its recorded hash)."""
    if vocabulary_id not in REGISTERED:
        raise ConfigError(
            f"unknown vocabulary {vocabulary_id!r}; registered: {', '.join(registered_ids())}"
        )
    path = DATA_DIR / REGISTERED[vocabulary_id]
    if not path.is_file():
        raise ConfigError(f"{path} is missing from the installation; reinstall the package")
    vocab = load_vocabulary(path)
    vocab.trajectories.setflags(write=False)  # shared by every caller of this process
    digest = vocab.sha256
    if vocab.provenance.get("sha256") not in (None, digest):
        raise ConfigError(f"{path} does not match its recorded hash; reinstall the package")
    return Vocabulary(vocab.trajectories, {**vocab.provenance, "id": vocabulary_id,
                                           "sha256": digest})  # fmt: skip


def default_vocabulary() -> Vocabulary:
    """The vocabulary used when none is named (:data:`DEFAULT_VOCABULARY_ID`)."""
    return load_registered(DEFAULT_VOCABULARY_ID)


def resolve_vocabulary(source: str | os.PathLike[str]) -> Vocabulary:
    """A registered id, or else a vocabulary file (for the command line only: a service
    request may name ids alone)."""
    if str(source) in REGISTERED:
        return load_registered(str(source))
    if not Path(source).is_file():
        raise ConfigError(
            f"{source} is neither a registered vocabulary ({', '.join(registered_ids())}) nor a "
            "file; pass one of those ids or a .npz built by `harness teachers vocabulary build`"
        )
    return load_vocabulary(source)
