"""Build the default trajectory vocabulary (``harness teachers vocabulary build``): the expert's
4 s futures from drives over every town at hand, topped up with an ego-frame lattice where the
drives are thin, clustered per (initial speed x manoeuvre) cell into ``size`` entries.

Steps (each resumable under ``out``): (1) per town, ``routes_per_town`` routes generated on the
lane graph (seeded) are driven by the expert (``teachers.drive``; recordings under
``out/episodes/<town>/`` are reused); (2) the futures at every 0.1 s in the ego frame are cached
per town (``out/futures/<town>.npz``); (3) every future gets a cell: initial speed bin
(``SPEED_EDGES_MPS``) x manoeuvre class (:class:`Manoeuvre`); cells with fewer than
``min_cell`` futures get lattice trajectories of that cell (:func:`ego_lattice`) until they hold
``min_cell`` (or the lattice has no more: a cell the comfort bounds rule out stays thin);
(4) stratified k-means: cell c gets centres in proportion to sqrt(rows), at least
``MIN_CENTRES_PER_CELL``, at most its distinct rows; (5) the vocabulary is written with its
provenance (towns, routes, seed, code version, histograms, hash).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from enum import IntEnum
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from harness.errors import ConfigError
from harness.io import atomic_output
from harness.world.timing import HORIZON_STEPS, POSE_DT_S
from teachers.vocabulary import (
    MAX_VOCABULARY_SIZE,
    Vocabulary,
    kmeans,
    save_vocabulary,
    trajectories_sha256,
)

log = logging.getLogger(__name__)

Float = NDArray[np.float64]

SPEED_EDGES_MPS = (0.0, 0.5, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0, 14.0, 16.0, 18.0, 20.0, 1e9)  # [m/s]
STATIONARY_M = 0.5  # a future moving less than this in 4 s stands still [m]
TURN_RAD = 0.9  # |heading change| at 4 s from which a future is a (junction) turn [rad]
CURVE_RAD = 0.25  # ... from which it is a curve [rad]
LANE_CHANGE_M = 1.5  # |lateral offset| at 4 s (heading change below CURVE_RAD) [m]
MIN_CELL_ROWS = 150  # cells with fewer futures are topped up from the lattice
MIN_CENTRES_PER_CELL = 8  # every non-empty cell gets at least this many entries
KMEANS_MAX_ROWS = 6000  # k-means per cell runs on at most this many rows (subsampled, seeded)
KMEANS_BUILD_ITERATIONS = 15  # Lloyd iterations per cell
LATTICE_ACCELS_MPS2 = (-4.0, -3.0, -2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0)  # [m/s2]
LATTICE_JERK_MPS3 = 3.0  # acceleration reached with this jerk from 0 [m/s3]
LATTICE_MAX_SPEED_MPS = 20.0  # lattice speeds are capped here [m/s]
LATTICE_MAX_LAT_ACCEL_MPS2 = 4.5  # lattice paths driven faster than this are dropped [m/s2]
LATTICE_TURN_RADII_M = (6.0, 9.0, 13.0, 20.0, 30.0, 45.0)  # turn / curve radii [m]
LATTICE_TURN_ANGLES_RAD = (0.4, 0.7, 1.2, 1.57)  # heading change of a turn [rad]
LATTICE_ENTRY_M = (0.0, 5.0, 12.0, 25.0)  # straight before a turn [m]
LATTICE_LANE_CHANGE_M = (0.5, 2.0, 3.5)  # lateral shift of a lane change / nudge [m]
LATTICE_LANE_CHANGE_LEN_M = (15.0, 30.0, 50.0, 70.0)  # along-track length of the shift [m]
LATTICE_SPEED_STEP_MPS = 0.25  # initial speeds of the lattice pool, 0 .. 20 m/s [m/s]
PATH_STEP_M = 0.05  # arc-length sampling of lattice paths [m]


class Manoeuvre(IntEnum):
    """Geometric class of a 4 s future in the ego frame (y to the right, yaw clockwise)."""

    STATIONARY = 0
    STRAIGHT = 1
    LANE_CHANGE_LEFT = 2
    LANE_CHANGE_RIGHT = 3
    CURVE_LEFT = 4
    CURVE_RIGHT = 5
    TURN_LEFT = 6
    TURN_RIGHT = 7


@dataclass(frozen=True)
class BuildConfig:
    """A vocabulary build: where (``out``: episodes, futures, the result), from which towns
    (None: every town at hand), how many generated routes of which length per town, the seed
    of routes / traffic / sampling / k-means, the size, and the driving processes."""

    out: Path
    towns: tuple[str, ...] | None = None
    routes_per_town: int = 6
    route_m: float = 400.0
    seed: int = 0
    size: int = MAX_VOCABULARY_SIZE
    min_cell: int = MIN_CELL_ROWS
    workers: int = 1
    agent: str = "expert"


def initial_speed_mps(traj: Float) -> Float:
    """Initial speed (N,) of local trajectories (N, 40, 3): first displacement / 0.1 s,
    extrapolated back to t = 0 with the second (constant acceleration)."""
    d1 = np.hypot(traj[:, 0, 0], traj[:, 0, 1])
    d2 = np.hypot(*(traj[:, 1, :2] - traj[:, 0, :2]).T)
    return np.maximum(1.5 * d1 - 0.5 * d2, 0.0) / POSE_DT_S


def speed_bin(speed_mps: Float) -> NDArray[np.int64]:
    """Index into SPEED_EDGES_MPS of each speed."""
    return np.clip(np.searchsorted(SPEED_EDGES_MPS, speed_mps, side="right") - 1, 0,
                   len(SPEED_EDGES_MPS) - 2).astype(np.int64)  # fmt: skip


def manoeuvre(traj: Float) -> NDArray[np.int64]:
    """Manoeuvre class (N,) of local trajectories (N, 40, 3) from their last pose."""
    end = traj[:, -1]
    length = np.hypot(*np.diff(np.concatenate([np.zeros((len(traj), 1, 2)), traj[..., :2]], 1),
                               axis=1).transpose(2, 0, 1)).sum(1)  # fmt: skip
    dyaw = end[:, 2]
    lat = end[:, 1]
    out = np.full(len(traj), Manoeuvre.STRAIGHT, dtype=np.int64)
    out[(np.abs(dyaw) < CURVE_RAD) & (lat <= -LANE_CHANGE_M)] = Manoeuvre.LANE_CHANGE_LEFT
    out[(np.abs(dyaw) < CURVE_RAD) & (lat >= LANE_CHANGE_M)] = Manoeuvre.LANE_CHANGE_RIGHT
    out[(dyaw <= -CURVE_RAD) & (dyaw > -TURN_RAD)] = Manoeuvre.CURVE_LEFT
    out[(dyaw >= CURVE_RAD) & (dyaw < TURN_RAD)] = Manoeuvre.CURVE_RIGHT
    out[dyaw <= -TURN_RAD] = Manoeuvre.TURN_LEFT
    out[dyaw >= TURN_RAD] = Manoeuvre.TURN_RIGHT
    out[length < STATIONARY_M] = Manoeuvre.STATIONARY
    return out


def cells(traj: Float) -> NDArray[np.int64]:
    """Cell index speed_bin * len(Manoeuvre) + manoeuvre of each trajectory."""
    return speed_bin(initial_speed_mps(traj)) * len(Manoeuvre) + manoeuvre(traj)


def histogram(traj: Float) -> dict[str, dict[str, int]]:
    """Counts by initial speed bin and by manoeuvre class (JSON-ready)."""
    sb = speed_bin(initial_speed_mps(traj))
    mc = manoeuvre(traj)
    edges = SPEED_EDGES_MPS
    names = [f"{edges[i]:g}-{edges[i + 1]:g}" if edges[i + 1] < 1e8 else f">={edges[i]:g}"
             for i in range(len(edges) - 1)]  # fmt: skip
    return {
        "initial_speed_mps": {n: int(np.count_nonzero(sb == i)) for i, n in enumerate(names)},
        "manoeuvre": {m.name.lower(): int(np.count_nonzero(mc == m)) for m in Manoeuvre},
    }


def _speed_profiles(v0: float) -> Float:
    """Speeds (A, 41) at t = 0 .. 4 s for each lattice acceleration, the acceleration reached
    from 0 with LATTICE_JERK_MPS3, speeds clamped to [0, LATTICE_MAX_SPEED_MPS]."""
    t = np.arange(HORIZON_STEPS + 1) * POSE_DT_S
    out = []
    for a in LATTICE_ACCELS_MPS2:
        acc = np.sign(a) * np.minimum(abs(a), LATTICE_JERK_MPS3 * t)
        v = v0 + np.concatenate([[0.0], np.cumsum(0.5 * (acc[1:] + acc[:-1]) * POSE_DT_S)])
        out.append(np.clip(v, 0.0, LATTICE_MAX_SPEED_MPS))
    return np.asarray(out)


def _path_from_curvature(kappa: Float) -> Float:
    """Path (S, 3) [x, y, yaw] sampled every PATH_STEP_M from the curvature (S,) [1/m]."""
    yaw = np.concatenate([[0.0], np.cumsum(kappa[:-1] * PATH_STEP_M)])
    x = np.concatenate([[0.0], np.cumsum(np.cos(yaw[:-1]) * PATH_STEP_M)])
    y = np.concatenate([[0.0], np.cumsum(np.sin(yaw[:-1]) * PATH_STEP_M)])
    return np.column_stack([x, y, yaw])


def lattice_paths(max_len_m: float) -> list[tuple[Float, Float]]:
    """Ego-frame paths (S, 3) with their curvature (S,), each at least ``max_len_m`` long:
    straight, lane changes left / right (cosine curvature doublet) and turns / curves left /
    right (straight entry, arc of a radius and angle, straight exit)."""
    n = int(np.ceil(max_len_m / PATH_STEP_M)) + 2
    s = np.arange(n) * PATH_STEP_M
    out = []
    zero = np.zeros(n)
    out.append((_path_from_curvature(zero), zero))
    for side in (-1.0, 1.0):  # -1: left (negative y), +1: right
        for shift in LATTICE_LANE_CHANGE_M:
            for length in LATTICE_LANE_CHANGE_LEN_M:
                # y = shift * (u - sin(2 pi u) / (2 pi)), u = s / length: curvature ~ y''
                u = np.clip(s / length, 0.0, 1.0)
                kappa = side * shift * 2 * np.pi / length**2 * np.sin(2 * np.pi * u)
                kappa[s > length] = 0.0
                out.append((_path_from_curvature(kappa), kappa))
        for radius in LATTICE_TURN_RADII_M:
            for angle in LATTICE_TURN_ANGLES_RAD:
                for entry in LATTICE_ENTRY_M:
                    arc = radius * angle
                    kappa = np.where((s >= entry) & (s < entry + arc), side / radius, 0.0)
                    out.append((_path_from_curvature(kappa), kappa))
    return out


def ego_lattice(v0_mps: float) -> Float:
    """Lattice trajectories (M, 40, 3) in the ego frame starting at ``v0_mps``: every path of
    :func:`lattice_paths` x every speed profile, dropping those whose lateral acceleration
    exceeds LATTICE_MAX_LAT_ACCEL_MPS2."""
    speeds = _speed_profiles(v0_mps)
    station = np.concatenate(
        [np.zeros((len(speeds), 1)),
         np.cumsum(0.5 * (speeds[:, 1:] + speeds[:, :-1]) * POSE_DT_S, axis=1)], axis=1,
    )  # fmt: skip
    paths = lattice_paths(float(station.max()) + 1.0)
    out = []
    for path, kappa in paths:
        idx = np.minimum(np.rint(station / PATH_STEP_M).astype(np.int64), len(path) - 1)
        lat_acc = np.abs(kappa[idx]) * speeds**2
        ok = lat_acc.max(axis=1) <= LATTICE_MAX_LAT_ACCEL_MPS2
        if ok.any():
            out.append(path[idx[ok, 1:]])
    return np.concatenate(out) if out else np.zeros((0, HORIZON_STEPS, 3))


@lru_cache(maxsize=2)
def lattice_pool(seed: int) -> Float:
    """The lattice over initial speeds 0 .. 20 m/s every LATTICE_SPEED_STEP_MPS, with a seeded
    jitter of the initial speed within each step (so top-ups are not all at the grid speeds)."""
    rng = np.random.default_rng(seed)
    step = LATTICE_SPEED_STEP_MPS
    grid = np.arange(0.0, LATTICE_MAX_SPEED_MPS + step / 2, step)
    parts = [ego_lattice(float(min(v + rng.uniform(0.0, step), LATTICE_MAX_SPEED_MPS)))
             for v in grid]  # fmt: skip
    pool = np.concatenate(parts)
    pool.setflags(write=False)  # cached per process (a pure function of the seed)
    return pool


def top_up(futures: Float, pool: Float, min_cell: int, seed: int) -> tuple[Float, dict[str, Any]]:
    """Lattice rows (from ``pool``) for every cell with fewer than ``min_cell`` futures, chosen
    at random (seeded) from the pool's rows of that cell; returns them and per-cell counts."""
    rng = np.random.default_rng(seed)
    have = np.bincount(cells(futures), minlength=len(Manoeuvre) * (len(SPEED_EDGES_MPS) - 1))
    pool_cells = cells(pool)
    added = []
    thin: dict[str, int] = {}
    for c in range(len(have)):
        need = min_cell - int(have[c])
        if need <= 0:
            continue
        rows = np.flatnonzero(pool_cells == c)
        take = rows if len(rows) <= need else rng.choice(rows, need, replace=False)
        added.append(pool[np.sort(take)])
        if int(have[c]) + len(take) < min_cell:
            thin[_cell_name(c)] = int(have[c]) + len(take)
    extra = np.concatenate(added) if added else np.zeros((0, HORIZON_STEPS, 3))
    return extra, {"lattice_rows": int(len(extra)), "cells_still_thin": thin}


