"""Candidate plans -> simulated ego states, through the NAVSIM-style LQR + kinematic bicycle.

A plan is (B, 40, 3) poses at t = 0.1 .. 4.0 s (the current pose is prepended) or (B, 41, 3)
including t = 0 (its first pose is replaced by the ego's actual pose, as NAVSIM starts every
simulation from the measured state). Box-centre poses, world frame."""

from __future__ import annotations

import functools
from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from harness.dynamics.lqr import (
    N_STATE,
    NAVSIM_BICYCLE,
    NUM_POSES,
    PDM_DT_S,
    LQRConfig,
    lqr_rollout,
)
from harness.errors import ConfigError
from harness.geometry import wrap_angle_scalar
from harness.jit import njit
from teachers.scene import MIN_MOVING_SPEED_MPS, Scene, states_from_poses

if TYPE_CHECKING:
    from teachers.scoring.profile import ScoringProfile

Float = NDArray[np.float64]


def _rollout_kind(profile: ScoringProfile | str | None) -> str:
    # imported here: teachers.scoring imports this module, so the profile registry (a leaf
    # module of that package) is read at call time
    from teachers.scoring.profile import get_profile

    return get_profile(profile).rollout


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


def rollout_candidates(
    scene: Scene,
    candidate_poses: ArrayLike,
    *,
    rollout: bool = True,
    profile: ScoringProfile | str | None = None,
) -> Float:
    """Simulated ego states (B, 41, N_STATE) for the candidates: tracked from the scene's ego
    speed / accel / yaw rate by the ``profile``'s rollout (NAVSIM's LQR + bicycle by default),
    or (``rollout=False``) the plan itself with finite-difference speeds, for plans that are
    already simulated states."""
    plan = full_plan(scene, candidate_poses)
    if not rollout:
        return states_from_poses(plan, wheelbase_m=scene.ego_wheelbase_m)
    if _rollout_kind(profile) == "navsim":
        return navsim_rollout(
            plan,
            scene.ego_speed_mps,
            scene.ego_accel_mps2,
            scene.ego_yaw_rate_radps,
            scene.ego_wheelbase_m,
            scene.ego_rear_axle_to_center_m,
        )
    return lqr_rollout(
        plan,
        scene.ego_speed_mps,
        scene.ego_accel_mps2,
        yaw_rate_radps=scene.ego_yaw_rate_radps,
        config=scene_lqr_config(scene),
    )


def rollout_previous_plan(
    scene: Scene, profile: ScoringProfile | str | None = None
) -> Float | None:
    """Simulated states (41, N_STATE) of the previous plan (from t-0.5 s), or None without one;
    its initial speed is the first chord's length / 0.1 s (the previous frame's ego state is
    not kept in the scene)."""
    if scene.previous_plan is None:
        return None
    plan = scene.previous_plan[None]
    cfg = scene_lqr_config(scene)
    speed0 = float(np.hypot(*(plan[0, 1, :2] - plan[0, 0, :2]))) / cfg.dt_s
    if _rollout_kind(profile) == "navsim":
        return navsim_rollout(
            plan, speed0, 0.0, 0.0, scene.ego_wheelbase_m, scene.ego_rear_axle_to_center_m
        )[0]
    return lqr_rollout(plan, speed0, config=cfg)[0]


# NAVSIM's batch LQR tracker and kinematic bicycle (navsim commit 0a380a9, REFERENCE.md 2a)
NAVSIM_HORIZON_STEPS = 10  # [-] lateral LQR look-ahead steps (1 s at 0.1 s)
NAVSIM_Q_LONGITUDINAL = 10.0  # [per (m/s)^2] speed error weight
NAVSIM_R_LONGITUDINAL = 1.0  # [per (m/s2)^2] accel weight
NAVSIM_Q_LATERAL = (1.0, 10.0, 0.0)  # [per m^2, per rad^2, per rad^2] lateral, heading, steer
NAVSIM_R_LATERAL = 1.0  # [per (rad/s)^2] steer-rate weight
NAVSIM_JERK_PENALTY = 1e-4  # [-] speed fit regulariser on accel differences
NAVSIM_CURVATURE_RATE_PENALTY = 1e-2  # [-] curvature fit regulariser on curvature rate
NAVSIM_INITIAL_CURVATURE_PENALTY = 1e-10  # [-] curvature fit regulariser on the first curvature
NAVSIM_STOP_GAIN_PER_S = 0.5  # [m/s2 per m/s] P-controller used when stopping
NAVSIM_STOP_SPEED_MPS = 0.2  # [m/s] reference and ego below this: stopping controller
NAVSIM_TAU_ACCEL_S = 0.2  # [s] first-order accel lag, factor dt / (dt + tau)
NAVSIM_TAU_STEER_S = 0.05  # [s] first-order steer lag
NAVSIM_MAX_STEER_RAD = np.pi / 3  # [rad]


