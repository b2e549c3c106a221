"""NAVSIM-style batched trajectory tracking: LQR lateral + proportional speed control driving the
kinematic bicycle at 10 Hz, to turn planned poses into the states PDMS scores.

Lateral: a discrete LQR on [lateral error, heading error, steer - feed-forward steer] of the rear
axle against the reference's rear-axle path, input = steer rate. Its model is the bicycle's exact
one-tick update linearised at speed v; infinite-horizon gains are solved once per speed bin (a
batched doubling solution of the DARE) and interpolated linearly in speed per batch element.
Longitudinal: feed-forward reference accel (read tau_accel ahead) + proportional feedback on the
reference's finite-difference speed and on the station error (reference pose at the same time,
measured along the ego heading), then the bicycle's accel lag. Vectorised over the batch; the only
Python loop is over the 40 time steps. NumPy only (no torch path)."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, replace
from enum import IntEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray

from harness.dynamics.bicycle import BicycleState, lag_factor, step
from harness.dynamics.vehicle import LINCOLN_MKZ_2017, VehicleParams
from harness.errors import ConfigError
from harness.geometry import wrap_angle

Array = NDArray[np.float64]

NUM_POSES = 41  # initial pose + 40 steps
PDM_DT_S = 0.1  # [s] NAVSIM simulation step
SEARCH_BEHIND = 5  # reference segments searched behind the current time index
SEARCH_AHEAD = 10  # and ahead of it
MIN_SEGMENT_M = 1e-6  # [m] guards divisions by segment length
DARE_MAX_ITER = 60  # doubling steps (each squares the horizon)
DARE_RTOL = 1e-12  # relative change that ends the doubling
MIN_HEADING_SEGMENT_M = 0.05  # [m] shorter chords take the pose yaw as their heading

NAVSIM_BICYCLE = replace(
    LINCOLN_MKZ_2017,
    max_steer_rad=math.pi / 3,
    max_steer_rate_radps=math.inf,
    tau_accel_s=0.2,
    tau_steer_s=0.05,
)
"""NAVSIM's kinematic bicycle limits (max steer pi/3, lags 0.2 s / 0.05 s, no steer-rate limit)
on the MKZ's geometry."""


class StateIndex(IntEnum):
    """Columns of the rollout states (..., 41, N_STATE); poses are box centres, world frame."""

    X = 0  # [m]
    Y = 1  # [m]
    YAW = 2  # [rad]
    SPEED = 3  # [m/s] along the heading
    ACCEL = 4  # [m/s2] realised (lagged) longitudinal accel
    STEER = 5  # [rad] road-wheel angle
    YAW_RATE = 6  # [rad/s] speed * tan(steer) / wheelbase


N_STATE = len(StateIndex)


@dataclass(frozen=True)
class LQRConfig:
    """Tracker weights and gains (NAVSIM-like defaults, tuned for the 10 Hz bicycle)."""

    params: VehicleParams = NAVSIM_BICYCLE
    dt_s: float = PDM_DT_S
    q_lateral_per_m2: float = 1.0  # LQR state weights
    q_heading_per_rad2: float = 5.0
    q_steer_per_rad2: float = 0.0
    r_steer_rate: float = 0.5  # LQR input weight [per (rad/s)^2]
    speed_gain_per_s: float = 2.0  # [m/s2 per m/s]
    station_gain_per_s2: float = 1.0  # [m/s2 per m]
    accel_limits_mps2: tuple[float, float] = (-8.0, 4.0)  # command clip
    stop_speed_mps: float = 0.2  # reference below this: brake proportionally to a stop
    stop_gain_per_s: float = 2.0  # [m/s2 per m/s]
    gain_speeds_mps: tuple[float, ...] = field(
        default_factory=lambda: tuple(np.round(np.arange(0.5, 40.01, 0.5), 3))
    )


