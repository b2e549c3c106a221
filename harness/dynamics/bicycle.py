"""Batched kinematic bicycle about the rear axle with first-order actuator lags.

Poses are box centres in the CARLA world frame; the model moves the rear axle along exact circular
arcs (constant curvature within a tick), so a constant steer traces an exact circle at any dt.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
from numpy.typing import ArrayLike, NDArray

from harness.dynamics.vehicle import VehicleParams
from harness.errors import ConfigError
from harness.geometry import wrap_angle

Array = NDArray[np.float64]


@dataclass(frozen=True)
class BicycleState:
    """Vehicle state, every field an array of the same batch shape ``(...)`` (broadcast on
    construction): box-centre ``x``, ``y`` [m, world frame], ``yaw`` [rad], signed ``speed``
    [m/s, along the heading], realised ``accel`` [m/s2] and road-wheel ``steer`` [rad]
    (the lagged actuator states)."""

    x: Array
    y: Array
    yaw: Array
    speed: Array
    accel: Array
    steer: Array

    def __post_init__(self) -> None:
        names = [f.name for f in fields(self)]
        arrays = np.broadcast_arrays(
            *(np.asarray(getattr(self, n), dtype=np.float64) for n in names)
        )
        for name, arr in zip(names, arrays, strict=True):
            if not np.all(np.isfinite(arr)):
                raise ConfigError(f"BicycleState.{name} has non-finite values; pass finite states")
            object.__setattr__(self, name, np.array(arr))

    @classmethod
    def at_rest(cls, x: ArrayLike, y: ArrayLike, yaw: ArrayLike) -> BicycleState:
        """A stationary state with zero actuator states at the given poses."""
        return cls(x, y, yaw, 0.0, 0.0, 0.0)  # type: ignore[arg-type]

    @property
    def shape(self) -> tuple[int, ...]:
        """Batch shape."""
        return self.x.shape

    @property
    def pose(self) -> Array:
        """``(..., 3)`` [x, y, yaw]."""
        return np.stack([self.x, self.y, self.yaw], axis=-1)

    def yaw_rate(self, params: VehicleParams) -> Array:
        """Yaw rate [rad/s] ``speed * tan(steer) / wheelbase``; > 0 turns right in CARLA."""
        return self.speed * np.tan(self.steer) / params.wheelbase_m

    def rear_axle_xy(self, params: VehicleParams) -> Array:
        """``(..., 2)`` rear-axle position [m, world frame]."""
        d = params.rear_axle_to_center_m
        return np.stack([self.x - d * np.cos(self.yaw), self.y - d * np.sin(self.yaw)], axis=-1)


def lag_factor(dt_s: float, tau_s: float) -> float:
    """Exact step response of a first-order lag over dt: state += factor * (target - state)."""
    return float(-np.expm1(-dt_s / tau_s))


def step(
    state: BicycleState,
    accel_cmd: ArrayLike,
    steer_cmd: ArrayLike,
    params: VehicleParams,
    dt_s: float,
    reverse: ArrayLike = False,
) -> BicycleState:
    """Advance by ``dt_s``: lag accel and steer toward their commands (steer also rate- and
    angle-limited), integrate speed, then move the rear axle along the arc of the new curvature.

    Speed never crosses zero in one tick (it stops at 0), and from rest it can only grow in the
    gear's direction (backwards only where ``reverse``); where the clamp holds the car at 0 the
    realised accel is 0. Speed is capped at top / reverse speed. Pure; broadcasts over batch dims.
    """
    if not dt_s > 0.0:
        raise ConfigError(f"dt_s must be positive, got {dt_s!r}")
    rev = np.asarray(reverse, dtype=bool)
    a_cmd = np.asarray(accel_cmd, dtype=np.float64)
    d_cmd = np.clip(
        np.asarray(steer_cmd, dtype=np.float64), -params.max_steer_rad, params.max_steer_rad
    )

    accel = state.accel + lag_factor(dt_s, params.tau_accel_s) * (a_cmd - state.accel)
    max_delta = params.max_steer_rate_radps * dt_s
    d_steer = np.clip(
        lag_factor(dt_s, params.tau_steer_s) * (d_cmd - state.steer), -max_delta, max_delta
    )
    steer = np.clip(state.steer + d_steer, -params.max_steer_rad, params.max_steer_rad)

    v0 = state.speed
    v1 = v0 + accel * dt_s
    crossed = (v0 != 0.0) & (np.sign(v1) != np.sign(v0))
    from_rest_wrong_way = (v0 == 0.0) & np.where(rev, v1 > 0.0, v1 < 0.0)
    held = crossed | from_rest_wrong_way
    v1 = np.clip(np.where(held, 0.0, v1), -params.max_reverse_speed_mps, params.top_speed_mps)
    accel = np.where(held, 0.0, accel)

    ds = 0.5 * (v0 + v1) * dt_s
    dyaw = ds * np.tan(steer) / params.wheelbase_m
    chord = ds * np.sinc(dyaw / (2.0 * np.pi))  # 2 R sin(dyaw / 2), exact for a circular arc
    mid = state.yaw + 0.5 * dyaw
    yaw = state.yaw + dyaw
    d = params.rear_axle_to_center_m
    x = state.x + chord * np.cos(mid) + d * (np.cos(yaw) - np.cos(state.yaw))
    y = state.y + chord * np.sin(mid) + d * (np.sin(yaw) - np.sin(state.yaw))
    return BicycleState(x=x, y=y, yaw=wrap_angle(yaw), speed=v1, accel=accel, steer=steer)
