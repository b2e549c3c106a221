"""Small shared geometry helpers (angles, rotations) used by every layer.

Angles are radians; headings follow the CARLA world frame: heading vector (cos yaw, sin yaw).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike, NDArray

from harness.jit import njit

TWO_PI = 2.0 * np.pi


def wrap_angle(angle_rad: ArrayLike) -> NDArray[np.float64]:
    """Wrap angles to [-pi, pi). The one angle-wrapping helper of the project (with its scalar,
    compiled form :func:`wrap_angle_scalar`)."""
    a = np.asarray(angle_rad, dtype=np.float64)
    return (a + np.pi) % TWO_PI - np.pi


@njit
def wrap_angle_scalar(angle_rad: float) -> float:
    """:func:`wrap_angle` of one angle [rad] for numba kernels, bit for bit: the same formula
    (a + pi) % 2 pi - pi, whose modulo (slow in compiled code) is skipped where it is the
    identity, i.e. when a + pi already lies in [0, 2 pi)."""
    r = angle_rad + math.pi
    if 0.0 <= r < TWO_PI:
        return r - math.pi
    return r % TWO_PI - math.pi


def heading_vector(yaw_rad: ArrayLike) -> NDArray[np.float64]:
    """Unit heading vectors, shape (..., 2), for yaws of shape (...)."""
    y = np.asarray(yaw_rad, dtype=np.float64)
    return np.stack([np.cos(y), np.sin(y)], axis=-1)


def to_local(xy: ArrayLike, origin_xy: ArrayLike, origin_yaw_rad: ArrayLike) -> NDArray[np.float64]:
    """World points (..., 2) into the frame at origin: x along the heading, y the heading rotated by
    +90 deg (in CARLA's left-handed world frame, seen from above, that is to the vehicle's right)."""
    p = np.asarray(xy, dtype=np.float64) - np.asarray(origin_xy, dtype=np.float64)
    c, s = np.cos(origin_yaw_rad), np.sin(origin_yaw_rad)
    return np.stack([c * p[..., 0] + s * p[..., 1], -s * p[..., 0] + c * p[..., 1]], axis=-1)


def to_world(
    local_xy: ArrayLike, origin_xy: ArrayLike, origin_yaw_rad: ArrayLike
) -> NDArray[np.float64]:
    """Inverse of :func:`to_local`."""
    q = np.asarray(local_xy, dtype=np.float64)
    c, s = np.cos(origin_yaw_rad), np.sin(origin_yaw_rad)
    o = np.asarray(origin_xy, dtype=np.float64)
    return np.stack(
        [c * q[..., 0] - s * q[..., 1] + o[..., 0], s * q[..., 0] + c * q[..., 1] + o[..., 1]],
        axis=-1,
    )