def _cell_name(c: int) -> str:
    sb, m = divmod(c, len(Manoeuvre))
    lo, hi = SPEED_EDGES_MPS[sb], SPEED_EDGES_MPS[sb + 1]
    return f"{Manoeuvre(m).name.lower()}@{lo:g}-{hi:g}" if hi < 1e8 else f"{Manoeuvre(m).name.lower()}@>={lo:g}"


def allocate(counts: NDArray[np.int64], distinct: NDArray[np.int64], size: int) -> NDArray[np.int64]:
    """Centres per cell: proportional to sqrt(count), at least MIN_CENTRES_PER_CELL, at most the
    cell's distinct rows, summing to ``size`` (ConfigError when the rows cannot give it)."""
    cap = distinct.astype(np.int64)
    if int(cap.sum()) < size:
        raise ConfigError(
            f"only {int(cap.sum())} distinct trajectories for a vocabulary of {size}; drive more "
            "routes (--routes-per-town) or ask for a smaller --size"
        )
    alloc = np.minimum(cap, np.where(cap > 0, MIN_CENTRES_PER_CELL, 0))
    weight = np.sqrt(counts.astype(np.float64))
    while int(alloc.sum()) < size:
        room = alloc < cap
        left = size - int(alloc.sum())
        share = np.where(room, weight, 0.0)
        want = np.floor(left * share / share.sum()).astype(np.int64)
        if want.sum() == 0:  # hand out the remainder one by one, largest weight first
            for c in np.argsort(-share, kind="stable")[:left]:
                if room[c]:
                    want[c] = 1
        alloc = np.minimum(cap, alloc + want)
    while int(alloc.sum()) > size:  # the minimum per cell overshot: trim the largest cells
        alloc[int(np.argmax(alloc))] -= 1
    return alloc


