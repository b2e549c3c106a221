"""NAVSIM-style batched trajectory tracking: LQR lateral + proportional speed control driving the
kinematic bicycle at 10 Hz, to turn planned poses into the states PDMS scores.

Lateral: a discrete LQR on [lateral error, heading error, steer - feed-forward steer] of the rear
axle against the reference's rear-axle path, input = steer rate. Its model is the bicycle's exact
one-tick update linearised at speed v; infinite-horizon gains are solved once per speed bin (a
batched doubling solution of the DARE) and interpolated linearly in speed per batch element.
Longitudinal: feed-forward reference accel (read tau_accel ahead) + proportional feedback on the
reference's finite-difference speed and on the station error (reference pose at the same time,
measured along the ego heading), then the bicycle's accel lag. :func:`lqr_rollout` runs the 40
steps x B in one numba kernel; the same maths vectorised over the batch in NumPy is the test
oracle ``tests/oracles/lqr_numpy.py`` the kernel is checked against."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field, replace
from enum import IntEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray

from harness.dynamics.bicycle import lag_factor
from harness.dynamics.vehicle import LINCOLN_MKZ_2017, VehicleParams
from harness.errors import ConfigError
from harness.geometry import wrap_angle_scalar
from harness.jit import njit
from harness.world.timing import HORIZON_STEPS, POSE_DT_S

Array = NDArray[np.float64]

NUM_POSES = HORIZON_STEPS + 1  # [-] initial pose + 40 steps
PDM_DT_S = POSE_DT_S  # [s] NAVSIM simulation step (0.1 s)
SEARCH_BEHIND = 5  # reference segments searched behind the current time index
SEARCH_AHEAD = 10  # and ahead of it
MIN_SEGMENT_M = 1e-6  # [m] guards divisions by segment length
DARE_MAX_ITER = 60  # doubling steps (each squares the horizon)
DARE_RTOL = 1e-12  # relative change that ends the doubling
MIN_HEADING_SEGMENT_M = 0.05  # [m] shorter chords take the pose yaw as their heading

# Slots of the packed scalar vector ``c`` the rollout kernel reads (:func:`lqr_rollout` fills it);
# the comments give the units of the values stored there.
C_DT_S = 0  # [s] tracking step
C_WHEELBASE_M = 1  # [m]
C_REAR_TO_CENTER_M = 2  # [m] rear axle to box centre
C_STEER_GAIN_S = 3  # [s] lag-compensated steer target per unit steer rate
C_STEER_LAG = 4  # [-] first-order steer lag factor per step
C_ACCEL_LAG = 5  # [-] first-order accel lag factor per step
C_MAX_STEER_DELTA_RAD = 6  # [rad] steer change limit per step (inf: none)
C_LAG_PREVIEW = 7  # [-] feed-forward accel read this fraction of a step ahead
C_ACCEL_MIN_MPS2 = 8  # [m/s2] accel command clip, low
C_ACCEL_MAX_MPS2 = 9  # [m/s2] accel command clip, high
C_SPEED_GAIN_PER_S = 10  # [m/s2 per m/s]
C_STATION_GAIN_PER_S2 = 11  # [m/s2 per m]
C_STOP_SPEED_MPS = 12  # [m/s] reference below this: brake to a stop
C_STOP_GAIN_PER_S = 13  # [m/s2 per m/s]
C_MAX_STEER_RAD = 14  # [rad]
C_MAX_REVERSE_SPEED_MPS = 15  # [m/s]
C_TOP_SPEED_MPS = 16  # [m/s]
N_CONSTS = 17  # [-] length of ``c``

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
    follows from ``yaw_rate_radps`` (or is 0).

    The reference path and gain table are prepared with NumPy; the 40 steps x B run in the numba
    kernel :func:`_rollout_kernel` (equal to the NumPy test oracle to ~1e-9). The
    result is a view of an (N_STATE, B, 41) buffer, so every state column ``out[..., i]`` is a
    C-contiguous (B, 41) plane (what :class:`EgoPose` and the metrics read without a copy); copy
    it if a C-contiguous (B, 41, N_STATE) array is needed."""
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
    if not (np.all(np.isfinite(v0)) and np.all(np.isfinite(a0))):
        raise ConfigError("initial speed and accel must be finite")
    steer = np.array(_initial_steer(v0, steer_rad, yaw_rate_radps, p), dtype=np.float64)
    gain_at = _GainTable.build(cfg)
    dt = cfg.dt_s
    a_lo, a_hi = cfg.accel_limits_mps2
    consts = np.empty(N_CONSTS)
    consts[C_DT_S] = dt
    consts[C_WHEELBASE_M] = p.wheelbase_m
    consts[C_REAR_TO_CENTER_M] = p.rear_axle_to_center_m
    consts[C_STEER_GAIN_S] = dt / lag_factor(dt, p.tau_steer_s)
    consts[C_STEER_LAG] = lag_factor(dt, p.tau_steer_s)
    consts[C_ACCEL_LAG] = lag_factor(dt, p.tau_accel_s)
    consts[C_MAX_STEER_DELTA_RAD] = p.max_steer_rate_radps * dt
    consts[C_LAG_PREVIEW] = min(p.tau_accel_s / dt, 1.0)
    consts[C_ACCEL_MIN_MPS2] = a_lo
    consts[C_ACCEL_MAX_MPS2] = a_hi
    consts[C_SPEED_GAIN_PER_S] = cfg.speed_gain_per_s
    consts[C_STATION_GAIN_PER_S2] = cfg.station_gain_per_s2
    consts[C_STOP_SPEED_MPS] = cfg.stop_speed_mps
    consts[C_STOP_GAIN_PER_S] = cfg.stop_gain_per_s
    consts[C_MAX_STEER_RAD] = p.max_steer_rad
    consts[C_MAX_REVERSE_SPEED_MPS] = p.max_reverse_speed_mps
    consts[C_TOP_SPEED_MPS] = p.top_speed_mps
    out = np.empty((N_STATE, bsz, NUM_POSES))
    d_rear = p.rear_axle_to_center_m
    origin = (  # float32 search origin: the mean initial rear axle [m]
        np.array(
            [
                (ref[:, 0, 0] - d_rear * np.cos(ref[:, 0, 2])).mean(),
                (ref[:, 0, 1] - d_rear * np.sin(ref[:, 0, 2])).mean(),
            ]
        )
        if bsz
        else np.zeros(2)
    )
    _rollout_kernel(
        np.ascontiguousarray(ref),
        np.ascontiguousarray(v0),
        np.ascontiguousarray(a0),
        steer,
        origin,
        gain_at.bins,
        gain_at.gains,
        gain_at.uniform,
        consts,
        out,
    )
    if not np.all(np.isfinite(out)):
        raise ConfigError("LQR rollout produced non-finite states; check the reference poses")
    return out.transpose(1, 2, 0)  # (B, 41, N_STATE) view: each state column is contiguous


