"""Rule metrics of EPDMS: drivable-area (DAC), driving-direction (DDC), traffic-light (TLC)
compliance and lane keeping (LK), from the per-step map facts in :class:`EgoAreas`.

Definitions (REFERENCE.md sections 2-3) and our choices:
- DAC = 0 if any ego corner is off the drivable area at any step (t = 0 included, as NAVSIM).
- DDC: at each step the centre's displacement since the previous step counts as oncoming
  progress when the centre is on a drivable cell outside the on-route lanes and outside
  junctions; summed over a rolling 1 s window (the last DDC_WINDOW_STEPS displacements), max
  over time: < 2 m -> 1, < 6 m -> 0.5, else 0.
- TLC = 0 if the ego box touches an on-route connector of a light that is red at that step;
  the harness profile exempts a connector the box already touched at t=0 (like NC's t=0 rule),
  NAVSIM counts t = 0.
- LK = 0 if the centre is > 0.5 m from the centreline for >= 2 s in a row, i.e. at
  LK_MIN_RUN_STEPS (20) consecutive steps of 0.1 s: NAVSIM (the navsim profile) measures to the
  route centreline and skips junction steps without resetting the run; the harness profile
  measures to the nearest lane centreline and lets junction steps break a run.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from harness.dynamics.lqr import PDM_DT_S, StateIndex
from harness.jit import njit
from teachers.scoring.rasters import EgoAreas

DDC_WINDOW_S = 1.0  # rolling window of oncoming progress [s]
DDC_WINDOW_STEPS = int(round(DDC_WINDOW_S / PDM_DT_S))  # 10 displacements
DDC_FULL_M = 2.0  # oncoming progress below this: DDC 1 [m]
DDC_HALF_M = 6.0  # below this: DDC 0.5, else 0 [m]
LK_MAX_DEVIATION_M = 0.5  # centre to centerline distance that counts as off-centre [m]
LK_MAX_TIME_S = 2.0  # off-centre this long in a row fails LK [s]
LK_MIN_RUN_STEPS = int(round(LK_MAX_TIME_S / PDM_DT_S))  # 20 consecutive 0.1 s steps

Float = NDArray[np.float64]
Bool = NDArray[np.bool_]


def drivable_area_compliance(areas: EgoAreas) -> Float:
    """DAC (B,) in {0, 1}."""
    return np.where(areas.off_drivable.any(axis=1), 0.0, 1.0)


def driving_direction_compliance(
    states: Float,
    areas: EgoAreas,
    window_steps: int = DDC_WINDOW_STEPS,
    oncoming: Bool | None = None,
) -> Float:
    """DDC (B,) in {0, 0.5, 1} of states (B, T, N_STATE): the oncoming displacement summed over
    the last ``window_steps`` displacements (NAVSIM: 11, its window t-10 .. t of per-step
    displacements), max over time; ``oncoming`` (B, T) overrides ``areas.oncoming``. The worst
    window comes from the numba kernel :func:`_worst_oncoming`."""
    bsz = states.shape[0]
    worst = np.empty(bsz)
    _worst_oncoming(
        np.ascontiguousarray(states[..., StateIndex.X]),
        np.ascontiguousarray(states[..., StateIndex.Y]),
        np.ascontiguousarray(areas.oncoming if oncoming is None else oncoming),
        window_steps,
        worst,
    )
    return np.where(worst < DDC_FULL_M, 1.0, np.where(worst < DDC_HALF_M, 0.5, 0.0))


@njit
def _worst_oncoming(x: Float, y: Float, oncoming: Bool, window: int, worst: Float) -> None:
    """worst (B,) = max over time of the oncoming displacement [m] summed over the last
    ``window`` steps, from centres ``x``, ``y`` (B, T) and the ``oncoming`` flags (B, T)."""
    bsz, n_t = x.shape
    w = min(window, n_t - 1)
    c = np.empty(n_t)
    for b in range(bsz):
        c[0] = 0.0
        for t in range(1, n_t):
            dx = x[b, t] - x[b, t - 1]
            dy = y[b, t] - y[b, t - 1]
            c[t] = c[t - 1] + (np.sqrt(dx * dx + dy * dy) if oncoming[b, t] else 0.0)
        best = 0.0
        if w > 0:
            best = c[w] - c[0]
            for t in range(w + 1, n_t):
                best = max(best, c[t] - c[t - w])
        worst[b] = best


def traffic_light_compliance(areas: EgoAreas) -> Float:
    """TLC (B,) in {0, 1}."""
    return np.where(areas.red_light.any(axis=1), 0.0, 1.0)


def longest_run(flags: Bool, skip: Bool | None = None) -> NDArray[np.int64]:
    """Length (B,) of the longest run of True along axis 1 of (B, T); steps where ``skip`` (B, T)
    holds neither extend nor break a run (NAVSIM's ``continue`` over junction steps)."""
    keep = np.ones_like(flags) if skip is None else ~skip
    c = np.cumsum(flags & keep, axis=1)
    reset = np.maximum.accumulate(np.where(keep & ~flags, c, 0), axis=1)
    return np.asarray((c - reset).max(axis=1, initial=0), dtype=np.int64)


def lane_keeping(
    areas: EgoAreas, distance_m: Float | None = None, junction_resets: bool = True
) -> Float:
    """LK (B,) in {0, 1}: 0 when the centre is > LK_MAX_DEVIATION_M from the centreline for
    LK_MIN_RUN_STEPS steps in a row. ``distance_m`` (B, T) replaces ``areas.centerline_m`` (the
    nearest lane's) - NAVSIM measures it to the route centreline; junction steps reset the run
    (``junction_resets``) or are skipped without resetting it (NAVSIM)."""
    dist = areas.centerline_m if distance_m is None else distance_m
    if junction_resets:
        off = (dist > LK_MAX_DEVIATION_M) & ~areas.in_junction
        return np.where(longest_run(off) >= LK_MIN_RUN_STEPS, 0.0, 1.0)
    run = longest_run(dist > LK_MAX_DEVIATION_M, skip=areas.in_junction)
    return np.where(run >= LK_MIN_RUN_STEPS, 0.0, 1.0)