def cluster(traj: Float, size: int, seed: int) -> tuple[Float, dict[str, int]]:
    """Stratified k-means of local trajectories (N, 40, 3) into ``size`` entries (see
    :func:`allocate`); per cell k-means on (x, y) with circular-mean yaw. Returns the entries
    (size, 40, 3), ordered by cell, and the entries per cell."""
    cell = cells(traj)
    ncell = len(Manoeuvre) * (len(SPEED_EDGES_MPS) - 1)
    counts = np.bincount(cell, minlength=ncell)
    flat = traj[..., :2].reshape(len(traj), -1)
    rng = np.random.default_rng(seed)
    rows_of: dict[int, NDArray[np.int64]] = {}
    distinct = np.zeros(ncell, dtype=np.int64)
    for c in np.flatnonzero(counts):  # the rows k-means will see, and how many differ
        rows = np.flatnonzero(cell == c)
        if len(rows) > KMEANS_MAX_ROWS:
            rows = np.sort(rng.choice(rows, KMEANS_MAX_ROWS, replace=False))
        rows_of[int(c)] = rows
        distinct[c] = len(np.unique(np.round(flat[rows], 2), axis=0))
    alloc = allocate(counts, distinct, size)
    out = []
    for c in np.flatnonzero(alloc):
        rows = rows_of[int(c)]
        k = int(alloc[c])
        centres, labels = kmeans(flat[rows], k, seed + int(c), KMEANS_BUILD_ITERATIONS)
        yaw = traj[rows, :, 2]
        s = np.zeros((k, HORIZON_STEPS))
        co = np.zeros((k, HORIZON_STEPS))
        np.add.at(s, labels, np.sin(yaw))
        np.add.at(co, labels, np.cos(yaw))
        out.append(np.concatenate([centres.reshape(k, HORIZON_STEPS, 2),
                                   np.arctan2(s, co)[..., None]], -1))  # fmt: skip
    entries = np.concatenate(out)
    per_cell = {_cell_name(int(c)): int(alloc[c]) for c in np.flatnonzero(alloc)}
    return entries, per_cell


