"""Ego progress (EP): progress along the route centerline relative to the best proposal.

progress = station(ego centre at 4 s) - station(ego centre at t=0) along the route polyline;
EP = clip(progress / max_progress, 0, 1), or 1 when max_progress <= EP_MIN_PROGRESS_M. The
maximum is over the scored batch unless ``reference_progress_m`` (e.g. PDM-Closed's progress in
the same scene) is given. As in NAVSIM v2, EP is not zeroed for proposals with infractions
(NAVSIM v1 takes the maximum over proposals without multiplier infractions only).
The teacher pipeline re-normalises EP per candidate against a reference planner, as NAVSIM
pairs a submission with PDM-Closed (``teachers.selection.pairwise_progress``)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from harness.world.comfort import EP_MIN_PROGRESS_M

Float = NDArray[np.float64]


def ego_progress(progress_m: Float, reference_progress_m: float | None = None) -> Float:
    """EP (B,) in [0, 1] from route progress (B,) [m]."""
    best = (
        float(progress_m.max(initial=0.0)) if reference_progress_m is None else reference_progress_m
    )
    if best <= EP_MIN_PROGRESS_M:
        return np.ones_like(progress_m)
    return np.clip(progress_m / best, 0.0, 1.0)
