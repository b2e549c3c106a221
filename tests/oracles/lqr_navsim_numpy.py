"""NumPy oracle of NAVSIM's rollout (:func:`teachers.rollout.navsim_rollout`), written the way
NAVSIM states the problem rather than the way the kernel solves it: the speed and curvature
profiles come from the least-squares problems in their original unknowns (initial value and
derivative sequence, solved with a pseudo-inverse), the lateral LQR builds its 10-step affine
model by 3x3 matrix products, and the bicycle is stepped vectorised over the batch."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from teachers import rollout as r

Float = NDArray[np.float64]


def _wrap(a: Float) -> Float:
    return (a + np.pi) % (2 * np.pi) - np.pi


def fit_profiles(rear: Float, dt: float) -> tuple[Float, Float]:
    """Speed and curvature profiles (B, M) of rear-axle poses (B, M + 1, 3)."""
    bsz, n, _ = rear.shape
    m = n - 1
    disp = np.diff(rear[..., :2], axis=1)  # (B, M, 2)
    dh = _wrap(np.diff(rear[..., 2], axis=1))
    head = rear[:, :-1, 2]
    # unknowns x = [v0, a_0 .. a_{M-2}]; displacement i = dt h_i (v0 + dt sum_{j < i} a_j)
    lower = np.tril(np.ones((m, m)))
    coef = np.zeros((m, m))
    coef[:, 0] = dt
    coef[:, 1:] = dt * dt * lower[:, 1:] * (np.arange(m)[:, None] >= np.arange(1, m)[None, :])
    a_mat = np.zeros((bsz, 2 * m, m))
    a_mat[:, 0::2] = np.cos(head)[..., None] * coef
    a_mat[:, 1::2] = np.sin(head)[..., None] * coef
    reg = np.zeros((m - 2, m))
    for i in range(m - 2):
        reg[i, i + 1], reg[i, i + 2] = -1.0, 1.0
    lhs = np.swapaxes(a_mat, 1, 2) @ a_mat + r.NAVSIM_JERK_PENALTY * reg.T @ reg
    x = np.einsum(
        "bij,bj->bi", np.linalg.pinv(lhs) @ np.swapaxes(a_mat, 1, 2), disp.reshape(bsz, -1)
    )
    vel = x[:, :1] + np.concatenate([np.zeros((bsz, 1)), np.cumsum(x[:, 1:] * dt, axis=1)], axis=1)
    # unknowns [k0, kr_0 .. kr_{M-2}]; heading change i = dt v_i (k0 + dt sum_{j < i} kr_j)
    c_mat = np.repeat(np.tri(m)[None], bsz, axis=0)
    c_mat[:, :, 0] = vel * dt
    c_mat[:, 1:, 1:] *= (vel[:, 1:] * dt * dt)[:, :, None]
    q = r.NAVSIM_CURVATURE_RATE_PENALTY * np.eye(m)
    q[0, 0] = r.NAVSIM_INITIAL_CURVATURE_PENALTY
    ct = np.swapaxes(c_mat, 1, 2)
    k = np.einsum("bij,bj->bi", np.linalg.pinv(ct @ c_mat + q) @ ct, dh)
    curv = k[:, :1] + np.concatenate([np.zeros((bsz, 1)), np.cumsum(k[:, 1:] * dt, axis=1)], axis=1)
    return vel, curv


def navsim_rollout_numpy(  # noqa: PLR0913
    plan: Float,
    speed_mps: float,
    accel_mps2: float,
    yaw_rate_radps: float,
    wheelbase_m: float,
    rear_axle_to_center_m: float,
    dt: float = 0.1,
) -> Float:
    """States (B, T, 7) [x, y, yaw, speed, accel, steer, yaw rate] (box centres)."""
    d, wb = rear_axle_to_center_m, wheelbase_m
    bsz, n, _ = plan.shape
    rear = plan.copy()
    rear[..., 0] -= d * np.cos(plan[..., 2])
    rear[..., 1] -= d * np.sin(plan[..., 2])
    vel, curv = fit_profiles(rear, dt)
    m, hz = n - 1, r.NAVSIM_HORIZON_STEPS
    steer0 = np.arctan(wb * yaw_rate_radps / speed_mps) if abs(speed_mps) > 0.1 else 0.0
    x, y, yaw = rear[:, 0, 0].copy(), rear[:, 0, 1].copy(), rear[:, 0, 2].copy()
    v = np.full(bsz, speed_mps)
    a = np.full(bsz, accel_mps2)
    st = np.full(bsz, np.clip(steer0, -np.pi / 3, np.pi / 3))
    om = np.full(bsz, yaw_rate_radps)
    out = np.zeros((bsz, n, 7))
    q = np.diag(r.NAVSIM_Q_LATERAL)
    for t in range(n):
        out[:, t] = np.stack([x + d * np.cos(yaw), y + d * np.sin(yaw), yaw, v, a, st, om], -1)
        if t == n - 1:
            break
        hr = rear[:, t, 2]
        e_lat = -(x - rear[:, t, 0]) * np.sin(hr) + (y - rear[:, t, 1]) * np.cos(hr)
        x0 = np.stack([e_lat, _wrap(yaw - hr), st], -1)
        ref = min(t + hz, m - 1)
        v_ref = vel[:, ref]
        stop = (v_ref <= r.NAVSIM_STOP_SPEED_MPS) & (v <= r.NAVSIM_STOP_SPEED_MPS)
        b_lon = hz * dt
        a_lqr = (
            -b_lon
            * r.NAVSIM_Q_LONGITUDINAL
            * (v - v_ref)
            / (b_lon * r.NAVSIM_Q_LONGITUDINAL * b_lon + r.NAVSIM_R_LONGITUDINAL)
        )
        a_cmd = np.where(stop, -r.NAVSIM_STOP_GAIN_PER_S * (v - v_ref), a_lqr)
        vk = v[:, None] + np.arange(hz)[None, :] * dt * a_cmd[:, None]
        kk = np.array([curv[:, min(t + k, ref)] for k in range(hz)]).T
        a_m = np.repeat(np.eye(3)[None], bsz, axis=0)
        b_m = np.zeros((bsz, 3))
        g = np.zeros((bsz, 3))
        for k in range(hz):
            step = np.repeat(np.eye(3)[None], bsz, axis=0)
            step[:, 0, 1] = vk[:, k] * dt
            step[:, 1, 2] = vk[:, k] * dt / wb
            a_m = step @ a_m
            b_m = np.einsum("bij,bj->bi", step, b_m) + np.array([0.0, 0.0, dt])
            g = np.einsum("bij,bj->bi", step, g) + np.stack(
                [np.zeros(bsz), -vk[:, k] * kk[:, k] * dt, np.zeros(bsz)], -1
            )
        z = np.einsum("bij,bj->bi", a_m, x0) + g
        z[:, 1:] = np.arctan2(np.sin(z[:, 1:]), np.cos(z[:, 1:]))
        bq = b_m @ q
        rate = -(bq * z).sum(-1) / ((bq * b_m).sum(-1) + r.NAVSIM_R_LATERAL)
        rate = np.where(stop, 0.0, rate)
        la = dt / (dt + r.NAVSIM_TAU_ACCEL_S)
        ls = dt / (dt + r.NAVSIM_TAU_STEER_S)
        a_new = la * (a_cmd - a) + a
        st_lag = ls * (dt * rate) + st
        rate_real = (st_lag - st) / dt
        x, y = x + v * np.cos(yaw) * dt, y + v * np.sin(yaw) * dt
        yaw = _wrap(yaw + v * np.tan(st) / wb * dt)
        v = v + a_new * dt
        st = np.clip(st + rate_real * dt, -np.pi / 3, np.pi / 3)
        om = v * np.tan(st) / wb
        a = a_new
    return out
