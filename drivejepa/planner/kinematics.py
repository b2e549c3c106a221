"""Kinematic consistency of planner proposals (not in Drive-JEPA; docs/DIFFERENCES.md): the
longitudinal accelerations a proposal implies between the mean speeds of its consecutive
PLANNER_DT_S segments (the first from the ego at the origin), against NAVSIM's comfort bounds
[MIN_LON_ACCEL_MPS2, MAX_LON_ACCEL_MPS2]. One definition for the selection's filter
(:mod:`drivejepa.planner.selection`) and the training term (:mod:`drivejepa.planner.losses`).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from harness.world.comfort import MAX_LON_ACCEL_MPS2, MIN_LON_ACCEL_MPS2
from harness.world.timing import PLANNER_DT_S

SPEED_EPS = 1e-12  # [m2] under the square root of a segment's length: a finite gradient at rest


def implied_accels(proposals: Tensor) -> Tensor:
    """(..., K, 3) ego-frame poses every PLANNER_DT_S, the ego at the origin -> (..., K - 1)
    accelerations [m/s2]: column k - 1 the change from the mean speed of segment k - 1 to that of
    segment k, over PLANNER_DT_S."""
    xy = F.pad(proposals[..., :2], (0, 0, 1, 0))  # the origin first
    step = xy[..., 1:, :] - xy[..., :-1, :]
    v = (step.square().sum(dim=-1) + SPEED_EPS).sqrt() / PLANNER_DT_S  # segment mean speeds
    return (v[..., 1:] - v[..., :-1]) / PLANNER_DT_S


def accel_excess(proposals: Tensor) -> Tensor:
    """(..., K, 3) -> (..., K - 1) how far [m/s2] each implied acceleration lies outside the
    bounds (0 within them)."""
    a = implied_accels(proposals)
    return F.relu(a - MAX_LON_ACCEL_MPS2) + F.relu(MIN_LON_ACCEL_MPS2 - a)


def within_bounds(proposals: Tensor) -> Tensor:
    """(..., K, 3) -> (...) bool: every implied acceleration within the bounds."""
    return (accel_excess(proposals) == 0.0).all(dim=-1)

