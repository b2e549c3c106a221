"""Test oracle: the LQR + bicycle rollout of :mod:`harness.dynamics.lqr` vectorised over the batch
in NumPy. :func:`harness.dynamics.lqr.lqr_rollout` runs the same maths in one numba kernel (the
product path); tests check the two agree to ~1e-9. Not imported by production code."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from harness.dynamics.bicycle import lag_factor
from harness.dynamics.lqr import (
    MIN_HEADING_SEGMENT_M,
    MIN_SEGMENT_M,
    N_STATE,
    NUM_POSES,
    SEARCH_AHEAD,
    SEARCH_BEHIND,
    LQRConfig,
    _GainTable,
    _initial_steer,
)
from harness.dynamics.vehicle import VehicleParams
from harness.errors import ConfigError
from harness.geometry import wrap_angle

Array = NDArray[np.float64]


def lqr_rollout_numpy(
    reference_poses: ArrayLike,
    speed_mps: ArrayLike,
    accel_mps2: ArrayLike = 0.0,
    steer_rad: ArrayLike | None = None,
    yaw_rate_radps: ArrayLike | None = None,
    config: LQRConfig | None = None,
) -> Array:
    """:func:`harness.dynamics.lqr.lqr_rollout` vectorised over the batch: track
    ``reference_poses`` (B, 41, 3) [x, y, yaw] (box centres, world frame, 0.1 s apart, index 0 =
    the initial pose) from initial speed / accel / steer (B,) and return the simulated states
    (B, 41, N_STATE) indexed by :class:`harness.dynamics.lqr.StateIndex`. Without ``steer_rad``,
    the initial steer follows from ``yaw_rate_radps`` (or is 0).

    The loop body is a few dozen (B,) float64 ops on time-major (41, B) arrays; the bicycle
    update is :func:`harness.dynamics.bicycle.step`'s maths inlined (``reverse=False``) and the
    gain lookup :func:`gains_at`. The result is a view of an (N_STATE, 41, B) buffer."""
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
    x, y, yaw = ref[:, 0, 0].copy(), ref[:, 0, 1].copy(), ref[:, 0, 2].copy()
    speed, accel = v0.copy(), a0.copy()

    track = Reference.build(ref, p, cfg.dt_s)
    table = _GainTable.build(cfg)
    dt, wb, d_rear = cfg.dt_s, p.wheelbase_m, p.rear_axle_to_center_m
    steer_gain = dt / lag_factor(dt, p.tau_steer_s)  # lag-compensated steer target per rate
    steer_lag, accel_lag = lag_factor(dt, p.tau_steer_s), lag_factor(dt, p.tau_accel_s)
    max_delta = p.max_steer_rate_radps * dt
    lag_preview = min(p.tau_accel_s / dt, 1.0)  # feed-forward accel read tau_accel ahead
    a_lo, a_hi = cfg.accel_limits_mps2
    out = np.empty((N_STATE, NUM_POSES, bsz))  # time-major while rolling out
    cos_yaw, sin_yaw = np.cos(yaw), np.sin(yaw)
    tan_steer = np.tan(steer)
    _record(out, 0, (x, y, yaw, speed, accel, steer, speed * tan_steer / wb))
    for k in range(NUM_POSES - 1):
        rear_x, rear_y = x - d_rear * cos_yaw, y - d_rear * sin_yaw
        e_lat, ref_yaw, kappa = track.nearest(rear_x, rear_y, k)
        e_yaw = wrap_angle(yaw - ref_yaw)
        e_station = cos_yaw * (track.x_t[k] - rear_x) + sin_yaw * (track.y_t[k] - rear_y)
        # longitudinal
        v_ref = track.speed_t[k]
        a_ref0, a_ref1 = track.accel_t[k], track.accel_t[k + 1]
        a_cmd = (
            a_ref0
            + lag_preview * (a_ref1 - a_ref0)
            + cfg.speed_gain_per_s * (v_ref - speed)
            + cfg.station_gain_per_s2 * e_station
        )
        a_cmd = np.where(v_ref < cfg.stop_speed_mps, -cfg.stop_gain_per_s * speed, a_cmd)
        np.clip(a_cmd, a_lo, a_hi, out=a_cmd)
        # lateral
        k_lat, k_yaw, k_steer = gains_at(table, np.abs(speed))
        steer_ff = np.arctan(wb * kappa)
        steer_rate = -(k_lat * e_lat + k_yaw * e_yaw + k_steer * (steer - steer_ff))
        steer_cmd = np.clip(steer + steer_rate * steer_gain, -p.max_steer_rad, p.max_steer_rad)
        # bicycle step (bicycle.step with reverse=False)
        accel = accel + accel_lag * (a_cmd - accel)
        d_steer = steer_lag * (steer_cmd - steer)
        if math.isfinite(max_delta):
            d_steer = np.clip(d_steer, -max_delta, max_delta)
        steer = np.clip(steer + d_steer, -p.max_steer_rad, p.max_steer_rad)
        v1 = speed + accel * dt
        held = ((speed != 0.0) & (np.sign(v1) != np.sign(speed))) | ((speed == 0.0) & (v1 < 0.0))
        v1 = np.clip(np.where(held, 0.0, v1), -p.max_reverse_speed_mps, p.top_speed_mps)
        accel = np.where(held, 0.0, accel)
        ds = 0.5 * (speed + v1) * dt
        tan_steer = np.tan(steer)
        dyaw = ds * tan_steer / wb
        chord = ds * np.sinc(dyaw / (2.0 * np.pi))  # exact circular arc
        mid = yaw + 0.5 * dyaw
        new_yaw = yaw + dyaw
        cos_new, sin_new = np.cos(new_yaw), np.sin(new_yaw)
        x = x + chord * np.cos(mid) + d_rear * (cos_new - cos_yaw)
        y = y + chord * np.sin(mid) + d_rear * (sin_new - sin_yaw)
        yaw, cos_yaw, sin_yaw, speed = wrap_angle(new_yaw), cos_new, sin_new, v1
        _record(out, k + 1, (x, y, yaw, speed, accel, steer, speed * tan_steer / wb))
    if not np.all(np.isfinite(out)):
        raise ConfigError("LQR rollout produced non-finite states; check the reference poses")
    return out.transpose(2, 1, 0)  # (B, 41, N_STATE) view: each state column is contiguous


def gains_at(table: _GainTable, v_abs: Array) -> tuple[Array, Array, Array]:
    """(k_lat, k_yaw, k_steer) each (B,) of the lateral gain ``table`` at speeds (B,) [m/s]
    (the kernel's ``_gain``, vectorised)."""
    g = table.gains
    if not table.uniform:
        return (
            np.interp(v_abs, table.bins, g[0]),
            np.interp(v_abs, table.bins, g[1]),
            np.interp(v_abs, table.bins, g[2]),
        )
    last = table.bins.size - 1
    pos = np.clip((v_abs - table.bins[0]) / (table.bins[1] - table.bins[0]), 0.0, last)
    i = np.minimum(pos.astype(np.intp), last - 1)
    f = pos - i
    return (
        g[0, i] + f * (g[0, i + 1] - g[0, i]),
        g[1, i] + f * (g[1, i + 1] - g[1, i]),
        g[2, i] + f * (g[2, i + 1] - g[2, i]),
    )


def _record(out: Array, k: int, values: tuple[Array, ...]) -> None:
    """Write time index ``k`` of the time-major rollout buffer (N_STATE, 41, B), values in
    :class:`StateIndex` order."""
    for col, v in enumerate(values):
        out[col, k] = v


@dataclass(frozen=True)
class Reference:
    """Precomputed rear-axle reference path, time-major so each step reads contiguous rows:
    points ``x_t``/``y_t`` (41, B) [m], chords ``cx_t``/``cy_t`` (40, B) and their inverse squared
    lengths ``inv_len2_t`` (40, B), path heading ``yaw_t`` and curvature ``kappa_t`` at the points
    (41, B) [rad, 1/m], speed ``speed_t`` at the poses' times (41, B) [m/s] from the chords and its
    finite-difference accel ``accel_t`` (41, B) [m/s2]. The nearest-segment search runs in
    float32 on ``search`` (5, 40, B) = [x, y, chord x, chord y, inverse squared length] relative to
    ``origin`` (2,) [m] (half the memory traffic; ties within float32 precision pick segments whose
    feet coincide to ~1e-6 m), then the foot on the chosen segment is recomputed in float64;
    ``columns`` = arange(B), ``work`` preallocated float32 scratch rows."""

    x_t: Array
    y_t: Array
    cx_t: Array
    cy_t: Array
    inv_len2_t: Array
    yaw_t: Array
    kappa_t: Array
    speed_t: Array
    accel_t: Array
    origin: Array
    search: NDArray[np.float32]
    columns: NDArray[np.intp]
    work: tuple[NDArray[np.float32], ...]

    @classmethod
    def build(cls, ref: Array, p: VehicleParams, dt_s: float) -> Reference:
        """Rear-axle points from the box-centre poses; headings and curvature from the chords of
        that path (pose yaw where a chord is too short to define a direction)."""
        pose = np.ascontiguousarray(ref.transpose(2, 1, 0))  # (3, 41, B) time-major
        pose_yaw = pose[2]
        d = p.rear_axle_to_center_m
        x = pose[0] - d * np.cos(pose_yaw)
        y = pose[1] - d * np.sin(pose_yaw)
        cx, cy = np.diff(x, axis=0), np.diff(y, axis=0)  # (40, B)
        seg = np.hypot(cx, cy)
        moving = seg > MIN_HEADING_SEGMENT_M
        theta = np.where(moving, np.arctan2(cy, cx), pose_yaw[:-1])
        turn = wrap_angle(np.diff(theta, axis=0))  # (39, B) at interior points
        both = moving[1:] & moving[:-1]
        inner_kappa = np.where(
            both, turn / np.maximum(0.5 * (seg[1:] + seg[:-1]), MIN_HEADING_SEGMENT_M), 0.0
        )
        yaw = np.concatenate(
            [theta[:1] - 0.5 * turn[:1], theta[:-1] + 0.5 * turn, theta[-1:] + 0.5 * turn[-1:]]
        )
        kappa = np.concatenate([inner_kappa[:1], inner_kappa, inner_kappa[-1:]])
        seg_speed = seg / dt_s  # average over [t_k, t_k+1]
        speed = np.concatenate(
            [
                1.5 * seg_speed[:1] - 0.5 * seg_speed[1:2],
                0.5 * (seg_speed[1:] + seg_speed[:-1]),
                1.5 * seg_speed[-1:] - 0.5 * seg_speed[-2:-1],
            ]
        )
        speed = np.maximum(speed, 0.0)
        inv_len2 = 1.0 / np.maximum(seg * seg, MIN_SEGMENT_M**2)
        origin = np.array([x[0].mean(), y[0].mean()]) if x.size else np.zeros(2)
        return cls(
            x_t=x,
            y_t=y,
            cx_t=cx,
            cy_t=cy,
            inv_len2_t=inv_len2,
            yaw_t=yaw,
            kappa_t=kappa,
            speed_t=speed,
            accel_t=np.gradient(speed, dt_s, axis=0),
            origin=origin,
            search=np.stack([x[:-1] - origin[0], y[:-1] - origin[1], cx, cy, inv_len2]).astype(
                np.float32
            ),
            columns=np.arange(ref.shape[0]),
            work=tuple(
                np.empty((SEARCH_BEHIND + SEARCH_AHEAD, ref.shape[0]), np.float32) for _ in range(5)
            ),
        )

    def nearest(self, rear_x: Array, rear_y: Array, k: int) -> tuple[Array, Array, Array]:
        """Lateral error [m] (+ = CARLA right of the path), path heading [rad] and curvature
        [1/m] at the point of the path nearest to the rear axle (B,), searched over the segments
        SEARCH_BEHIND behind to SEARCH_AHEAD ahead of time index ``k``."""
        lo, hi = max(0, k - SEARCH_BEHIND), min(NUM_POSES - 1, k + SEARCH_AHEAD)
        n = hi - lo
        sx, sy = self.search[2, lo:hi], self.search[3, lo:hi]  # (S, B) float32 rows
        rx, ry, u, tmp, d2 = (w[:n] for w in self.work)
        np.subtract((rear_x - self.origin[0]).astype(np.float32), self.search[0, lo:hi], out=rx)
        np.subtract((rear_y - self.origin[1]).astype(np.float32), self.search[1, lo:hi], out=ry)
        np.multiply(rx, sx, out=u)
        np.multiply(ry, sy, out=tmp)
        u += tmp
        u *= self.search[4, lo:hi]
        np.clip(u, 0.0, 1.0, out=u)
        np.multiply(u, sx, out=tmp)  # foot of the perpendicular -> rear axle
        rx -= tmp
        np.multiply(u, sy, out=tmp)
        ry -= tmp
        np.multiply(rx, rx, out=d2)
        np.multiply(ry, ry, out=tmp)
        d2 += tmp
        bsz = rear_x.shape[0]
        flat = np.argmin(d2, axis=0) * bsz + self.columns
        flat += lo * bsz
        # exact float64 foot on the selected segment
        x0, y0 = self.x_t.ravel()[flat], self.y_t.ravel()[flat]
        cx, cy = self.cx_t.ravel()[flat], self.cy_t.ravel()[flat]
        ox, oy = rear_x - x0, rear_y - y0
        uj = np.clip((ox * cx + oy * cy) * self.inv_len2_t.ravel()[flat], 0.0, 1.0)
        oxj, oyj = ox - uj * cx, oy - uj * cy
        yaw_flat, kappa_flat = self.yaw_t.ravel(), self.kappa_t.ravel()
        yaw0, k0 = yaw_flat[flat], kappa_flat[flat]
        flat += bsz
        ref_yaw = yaw0 + uj * wrap_angle(yaw_flat[flat] - yaw0)
        kappa = k0 + uj * (kappa_flat[flat] - k0)
        e_lat = -np.sin(ref_yaw) * oxj + np.cos(ref_yaw) * oyj
        return e_lat, ref_yaw, kappa
