"""Candidate plans -> simulated ego states, through the NAVSIM-style LQR + kinematic bicycle.

A plan is (B, 40, 3) poses at t = 0.1 .. 4.0 s (the current pose is prepended) or (B, 41, 3)
including t = 0 (its first pose is replaced by the ego's actual pose, as NAVSIM starts every
simulation from the measured state). Box-centre poses, world frame."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from numpy.typing import ArrayLike, NDArray

from harness.dynamics.lqr import NAVSIM_BICYCLE, NUM_POSES, LQRConfig, lqr_rollout
from harness.errors import ConfigError
from teachers.scene import Scene, states_from_poses

Float = NDArray[np.float64]


def full_plan(scene: Scene, candidate_poses: ArrayLike) -> Float:
    """(B, 41, 3) plans starting at the ego pose, from (B, 40, 3) or (B, 41, 3) candidates."""
    poses = np.asarray(candidate_poses, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[1] not in (NUM_POSES - 1, NUM_POSES) or poses.shape[2] != 3:
        raise ConfigError(
            f"candidate poses must be (B, 40, 3) or (B, 41, 3) [x, y, yaw], got {poses.shape}"
        )
    if not np.all(np.isfinite(poses)):
        raise ConfigError("candidate poses must be finite")
    now = np.broadcast_to(scene.ego_pose, (poses.shape[0], 1, 3))
    if poses.shape[1] == NUM_POSES:
        poses = poses[:, 1:]
    return np.concatenate([now, poses], axis=1)


def scene_lqr_config(scene: Scene) -> LQRConfig:
    """LQR config with NAVSIM's bicycle limits on the scene's ego geometry."""
    params = replace(
        NAVSIM_BICYCLE,
        length_m=scene.ego_length_m,
        width_m=scene.ego_width_m,
        wheelbase_m=scene.ego_wheelbase_m,
        rear_axle_to_center_m=scene.ego_rear_axle_to_center_m,
    )
    return LQRConfig(params=params)


def rollout_candidates(scene: Scene, candidate_poses: ArrayLike, *, rollout: bool = True) -> Float:
    """Simulated ego states (B, 41, N_STATE) for the candidates: LQR-tracked from the scene's ego
    speed / accel / yaw rate, or (``rollout=False``) the plan itself with finite-difference
    speeds, for plans that are already simulated states."""
    plan = full_plan(scene, candidate_poses)
    if not rollout:
        return states_from_poses(plan, wheelbase_m=scene.ego_wheelbase_m)
    return lqr_rollout(
        plan,
        scene.ego_speed_mps,
        scene.ego_accel_mps2,
        yaw_rate_radps=scene.ego_yaw_rate_radps,
        config=scene_lqr_config(scene),
    )


def rollout_previous_plan(scene: Scene) -> Float | None:
    """Simulated states (41, N_STATE) of the previous plan (from t-0.5 s), or None without one;
    its initial speed is the first chord's length / 0.1 s."""
    if scene.previous_plan is None:
        return None
    plan = scene.previous_plan[None]
    cfg = scene_lqr_config(scene)
    speed0 = float(np.hypot(*(plan[0, 1, :2] - plan[0, 0, :2]))) / cfg.dt_s
    return lqr_rollout(plan, speed0, config=cfg)[0]
