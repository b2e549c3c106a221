"""Oriented 2-D boxes: corners, batched separating-axis overlap, point containment.

A box is an array ``(..., 5)`` = [x, y, yaw, length, width]: centre [m, world frame], heading
[rad], length along the heading and width across it [m]. Boxes are closed sets, so touching boxes
overlap (as ``shapely.intersects``). Every function broadcasts over leading dims, e.g.
candidates x time x agents.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np
from numpy.typing import ArrayLike, NDArray

from harness.geometry import to_local

BOX_DIM = 5  # values per box: x, y, yaw, length, width


class BoxField(IntEnum):
    """Columns of a box array."""

    X = 0
    Y = 1
    YAW = 2
    LENGTH = 3
    WIDTH = 4


class Corner(IntEnum):
    """Corner order of :func:`box_corners` (right = the heading rotated +90 deg = CARLA's right)."""

    FRONT_RIGHT = 0
    FRONT_LEFT = 1
    REAR_LEFT = 2
    REAR_RIGHT = 3


_CORNER_SIGNS = np.array([[1.0, 1.0], [1.0, -1.0], [-1.0, -1.0], [-1.0, 1.0]])  # (4, 2) local


def make_boxes(
    x: ArrayLike, y: ArrayLike, yaw: ArrayLike, length: ArrayLike, width: ArrayLike
) -> NDArray[np.float64]:
    """Stack broadcastable fields into a ``(..., 5)`` box array."""
    parts = np.broadcast_arrays(
        *(np.asarray(v, dtype=np.float64) for v in (x, y, yaw, length, width))
    )
    return np.stack(parts, axis=-1)


def box_corners(
    x: ArrayLike, y: ArrayLike, yaw: ArrayLike, length: ArrayLike, width: ArrayLike
) -> NDArray[np.float64]:
    """Corners ``(..., 4, 2)`` [m, world frame] in :class:`Corner` order; inputs broadcast."""
    boxes = make_boxes(x, y, yaw, length, width)
    half = 0.5 * boxes[..., None, 3:5] * _CORNER_SIGNS  # (..., 4, 2) local offsets
    c = np.cos(boxes[..., 2])[..., None]
    s = np.sin(boxes[..., 2])[..., None]
    wx = boxes[..., 0, None] + c * half[..., 0] - s * half[..., 1]
    wy = boxes[..., 1, None] + s * half[..., 0] + c * half[..., 1]
    return np.stack([wx, wy], axis=-1)


def boxes_overlap(a: ArrayLike, b: ArrayLike) -> NDArray[np.bool_]:
    """Whether oriented boxes ``a`` and ``b`` (``(..., 5)``, broadcastable) overlap or touch.

    Circumscribed-circle broad phase over all pairs, then the separating-axis test on the four
    box axes for the surviving pairs only. Returns bool of the broadcast batch shape.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape[-1:] != (BOX_DIM,) or b.shape[-1:] != (BOX_DIM,):
        raise ValueError(f"boxes must have a last dim of {BOX_DIM}, got {a.shape} and {b.shape}")
    dx = b[..., 0] - a[..., 0]
    dy = b[..., 1] - a[..., 1]
    ra = 0.5 * np.hypot(a[..., 3], a[..., 4])
    rb = 0.5 * np.hypot(b[..., 3], b[..., 4])
    reach = ra + rb
    near = dx * dx + dy * dy <= reach * reach
    out = np.zeros(near.shape, dtype=bool)
    if not near.any():
        return out
    shape = near.shape

    def pick(v: NDArray[np.float64]) -> NDArray[np.float64]:
        return np.broadcast_to(v, shape)[near]

    dxn, dyn = dx[near], dy[near]
    ya, yb = pick(a[..., 2]), pick(b[..., 2])
    hla, hwa = 0.5 * pick(a[..., 3]), 0.5 * pick(a[..., 4])
    hlb, hwb = 0.5 * pick(b[..., 3]), 0.5 * pick(b[..., 4])
    ca, sa, cb, sb = np.cos(ya), np.sin(ya), np.cos(yb), np.sin(yb)
    cd = np.abs(ca * cb + sa * sb)  # |cos(yb - ya)|
    sd = np.abs(ca * sb - sa * cb)  # |sin(yb - ya)|
    hit = np.abs(dxn * ca + dyn * sa) <= hla + hlb * cd + hwb * sd  # a's length axis
    hit &= np.abs(-dxn * sa + dyn * ca) <= hwa + hlb * sd + hwb * cd  # a's width axis
    hit &= np.abs(dxn * cb + dyn * sb) <= hlb + hla * cd + hwa * sd  # b's length axis
    hit &= np.abs(-dxn * sb + dyn * cb) <= hwb + hla * sd + hwa * cd  # b's width axis
    out[near] = hit
    return out


def point_in_box(points: ArrayLike, boxes: ArrayLike) -> NDArray[np.bool_]:
    """Whether points ``(..., 2)`` lie in (or on) boxes ``(..., 5)``; leading dims broadcast."""
    bx = np.asarray(boxes, dtype=np.float64)
    local = to_local(points, bx[..., 0:2], bx[..., 2])
    inside: NDArray[np.bool_] = (np.abs(local[..., 0]) <= 0.5 * bx[..., 3]) & (
        np.abs(local[..., 1]) <= 0.5 * bx[..., 4]
    )
    return inside
