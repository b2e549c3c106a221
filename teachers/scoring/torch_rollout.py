"""Torch port of :func:`harness.dynamics.lqr.lqr_rollout` (LQR + kinematic bicycle, 10 Hz), so
the whole scoring pipeline can run on a caller-chosen device (``'cpu'`` or ``'cuda'``) without
host round trips.

Same maths as the NumPy rollout (see that module for the model); differences: the gain table is
interpolated with ``torch.searchsorted`` (``np.interp`` semantics, any bins) and the
nearest-segment search runs in the working dtype (float64 reproduces NumPy to ~1e-6 m, float32 to
float32 rounding). The reference search window is the same (SEARCH_BEHIND / SEARCH_AHEAD)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from harness.dynamics.bicycle import lag_factor
from harness.dynamics.lqr import (
    MIN_HEADING_SEGMENT_M,
    MIN_SEGMENT_M,
    N_STATE,
    NUM_POSES,
    SEARCH_AHEAD,
    SEARCH_BEHIND,
    LQRConfig,
    lateral_gains,
)

TWO_PI = 2.0 * math.pi


def wrap(a: Tensor) -> Tensor:
    """Angles wrapped to [-pi, pi) (the formula of :func:`harness.geometry.wrap_angle`)."""
    return torch.remainder(a + math.pi, TWO_PI) - math.pi


def initial_steer(speed: Tensor, yaw_rate: Tensor, wheelbase_m: float, max_steer: float) -> Tensor:
    """Initial road-wheel angle (B,) from the yaw rate where moving (> 0.1 m/s), else 0."""
    moving = speed.abs() > 0.1
    steer = torch.where(
        moving,
        torch.atan(wheelbase_m * yaw_rate / torch.where(moving, speed, torch.ones_like(speed))),
        torch.zeros_like(speed),
    )
    return steer.clamp(-max_steer, max_steer)


def lqr_rollout_torch(
    plan: Tensor, speed: Tensor, accel: Tensor, yaw_rate: Tensor, config: LQRConfig
) -> Tensor:
    """States (B, 41, N_STATE) [StateIndex columns] tracking ``plan`` (B, 41, 3) from initial
    speed / accel / yaw rate (B,), all tensors on one device and dtype."""
    cfg, p = config, config.params
    dt, wb, d_rear = cfg.dt_s, p.wheelbase_m, p.rear_axle_to_center_m
    bsz, dev, dt_ = plan.shape[0], plan.device, plan.dtype
    pose = plan.permute(2, 1, 0).contiguous()  # (3, 41, B)
    pyaw = pose[2]
    rx_ref = pose[0] - d_rear * torch.cos(pyaw)
    ry_ref = pose[1] - d_rear * torch.sin(pyaw)
    cx, cy = rx_ref[1:] - rx_ref[:-1], ry_ref[1:] - ry_ref[:-1]  # (40, B)
    seg = torch.hypot(cx, cy)
    moving = seg > MIN_HEADING_SEGMENT_M
    theta = torch.where(moving, torch.atan2(cy, cx), pyaw[:-1])
    turn = wrap(theta[1:] - theta[:-1])
    both = moving[1:] & moving[:-1]
    inner = torch.where(
        both, turn / torch.clamp(0.5 * (seg[1:] + seg[:-1]), min=MIN_HEADING_SEGMENT_M), 0.0
    )
    ref_yaw_t = torch.cat(
        [theta[:1] - 0.5 * turn[:1], theta[:-1] + 0.5 * turn, theta[-1:] + 0.5 * turn[-1:]]
    )
    kappa_t = torch.cat([inner[:1], inner, inner[-1:]])
    ss = seg / dt
    v_t = torch.cat(
        [1.5 * ss[:1] - 0.5 * ss[1:2], 0.5 * (ss[1:] + ss[:-1]), 1.5 * ss[-1:] - 0.5 * ss[-2:-1]]
    ).clamp(min=0.0)
    a_t = torch.empty_like(v_t)  # np.gradient along time (2nd-order interior, 1st-order ends)
    a_t[1:-1] = (v_t[2:] - v_t[:-2]) / (2 * dt)
    a_t[0] = (v_t[1] - v_t[0]) / dt
    a_t[-1] = (v_t[-1] - v_t[-2]) / dt
    inv_len2 = 1.0 / torch.clamp(seg * seg, min=MIN_SEGMENT_M**2)

    bins = torch.tensor(cfg.gain_speeds_mps, device=dev, dtype=dt_)
    gains = torch.as_tensor(lateral_gains(cfg), device=dev, dtype=dt_)  # (S, 3)
    steer_lag, accel_lag = lag_factor(dt, p.tau_steer_s), lag_factor(dt, p.tau_accel_s)
    lag_preview = min(p.tau_accel_s / dt, 1.0)
    max_delta = p.max_steer_rate_radps * dt
    a_lo, a_hi = cfg.accel_limits_mps2

    x, y, yaw = plan[:, 0, 0].clone(), plan[:, 0, 1].clone(), plan[:, 0, 2].clone()
    v, acc = speed.clone(), accel.clone()
    steer = initial_steer(v, yaw_rate, wb, p.max_steer_rad)
    out = torch.empty((N_STATE, NUM_POSES, bsz), device=dev, dtype=dt_)
    cos_y, sin_y, tan_s = torch.cos(yaw), torch.sin(yaw), torch.tan(steer)
    cols = torch.arange(bsz, device=dev)

    def record(k: int) -> None:
        out[:, k] = torch.stack([x, y, yaw, v, acc, steer, v * tan_s / wb])

    record(0)
    for k in range(NUM_POSES - 1):
        rear_x, rear_y = x - d_rear * cos_y, y - d_rear * sin_y
        lo, hi = max(0, k - SEARCH_BEHIND), min(NUM_POSES - 1, k + SEARCH_AHEAD)
        sx, sy = cx[lo:hi], cy[lo:hi]
        ox, oy = rear_x - rx_ref[lo:hi], rear_y - ry_ref[lo:hi]
        u = ((ox * sx + oy * sy) * inv_len2[lo:hi]).clamp(0.0, 1.0)
        ox, oy = ox - u * sx, oy - u * sy
        j = torch.argmin(ox * ox + oy * oy, dim=0)
        uj, oxj, oyj = u[j, cols], ox[j, cols], oy[j, cols]
        i0 = lo + j
        yaw0, k0 = ref_yaw_t[i0, cols], kappa_t[i0, cols]
        ref_yaw = yaw0 + uj * wrap(ref_yaw_t[i0 + 1, cols] - yaw0)
        kappa = k0 + uj * (kappa_t[i0 + 1, cols] - k0)
        e_lat = -torch.sin(ref_yaw) * oxj + torch.cos(ref_yaw) * oyj
        e_yaw = wrap(yaw - ref_yaw)
        e_station = cos_y * (rx_ref[k] - rear_x) + sin_y * (ry_ref[k] - rear_y)
        v_ref = v_t[k]
        a_cmd = (
            a_t[k]
            + lag_preview * (a_t[k + 1] - a_t[k])
            + cfg.speed_gain_per_s * (v_ref - v)
            + cfg.station_gain_per_s2 * e_station
        )
        a_cmd = torch.where(v_ref < cfg.stop_speed_mps, -cfg.stop_gain_per_s * v, a_cmd)
        a_cmd = a_cmd.clamp(a_lo, a_hi)
        va = v.abs()
        i = (torch.searchsorted(bins, va, right=True) - 1).clamp(0, bins.numel() - 2)
        f = ((va - bins[i]) / (bins[i + 1] - bins[i])).clamp(0.0, 1.0)
        kg = gains[i] + f[:, None] * (gains[i + 1] - gains[i])  # (B, 3)
        steer_ff = torch.atan(wb * kappa)
        rate = -(kg[:, 0] * e_lat + kg[:, 1] * e_yaw + kg[:, 2] * (steer - steer_ff))
        steer_cmd = (steer + rate * dt / steer_lag).clamp(-p.max_steer_rad, p.max_steer_rad)
        acc = acc + accel_lag * (a_cmd - acc)
        d_steer = steer_lag * (steer_cmd - steer)
        if math.isfinite(max_delta):
            d_steer = d_steer.clamp(-max_delta, max_delta)
        steer = (steer + d_steer).clamp(-p.max_steer_rad, p.max_steer_rad)
        v1 = v + acc * dt
        held = ((v != 0.0) & (torch.sign(v1) != torch.sign(v))) | ((v == 0.0) & (v1 < 0.0))
        v1 = torch.where(held, torch.zeros_like(v1), v1).clamp(
            -p.max_reverse_speed_mps, p.top_speed_mps
        )
        acc = torch.where(held, torch.zeros_like(acc), acc)
        ds = 0.5 * (v + v1) * dt
        tan_s = torch.tan(steer)
        dyaw = ds * tan_s / wb
        chord = ds * torch.sinc(dyaw / TWO_PI)
        mid = yaw + 0.5 * dyaw
        new_yaw = yaw + dyaw
        cos_n, sin_n = torch.cos(new_yaw), torch.sin(new_yaw)
        x = x + chord * torch.cos(mid) + d_rear * (cos_n - cos_y)
        y = y + chord * torch.sin(mid) + d_rear * (sin_n - sin_y)
        yaw, cos_y, sin_y, v = wrap(new_yaw), cos_n, sin_n, v1
        record(k + 1)
    return out.permute(2, 1, 0)
