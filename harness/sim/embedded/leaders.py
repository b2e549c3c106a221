"""Leaders of background vehicles along their planned lane sequences: the nearest other vehicle
and the nearest external obstacle (ego, walkers, scenario actors) matched to the lanes it stands
on. Compiled (numba) kernels plus a small cached matcher; split from traffic.py. The array
versions they replaced are test oracles (``tests/oracles/traffic_numpy.py``)."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from harness.geometry import wrap_angle_scalar
from harness.jit import njit

SAME_LEVEL_M = 3.0  # an obstacle this close in height to a lane is on it (else bridge level) [m]
OBSTACLE_REACH_M = 3.0  # centerline samples this much beyond an obstacle's radius are searched [m]
GRID_CELL_M = 8.0  # cell side of the centerline-sample grid the compiled matcher scans [m]
INF = np.inf


class ObstacleMatcher:
    """Matches obstacle boxes to the lanes they stand on (see :meth:`match`); caches the last
    obstacle set, so unmoved obstacles (a stopped ego, parked props) cost nothing."""

    def __init__(self, lanes: Any) -> None:
        self.lanes = lanes  # a harness.maps.lanes.LaneSet
        self._key: bytes | None = None
        self._match: tuple[NDArray[Any], ...] | None = None
        xy = np.asarray(lanes.xy, dtype=np.float64)
        self._x0, self._y0 = float(xy[:, 0].min()) - 1.0, float(xy[:, 1].min()) - 1.0
        cx = np.floor((xy[:, 0] - self._x0) / GRID_CELL_M).astype(np.int64)
        cy = np.floor((xy[:, 1] - self._y0) / GRID_CELL_M).astype(np.int64)
        self._ny = int(cy.max()) + 1
        keys = cx * self._ny + cy
        self._cell_order = np.argsort(keys, kind="stable").astype(np.int64)
        self._cell_keys = keys[self._cell_order]
        self._arrays = (
            xy, np.asarray(lanes.yaw_rad, dtype=np.float64), np.asarray(lanes.s_m, dtype=np.float64),
            np.asarray(lanes.width_m, dtype=np.float64), np.asarray(lanes.z_m, dtype=np.float64),
            np.asarray(lanes.lane_of_point, dtype=np.int64),
        )  # fmt: skip
        self._no_z = np.zeros(0)

    def match(
        self, boxes: NDArray[np.float64], z: NDArray[np.float64] | None
    ) -> tuple[NDArray[Any], ...] | None:
        """The lanes each obstacle of boxes (K, 5) is on: (obstacle index, lane, s [m] along it,
        half its length along the lane [m], cos of its heading relative to the lane), one row per
        (obstacle, lane) ordered by obstacle then lane; None when on none. Each obstacle is matched
        to the lanes of the centerline samples within its reach (half its diagonal +
        OBSTACLE_REACH_M), through the nearest such sample per lane; it is on that lane when its
        box reaches within the lane's half width of the centerline (and, with z (K,), on the same
        level). Compiled grid scan (:func:`match_kernel`)."""
        key = boxes.tobytes() + (b"" if z is None else z.tobytes())
        if self._key == key:
            return self._match
        self._key = key
        out = match_kernel(
            boxes, self._no_z if z is None else z, z is not None, GRID_CELL_M, self._x0, self._y0,
            self._ny, self._cell_keys, self._cell_order, *self._arrays,
        )  # fmt: skip
        self._match = out if out[0].size else None
        return self._match


# ---------------------------------------------------------------- compiled kernels (numba)
# The traffic step's leader search: one pass over vehicles in machine code instead of ~50 small
# numpy calls (the array versions, tests' oracles, follow the same rules; ties may break
# differently).


@njit
def vehicle_leaders_kernel(
    lane: NDArray[np.int64], prev_lane: NDArray[np.int64], s: NDArray[np.float64],
    length: NDArray[np.float64], speed: NDArray[np.float64], seq: NDArray[np.int64],
    seq_off: NDArray[np.float64], lane_length_m: NDArray[np.float64],
    gap_out: NDArray[np.float64], v_out: NDArray[np.float64], slot_of: NDArray[np.int64],
) -> None:  # fmt: skip
    """Gap [m] and speed of the nearest vehicle ahead along each plan into ``gap_out`` /
    ``v_out`` (N,) (inf / 0 when none): for each vehicle, the nearest other vehicle (or the part
    of one still on its previous lane) on its own lane ahead or on a later planned lane. Arrays
    are TrafficModel's (N,) / (N, SEQ_SLOTS) state, ``lane_length_m`` (L + 1,) with the sentinel
    row; ``slot_of`` (L + 1,) all -1 scratch (restored on return). O(N (K + N))."""
    n, k_slots = seq.shape
    for i in range(n):
        for k in range(1, k_slots):
            ln = seq[i, k]
            if ln >= 0 and slot_of[ln] < 0:
                slot_of[ln] = k
        best, bj = INF, -1
        si, li = s[i], lane[i]
        for j in range(n):
            if j == i:
                continue
            for e in range(2):
                if e == 0:
                    ln, pos = lane[j], s[j]
                else:
                    ln = prev_lane[j]
                    if ln < 0 or s[j] >= 0.5 * length[j]:
                        break
                    pos = s[j] + lane_length_m[ln]
                if ln == li:
                    d = pos - si
                    if d < 0.0 or (d == 0.0 and j < i):
                        continue
                else:
                    k = slot_of[ln]
                    if k < 0:
                        continue
                    d = seq_off[i, k] + pos - si
                if d < best:
                    best, bj = d, j
        for k in range(1, k_slots):
            ln = seq[i, k]
            if ln >= 0:
                slot_of[ln] = -1
        if bj >= 0:
            gap_out[i] = best - 0.5 * (length[i] + length[bj])
            v_out[i] = speed[bj]
        else:
            gap_out[i], v_out[i] = INF, 0.0


@njit
def obstacle_leaders_kernel(
    o: NDArray[np.int64], lane_q: NDArray[np.int64], s_o: NDArray[np.float64],
    half_long: NDArray[np.float64], cos_dyaw: NDArray[np.float64], speed_o: NDArray[np.float64],
    s: NDArray[np.float64], length: NDArray[np.float64], seq: NDArray[np.int64],
    seq_off: NDArray[np.float64], gap_out: NDArray[np.float64], v_out: NDArray[np.float64],
) -> None:  # fmt: skip
    """Gap [m] and along-lane speed [m/s] of the nearest external obstacle in each plan's
    corridor into ``gap_out`` / ``v_out`` (N,) (inf / 0 when none), from the rows (Q,) of an
    :meth:`ObstacleMatcher.match` result and the obstacles' speeds ``speed_o`` (K,) [m/s]."""
    n, k_slots = seq.shape
    for i in range(n):
        best, bq = INF, -1
        for q in range(lane_q.shape[0]):
            for k in range(k_slots):
                if seq[i, k] == lane_q[q]:
                    d = seq_off[i, k] + s_o[q] - s[i]
                    if 0.0 < d < best:
                        best, bq = d, q
        if bq >= 0:
            gap_out[i] = best - 0.5 * length[i] - half_long[bq]
            v_out[i] = speed_o[o[bq]] * cos_dyaw[bq]
        else:
            gap_out[i], v_out[i] = INF, 0.0