@functools.lru_cache(maxsize=8)
def lateral_gains(config: LQRConfig) -> Array:
    """LQR gains (S, 3) for ``config.gain_speeds_mps``: steer rate = -K @ [e_lat, e_yaw, e_steer]."""
    v = np.asarray(config.gain_speeds_mps, dtype=np.float64)[:, None, None]
    L, dt = config.params.wheelbase_m, config.dt_s
    g = v * dt / L
    zero, one = np.zeros_like(v), np.ones_like(v)
    a = np.block([[one, v * dt, 0.5 * v * dt * g], [zero, one, g], [zero, zero, one]])  # (S, 3, 3)
    b = np.concatenate([0.5 * v * dt * g * dt, g * dt, one * dt], axis=1)  # (S, 3, 1)
    q = np.diag([config.q_lateral_per_m2, config.q_heading_per_rad2, config.q_steer_per_rad2])
    p = solve_dare_batched(a, b, q, config.r_steer_rate)
    bt_p = np.swapaxes(b, 1, 2) @ p
    return np.linalg.solve(config.r_steer_rate + bt_p @ b, bt_p @ a)[:, 0, :]


def solve_dare_batched(a: Array, b: Array, q: Array, r: float) -> Array:
    """Stabilising solutions (S, n, n) of the discrete algebraic Riccati equations of systems
    a (S, n, n), b (S, n, 1) with weights q (n, n), scalar r, by the structure-preserving doubling
    algorithm (quadratic convergence, vectorised over S)."""
    eye = np.eye(a.shape[-1])
    ak, gk = a, b @ np.swapaxes(b, 1, 2) / r
    hk = np.broadcast_to(q, a.shape).copy()
    for _ in range(DARE_MAX_ITER):
        w = np.linalg.inv(eye + gk @ hk)
        a_next = ak @ w @ ak
        g_next = gk + ak @ w @ gk @ np.swapaxes(ak, 1, 2)
        h_next = hk + np.swapaxes(ak, 1, 2) @ hk @ w @ ak
        done = np.max(np.abs(h_next - hk)) <= DARE_RTOL * np.max(np.abs(h_next))
        ak, gk, hk = a_next, g_next, h_next
        if done:
            return hk
    raise ConfigError(
        "LQR Riccati iteration did not converge; check the LQRConfig weights (q, r > 0)"
    )


def lqr_rollout(
    reference_poses: ArrayLike,
    speed_mps: ArrayLike,
    accel_mps2: ArrayLike = 0.0,
    steer_rad: ArrayLike | None = None,
    yaw_rate_radps: ArrayLike | None = None,
    config: LQRConfig | None = None,
) -> Array:
    """Track ``reference_poses`` (B, 41, 3) [x, y, yaw] (box centres, world frame, 0.1 s apart,
    index 0 = the initial pose) from initial speed / accel / steer (B,) and return the simulated
    states (B, 41, N_STATE) indexed by :class:`StateIndex`. Without ``steer_rad``, the initial steer
    follows from ``yaw_rate_radps`` (or is 0)."""
    cfg = config or LQRConfig()
    p = cfg.params
    ref = np.asarray(reference_poses, dtype=np.float64)
    if ref.ndim != 3 or ref.shape[1:] != (NUM_POSES, 3) or not np.all(np.isfinite(ref)):
        raise ConfigError(
            f"reference poses must be finite with shape (B, {NUM_POSES}, 3), got {ref.shape}"
        )
    bsz = ref.shape[0]
    v0 = np.broadcast_to(np.asarray(speed_mps, dtype=np.float64), (bsz,))
    a0 = np.broadcast_to(np.asarray(accel_mps2, dtype=np.float64), (bsz,))
    state = BicycleState(
        x=ref[:, 0, 0],
        y=ref[:, 0, 1],
        yaw=ref[:, 0, 2],
        speed=v0,
        accel=a0,
        steer=_initial_steer(v0, steer_rad, yaw_rate_radps, p),
    )

    track = _Reference.build(ref, p, cfg.dt_s)
    gains = lateral_gains(cfg)
    speeds_bins = np.asarray(cfg.gain_speeds_mps)
    steer_lag = lag_factor(cfg.dt_s, p.tau_steer_s)
    lag_preview = min(p.tau_accel_s / cfg.dt_s, 1.0)  # feed-forward accel read tau_accel ahead
    out = np.empty((bsz, NUM_POSES, N_STATE))
    _record(out, 0, state, p)
    for k in range(NUM_POSES - 1):
        e_lat, e_yaw, kappa, e_station = track.errors(state, k, p)
        # longitudinal
        v_ref = track.speed[:, k]
        accel_ff = track.accel[:, k] + lag_preview * (track.accel[:, k + 1] - track.accel[:, k])
        accel = (
            accel_ff
            + cfg.speed_gain_per_s * (v_ref - state.speed)
            + cfg.station_gain_per_s2 * e_station
        )
        accel = np.where(v_ref < cfg.stop_speed_mps, -cfg.stop_gain_per_s * state.speed, accel)
        accel = np.clip(accel, *cfg.accel_limits_mps2)
        # lateral
        v_abs = np.abs(state.speed)
        k_gain = np.stack([np.interp(v_abs, speeds_bins, gains[:, j]) for j in range(3)], axis=-1)
        steer_ff = np.arctan(p.wheelbase_m * kappa)
        x_err = np.stack([e_lat, e_yaw, state.steer - steer_ff], axis=-1)
        steer_rate = -np.einsum("bj,bj->b", k_gain, x_err)
        steer_cmd = state.steer + steer_rate * cfg.dt_s / steer_lag  # lag-compensated target
        state = step(state, accel, steer_cmd, p, cfg.dt_s)
        _record(out, k + 1, state, p)
    return out