def town_futures(town_name: str, config: BuildConfig) -> tuple[Float, dict[str, Any]]:
    """The expert's local futures (N, 40, 3) of one town's generated routes (driven once;
    recordings and the futures cache under ``config.out`` are reused) and where they came from."""
    from harness.maps import load_town
    from harness.routes.generate import generate_routes
    from teachers.drive import drive_routes
    from teachers.episode_scenes import load_episode
    from teachers.generate import expert_futures

    cache = config.out / "futures" / f"{town_name}.npz"
    town = load_town(town_name)
    routes = generate_routes(town, config.routes_per_town, config.route_m, seed=config.seed)
    info = {"town": town_name, "map_sha256": town.sha256, "routes": len(routes),
            "route_m": config.route_m, "seed": config.seed, "agent": config.agent}  # fmt: skip
    key = json.dumps(info, sort_keys=True)
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            if "key" not in z.files or str(z["key"]) != key:
                raise ConfigError(
                    f"{cache} was built with other settings; use another --out or "
                    "the same options"
                )
            f = np.asarray(z["futures"], dtype=np.float64)
        return f, {**info, "futures": int(len(f))}
    paths = drive_routes(town, routes, config.agent, config.out / "episodes" / town_name,
                         config.seed, config.workers)  # fmt: skip
    futures = expert_futures([load_episode(p, town) for p in paths])
    cache.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(cache) as tmp, open(tmp, "wb") as fh:
        np.savez(fh, futures=futures, key=np.array(key))
    return futures, {**info, "futures": int(len(futures))}


