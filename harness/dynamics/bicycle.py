"""Batched kinematic bicycle about the rear axle with first-order actuator lags.

Poses are box centres in the CARLA world frame; the model moves the rear axle along exact circular
arcs (constant curvature within a tick), so a constant steer traces an exact circle at any dt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from functools import lru_cache

import numpy as np
from numpy.typing import ArrayLike, NDArray

from harness.dynamics.vehicle import VehicleParams
from harness.errors import ConfigError
from harness.geometry import wrap_angle

Array = NDArray[np.float64]
_FIELDS = ("x", "y", "yaw", "speed", "accel", "steer")
_SCALAR_TYPES = frozenset((float, int, np.float64))  # one vehicle given as plain numbers
TWO_PI = 2.0 * math.pi


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
        values = (self.x, self.y, self.yaw, self.speed, self.accel, self.steer)
        if all(type(v) in _SCALAR_TYPES for v in values):  # one vehicle: no broadcasting needed
            for name, v in zip(_FIELDS, values, strict=True):
                if not math.isfinite(v):
                    raise ConfigError(
                        f"BicycleState.{name} has non-finite values; pass finite states"
                    )
                object.__setattr__(self, name, np.array(v, dtype=np.float64))
            return
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


@lru_cache(maxsize=64)
def lag_factor(dt_s: float, tau_s: float) -> float:
    """Exact step response of a first-order lag over dt: state += factor * (target - state)."""
    return float(-np.expm1(-dt_s / tau_s))


def _scalar(v: object) -> float | None:
    """v as a float when it is one number (Python / numpy scalar or 0-d array), else None."""
    if type(v) in _SCALAR_TYPES:
        return float(v)  # type: ignore[arg-type]
    if isinstance(v, np.ndarray) and v.ndim == 0 and v.dtype.kind in "fiu":
        return float(v)
    return None


def _sign(v: float) -> float:
    return 1.0 if v > 0.0 else (-1.0 if v < 0.0 else 0.0)


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
    if state.x.ndim == 0 and type(reverse) in (bool, np.bool_):
        a_s, d_s = _scalar(accel_cmd), _scalar(steer_cmd)
        if a_s is not None and d_s is not None:
            return step_one(state, a_s, d_s, params, dt_s, bool(reverse))
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


def step_one(
    state: BicycleState,
    accel_cmd: float,
    steer_cmd: float,
    params: VehicleParams,
    dt_s: float,
    reverse: bool = False,
) -> BicycleState:
    """:func:`step` for one vehicle (a state of batch shape ``()``) on plain floats: the same
    operations with ``math`` instead of array calls (~10x cheaper); :func:`step` takes this path
    by itself for scalar inputs. Equal to the batched path to rounding (tested)."""
    ms = params.max_steer_rad
    a0, st0, v0 = float(state.accel), float(state.steer), float(state.speed)
    d_cmd = min(max(steer_cmd, -ms), ms)
    accel = a0 + lag_factor(dt_s, params.tau_accel_s) * (accel_cmd - a0)
    max_delta = params.max_steer_rate_radps * dt_s
    d_steer = min(max(lag_factor(dt_s, params.tau_steer_s) * (d_cmd - st0), -max_delta), max_delta)
    steer = min(max(st0 + d_steer, -ms), ms)
    v1 = v0 + accel * dt_s
    crossed = v0 != 0.0 and _sign(v1) != _sign(v0)
    from_rest_wrong_way = v0 == 0.0 and (v1 > 0.0 if reverse else v1 < 0.0)
    if crossed or from_rest_wrong_way:
        v1, accel = 0.0, 0.0
    v1 = min(max(v1, -params.max_reverse_speed_mps), params.top_speed_mps)
    ds = 0.5 * (v0 + v1) * dt_s
    dyaw = ds * math.tan(steer) / params.wheelbase_m
    y_sinc = math.pi * (dyaw / TWO_PI if dyaw != 0.0 else 1.0e-20)  # np.sinc's operations
    chord = ds * (math.sin(y_sinc) / y_sinc)
    yaw0 = float(state.yaw)
    mid = yaw0 + 0.5 * dyaw
    yaw = yaw0 + dyaw
    d = params.rear_axle_to_center_m
    x = float(state.x) + chord * math.cos(mid) + d * (math.cos(yaw) - math.cos(yaw0))
    y = float(state.y) + chord * math.sin(mid) + d * (math.sin(yaw) - math.sin(yaw0))
    yaw_w = (yaw + math.pi) % TWO_PI - math.pi
    return BicycleState(x, y, yaw_w, v1, accel, steer)  # type: ignore[arg-type]
