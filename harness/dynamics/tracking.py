"""Pure-pursuit steering + PID speed control: turns a planned trajectory into a VehicleControl.

Used by the embedded simulator for agents that output waypoints instead of controls, and by the
background vehicles. One vehicle per call (a plan is a few dozen poses); the PID integrator lives in
an explicit :class:`PIDState` that the caller owns, so the controller itself holds no state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

from harness.dynamics.control import MIN_POWER_SPEED_MPS, VehicleControl
from harness.dynamics.vehicle import LINCOLN_MKZ_2017, VehicleParams
from harness.errors import ConfigError
from harness.geometry import heading_vector, to_local

MIN_LOOKAHEAD_DIST_M = 1e-3  # [m] a target closer than this gives zero steer


@dataclass(frozen=True)
class PlannedTrajectory:
    """A plan to track: box-centre ``poses`` (T, 3) [x, y, yaw] (world frame, m / rad) at times
    ``t0_s + i * dt_s`` from now, and optionally target ``speeds_mps`` (T,); without them the
    target speed comes from the pose spacing (the ego's position counts as the pose at t = 0)."""

    poses: NDArray[np.float64]
    dt_s: float
    t0_s: float | None = None  # time of poses[0]; None = dt_s (future poses only)
    speeds_mps: NDArray[np.float64] | None = None

    def __post_init__(self) -> None:
        poses = np.asarray(self.poses, dtype=np.float64)
        if poses.ndim != 2 or poses.shape[1] != 3 or len(poses) < 1:
            raise ConfigError(f"plan poses must have shape (T, 3) with T >= 1, got {poses.shape}")
        if not (self.dt_s > 0.0 and np.all(np.isfinite(poses))):
            raise ConfigError("plan needs dt_s > 0 and finite poses")
        object.__setattr__(self, "poses", poses)
        if self.t0_s is None:
            object.__setattr__(self, "t0_s", float(self.dt_s))
        if self.speeds_mps is not None:
            speeds = np.asarray(self.speeds_mps, dtype=np.float64)
            if speeds.shape != (len(poses),) or not np.all(np.isfinite(speeds)):
                raise ConfigError(f"plan speeds must be finite with shape ({len(poses)},)")
            object.__setattr__(self, "speeds_mps", speeds)

    @property
    def times_s(self) -> NDArray[np.float64]:
        """(T,) time of each pose from now [s]."""
        return float(self.t0_s or 0.0) + self.dt_s * np.arange(len(self.poses), dtype=np.float64)


@dataclass(frozen=True)
class PurePursuitPIDConfig:
    """Gains and horizons of :class:`PurePursuitPID`."""

    lookahead_min_m: float = 3.0  # [m] lookahead at standstill
    lookahead_time_s: float = 0.6  # [s] lookahead grows by speed x this
    lookahead_max_m: float = 15.0  # [m]
    preview_time_s: float = 0.3  # [s] target speed = plan speed this far ahead
    kp_per_s: float = 1.2  # [m/s2 per m/s] speed-error gain
    ki_per_s2: float = 0.3  # [m/s2 per m] integral gain
    kd: float = 0.0  # [m/s2 per m/s2] derivative gain
    integral_limit_m: float = 3.0  # [m] anti-windup bound on the integrated speed error
    stop_speed_mps: float = 0.3  # [m/s] target below this -> full brake
    coast_band_mps2: float = 0.1  # [m/s2] small decel requests coast instead of braking


@dataclass
class PIDState:
    """The speed loop's memory: integrated error [m] and the last error [m/s]."""

    integral_m: float = 0.0
    prev_error_mps: float | None = None

    def reset(self) -> None:
        """Forget the history (on a stop, or a new episode)."""
        self.integral_m = 0.0
        self.prev_error_mps = None


@dataclass(frozen=True)
class PurePursuitPID:
    """Pure pursuit about the rear axle with a speed-dependent lookahead + PID on target speed."""

    config: PurePursuitPIDConfig = field(default_factory=PurePursuitPIDConfig)
    params: VehicleParams = LINCOLN_MKZ_2017

    def control(
        self,
        pid: PIDState,
        pose: ArrayLike,
        speed_mps: float,
        plan: PlannedTrajectory,
        dt_s: float,
    ) -> VehicleControl:
        """One control tick of period ``dt_s`` for the ego at box-centre ``pose`` (3,) [x, y, yaw]
        moving at ``speed_mps``; updates ``pid`` in place."""
        ego = np.asarray(pose, dtype=np.float64)
        steer = self._steer(ego, speed_mps, plan)
        target = self._target_speed(ego, plan)
        cfg, p = self.config, self.params
        if target < cfg.stop_speed_mps:
            pid.reset()
            return VehicleControl(throttle=0.0, steer=steer, brake=1.0)
        error = target - speed_mps
        pid.integral_m = float(
            np.clip(pid.integral_m + error * dt_s, -cfg.integral_limit_m, cfg.integral_limit_m)
        )
        deriv = 0.0 if pid.prev_error_mps is None else (error - pid.prev_error_mps) / dt_s
        pid.prev_error_mps = error
        accel = cfg.kp_per_s * error + cfg.ki_per_s2 * pid.integral_m + cfg.kd * deriv
        v = abs(speed_mps)
        resist = p.rolling_resistance_mps2 + p.drag_per_m * v * v if v > 0.0 else 0.0
        need = accel + resist  # what the powertrain / brakes must add
        if need >= 0.0:
            limit = min(p.max_accel_mps2, p.power_per_mass_wpkg / max(v, MIN_POWER_SPEED_MPS))
            return VehicleControl(throttle=need / limit, steer=steer)
        if need > -cfg.coast_band_mps2:
            return VehicleControl(steer=steer)
        return VehicleControl(steer=steer, brake=-need / p.max_brake_mps2)

    def lookahead_m(self, speed_mps: float) -> float:
        """Lookahead distance [m] at this speed."""
        cfg = self.config
        return float(
            np.clip(
                cfg.lookahead_min_m + cfg.lookahead_time_s * abs(speed_mps),
                cfg.lookahead_min_m,
                cfg.lookahead_max_m,
            )
        )

    def _steer(self, ego: NDArray[np.float64], speed_mps: float, plan: PlannedTrajectory) -> float:
        """Normalised steer toward the rear-axle path point one lookahead past the projection."""
        d = self.params.rear_axle_to_center_m
        path = plan.poses[:, :2] - d * heading_vector(plan.poses[:, 2])
        rear = ego[:2] - d * heading_vector(ego[2])
        target = _point_ahead(path, plan.poses[-1, 2], rear, self.lookahead_m(speed_mps))
        local = to_local(target, rear, ego[2])
        dist2 = float(local[0] ** 2 + local[1] ** 2)
        if dist2 < MIN_LOOKAHEAD_DIST_M**2:
            return 0.0
        curvature = 2.0 * float(local[1]) / dist2  # circle through the target tangent to heading
        wheel = math.atan(self.params.wheelbase_m * curvature)
        return float(np.clip(wheel / self.params.max_steer_rad, -1.0, 1.0))

    def _target_speed(self, ego: NDArray[np.float64], plan: PlannedTrajectory) -> float:
        """Plan speed [m/s] at the preview time (given speeds, or finite differences of poses)."""
        t_preview = self.config.preview_time_s
        if plan.speeds_mps is not None:
            return float(np.interp(t_preview, plan.times_s, plan.speeds_mps))
        times, xy = plan.times_s, plan.poses[:, :2]
        if times[0] > 0.0:
            times = np.concatenate([[0.0], times])
            xy = np.concatenate([ego[None, :2], xy])
        if len(times) < 2:
            return 0.0
        seg_speed = np.linalg.norm(np.diff(xy, axis=0), axis=1) / np.diff(times)
        return float(np.interp(t_preview, 0.5 * (times[1:] + times[:-1]), seg_speed))


def _point_ahead(
    path: NDArray[np.float64], end_yaw: float, point: NDArray[np.float64], ahead_m: float
) -> NDArray[np.float64]:
    """Point of ``path`` (N, 2) at arc length ``ahead_m`` past the projection of ``point``;
    beyond the end, extended straight along ``end_yaw``."""
    if len(path) == 1:
        return path[0] + ahead_m * heading_vector(end_yaw)
    seg = np.diff(path, axis=0)
    seg_len = np.linalg.norm(seg, axis=1)
    safe = np.maximum(seg_len, 1e-9)
    u = np.clip(np.einsum("ij,ij->i", point - path[:-1], seg) / safe**2, 0.0, 1.0)
    foot = path[:-1] + u[:, None] * seg
    i = int(np.argmin(np.linalg.norm(point - foot, axis=1)))
    s_cum = np.concatenate([[0.0], np.cumsum(seg_len)])
    s_target = s_cum[i] + u[i] * seg_len[i] + ahead_m
    if s_target >= s_cum[-1]:
        return path[-1] + (s_target - s_cum[-1]) * heading_vector(end_yaw)
    return np.array(
        [np.interp(s_target, s_cum, path[:, 0]), np.interp(s_target, s_cum, path[:, 1])]
    )
