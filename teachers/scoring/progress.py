"""Ego progress (EP): progress along the route centerline relative to the best proposal.

progress = station(ego centre at 4 s) - station(ego centre at t=0) along the route polyline;
EP = clip(progress / max_progress, 0, 1), or 1 when max_progress <= EP_MIN_PROGRESS_M. The
maximum is over the scored batch unless ``reference_progress_m`` (e.g. PDM-Closed's progress in
the same scene) is given; the navsim profile weights each candidate's progress by its gate
product before the maximum is taken (NAVSIM's rule). EP itself is not zeroed for proposals
with infractions.
The teacher pipeline re-normalises EP per candidate against a reference planner, as NAVSIM
pairs a submission with PDM-Closed (``teachers.selection.pairwise_progress``)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from harness.world.comfort import EP_MIN_PROGRESS_M

Float = NDArray[np.float64]


def ego_progress(
    progress_m: Float,
    reference_progress_m: float | None = None,
    gate_product: Float | None = None,
) -> Float:
    """EP (B,) in [0, 1] from route progress (B,) [m]. With ``gate_product`` (B,) (NAVSIM's
    rule) the raw progress is clipped at 0 and the normaliser is the max over the batch of
    raw progress x the candidate's product of multiplicative metrics, so a candidate with
    NC = 0.5 sets it with half its progress and a failed one not at all."""
    if gate_product is not None:
        progress_m = np.clip(progress_m, 0.0, None)
    if reference_progress_m is not None:
        best = reference_progress_m
    elif gate_product is not None:
        best = float((progress_m * gate_product).max(initial=0.0))
    else:
        best = float(progress_m.max(initial=0.0))
    if best <= EP_MIN_PROGRESS_M:
        return np.ones_like(progress_m)
    return np.clip(progress_m / best, 0.0, 1.0)