@functools.lru_cache(maxsize=8)
def navsim_speed_smoother(n: int, dt_s: float) -> Float:
    """(n, n) matrix S with speeds = S @ p, p the plan's displacements along its headings / dt.

    NAVSIM fits (v0, a_0 .. a_{n-2}) by least squares to the displacements dt v_i h_i with a
    penalty on accel differences; written in the speeds v_i this is min |v - p|^2 +
    (jerk penalty / dt^4) |D2 v|^2 (D2 the second difference), one fixed matrix for all plans."""
    d2 = np.zeros((n - 2, n))
    for i in range(n - 2):
        d2[i, i : i + 3] = (1.0, -2.0, 1.0)
    inv = np.linalg.inv(np.eye(n) + NAVSIM_JERK_PENALTY / dt_s**4 * d2.T @ d2)
    return np.asarray(inv, dtype=np.float64)


def navsim_rollout(
    plan: ArrayLike,
    speed_mps: float,
    accel_mps2: float,
    yaw_rate_radps: float,
    wheelbase_m: float,
    rear_axle_to_center_m: float,
    dt_s: float = PDM_DT_S,
) -> Float:
    """NAVSIM's rollout of box-centre plans (B, 41, 3) from the ego's state: speed and curvature
    profiles fitted to the plan's rear-axle poses, then per step a one-step longitudinal LQR to
    the fitted speed 1 s ahead (P-controller when stopping) and a 10-step lateral LQR, driving
    an Euler kinematic bicycle with lags dt / (dt + tau). Returns states (B, 41, N_STATE) as a
    view of an (N_STATE, B, 41) buffer (box-centre poses). Numba kernel
    :func:`_navsim_kernel`; the NumPy oracle is ``tests/oracles/lqr_navsim_numpy.py``."""
    p = np.ascontiguousarray(plan, dtype=np.float64)
    bsz, n = p.shape[0], p.shape[1]
    d = rear_axle_to_center_m
    moving = abs(speed_mps) > MIN_MOVING_SPEED_MPS
    steer0 = float(np.arctan(wheelbase_m * yaw_rate_radps / speed_mps)) if moving else 0.0
    steer0 = float(np.clip(steer0, -NAVSIM_MAX_STEER_RAD, NAVSIM_MAX_STEER_RAD))
    init = np.array([speed_mps, accel_mps2, steer0, yaw_rate_radps], dtype=np.float64)
    consts = np.array([dt_s, wheelbase_m, d], dtype=np.float64)
    out = np.empty((N_STATE, bsz, n))
    _navsim_kernel(p, navsim_speed_smoother(n - 1, dt_s), init, consts, out)
    return out.transpose(1, 2, 0)