def build(config: BuildConfig) -> Vocabulary:
    """Run the whole build (resumable) and return the vocabulary with its provenance; also
    written to ``out/vocabulary.npz``."""
    from harness.maps.towns import available_towns
    from teachers.generate import code_version

    if not 1 <= config.size <= MAX_VOCABULARY_SIZE:
        raise ConfigError(f"--size must be in 1..{MAX_VOCABULARY_SIZE}, got {config.size}")
    towns = config.towns or tuple(t.name for t in available_towns())
    parts, sources = [], []
    for name in towns:
        f, info = town_futures(name, config)
        log.info("%s: %d futures", name, len(f))
        parts.append(f)
        sources.append(info)
    futures = np.concatenate(parts) if parts else np.zeros((0, HORIZON_STEPS, 3))
    pool = lattice_pool(config.seed)
    extra, topped = top_up(futures, pool, config.min_cell, config.seed)
    rows = np.concatenate([futures, extra])
    entries, per_cell = cluster(rows, config.size, config.seed)
    traj = entries.astype(np.float32).astype(np.float64)  # stored as float32
    prov: dict[str, Any] = {
        "method": "stratified k-means (cells: initial speed bin x manoeuvre class) of expert "
                  "futures topped up with an ego-frame lattice in thin cells",
        "towns": sources,
        "route_generation": {"routes_per_town": config.routes_per_town,
                             "route_m": config.route_m, "agent": config.agent},
        "seed": config.seed,
        "requested_size": config.size,
        "size": int(len(traj)),
        "futures": int(len(futures)),
        "min_cell": config.min_cell,
        "speed_edges_mps": [e for e in SPEED_EDGES_MPS if e < 1e8],
        "futures_histogram": histogram(futures) if len(futures) else {},
        "lattice": topped,
        "rows_histogram": histogram(rows),
        "entries_per_cell": per_cell,
        "entries_histogram": histogram(traj),
        "code_version": code_version(),
        "stride_s": POSE_DT_S,
        "frame": "ego box centre at t = 0: x forward, y right, yaw clockwise; t = 0.1 .. 4.0 s",
        "sha256": trajectories_sha256(traj),
    }
    vocab = Vocabulary(trajectories=traj, provenance=prov)
    save_vocabulary(vocab, config.out / "vocabulary.npz")
    return vocab
