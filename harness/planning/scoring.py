"""Fast proposal scoring of the expert: a light PDMS (NAVSIM v1) within the 10 ms plan budget.

Metrics per proposal, vectorised over proposals x time x actors with :mod:`harness.boxes`:
gates - no at-fault collision with the forecast actors (collisions while the ego stands still,
rear-end hits on an ego keeping its lane, and actors already overlapping now are not its fault),
drivable area (ego box corners along the path), opposite-lane use only when the planner cleared
it; weighted - ego progress (relative to the best gated proposal), TTC (the ego box pushed
TTC_S ahead at its speed against the actors then), comfort (PDMS bounds on longitudinal and
lateral acceleration, yaw rate), lane keeping (mean distance to the preferred lateral offset). The bounds and shared PDMS
constants come from :mod:`harness.world.comfort`, as the full PDMS/EPDMS scorer's
(``teachers.scoring``, the reference for teachers) do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from harness.boxes import box_corners, boxes_overlap, make_boxes
from harness.dynamics.vehicle import VehicleParams
from harness.geometry import to_local
from harness.maps.town import Town
from harness.planning.forecast import Forecast
from harness.planning.paths import PathKind, PathSet
from harness.planning.proposals import Proposals
from harness.world.comfort import (
    COMFORT_WEIGHT,
    EP_MIN_PROGRESS_M,
    EP_WEIGHT,
    MAX_ABS_LAT_ACCEL_MPS2,
    MAX_ABS_YAW_RATE_RADPS,
    MAX_LON_ACCEL_MPS2,
    MIN_LON_ACCEL_MPS2,
    STOPPED_SPEED_MPS,
    TTC_HORIZON_S,
    TTC_WEIGHT,
)
from harness.world.timing import POSE_DT_S


@dataclass(frozen=True)
class ScoreConfig:
    """Weights and margins of the proposal score."""

    length_margin_m: float = 0.4  # [m] added to the ego box length for collision checks
    width_margin_m: float = 0.2  # [m] added to its width
    stopped_mps: float = STOPPED_SPEED_MPS  # [m/s] an ego this slow is not at fault
    ttc_s: float = TTC_HORIZON_S  # [s] TTC look-ahead
    ttc_stride: int = 2  # [-] TTC is checked every this many steps
    rear_fraction: float = 0.25  # [-] actors behind -rear_fraction x length hit the ego from behind
    min_progress_m: float = EP_MIN_PROGRESS_M  # [m] below this best progress, EP = 1 for all
    lane_keep_scale_m: float = 3.0  # [m] mean offset error at which lane keeping scores 0
    w_progress: float = EP_WEIGHT  # [-] PDMS weights ...
    w_ttc: float = TTC_WEIGHT
    w_comfort: float = COMFORT_WEIGHT
    w_lane: float = 3.0  # [-] ... and the expert's own lane-keeping term


@dataclass(frozen=True, eq=False)
class Scores:
    """Per proposal (Q,): ``total`` score in [0, 1], ``gate`` (passed every gate),
    ``first_collision_s`` [s] (inf: none), ``drivable``, ``progress`` (EP), ``ttc``,
    ``comfort``, ``lane``; ``best`` the chosen proposal."""

    total: NDArray[np.float64]
    gate: NDArray[np.bool_]
    first_collision_s: NDArray[np.float64]
    drivable: NDArray[np.bool_]
    progress: NDArray[np.float64]
    ttc: NDArray[np.float64]
    comfort: NDArray[np.float64]
    lane: NDArray[np.float64]
    best: int


def drivable_ok(town: Town, paths: PathSet, ego: VehicleParams) -> NDArray[np.bool_]:
    """(P, K) whether the ego box centred on each path sample has all corners on drivable area."""
    c = box_corners(paths.xy[..., 0], paths.xy[..., 1], paths.yaw, ego.length_m, ego.width_m)
    return np.asarray(town.area.contains(c).all(axis=-1), dtype=bool)


def _drivable(props: Proposals, table: NDArray[np.bool_]) -> NDArray[np.bool_]:
    """Whether every path sample a proposal covers (after its first two) is drivable."""
    k_n = table.shape[1]
    k0 = np.clip(np.rint(props.station[:, 0]).astype(np.int64) + 2, 0, k_n - 1)
    k1 = np.clip(np.rint(props.station[:, -1]).astype(np.int64), 0, k_n - 1)
    ks = np.arange(k_n)
    covered = (ks[None, :] >= k0[:, None]) & (ks[None, :] <= k1[:, None])
    return np.asarray(~np.any(covered & ~table[props.path], axis=1), dtype=bool)


def _collisions(
    props: Proposals, paths: PathSet, fc: Forecast, ego: VehicleParams, cfg: ScoreConfig
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """First at-fault collision time [s] (Q,) (inf: none) and TTC score (Q,)."""
    q, t_n = props.n, props.poses.shape[1] - 1
    if fc.n == 0:
        return np.full(q, np.inf), np.ones(q)
    length, width = ego.length_m + cfg.length_margin_m, ego.width_m + cfg.width_margin_m
    pose = props.poses[:, 1:]
    ego_b = make_boxes(pose[..., 0], pose[..., 1], pose[..., 2], length, width)
    agents = fc.boxes[1 : t_n + 1]
    x0, y0, yaw0 = props.poses[0, 0]
    now = make_boxes(x0, y0, yaw0, length, width)
    fresh = np.asarray(~boxes_overlap(now[None], fc.boxes[0]), dtype=bool)  # (N,) not touching
    hit = boxes_overlap(ego_b[:, :, None, :], agents[None]) & fresh[None, None, :]
    moving = props.speed[:, 1:] > cfg.stopped_mps
    local = to_local(agents[None, ..., :2], pose[:, :, None, :2], pose[:, :, None, 2])
    behind = local[..., 0] < -cfg.rear_fraction * ego.length_m
    keeps_lane = paths.kind[props.path] <= PathKind.NUDGE_LEFT
    hit &= moving[..., None] & ~(behind & keeps_lane[:, None, None])
    any_t = hit.any(axis=2)
    first = np.where(any_t.any(axis=1), (np.argmax(any_t, axis=1) + 1) * POSE_DT_S, np.inf)
    # TTC: the ego box stretched ahead by speed x ttc_s against the actors ttc_s later
    steps = np.arange(0, t_n, cfg.ttc_stride)
    lead = min(int(round(cfg.ttc_s / POSE_DT_S)), t_n)
    ahead_idx = np.minimum(steps + lead, t_n - 1)
    v = props.speed[:, 1:][:, steps]
    reach = v * cfg.ttc_s
    p = pose[:, steps]
    cx = p[..., 0] + 0.5 * reach * np.cos(p[..., 2])
    cy = p[..., 1] + 0.5 * reach * np.sin(p[..., 2])
    stretched = make_boxes(cx, cy, p[..., 2], length + reach, width)
    t_hit = boxes_overlap(stretched[:, :, None, :], agents[ahead_idx][None]) & fresh[None, None]
    in_front = local[:, steps][..., 0] > 0.0
    t_hit &= in_front & (v > cfg.stopped_mps)[..., None]
    ttc = np.where(t_hit.any(axis=(1, 2)), 0.0, 1.0)
    return first, ttc


def _comfort(props: Proposals, paths: PathSet) -> NDArray[np.float64]:
    """1 where longitudinal / lateral acceleration and yaw rate stay within PDMS bounds."""
    acc = props.accel[:, 1:]
    v = props.speed[:, 1:]
    kappa = paths.sample(paths.curvature, props.path[:, None], props.station[:, 1:])
    lon_ok = (acc > MIN_LON_ACCEL_MPS2) & (acc < MAX_LON_ACCEL_MPS2)
    lat_ok = (np.abs(v * v * kappa) < MAX_ABS_LAT_ACCEL_MPS2) & (
        np.abs(v * kappa) < MAX_ABS_YAW_RATE_RADPS
    )
    return np.where(np.all(lon_ok & lat_ok, axis=1), 1.0, 0.0)


def score_proposals(
    props: Proposals, paths: PathSet, fc: Forecast, dac_table: NDArray[np.bool_],
    ego: VehicleParams, cfg: ScoreConfig, preferred_offset_m: float = 0.0,
    opposite_allowed: bool = False, blocked: NDArray[np.bool_] | None = None,
) -> Scores:  # fmt: skip
    """Score every proposal and pick the best (gated argmax; when every proposal fails a gate,
    the one colliding last, slowest first). ``blocked`` (P,) marks paths that end at an
    obstacle the ego has to go around: their proposals score no progress (they stay the
    fallback when no way around passes the gates)."""
    first, ttc = _collisions(props, paths, fc, ego, cfg)
    drivable = _drivable(props, dac_table)
    kinds = paths.kind[props.path]
    gate = np.isinf(first) & drivable & ((kinds != PathKind.OPPOSITE_LANE) | opposite_allowed)
    progress_m = props.station[:, -1] - props.station[:, 0]
    best_progress = float(progress_m[gate].max()) if gate.any() else 0.0
    ep = (np.clip(progress_m / best_progress, 0.0, 1.0) if best_progress > cfg.min_progress_m
          else np.ones(props.n))  # fmt: skip
    if blocked is not None:
        ep = np.where(blocked[props.path], 0.0, ep)
    comfort = _comfort(props, paths)
    err = np.abs(props.offset[:, 1:] - preferred_offset_m).mean(axis=1)
    lane = 1.0 - np.clip(err / cfg.lane_keep_scale_m, 0.0, 1.0)
    w = cfg.w_progress + cfg.w_ttc + cfg.w_comfort + cfg.w_lane
    weighted = (cfg.w_progress * ep + cfg.w_ttc * ttc + cfg.w_comfort * comfort
                + cfg.w_lane * lane) / w  # fmt: skip
    total = np.where(gate, weighted, 0.0)
    if gate.any():
        best = int(np.argmax(total))
    else:  # latest collision first, then the least distance driven
        best = int(np.lexsort((progress_m, -np.minimum(first, 1e9)))[0])
    return Scores(total, gate, first, drivable, ep, ttc, comfort, lane, best)
