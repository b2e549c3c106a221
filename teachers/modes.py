"""Manoeuvre modes of candidate trajectories: a lane outcome (keep, left, right, branch) from the
lane graph and the route, and a longitudinal outcome (stop, yield/slow, go) from the speed the
trajectory ends with. Teachers are chosen across modes first (``teachers.selection``), so a
scene's K teachers are different manoeuvres before they are speed variants of one path.

Lane outcome of a trajectory, from its last pose (t = 4 s) projected on the lane graph (heading
aware): KEEP when that lane is one of the route's lanes ahead of the ego; LEFT / RIGHT when it is
a same-direction lane of the same road section as a route lane, on the side towards (LEFT) or
away from (RIGHT) the reference line, as OpenDRIVE numbers lanes in right-hand traffic; otherwise
(junction connectors, overlapping lanes) from the route centreline: within
ALIGNED_RAD of the route heading and within half a lane width of the centreline KEEP, within
SIDE_LANES_MAX lane widths LEFT / RIGHT by the side; else BRANCH (another exit of a junction,
the opposite carriageway).

Longitudinal outcome, from the trajectory's last step speed v_end and the ego's speed now v0:
STOP when v_end < STOP_MPS, SLOW (yield / slow down) when v_end < v0 - SLOW_DROP_MPS, else GO.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
from numpy.typing import NDArray

from harness.geometry import wrap_angle
from harness.maps.town import Town
from harness.world.timing import POSE_DT_S

STOP_MPS = 0.5  # a trajectory ending slower than this stops [m/s]
SLOW_DROP_MPS = 1.0  # ending this much slower than the ego is now: yield / slow [m/s]
ALIGNED_RAD = 0.5  # heading difference to the route still counted as along it [rad]
SIDE_LANES_MAX = 1.5  # lateral offsets up to this many lane widths are a neighbour lane [-]

Float = NDArray[np.float64]
Int = NDArray[np.int64]


class LaneMode(IntEnum):
    """Lane outcome at t = 4 s (the dataset stores the lower-case name)."""

    KEEP = 0
    LEFT = 1
    RIGHT = 2
    BRANCH = 3


class SpeedMode(IntEnum):
    """Longitudinal outcome at t = 4 s (the dataset stores the lower-case name)."""

    STOP = 0
    SLOW = 1
    GO = 2


NUM_MODES = len(LaneMode) * len(SpeedMode)


def mode_id(lane: Int, speed: Int) -> Int:
    """One integer per (lane, speed) mode: lane * 3 + speed."""
    return np.asarray(lane, dtype=np.int64) * len(SpeedMode) + np.asarray(speed, dtype=np.int64)


def mode_parts(mode: Int) -> tuple[Int, Int]:
    """(lane, speed) modes of :func:`mode_id` values."""
    m = np.asarray(mode, dtype=np.int64)
    return m // len(SpeedMode), m % len(SpeedMode)


def speed_modes(ego_speed_mps: float, poses: Float) -> Int:
    """SpeedMode (B,) of trajectories (B, T >= 2, 3) sampled every POSE_DT_S (see module)."""
    if len(poses) == 0:
        return np.zeros(0, dtype=np.int64)
    v_end = np.hypot(*(poses[:, -1, :2] - poses[:, -2, :2]).T) / POSE_DT_S
    return np.where(
        v_end < STOP_MPS,
        SpeedMode.STOP,
        np.where(v_end < ego_speed_mps - SLOW_DROP_MPS, SpeedMode.SLOW, SpeedMode.GO),
    ).astype(np.int64)


def _route_offsets(route_xy: Float, end: Float) -> tuple[Float, Float]:
    """Signed lateral offset [m] (positive right of the driving direction) of end poses (B, 3)
    from their nearest route segment, and their heading difference to it [rad]."""
    a, b = route_xy[:-1], route_xy[1:]
    d = b - a
    len2 = np.maximum((d * d).sum(1), 1e-12)
    r = end[:, None, :2] - a[None]  # (B, S, 2)
    t = np.clip((r * d[None]).sum(-1) / len2[None], 0.0, 1.0)
    off = r - t[..., None] * d[None]
    seg = np.argmin(np.hypot(off[..., 0], off[..., 1]), axis=1)
    rows = np.arange(len(end))
    heading = np.arctan2(d[seg, 1], d[seg, 0])
    ox, oy = off[rows, seg, 0], off[rows, seg, 1]
    lateral = -np.sin(heading) * ox + np.cos(heading) * oy  # CARLA: +90 deg of heading = right
    return lateral, wrap_angle(end[:, 2] - heading)


def lane_modes(town: Town, route_lanes: Int, route_xy: Float, poses: Float) -> Int:
    """LaneMode (B,) of trajectories (B, T, 3) given the route's lanes ahead of the ego
    ``route_lanes`` (R,) and its centreline ``route_xy`` (M >= 2, 2) (see module)."""
    if len(poses) == 0:
        return np.zeros(0, dtype=np.int64)
    lanes = town.lanes
    end = poses[:, -1]
    lane = lanes.project(end[:, :2], end[:, 2]).lane
    rl = np.asarray(route_lanes, dtype=np.int64)
    mode = np.full(len(end), LaneMode.BRANCH, dtype=np.int64)
    mode[np.isin(lane, rl)] = LaneMode.KEEP
    if rl.size:
        same = (
            (lanes.road_id[lane][:, None] == lanes.road_id[rl][None])
            & (lanes.section_id[lane][:, None] == lanes.section_id[rl][None])
            & (np.sign(lanes.lane_id[lane])[:, None] == np.sign(lanes.lane_id[rl])[None])
        )
        r = rl[np.argmax(same, axis=1)]
        outward = np.abs(lanes.lane_id[lane]) - np.abs(lanes.lane_id[r])
        side = same.any(1) & (mode == LaneMode.BRANCH)
        mode[side & (outward < 0)] = LaneMode.LEFT
        mode[side & (outward > 0)] = LaneMode.RIGHT
    rest = mode == LaneMode.BRANCH
    if rest.any() and len(route_xy) >= 2:
        lateral, dyaw = _route_offsets(route_xy, end[rest])
        width = lanes.width_m[lanes.start[lane[rest]]]
        aligned = np.abs(dyaw) < ALIGNED_RAD
        sub = np.full(int(rest.sum()), LaneMode.BRANCH, dtype=np.int64)
        near = aligned & (np.abs(lateral) < SIDE_LANES_MAX * width)
        sub[near & (lateral < 0)] = LaneMode.LEFT
        sub[near & (lateral > 0)] = LaneMode.RIGHT
        sub[aligned & (np.abs(lateral) < 0.5 * width)] = LaneMode.KEEP
        mode[rest] = sub
    return mode


def manoeuvre_modes(
    town: Town, route_lanes: Int, route_xy: Float, ego_speed_mps: float, poses: Float
) -> Int:
    """:func:`mode_id` (B,) of trajectories (B, T, 3): lane and longitudinal outcome."""
    return mode_id(
        lane_modes(town, route_lanes, route_xy, poses), speed_modes(ego_speed_mps, poses)
    )