@njit
def _navsim_kernel(  # noqa: PLR0915
    plan: Float, smoother: Float, init: Float, consts: Float, out: Float
) -> None:
    """Fill ``out`` (N_STATE, B, T) with the NAVSIM rollout of box-centre plans ``plan``
    (B, T, 3), tracked at the rear axle; ``init`` = [speed, accel, steer, yaw rate] at t = 0,
    ``consts`` = [dt, wheelbase, rear axle to centre]."""
    dt, wb, d = consts[0], consts[1], consts[2]
    bsz, n_t = plan.shape[0], plan.shape[1]
    rear = np.empty((n_t, 3))
    m = n_t - 1
    horizon = NAVSIM_HORIZON_STEPS
    la = dt / (dt + NAVSIM_TAU_ACCEL_S)
    ls = dt / (dt + NAVSIM_TAU_STEER_S)
    q_lat, q_head = NAVSIM_Q_LATERAL[0], NAVSIM_Q_LATERAL[1]
    b_lon = horizon * dt
    lon_inv = -1.0 / (b_lon * NAVSIM_Q_LONGITUDINAL * b_lon + NAVSIM_R_LONGITUDINAL)
    mu = NAVSIM_CURVATURE_RATE_PENALTY / (dt * dt)
    p = np.empty(m)
    vel = np.empty(m)
    dh = np.empty(m)
    diag = np.empty(m)
    rhs = np.empty(m)
    cprime = np.empty(m)
    curv = np.empty(m)
    for b in range(bsz):
        for i in range(n_t):  # the plan's rear-axle poses
            h = plan[b, i, 2]
            rear[i, 0] = plan[b, i, 0] - d * np.cos(h)
            rear[i, 1] = plan[b, i, 1] - d * np.sin(h)
            rear[i, 2] = h
        # speed profile: the fixed smoother applied to the along-heading displacement speeds
        for i in range(m):
            h = rear[i, 2]
            p[i] = ((rear[i + 1, 0] - rear[i, 0]) * np.cos(h)
                    + (rear[i + 1, 1] - rear[i, 1]) * np.sin(h)) / dt  # fmt: skip
            dh[i] = wrap_angle_scalar(rear[i + 1, 2] - h)
        for i in range(m):
            acc = 0.0
            for j in range(m):
                acc += smoother[i, j] * p[j]
            vel[i] = acc
        # curvature profile: tridiagonal normal equations of min sum (dt v_i k_i - dh_i)^2
        # + 1e-10 k_0^2 + (1e-2 / dt^2) sum (k_{i+1} - k_i)^2 (Thomas algorithm)
        for i in range(m):
            w = dt * vel[i]
            diag[i] = w * w + (mu if i == 0 or i == m - 1 else 2.0 * mu)
            rhs[i] = w * dh[i]
        diag[0] += NAVSIM_INITIAL_CURVATURE_PENALTY
        cprime[0] = -mu / diag[0]
        curv[0] = rhs[0] / diag[0]
        for i in range(1, m):
            den = diag[i] + mu * cprime[i - 1]
            cprime[i] = -mu / den
            curv[i] = (rhs[i] + mu * curv[i - 1]) / den
        for i in range(m - 2, -1, -1):
            curv[i] -= cprime[i] * curv[i + 1]
        # simulation
        x, y, yaw = rear[0, 0], rear[0, 1], rear[0, 2]
        v, a, st, om = init[0], init[1], init[2], init[3]
        for t in range(n_t):
            out[0, b, t] = x + d * np.cos(yaw)
            out[1, b, t] = y + d * np.sin(yaw)
            out[2, b, t] = yaw
            out[3, b, t] = v
            out[4, b, t] = a
            out[5, b, t] = st
            out[6, b, t] = om
            if t == n_t - 1:
                break
            hr = rear[t, 2]
            ex = x - rear[t, 0]
            ey = y - rear[t, 1]
            e_lat = -ex * np.sin(hr) + ey * np.cos(hr)
            e_head = wrap_angle_scalar(yaw - hr)
            ref = min(t + horizon, m - 1)
            v_ref = vel[ref]
            if v_ref <= NAVSIM_STOP_SPEED_MPS and v <= NAVSIM_STOP_SPEED_MPS:
                a_cmd = -NAVSIM_STOP_GAIN_PER_S * (v - v_ref)
                rate_cmd = 0.0
            else:
                a_cmd = lon_inv * b_lon * NAVSIM_Q_LONGITUDINAL * (v - v_ref)
                # propagate the 10-step affine lateral model: state_N = A x0 + B u + g
                a00, a01, a02 = 1.0, 0.0, 0.0
                a10, a11, a12 = 0.0, 1.0, 0.0
                a20, a21, a22 = 0.0, 0.0, 1.0
                b0, b1, b2 = 0.0, 0.0, 0.0
                g0, g1, g2 = 0.0, 0.0, 0.0
                vk = v
                for k in range(horizon):
                    if k > 0:
                        vk += a_cmd * dt
                    kk = curv[t + k] if t + k < ref else curv[ref]
                    m01 = vk * dt
                    m12 = vk * dt / wb
                    # M = [[1, m01, 0], [0, 1, m12], [0, 0, 1]]; A = M A; B = M B + [0, 0, dt]
                    a00, a01, a02 = a00 + m01 * a10, a01 + m01 * a11, a02 + m01 * a12
                    a10, a11, a12 = a10 + m12 * a20, a11 + m12 * a21, a12 + m12 * a22
                    b0, b1, b2 = b0 + m01 * b1, b1 + m12 * b2, b2 + dt
                    g0, g1 = g0 + m01 * g1, g1 + m12 * g2 - vk * kk * dt
                z0 = a00 * e_lat + a01 * e_head + a02 * st + g0
                z1 = a10 * e_lat + a11 * e_head + a12 * st + g1
                z2 = a20 * e_lat + a21 * e_head + a22 * st + g2
                z1 = np.arctan2(np.sin(z1), np.cos(z1))
                z2 = np.arctan2(np.sin(z2), np.cos(z2))
                inv = -1.0 / (b0 * q_lat * b0 + b1 * q_head * b1 + NAVSIM_R_LATERAL)
                rate_cmd = inv * (b0 * q_lat * z0 + b1 * q_head * z1)
            # bicycle: lags on the commands, then Euler with the previous steer for the heading
            a_new = la * (a_cmd - a) + a
            st_ideal = dt * rate_cmd + st
            st_lag = ls * (st_ideal - st) + st
            st_rate = (st_lag - st) / dt
            x += v * np.cos(yaw) * dt
            y += v * np.sin(yaw) * dt
            yaw = wrap_angle_scalar(yaw + v * np.tan(st) / wb * dt)
            v += a_new * dt
            st = min(max(st + st_rate * dt, -NAVSIM_MAX_STEER_RAD), NAVSIM_MAX_STEER_RAD)
            om = v * np.tan(st) / wb
            a = a_new