def _initial_steer(
    speed: Array, steer_rad: ArrayLike | None, yaw_rate_radps: ArrayLike | None, p: VehicleParams
) -> Array:
    """Initial road-wheel angle (B,): given, else from the yaw rate (speed > 0.1 m/s), else 0."""
    if steer_rad is not None:
        steer = np.broadcast_to(np.asarray(steer_rad, dtype=np.float64), speed.shape)
    elif yaw_rate_radps is not None:
        moving = np.abs(speed) > 0.1
        yaw_rate = np.asarray(yaw_rate_radps, dtype=np.float64)
        steer = np.where(
            moving, np.arctan(p.wheelbase_m * yaw_rate / np.where(moving, speed, 1.0)), 0.0
        )
    else:
        steer = np.zeros_like(speed)
    return np.clip(steer, -p.max_steer_rad, p.max_steer_rad)


def _record(out: Array, k: int, state: BicycleState, p: VehicleParams) -> None:
    """Write one time index of the rollout states."""
    out[:, k, StateIndex.X] = state.x
    out[:, k, StateIndex.Y] = state.y
    out[:, k, StateIndex.YAW] = state.yaw
    out[:, k, StateIndex.SPEED] = state.speed
    out[:, k, StateIndex.ACCEL] = state.accel
    out[:, k, StateIndex.STEER] = state.steer
    out[:, k, StateIndex.YAW_RATE] = state.yaw_rate(p)


