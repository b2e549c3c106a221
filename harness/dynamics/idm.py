"""Intelligent Driver Model (Treiber, Hennecke & Helbing 2000): pure, vectorised longitudinal
acceleration from own speed, desired speed, gap to the leader and approach rate."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from harness.jit import njit

MIN_GAP_M = 1e-3  # [m] gaps are floored here so a touching leader gives a finite, huge braking


@dataclass(frozen=True)
class IDMParams:
    """IDM parameters (defaults: urban values of Treiber & Kesting, 'Traffic Flow Dynamics')."""

    a_max_mps2: float = 1.5  # [m/s2] maximum (comfortable) acceleration a
    b_comf_mps2: float = 2.0  # [m/s2] comfortable deceleration b
    s0_m: float = 2.0  # [m] jam distance: bumper-to-bumper gap when stopped
    headway_s: float = 1.2  # [s] desired time headway T
    delta: float = 4.0  # [-] free-road acceleration exponent


def idm_desired_gap(v: ArrayLike, dv: ArrayLike, params: IDMParams) -> NDArray[np.float64]:
    """Desired dynamic gap s*(v, dv) = s0 + max(0, v T + v dv / (2 sqrt(a b))) [m]."""
    v = np.asarray(v, dtype=np.float64)
    dv = np.asarray(dv, dtype=np.float64)
    dyn = v * params.headway_s + v * dv / (2.0 * np.sqrt(params.a_max_mps2 * params.b_comf_mps2))
    return params.s0_m + np.maximum(dyn, 0.0)


def idm_accel(
    v: ArrayLike, v0: ArrayLike, gap: ArrayLike, dv: ArrayLike, params: IDMParams
) -> NDArray[np.float64]:
    """IDM acceleration [m/s2], broadcast over all inputs.

    ``v`` own speed [m/s] (>= 0), ``v0`` desired speed [m/s] (> 0), ``gap`` bumper-to-bumper gap to
    the leader [m] (``inf`` = free road), ``dv`` approach rate v - v_leader [m/s]. Unclipped: the
    caller bounds braking to what its vehicles can do.
    """
    v = np.asarray(v, dtype=np.float64)
    v0 = np.maximum(np.asarray(v0, dtype=np.float64), 1e-3)
    gap = np.maximum(np.asarray(gap, dtype=np.float64), MIN_GAP_M)
    free = 1.0 - (np.maximum(v, 0.0) / v0) ** params.delta
    interaction = (idm_desired_gap(v, dv, params) / gap) ** 2  # 0 where gap is inf
    return params.a_max_mps2 * (free - interaction)


@njit
def idm_accel_scalar(
    v: float, v0: float, gap: float, dv: float, a_max: float, b_comf: float, s0: float,
    headway: float, delta: float,
) -> float:  # fmt: skip
    """:func:`idm_accel` for one vehicle, compiled (the traffic step's kernel calls it)."""
    v0c = max(v0, 1e-3)
    g = max(gap, MIN_GAP_M)
    free = 1.0 - (max(v, 0.0) / v0c) ** delta
    s_star = s0 + max(v * headway + v * dv / (2.0 * np.sqrt(a_max * b_comf)), 0.0)
    return a_max * (free - (s_star / g) ** 2)


def idm_equilibrium_gap(v: ArrayLike, v0: ArrayLike, params: IDMParams) -> NDArray[np.float64]:
    """Steady-state gap [m] behind a leader at the same speed v < v0: s*(v, 0) / sqrt(1 - (v/v0)^delta)."""
    v = np.asarray(v, dtype=np.float64)
    v0 = np.asarray(v0, dtype=np.float64)
    return idm_desired_gap(v, 0.0, params) / np.sqrt(1.0 - (v / v0) ** params.delta)