@njit
def upper_bound(a: NDArray[Any], lo: int, hi: int, x: float) -> int:
    """First index in [lo, hi) of the sorted ``a`` with a[i] > x (hi when none): what
    np.searchsorted(..., side="right") gives, cheaper for numba to compile."""
    while lo < hi:
        mid = (lo + hi) // 2
        if a[mid] <= x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit
def match_kernel(
    boxes: NDArray[np.float64], z: NDArray[np.float64], has_z: bool,
    cell_m: float, x0: float, y0: float, ny: int,
    cell_keys: NDArray[np.int64], cell_order: NDArray[np.int64],
    xy: NDArray[np.float64], yaw: NDArray[np.float64], s_m: NDArray[np.float64],
    width: NDArray[np.float64], z_m: NDArray[np.float64], lane_of_point: NDArray[np.int64],
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:  # fmt: skip
    """Rows (obstacle, lane, s, half length along the lane, cos relative heading) of
    :meth:`ObstacleMatcher.match`, from a uniform grid over the centerline samples: every sample
    within the obstacle's reach is a candidate; the nearest per (obstacle, lane) decides."""
    k_obs = boxes.shape[0]
    cap = 0
    lo_c = np.empty((k_obs, 4), dtype=np.int64)
    for b in range(k_obs):
        r = 0.5 * np.hypot(boxes[b, 3], boxes[b, 4]) + OBSTACLE_REACH_M
        lo_c[b, 0] = int(np.floor((boxes[b, 0] - r - x0) / cell_m))
        lo_c[b, 1] = int(np.floor((boxes[b, 0] + r - x0) / cell_m))
        lo_c[b, 2] = int(np.floor((boxes[b, 1] - r - y0) / cell_m))
        lo_c[b, 3] = int(np.floor((boxes[b, 1] + r - y0) / cell_m))
        for cx in range(lo_c[b, 0], lo_c[b, 1] + 1):
            for cy in range(lo_c[b, 2], lo_c[b, 3] + 1):
                if cx < 0 or cy < 0 or cy >= ny:
                    continue
                key = cx * ny + cy
                n_keys = cell_keys.shape[0]
                cap += upper_bound(cell_keys, 0, n_keys, key) - upper_bound(
                    cell_keys, 0, n_keys, key - 1
                )
    o_out = np.empty(cap, dtype=np.int64)
    l_out = np.empty(cap, dtype=np.int64)
    s_out = np.empty(cap)
    h_out = np.empty(cap)
    c_out = np.empty(cap)
    m = 0
    cand_l = np.empty(cap, dtype=np.int64)
    cand_p = np.empty(cap, dtype=np.int64)
    cand_d = np.empty(cap)
    for b in range(k_obs):
        bx, by = boxes[b, 0], boxes[b, 1]
        r = 0.5 * np.hypot(boxes[b, 3], boxes[b, 4]) + OBSTACLE_REACH_M
        nl = 0  # distinct lanes seen, nearest sample each
        for cx in range(lo_c[b, 0], lo_c[b, 1] + 1):
            for cy in range(lo_c[b, 2], lo_c[b, 3] + 1):
                if cx < 0 or cy < 0 or cy >= ny:
                    continue
                key = cx * ny + cy
                n_keys = cell_keys.shape[0]
                for t in range(
                    upper_bound(cell_keys, 0, n_keys, key - 1),
                    upper_bound(cell_keys, 0, n_keys, key),
                ):
                    p = cell_order[t]
                    d = np.hypot(xy[p, 0] - bx, xy[p, 1] - by)
                    if d > r:
                        continue
                    ln = lane_of_point[p]
                    u = 0
                    while u < nl and cand_l[u] != ln:
                        u += 1
                    if u == nl:
                        cand_l[u], cand_p[u], cand_d[u] = ln, p, d
                        nl += 1
                    elif d < cand_d[u] or (d == cand_d[u] and p < cand_p[u]):
                        cand_p[u], cand_d[u] = p, d
        for u in range(nl):  # lanes in ascending order, as np.unique gave them
            best = u
            for w in range(u + 1, nl):
                if cand_l[w] < cand_l[best]:
                    best = w
            cand_l[u], cand_l[best] = cand_l[best], cand_l[u]
            cand_p[u], cand_p[best] = cand_p[best], cand_p[u]
            cand_d[u], cand_d[best] = cand_d[best], cand_d[u]
            p = cand_p[u]
            rx, ry = bx - xy[p, 0], by - xy[p, 1]
            c, sn = np.cos(yaw[p]), np.sin(yaw[p])
            along, lateral = rx * c + ry * sn, -rx * sn + ry * c
            dyaw = wrap_angle_scalar(boxes[b, 2] - yaw[p])
            cd, sd = abs(np.cos(dyaw)), abs(np.sin(dyaw))
            if not abs(lateral) < 0.5 * (width[p] + sd * boxes[b, 3] + cd * boxes[b, 4]):
                continue
            if has_z and not abs(z_m[p] - z[b]) < SAME_LEVEL_M:
                continue
            o_out[m], l_out[m], s_out[m] = b, cand_l[u], s_m[p] + along
            h_out[m] = 0.5 * (cd * boxes[b, 3] + sd * boxes[b, 4])
            c_out[m] = np.cos(dyaw)
            m += 1
    return o_out[:m], l_out[:m], s_out[:m], h_out[:m], c_out[:m]