@dataclass(frozen=True)
class _Reference:
    """Precomputed rear-axle reference path: points (B, 41, 2), chords (B, 40, 2) and their inverse
    squared lengths (B, 40), path heading and curvature at the points (B, 41) [rad, 1/m], speed at the poses' times (B, 41) [m/s] from the chords and its
    finite-difference accel (B, 41) [m/s2]."""

    xy: Array
    chord: Array
    inv_len2: Array
    yaw: Array
    kappa: Array
    speed: Array
    accel: Array

    @classmethod
    def build(cls, ref: Array, p: VehicleParams, dt_s: float) -> _Reference:
        """Rear-axle points from the box-centre poses; headings and curvature from the chords of
        that path (pose yaw where a chord is too short to define a direction)."""
        pose_yaw = ref[..., 2]
        d = p.rear_axle_to_center_m
        xy = ref[..., :2] - d * np.stack([np.cos(pose_yaw), np.sin(pose_yaw)], axis=-1)
        chord = np.diff(xy, axis=1)  # (B, 40, 2)
        seg = np.linalg.norm(chord, axis=-1)
        moving = seg > MIN_HEADING_SEGMENT_M
        theta = np.where(moving, np.arctan2(chord[..., 1], chord[..., 0]), pose_yaw[:, :-1])
        turn = wrap_angle(np.diff(theta, axis=1))  # (B, 39) at interior points
        both = moving[:, 1:] & moving[:, :-1]
        inner_kappa = np.where(
            both, turn / np.maximum(0.5 * (seg[:, 1:] + seg[:, :-1]), MIN_HEADING_SEGMENT_M), 0.0
        )
        yaw = np.concatenate(
            [
                theta[:, :1] - 0.5 * turn[:, :1],
                theta[:, :-1] + 0.5 * turn,
                theta[:, -1:] + 0.5 * turn[:, -1:],
            ],
            axis=1,
        )
        kappa = np.concatenate([inner_kappa[:, :1], inner_kappa, inner_kappa[:, -1:]], axis=1)
        seg_speed = seg / dt_s  # average over [t_k, t_k+1]
        speed = np.concatenate(
            [
                1.5 * seg_speed[:, :1] - 0.5 * seg_speed[:, 1:2],
                0.5 * (seg_speed[:, 1:] + seg_speed[:, :-1]),
                1.5 * seg_speed[:, -1:] - 0.5 * seg_speed[:, -2:-1],
            ],
            axis=1,
        )
        speed = np.maximum(speed, 0.0)
        return cls(
            xy=xy,
            chord=chord,
            inv_len2=1.0 / np.maximum(seg * seg, MIN_SEGMENT_M**2),
            yaw=yaw,
            kappa=kappa,
            speed=speed,
            accel=np.gradient(speed, dt_s, axis=1),
        )

    def errors(
        self, state: BicycleState, k: int, p: VehicleParams
    ) -> tuple[Array, Array, Array, Array]:
        """Lateral error [m] (+ = CARLA right of the path), heading error [rad], path curvature
        [1/m] at the nearest point of the path near time index ``k``, and station error [m]
        (reference pose k ahead of the ego along its heading)."""
        lo, hi = max(0, k - SEARCH_BEHIND), min(NUM_POSES - 1, k + SEARCH_AHEAD)
        x0, y0 = self.xy[:, lo:hi, 0], self.xy[:, lo:hi, 1]  # (B, S) segment starts
        sx, sy = self.chord[:, lo:hi, 0], self.chord[:, lo:hi, 1]
        rear = state.rear_axle_xy(p)
        rx, ry = rear[:, 0:1] - x0, rear[:, 1:2] - y0
        u = np.clip((rx * sx + ry * sy) * self.inv_len2[:, lo:hi], 0.0, 1.0)
        ox, oy = rx - u * sx, ry - u * sy  # foot of the perpendicular -> rear axle
        j = np.argmin(ox * ox + oy * oy, axis=1)[:, None]
        uj = np.take_along_axis(u, j, axis=1)[:, 0]
        oxj, oyj = np.take_along_axis(ox, j, axis=1)[:, 0], np.take_along_axis(oy, j, axis=1)[:, 0]
        rows, i0 = np.arange(len(uj)), lo + j[:, 0]
        yaw0 = self.yaw[rows, i0]
        ref_yaw = yaw0 + uj * wrap_angle(self.yaw[rows, i0 + 1] - yaw0)
        kappa = self.kappa[rows, i0] + uj * (self.kappa[rows, i0 + 1] - self.kappa[rows, i0])
        e_lat = -np.sin(ref_yaw) * oxj + np.cos(ref_yaw) * oyj
        e_yaw = wrap_angle(state.yaw - ref_yaw)
        lead = self.xy[:, k] - rear
        e_station = np.cos(state.yaw) * lead[:, 0] + np.sin(state.yaw) * lead[:, 1]
        return e_lat, e_yaw, kappa, e_station
