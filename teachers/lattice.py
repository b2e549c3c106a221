"""Route-aligned lattice candidates: lane-graph paths x lateral offsets x speed profiles.

Paths (world polylines starting at the ego): the route centerline, the same-direction neighbour
lanes of the ego's lane (continued along the route where they can be) and every other branch at
the route's next junction. Each path is offset laterally (a smooth blend from the ego's current
offset to the target over LATERAL_BLEND_S) and driven with every speed profile: IDM towards
target speeds (free road; leaders and lights are left to the scorer), constant accelerations
(floored at a stop) and comfortable stops at given distances, all started from the ego's current
speed and acceleration with a bounded jerk (see :func:`speed_profiles`). 40 poses at
0.1 .. 4.0 s, box centres, yaw from the direction of motion.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from harness.dynamics.lqr import NUM_POSES, PDM_DT_S
from harness.geometry import to_local, wrap_angle
from harness.maps.town import Town
from teachers.scene import Scene

Float = NDArray[np.float64]

PATH_LENGTH_M = 120.0  # every path is built at least this long (4 s at 30 m/s) [m]
LATERAL_BLEND_S = 3.0  # lateral offsets are reached after this long [s]
IDM_MAX_ACCEL_MPS2 = 1.5  # PDM-Closed's IDM a_max [m/s2]
IDM_COMFORT_DECEL_MPS2 = 3.0  # PDM-Closed's IDM b, also the IDM profile's decel floor [m/s2]
IDM_EXPONENT = 4.0  # IDM delta
MAX_STOP_DECEL_MPS2 = 4.0  # stops needing more than this deceleration are not proposed [m/s2]
PROFILE_JERK_MPS3 = 2.0  # acceleration changes at most this fast in a speed profile [m/s3]
MIN_MOTION_M = 0.05  # steps shorter than this take the path heading as yaw [m]
JUNCTION_SEARCH_LANES = 6  # route lanes searched for the next junction


@dataclass(frozen=True)
class LatticeConfig:
    """Lattice axes: lateral offsets [m] (positive = right of the path), IDM target speeds
    [m/s], constant accelerations [m/s2] and stop distances [m]."""

    lateral_offsets_m: tuple[float, ...] = (-0.6, 0.0, 0.6)
    idm_speeds_mps: tuple[float, ...] = (2.0, 4.0, 6.0, 8.0, 10.0, 12.0)
    accels_mps2: tuple[float, ...] = (-3.0, -1.5, -0.5, 0.0, 0.5, 1.0, 2.0)
    stop_distances_m: tuple[float, ...] = (6.0, 12.0, 24.0)
    neighbours: bool = True
    branches: bool = True


def polyline_arclength(xy: Float) -> Float:
    """Cumulative arc length (P,) [m] of a polyline (P, 2)."""
    return np.concatenate([[0.0], np.cumsum(np.hypot(*np.diff(xy, axis=0).T))])


def _lane_chain(town: Town, seq: list[int], start_xy: Float, prefer: set[int]) -> Float:
    """Polyline along lanes ``seq`` from the point of ``seq[0]`` nearest ``start_xy``, continued
    along successors (preferring lanes in ``prefer``, else the lowest index) to PATH_LENGTH_M."""
    lanes, graph = town.lanes, town.graph
    chain = list(seq)
    first = lanes.xy[lanes.lane_points(chain[0])]
    i0 = int(np.argmin(((first - start_xy) ** 2).sum(1)))
    parts = [first[i0:]]
    total = float(polyline_arclength(parts[0])[-1])
    for lane in chain[1:]:
        pts = lanes.xy[lanes.lane_points(lane)][1:]
        parts.append(pts)
        total += float(polyline_arclength(pts)[-1]) if len(pts) > 1 else 0.0
    while total < PATH_LENGTH_M:
        nxt = [v for v in graph.successors(chain[-1]) if v not in chain]
        if not nxt:
            break
        pick = min((v for v in nxt if v in prefer), default=min(nxt))
        chain.append(pick)
        pts = lanes.xy[lanes.lane_points(pick)][1:]
        parts.append(pts)
        total += float(lanes.length_m[pick])
    return np.concatenate(parts, axis=0)


def lattice_paths(
    town: Town, scene: Scene, route_lane_seq: NDArray[np.int64], config: LatticeConfig
) -> list[Float]:
    """World polylines (P_i, 2) of the route, neighbour-lane and junction-branch paths."""
    ego = scene.ego_pose
    rxy = scene.route_xy
    d2 = ((rxy - ego[:2]) ** 2).sum(1)
    paths = [rxy[int(np.argmin(d2)) :]]
    prefer = set(scene.route_lanes.tolist())
    lanes, graph = town.lanes, town.graph
    if config.neighbours:
        ego_lane = int(lanes.project(ego[None, :2], ego[None, 2]).lane[0])
        for nb in (int(graph.left[ego_lane]), int(graph.right[ego_lane])):
            if nb >= 0:
                paths.append(_lane_chain(town, [nb], ego[:2], prefer))
    seq = [int(v) for v in route_lane_seq[:JUNCTION_SEARCH_LANES]]
    if config.branches and len(seq) > 1:
        j = next((i for i in range(1, len(seq)) if lanes.junction_id[seq[i]] >= 0), None)
        if j is not None:
            for alt in graph.successors(seq[j - 1]):
                if alt != seq[j]:
                    paths.append(_lane_chain(town, seq[:j] + [int(alt)], ego[:2], prefer))
    return [p for p in paths if len(p) >= 2]


def speed_profiles(v0_mps: float, config: LatticeConfig, a0_mps2: float = 0.0) -> Float:
    """Travelled distance (S, 40) [m] at t = 0.1 .. 4.0 s of every distinct speed profile.

    Each profile is a desired acceleration law - IDM free road towards a target speed, a
    constant acceleration (floored at a stop), a stop at a given distance (the constant
    deceleration that ends there, re-evaluated every step) - integrated at 0.1 s from the ego's
    speed ``v0_mps`` AND its current acceleration ``a0_mps2``, the acceleration changing by at
    most PROFILE_JERK_MPS3 per second. Without the jerk limit a profile that brakes while the
    ego accelerates (or launches from rest at once) asks the tracker for a step in acceleration,
    which the comfort metric (longitudinal jerk < 4.13 m/s3) rejects."""
    n = NUM_POSES - 1
    dt = PDM_DT_S
    v0 = max(v0_mps, 0.0)
    targets = np.asarray(config.idm_speeds_mps, dtype=np.float64)
    acc = np.asarray(config.accels_mps2, dtype=np.float64)
    stops = np.asarray(config.stop_distances_m, dtype=np.float64)
    if v0 > 0 and stops.size:
        stops = stops[v0 * v0 / (2.0 * stops) <= MAX_STOP_DECEL_MPS2]
    else:
        stops = stops[:0]
    m = targets.size + acc.size + stops.size
    if m == 0:
        return np.zeros((0, n))
    is_idm = np.arange(m) < targets.size
    is_stop = np.arange(m) >= targets.size + acc.size
    target = np.concatenate([targets, np.zeros(acc.size + stops.size)])
    const = np.concatenate([np.zeros(targets.size), acc, np.zeros(stops.size)])
    stop_at = np.concatenate([np.zeros(targets.size + acc.size), stops])
    step = PROFILE_JERK_MPS3 * dt
    v = np.full(m, v0)
    a = np.full(m, float(a0_mps2))
    s = np.zeros(m)
    out = np.zeros((m, n))
    for k in range(n):
        idm = IDM_MAX_ACCEL_MPS2 * (1.0 - (v / np.maximum(target, 0.1)) ** IDM_EXPONENT)
        idm = np.maximum(idm, -IDM_COMFORT_DECEL_MPS2)
        rest = np.maximum(stop_at - s, 0.05)
        stop = np.where(v > 0.0, -v * v / (2.0 * rest), 0.0)
        want = np.where(is_idm, idm, np.where(is_stop, stop, const))
        a = np.clip(want, a - step, a + step)
        v_new = np.maximum(v + a * dt, 0.0)
        a = np.where(v_new <= 0.0, np.maximum(a, 0.0), a)  # at rest: no braking to carry over
        s = s + 0.5 * (v + v_new) * dt
        s = np.where(is_stop, np.minimum(s, stop_at), s)  # never past the stop point
        v = v_new
        out[:, k] = s
    prof = np.maximum(out, 0.0)
    _, keep = np.unique(np.round(prof, 2), axis=0, return_index=True)
    return prof[np.sort(keep)]


def _sample(path: Float, s_path: Float, s: Float) -> tuple[Float, Float]:
    """Positions (..., 2) and headings (...) at arc lengths s on a polyline (clamped)."""
    seg_yaw = np.unwrap(np.arctan2(*np.diff(path, axis=0)[:, ::-1].T))
    idx = np.clip(np.searchsorted(s_path, s, side="right") - 1, 0, len(path) - 2)
    seg_len = np.maximum(s_path[idx + 1] - s_path[idx], 1e-9)
    u = np.clip((s - s_path[idx]) / seg_len, 0.0, 1.0)[..., None]
    xy = path[idx] + u * (path[idx + 1] - path[idx])
    return xy, seg_yaw[idx]


def path_candidates(scene: Scene, path: Float, profiles: Float, offsets_m: Float) -> Float:
    """Poses (O * S, 40, 3) for one path: every lateral offset x every speed profile."""
    ego = scene.ego_pose
    start = to_local(ego[None, :2], path[0], np.arctan2(*(path[1] - path[0])[::-1]))[0]
    # Paths start at the lane / route sample nearest the ego, often a little AHEAD of it; extend
    # the path straight back past the ego so the ego's own station is on it. (Clamping that
    # station at the first sample made every plan's first step jump by the gap - up to half a
    # sample, i.e. several m/s at 0.1 s - and the tracker's answer failed the jerk bound.)
    back = max(-float(start[0]), 0.0) + 1.0  # [m]
    d0 = (path[1] - path[0]) / max(float(np.hypot(*(path[1] - path[0]))), 1e-9)
    path = np.vstack([path[0] - back * d0, path])
    s_path = polyline_arclength(path)
    l0 = float(start[1])
    s = np.concatenate([np.zeros((len(profiles), 1)), profiles], axis=1) + float(start[0]) + back
    t = np.arange(NUM_POSES) * PDM_DT_S
    u = np.clip(t / LATERAL_BLEND_S, 0.0, 1.0)
    blend = u * u * (3.0 - 2.0 * u)  # smoothstep: zero slope at both ends
    lat = offsets_m[:, None] + (l0 - offsets_m[:, None]) * (1.0 - blend[None])  # (O, 41)
    xy, yaw_path = _sample(path, s_path, s)  # (S, 41, 2), (S, 41)
    normal = np.stack([-np.sin(yaw_path), np.cos(yaw_path)], axis=-1)  # heading + 90 deg
    pts = xy[None] + lat[:, None, :, None] * normal[None]  # (O, S, 41, 2)
    pts[..., 0, :] = ego[:2]
    d = np.gradient(pts, axis=2)
    moving = np.hypot(d[..., 0], d[..., 1]) > MIN_MOTION_M
    yaw = np.where(moving, np.arctan2(d[..., 1], d[..., 0]), yaw_path[None])
    yaw[..., 0] = ego[2]
    # stopped tails keep the last heading of motion rather than snapping to the path's
    idx = np.where(moving, np.arange(NUM_POSES), 0)
    yaw = np.take_along_axis(yaw, np.maximum.accumulate(idx, axis=-1), axis=-1)
    poses = np.concatenate([pts, wrap_angle(yaw)[..., None]], axis=-1)[..., 1:, :]
    return poses.reshape(-1, NUM_POSES - 1, 3)


def lattice_candidates(
    town: Town, scene: Scene, route_lane_seq: NDArray[np.int64], config: LatticeConfig
) -> Float:
    """All lattice plans (B, 40, 3) for a scene."""
    profiles = speed_profiles(scene.ego_speed_mps, config, scene.ego_accel_mps2)
    offsets = np.asarray(config.lateral_offsets_m, dtype=np.float64)
    out = [
        path_candidates(scene, p, profiles, offsets)
        for p in lattice_paths(town, scene, route_lane_seq, config)
    ]
    return np.concatenate(out, axis=0) if out else np.zeros((0, NUM_POSES - 1, 3))
