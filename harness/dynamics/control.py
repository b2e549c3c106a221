"""Driver controls (the fields of carla.VehicleControl) and their mapping to model commands."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from harness.dynamics.vehicle import VehicleParams

MIN_POWER_SPEED_MPS = 0.1  # [m/s] below this, traction is limited by max_accel only (P/v blows up)


def control_to_command(
    throttle: ArrayLike,
    steer: ArrayLike,
    brake: ArrayLike,
    hand_brake: ArrayLike,
    reverse: ArrayLike,
    speed_mps: ArrayLike,
    params: VehicleParams,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Map driver inputs to (net longitudinal accel [m/s2], road-wheel angle target [rad]).

    Broadcasts over any shapes. Accel is along the heading (signed like the speed): throttle pushes
    in the gear's direction (backwards with ``reverse``), power-limited as ``min(a0, P/m / |v|)``;
    brake, hand brake, rolling resistance and drag oppose the motion (at rest they oppose the gear's
    direction, and the bicycle's standstill clamp keeps the car still).
    """
    if type(hand_brake) is bool and type(reverse) is bool:
        v = _as_float(speed_mps)
        scalars = (_as_float(throttle), _as_float(steer), _as_float(brake))
        if v is not None and None not in scalars:
            acc, wheel = control_to_command_one(*scalars, hand_brake, reverse, v, params)
            return np.float64(acc), np.float64(wheel)
    thr = np.clip(np.asarray(throttle, dtype=np.float64), 0.0, 1.0)
    brk = np.clip(np.asarray(brake, dtype=np.float64), 0.0, 1.0)
    st = np.clip(np.asarray(steer, dtype=np.float64), -1.0, 1.0)
    hb = np.asarray(hand_brake, dtype=bool)
    gear_dir = np.where(np.asarray(reverse, dtype=bool), -1.0, 1.0)
    v = np.asarray(speed_mps, dtype=np.float64)
    speed = np.abs(v)

    traction_limit = np.minimum(
        params.max_accel_mps2, params.power_per_mass_wpkg / np.maximum(speed, MIN_POWER_SPEED_MPS)
    )
    traction = gear_dir * thr * traction_limit
    resist_dir = np.where(v != 0.0, np.sign(v), gear_dir)  # resistances oppose this direction
    braking = np.maximum(brk * params.max_brake_mps2, np.where(hb, params.hand_brake_mps2, 0.0))
    passive = np.where(
        speed > 0.0, params.rolling_resistance_mps2 + params.drag_per_m * speed**2, 0.0
    )
    accel = traction - resist_dir * (braking + passive)
    return accel, st * params.max_steer_rad


_FLOAT_TYPES = frozenset((float, int, np.float64))


def _as_float(v: object) -> float | None:
    """v as a float when it is one number (Python / numpy scalar or 0-d array), else None."""
    if type(v) in _FLOAT_TYPES:
        return float(v)  # type: ignore[arg-type]
    if isinstance(v, np.ndarray) and v.ndim == 0 and v.dtype.kind in "fiu":
        return float(v)
    return None


def control_to_command_one(
    throttle: float,
    steer: float,
    brake: float,
    hand_brake: bool,
    reverse: bool,
    speed_mps: float,
    params: VehicleParams,
) -> tuple[float, float]:
    """:func:`control_to_command` for one vehicle on plain floats (the same operations with no
    array calls); :func:`control_to_command` takes this path by itself for scalar inputs."""
    thr = min(max(throttle, 0.0), 1.0)
    brk = min(max(brake, 0.0), 1.0)
    st = min(max(steer, -1.0), 1.0)
    gear_dir = -1.0 if reverse else 1.0
    v = speed_mps
    speed = abs(v)
    traction_limit = min(
        params.max_accel_mps2, params.power_per_mass_wpkg / max(speed, MIN_POWER_SPEED_MPS)
    )
    traction = gear_dir * thr * traction_limit
    resist_dir = (1.0 if v > 0.0 else -1.0) if v != 0.0 else gear_dir
    braking = max(brk * params.max_brake_mps2, params.hand_brake_mps2 if hand_brake else 0.0)
    passive = params.rolling_resistance_mps2 + params.drag_per_m * speed**2 if speed > 0.0 else 0.0
    accel = traction - resist_dir * (braking + passive)
    return accel, st * params.max_steer_rad
