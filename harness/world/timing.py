"""The project's clocks, in one place: the simulation tick, the pose spacing of scored
trajectories, the planner's output spacing and the planning horizon, with the one conversion
between 0.5 s planner poses and 0.1 s scoring poses.

Trajectories are (T, 3) poses (x [m], y [m], yaw [rad]) at ``dt, 2 dt, ..., horizon``; the
current pose (t = 0) is not part of them. A planner's 8 poses at 0.5 s (NAVSIM's convention) are
the 0.1 s poses ``[4::5]``; going the other way interpolates from the origin pose at t = 0.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

SIM_DT_S = 0.05  # [s] one simulation tick: 20 Hz, the leaderboard's fixed_delta_seconds
POSE_DT_S = 0.1  # [s] pose spacing of scored trajectories (NAVSIM's 10 Hz simulation)
PLANNER_DT_S = 0.5  # [s] pose spacing of a planner's output (NAVSIM's 2 Hz trajectories)
HORIZON_S = 4.0  # [s] planning and scoring horizon
HORIZON_STEPS = 40  # [-] poses of a scored trajectory, t = 0.1 .. 4.0 s
PLANNER_POSES = 8  # [-] poses of a planner's output, t = 0.5 .. 4.0 s
TICKS_PER_POSE = 2  # [-] simulation ticks per scored pose
POSES_PER_PLANNER_POSE = 5  # [-] scored poses per planner pose


def planner_to_score_poses(
    poses: ArrayLike, origin: ArrayLike = (0.0, 0.0, 0.0)
) -> NDArray[np.float64]:
    """(..., 8, 3) planner poses at 0.5 .. 4.0 s -> (..., 40, 3) poses at 0.1 .. 4.0 s, linear in
    x, y and the unwrapped yaw, starting from ``origin`` (x, y, yaw) at t = 0 (the ego frame's
    origin by default)."""
    p = np.asarray(poses, dtype=np.float64)
    if p.shape[-2:] != (PLANNER_POSES, 3):
        raise ValueError(f"planner poses must be (..., {PLANNER_POSES}, 3), got {p.shape}")
    o = np.broadcast_to(np.asarray(origin, dtype=np.float64), p.shape[:-2] + (3,))
    knots = np.concatenate([o[..., None, :], p], axis=-2)  # (..., 9, 3)
    knots[..., 2] = np.unwrap(knots[..., 2], axis=-1)
    t_knot = PLANNER_DT_S * np.arange(PLANNER_POSES + 1)
    t = POSE_DT_S * np.arange(1, HORIZON_STEPS + 1)
    k = np.clip(np.searchsorted(t_knot, t, side="right") - 1, 0, PLANNER_POSES - 1)
    w = ((t - t_knot[k]) / PLANNER_DT_S)[:, None]
    return knots[..., k, :] * (1.0 - w) + knots[..., k + 1, :] * w


def score_to_planner_poses(poses: ArrayLike) -> NDArray[np.float64]:
    """(..., 40, 3) poses at 0.1 .. 4.0 s -> the (..., 8, 3) poses at 0.5 .. 4.0 s."""
    p = np.asarray(poses, dtype=np.float64)
    if p.shape[-2] != HORIZON_STEPS:
        raise ValueError(f"scored poses must be (..., {HORIZON_STEPS}, 3), got {p.shape}")
    return p[..., POSES_PER_PLANNER_POSE - 1 :: POSES_PER_PLANNER_POSE, :]
