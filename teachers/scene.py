"""`Scene`: everything the PDMS/EPDMS scorer needs about one scoring instant, as frozen arrays.

Frames and units: CARLA world frame (x, y [m], yaw [rad]); poses are box centres; the scoring
horizon is 4 s at 0.1 s (index 0 = now, 40 = +4 s). Agents are non-reactive: their boxes over the
horizon are given (recorded futures, or :meth:`Scene.constant_velocity_agents` forecasts). The
builder from simulator states lives with the lead's code; this module only defines the record.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from harness.boxes import BOX_DIM, BoxField
from harness.dynamics.lqr import N_STATE, NAVSIM_BICYCLE, NUM_POSES, PDM_DT_S, StateIndex
from harness.errors import ConfigError
from harness.geometry import wrap_angle

PAST_POSES = 16  # ego history samples: t-1.5 s .. t at 0.1 s (last = now)
PREVIOUS_PLAN_OFFSET_STEPS = 5  # the previous plan starts 0.5 s (5 steps) before now
MIN_MOVING_SPEED_MPS = 0.1  # below this a finite-difference heading/steer is not trusted [m/s]

Float = NDArray[np.float64]


def _check(name: str, arr: NDArray[np.generic], shape: tuple[int, ...]) -> None:
    if arr.shape != shape:
        raise ConfigError(f"Scene.{name} has shape {arr.shape}, expected {shape}")


@dataclass(frozen=True, eq=False)
class Scene:
    """One scoring scene (world frame, SI units).

    Ego at t=0: ``ego_pose`` (3,) [x, y, yaw] box centre; ``ego_speed_mps``, ``ego_accel_mps2``,
    ``ego_yaw_rate_radps``; box ``ego_length_m`` x ``ego_width_m``; ``ego_wheelbase_m``;
    ``ego_rear_axle_to_center_m`` (rear axle this far behind the box centre).
    ``ego_past`` (16, N_STATE) states t-1.5 s .. t at 0.1 s in :class:`StateIndex` columns (for
    HC; see :func:`states_from_poses`). ``previous_plan`` (41, 3) poses of the plan made at
    t-0.5 s (0.1 s apart from t-0.5 s) or None (EC = 1 then).
    Agents (A): ``agent_boxes`` (A, 41, 5) [x, y, yaw, length, width] at t = 0..4 s,
    ``agent_kind`` (A,) ActorKind values, ``agent_valid`` (A, 41), ``agent_speed_mps`` (A, 41).
    Lights (T): ``light_lanes`` (T, C) controlled connector lanes (LaneSet indices, -1 padded),
    ``light_lanes_valid`` (T, C), ``light_state`` (T, 41) LightState values over the horizon.
    Route: ``route_xy`` (M, 2) centerline polyline (about 1 m spacing, driving order) and
    ``route_lanes`` (R,) the on-route lane indices (same-direction lanes of the route's roads and
    its junction connectors; see :func:`teachers.scoring.rasters.expand_route_lanes`).
    """

    town_name: str
    ego_pose: Float
    ego_speed_mps: float
    ego_accel_mps2: float
    ego_yaw_rate_radps: float
    ego_past: Float
    agent_boxes: Float
    agent_kind: NDArray[np.int64]
    agent_valid: NDArray[np.bool_]
    agent_speed_mps: Float
    light_lanes: NDArray[np.int64]
    light_lanes_valid: NDArray[np.bool_]
    light_state: NDArray[np.int64]
    route_xy: Float
    route_lanes: NDArray[np.int64]
    previous_plan: Float | None = None
    ego_length_m: float = NAVSIM_BICYCLE.length_m
    ego_width_m: float = NAVSIM_BICYCLE.width_m
    ego_wheelbase_m: float = NAVSIM_BICYCLE.wheelbase_m
    ego_rear_axle_to_center_m: float = NAVSIM_BICYCLE.rear_axle_to_center_m

    def __post_init__(self) -> None:
        a = self.agent_boxes.shape[0] if self.agent_boxes.ndim == 3 else -1
        t = self.light_state.shape[0] if self.light_state.ndim == 2 else -1
        _check("ego_pose", self.ego_pose, (3,))
        _check("ego_past", self.ego_past, (PAST_POSES, N_STATE))
        _check("agent_boxes", self.agent_boxes, (a, NUM_POSES, BOX_DIM))
        _check("agent_kind", self.agent_kind, (a,))
        _check("agent_valid", self.agent_valid, (a, NUM_POSES))
        _check("agent_speed_mps", self.agent_speed_mps, (a, NUM_POSES))
        _check("light_state", self.light_state, (t, NUM_POSES))
        _check("light_lanes", self.light_lanes, (t, self.light_lanes.shape[-1]))
        _check("light_lanes_valid", self.light_lanes_valid, self.light_lanes.shape)
        if self.route_xy.ndim != 2 or self.route_xy.shape[0] < 2 or self.route_xy.shape[1] != 2:
            raise ConfigError(f"Scene.route_xy must be (M >= 2, 2), got {self.route_xy.shape}")
        if self.previous_plan is not None:
            _check("previous_plan", self.previous_plan, (NUM_POSES, 3))
        if not np.all(np.isfinite(self.ego_pose)) or not np.all(np.isfinite(self.agent_boxes)):
            raise ConfigError("Scene ego pose and agent boxes must be finite")

    @property
    def num_agents(self) -> int:
        """Number of agents A."""
        return int(self.agent_boxes.shape[0])

    @property
    def ego_dims(self) -> tuple[float, float]:
        """Ego box (length, width) [m]."""
        return self.ego_length_m, self.ego_width_m

    @staticmethod
    def constant_velocity_agents(
        pose: ArrayLike,
        speed_mps: ArrayLike,
        length_m: ArrayLike,
        width_m: ArrayLike,
        dt_s: float = PDM_DT_S,
    ) -> tuple[Float, NDArray[np.bool_], Float]:
        """Forecast agents from their current state at constant speed and heading (PDM-Closed's
        forecast): poses (A, 3) [x, y, yaw], speeds, dims (A,) -> ``(agent_boxes (A, 41, 5),
        agent_valid (A, 41), agent_speed_mps (A, 41))`` ready for the Scene fields."""
        p = np.asarray(pose, dtype=np.float64).reshape(-1, 3)
        n = p.shape[0]
        v = np.broadcast_to(np.asarray(speed_mps, dtype=np.float64), (n,))
        t = np.arange(NUM_POSES) * dt_s
        boxes = np.empty((n, NUM_POSES, BOX_DIM))
        boxes[..., BoxField.X] = p[:, None, 0] + np.cos(p[:, None, 2]) * v[:, None] * t
        boxes[..., BoxField.Y] = p[:, None, 1] + np.sin(p[:, None, 2]) * v[:, None] * t
        boxes[..., BoxField.YAW] = p[:, None, 2]
        boxes[..., BoxField.LENGTH] = np.broadcast_to(np.asarray(length_m, float), (n,))[:, None]
        boxes[..., BoxField.WIDTH] = np.broadcast_to(np.asarray(width_m, float), (n,))[:, None]
        return boxes, np.ones((n, NUM_POSES), bool), np.repeat(v[:, None], NUM_POSES, axis=1)


def states_from_poses(
    poses: ArrayLike, dt_s: float = PDM_DT_S, wheelbase_m: float = NAVSIM_BICYCLE.wheelbase_m
) -> Float:
    """States (..., N, N_STATE) from box-centre poses (..., N, 3) sampled every ``dt_s`` by finite
    differences: speed = displacement along the heading / dt, accel and yaw rate by central
    differences (np.gradient), steer = atan(wheelbase * yaw_rate / speed) where moving. Used for
    the real past (HC), the previous plan and ``rollout=False`` scoring."""
    p = np.asarray(poses, dtype=np.float64)
    yaw = np.unwrap(p[..., 2], axis=-1)
    vel = np.gradient(p[..., :2], dt_s, axis=-2)
    speed = vel[..., 0] * np.cos(yaw) + vel[..., 1] * np.sin(yaw)
    out = np.zeros(p.shape[:-1] + (N_STATE,))
    out[..., StateIndex.X] = p[..., 0]
    out[..., StateIndex.Y] = p[..., 1]
    out[..., StateIndex.YAW] = wrap_angle(p[..., 2])
    out[..., StateIndex.SPEED] = speed
    out[..., StateIndex.ACCEL] = np.gradient(speed, dt_s, axis=-1)
    yaw_rate = np.gradient(yaw, dt_s, axis=-1)
    out[..., StateIndex.YAW_RATE] = yaw_rate
    moving = np.abs(speed) > MIN_MOVING_SPEED_MPS
    out[..., StateIndex.STEER] = np.where(
        moving, np.arctan(wheelbase_m * yaw_rate / np.where(moving, speed, 1.0)), 0.0
    )
    return out
