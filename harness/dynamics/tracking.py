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

from harness.dynamics.control import MIN_POWER_SPEED_MPS
from harness.dynamics.vehicle import LINCOLN_MKZ_2017, VehicleParams
from harness.errors import ConfigError
from harness.geometry import heading_vector, to_local
from harness.jit import njit
from harness.world.control import VehicleControl

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
        return self._speed_control(pid, steer, target, speed_mps, dt_s)

    def control_one(
        self,
        pid: PIDState,
        x: float,
        y: float,
        yaw: float,
        speed_mps: float,
        poses: NDArray[np.float64],
        target_mps: float,
        dt_s: float,
    ) -> VehicleControl:
        """:meth:`control` for a plan whose target speed is already known (``target_mps``, e.g.
        a plan with constant speeds) on plain floats: compiled steering, no plan validation.
        ``poses`` (T, 3) float64 [x, y, yaw], finite (the caller's contract). Equal to
        :meth:`control` to rounding (tested)."""
        p = self.params
        steer = float(
            pursuit_steer(
                poses, p.rear_axle_to_center_m, x, y, yaw, self.lookahead_m_fast(speed_mps),
                p.wheelbase_m, p.max_steer_rad, MIN_LOOKAHEAD_DIST_M,
            )
        )  # fmt: skip
        return self._speed_control(pid, steer, target_mps, speed_mps, dt_s)

    def lookahead_m_fast(self, speed_mps: float) -> float:
        """:meth:`lookahead_m` with math instead of numpy."""
        cfg = self.config
        look = cfg.lookahead_min_m + cfg.lookahead_time_s * abs(speed_mps)
        return min(max(look, cfg.lookahead_min_m), cfg.lookahead_max_m)

    def _speed_control(
        self, pid: PIDState, steer: float, target: float, speed_mps: float, dt_s: float
    ) -> VehicleControl:
        """The PID speed loop and the throttle / brake mapping (shared by both paths)."""
        cfg, p = self.config, self.params
        if target < cfg.stop_speed_mps:
            pid.reset()
            return VehicleControl(throttle=0.0, steer=steer, brake=1.0)
        error = target - speed_mps
        pid.integral_m = min(
            max(pid.integral_m + error * dt_s, -cfg.integral_limit_m), cfg.integral_limit_m
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


def path_station(
    path: NDArray[np.float64], point: ArrayLike
) -> tuple[NDArray[np.float64], float]:
    """(arc length at each vertex (N,), arc length of ``point``'s projection) on the polyline
    ``path`` (N >= 2, 2): the nearest foot point over all segments (first on ties)."""
    p = np.asarray(point, dtype=np.float64)[:2]
    seg = np.diff(path, axis=0)
    seg_len = np.linalg.norm(seg, axis=1)
    safe = np.maximum(seg_len, 1e-9)
    u = np.clip(np.einsum("ij,ij->i", p - path[:-1], seg) / safe**2, 0.0, 1.0)
    foot = path[:-1] + u[:, None] * seg
    i = int(np.argmin(np.linalg.norm(p - foot, axis=1)))
    s_cum = np.concatenate([[0.0], np.cumsum(seg_len)])
    return s_cum, float(s_cum[i] + u[i] * seg_len[i])


def _point_ahead(
    path: NDArray[np.float64], end_yaw: float, point: NDArray[np.float64], ahead_m: float
) -> NDArray[np.float64]:
    """Point of ``path`` (N, 2) at arc length ``ahead_m`` past the projection of ``point``;
    beyond the end, extended straight along ``end_yaw``."""
    if len(path) == 1:
        return path[0] + ahead_m * heading_vector(end_yaw)
    s_cum, s_point = path_station(path, point)
    s_target = s_point + ahead_m
    if s_target >= s_cum[-1]:
        return path[-1] + (s_target - s_cum[-1]) * heading_vector(end_yaw)
    return np.array(
        [np.interp(s_target, s_cum, path[:, 0]), np.interp(s_target, s_cum, path[:, 1])]
    )


@njit
def pursuit_steer(
    poses: NDArray[np.float64], rear_d: float, x: float, y: float, yaw: float, ahead_m: float,
    wheelbase_m: float, max_steer_rad: float, min_dist_m: float,
) -> float:  # fmt: skip
    """PurePursuitPID._steer + _point_ahead compiled: normalised steer toward the rear-axle path
    point ``ahead_m`` past the projection of the rear axle (straight on past the plan's end)."""
    n = poses.shape[0]
    px, py = np.empty(n), np.empty(n)
    for k in range(n):
        px[k] = poses[k, 0] - rear_d * np.cos(poses[k, 2])
        py[k] = poses[k, 1] - rear_d * np.sin(poses[k, 2])
    rx, ry = x - rear_d * np.cos(yaw), y - rear_d * np.sin(yaw)
    end_yaw = poses[n - 1, 2]
    if n == 1:
        tx, ty = px[0] + ahead_m * np.cos(end_yaw), py[0] + ahead_m * np.sin(end_yaw)
    else:
        s_cum = np.empty(n)
        s_cum[0] = 0.0
        best, bi, bu = np.inf, 0, 0.0
        for k in range(n - 1):
            sx, sy = px[k + 1] - px[k], py[k + 1] - py[k]
            seg_len = np.sqrt(sx * sx + sy * sy)
            s_cum[k + 1] = s_cum[k] + seg_len
            safe = max(seg_len, 1e-9)
            u = min(max(((rx - px[k]) * sx + (ry - py[k]) * sy) / (safe * safe), 0.0), 1.0)
            fx, fy = px[k] + u * sx - rx, py[k] + u * sy - ry
            d = np.sqrt(fx * fx + fy * fy)
            if d < best:
                best, bi, bu = d, k, u
        s_target = s_cum[bi] + bu * (s_cum[bi + 1] - s_cum[bi]) + ahead_m
        if s_target >= s_cum[n - 1]:
            over = s_target - s_cum[n - 1]
            tx, ty = px[n - 1] + over * np.cos(end_yaw), py[n - 1] + over * np.sin(end_yaw)
        else:
            tx, ty = interp1(s_target, s_cum, px), interp1(s_target, s_cum, py)
    c, sn = np.cos(yaw), np.sin(yaw)
    dx, dy = tx - rx, ty - ry
    lx, ly = c * dx + sn * dy, -sn * dx + c * dy
    dist2 = lx * lx + ly * ly
    if dist2 < min_dist_m * min_dist_m:
        return 0.0
    wheel = np.arctan(wheelbase_m * (2.0 * ly / dist2))
    return min(max(wheel / max_steer_rad, -1.0), 1.0)


@njit
def interp1(x: float, xp: NDArray[np.float64], fp: NDArray[np.float64]) -> float:
    """np.interp for one x over non-decreasing xp (ends held), cheaper for numba to compile."""
    n = xp.shape[0]
    lo, hi = 0, n
    while lo < hi:  # first index with xp > x
        mid = (lo + hi) // 2
        if xp[mid] <= x:
            lo = mid + 1
        else:
            hi = mid
    j = lo - 1
    if j < 0:
        return fp[0]
    if j >= n - 1:
        return fp[n - 1]
    return fp[j] + (x - xp[j]) * (fp[j + 1] - fp[j]) / (xp[j + 1] - xp[j])