@njit
def _gain(bins: Array, g: Array, row: int, v: float, uniform: bool, pos: float, i: int) -> float:
    """Gain ``row`` at speed ``v``: uniform bins use the precomputed ``pos``/``i``, else
    ``np.interp``."""
    if uniform:
        return g[row, i] + (pos - i) * (g[row, i + 1] - g[row, i])
    return np.interp(v, bins, g[row])


@njit
def _rollout_kernel(  # noqa: PLR0913, PLR0915
    ref: Array,
    v0: Array,
    a0: Array,
    steer0: Array,
    origin: Array,
    bins: Array,
    gains: Array,
    uniform: bool,
    c: Array,
    out: Array,
) -> None:
    """One batch element at a time: the rear-axle reference path of candidate ``b`` of ``ref``
    (B, 41, 3) - points, chord headings (the pose yaw where a chord is shorter than
    MIN_HEADING_SEGMENT_M), curvature, speed and finite-difference accel - kept in per-candidate
    scratch rows, so one candidate's 40 steps stay in L1, then its 40 tracking steps, written to
    the column-major states ``out`` (N_STATE, B, 41). ``origin`` (2,) is the float32 search origin
    [m]; ``c`` (N_CONSTS,) the scalars, indexed by the C_* slots."""
    dt, wb, d_rear = c[C_DT_S], c[C_WHEELBASE_M], c[C_REAR_TO_CENTER_M]
    steer_gain, steer_lag, accel_lag = c[C_STEER_GAIN_S], c[C_STEER_LAG], c[C_ACCEL_LAG]
    max_delta, lag_preview = c[C_MAX_STEER_DELTA_RAD], c[C_LAG_PREVIEW]
    a_lo, a_hi = c[C_ACCEL_MIN_MPS2], c[C_ACCEL_MAX_MPS2]
    k_speed, k_station = c[C_SPEED_GAIN_PER_S], c[C_STATION_GAIN_PER_S2]
    stop_speed, stop_gain = c[C_STOP_SPEED_MPS], c[C_STOP_GAIN_PER_S]
    max_steer, max_rev, top_speed = (
        c[C_MAX_STEER_RAD],
        c[C_MAX_REVERSE_SPEED_MPS],
        c[C_TOP_SPEED_MPS],
    )
    limit_delta = math.isfinite(max_delta)
    n_p = NUM_POSES
    n_s = n_p - 1
    n_bins = bins.shape[0]
    last = n_bins - 1
    bin_step = bins[1] - bins[0] if n_bins > 1 else 1.0
    o0, o1 = origin[0], origin[1]
    px, py = np.empty(n_p), np.empty(n_p)  # rear-axle points [m]
    cx, cy, inv_len2 = np.empty(n_s), np.empty(n_s), np.empty(n_s)
    seg, theta = np.empty(n_s), np.empty(n_s)
    moving = np.empty(n_s, np.bool_)
    path_yaw, path_kappa = np.empty(n_p), np.empty(n_p)
    v_path, a_path = np.empty(n_p), np.empty(n_p)
    turn, inner_kappa = np.empty(n_s - 1), np.empty(n_s - 1)
    sx32, sy32 = np.empty(n_s, np.float32), np.empty(n_s, np.float32)
    scx32, scy32 = np.empty(n_s, np.float32), np.empty(n_s, np.float32)
    sinv32 = np.empty(n_s, np.float32)
    dist32 = np.empty(n_s, np.float32)
    for b in range(v0.shape[0]):
        # rear-axle reference path
        for k in range(n_p):
            yaw_k = ref[b, k, 2]
            px[k] = ref[b, k, 0] - d_rear * np.cos(yaw_k)
            py[k] = ref[b, k, 1] - d_rear * np.sin(yaw_k)
        for k in range(n_s):
            cx[k] = px[k + 1] - px[k]
            cy[k] = py[k + 1] - py[k]
            seg[k] = np.hypot(cx[k], cy[k])
            moving[k] = seg[k] > MIN_HEADING_SEGMENT_M
            theta[k] = np.arctan2(cy[k], cx[k]) if moving[k] else ref[b, k, 2]
            inv_len2[k] = 1.0 / max(seg[k] * seg[k], MIN_SEGMENT_M**2)
            sx32[k] = np.float32(px[k] - o0)
            sy32[k] = np.float32(py[k] - o1)
            scx32[k] = np.float32(cx[k])
            scy32[k] = np.float32(cy[k])
            sinv32[k] = np.float32(inv_len2[k])
        for k in range(n_s - 1):
            turn[k] = wrap_angle_scalar(theta[k + 1] - theta[k])
            if moving[k + 1] and moving[k]:
                inner_kappa[k] = turn[k] / max(0.5 * (seg[k + 1] + seg[k]), MIN_HEADING_SEGMENT_M)
            else:
                inner_kappa[k] = 0.0
            path_yaw[k + 1] = theta[k] + 0.5 * turn[k]
            path_kappa[k + 1] = inner_kappa[k]
        path_yaw[0] = theta[0] - 0.5 * turn[0]
        path_yaw[n_p - 1] = theta[n_s - 1] + 0.5 * turn[n_s - 2]
        path_kappa[0] = inner_kappa[0]
        path_kappa[n_p - 1] = inner_kappa[n_s - 2]
        v_path[0] = 1.5 * (seg[0] / dt) - 0.5 * (seg[1] / dt)
        for k in range(1, n_s):
            v_path[k] = 0.5 * (seg[k] / dt + seg[k - 1] / dt)
        v_path[n_p - 1] = 1.5 * (seg[n_s - 1] / dt) - 0.5 * (seg[n_s - 2] / dt)
        for k in range(n_p):
            v_path[k] = max(v_path[k], 0.0)
        a_path[0] = (v_path[1] - v_path[0]) / dt  # np.gradient: one-sided ends
        for k in range(1, n_s):
            a_path[k] = (v_path[k + 1] - v_path[k - 1]) / (2.0 * dt)
        a_path[n_p - 1] = (v_path[n_p - 1] - v_path[n_p - 2]) / dt
        # tracking
        x, y, yaw = ref[b, 0, 0], ref[b, 0, 1], ref[b, 0, 2]
        speed, accel, steer = v0[b], a0[b], steer0[b]
        cos_yaw, sin_yaw = np.cos(yaw), np.sin(yaw)
        tan_steer = np.tan(steer)
        out[0, b, 0] = x
        out[1, b, 0] = y
        out[2, b, 0] = yaw
        out[3, b, 0] = speed
        out[4, b, 0] = accel
        out[5, b, 0] = steer
        out[6, b, 0] = speed * tan_steer / wb
        for k in range(n_s):
            rear_x = x - d_rear * cos_yaw
            rear_y = y - d_rear * sin_yaw
            # nearest segment: float32 search from SEARCH_BEHIND behind to SEARCH_AHEAD ahead of
            # step k (half the memory traffic), first minimum wins; then the float64 foot
            lo = max(0, k - SEARCH_BEHIND)
            hi = min(n_s, k + SEARCH_AHEAD)
            qx = np.float32(rear_x - o0)
            qy = np.float32(rear_y - o1)
            for s in range(lo, hi):  # branch-free, so LLVM vectorises it
                rx = qx - sx32[s]
                ry = qy - sy32[s]
                u = rx * scx32[s]
                u += ry * scy32[s]
                u *= sinv32[s]
                u = min(max(u, np.float32(0.0)), np.float32(1.0))
                rx -= u * scx32[s]
                ry -= u * scy32[s]
                d2 = rx * rx
                d2 += ry * ry
                dist32[s] = d2
            j = lo
            for s in range(lo + 1, hi):
                if dist32[s] < dist32[j]:
                    j = s
            ox, oy = rear_x - px[j], rear_y - py[j]
            uj = min(max((ox * cx[j] + oy * cy[j]) * inv_len2[j], 0.0), 1.0)
            oxj, oyj = ox - uj * cx[j], oy - uj * cy[j]
            ref_yaw = path_yaw[j] + uj * wrap_angle_scalar(path_yaw[j + 1] - path_yaw[j])
            kappa = path_kappa[j] + uj * (path_kappa[j + 1] - path_kappa[j])
            e_lat = -np.sin(ref_yaw) * oxj + np.cos(ref_yaw) * oyj
            e_yaw = wrap_angle_scalar(yaw - ref_yaw)
            e_station = cos_yaw * (px[k] - rear_x) + sin_yaw * (py[k] - rear_y)
            # longitudinal
            v_ref = v_path[k]
            if v_ref < stop_speed:
                a_cmd = -stop_gain * speed
            else:
                a_cmd = (
                    a_path[k]
                    + lag_preview * (a_path[k + 1] - a_path[k])
                    + k_speed * (v_ref - speed)
                    + k_station * e_station
                )
            a_cmd = min(max(a_cmd, a_lo), a_hi)
            # lateral
            v_abs = abs(speed)
            pos = min(max((v_abs - bins[0]) / bin_step, 0.0), float(last))
            i = min(int(pos), last - 1)
            k_lat = _gain(bins, gains, 0, v_abs, uniform, pos, i)
            k_yaw = _gain(bins, gains, 1, v_abs, uniform, pos, i)
            k_steer = _gain(bins, gains, 2, v_abs, uniform, pos, i)
            steer_ff = np.arctan(wb * kappa)
            steer_rate = -(k_lat * e_lat + k_yaw * e_yaw + k_steer * (steer - steer_ff))
            steer_cmd = min(max(steer + steer_rate * steer_gain, -max_steer), max_steer)
            # bicycle step (bicycle.step with reverse=False)
            accel = accel + accel_lag * (a_cmd - accel)
            d_steer = steer_lag * (steer_cmd - steer)
            if limit_delta:
                d_steer = min(max(d_steer, -max_delta), max_delta)
            steer = min(max(steer + d_steer, -max_steer), max_steer)
            v1 = speed + accel * dt
            held = (np.sign(v1) != np.sign(speed)) if speed != 0.0 else v1 < 0.0
            if held:
                v1 = 0.0
                accel = 0.0
            v1 = min(max(v1, -max_rev), top_speed)
            ds = 0.5 * (speed + v1) * dt
            tan_steer = np.tan(steer)
            dyaw = ds * tan_steer / wb
            # exact circular arc; the headings at mid-step and step end are rotations of the
            # current one by half the turn (angle addition: 2 trig calls instead of 5, equal to
            # the NumPy path's direct cos / sin to rounding)
            half = 0.5 * dyaw
            s_h, c_h = np.sin(half), np.cos(half)
            chord = ds if half == 0.0 else ds * (s_h / half)
            cos_mid, sin_mid = cos_yaw * c_h - sin_yaw * s_h, sin_yaw * c_h + cos_yaw * s_h
            cos_new, sin_new = cos_mid * c_h - sin_mid * s_h, sin_mid * c_h + cos_mid * s_h
            x = x + chord * cos_mid + d_rear * (cos_new - cos_yaw)
            y = y + chord * sin_mid + d_rear * (sin_new - sin_yaw)
            yaw, cos_yaw, sin_yaw, speed = wrap_angle_scalar(yaw + dyaw), cos_new, sin_new, v1
            out[0, b, k + 1] = x
            out[1, b, k + 1] = y
            out[2, b, k + 1] = yaw
            out[3, b, k + 1] = speed
            out[4, b, k + 1] = accel
            out[5, b, k + 1] = steer
            out[6, b, k + 1] = speed * tan_steer / wb


@dataclass(frozen=True)
class _GainTable:
    """Lateral gains (S, 3) on the speed bins, interpolated linearly in |speed| and clamped at the
    ends (``np.interp``'s semantics); uniform bins take an O(1) index instead of a search."""

    bins: Array
    gains: Array
    uniform: bool

    @classmethod
    def build(cls, cfg: LQRConfig) -> _GainTable:
        bins = np.asarray(cfg.gain_speeds_mps, dtype=np.float64)
        step_ = np.diff(bins)
        uniform = bins.size >= 2 and bool(np.allclose(step_, step_[0], rtol=1e-9, atol=1e-12))
        return cls(bins=bins, gains=np.ascontiguousarray(lateral_gains(cfg).T), uniform=uniform)


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
