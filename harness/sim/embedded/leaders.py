"""Leaders of background vehicles along their planned lane sequences: the nearest other vehicle
(one sort per tick) and the nearest external obstacle (ego, walkers, scenario actors) matched to the
lanes it stands on. Pure array functions plus a small cached matcher; split from traffic.py."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from harness.geometry import wrap_angle

SAME_LEVEL_M = 3.0  # an obstacle this close in height to a lane is on it (else bridge level) [m]
OBSTACLE_REACH_M = 3.0  # centerline samples this much beyond an obstacle's radius are searched [m]
OBSTACLE_NEIGHBOURS = 32  # nearest centerline samples searched per obstacle [-]
INF = np.inf


def vehicle_leaders(
    lane: NDArray[np.int64], prev_lane: NDArray[np.int64], s: NDArray[np.float64],
    length: NDArray[np.float64], speed: NDArray[np.float64], seq: NDArray[np.int64],
    seq_off: NDArray[np.float64], lane_length_m: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:  # fmt: skip
    """Gap [m] and speed of the nearest vehicle ahead along each plan (inf / 0 when none).

    Vehicles sorted by (lane, s): on the own lane the leader is the next entry; on a later
    planned lane it is that lane's rearmost vehicle. A vehicle whose rear is still on its
    previous lane is listed there too (at s + that lane's length). O(N log N + N K). Arrays are
    TrafficModel's (N,) / (N, SEQ_SLOTS) state; ``lane_length_m`` (L + 1,) with the sentinel row.
    """
    n = lane.shape[0]
    ghost = np.flatnonzero((prev_lane >= 0) & (s < 0.5 * length))
    who = np.concatenate([np.arange(n), ghost])
    lane_all = np.concatenate([lane, prev_lane[ghost]])
    pos = np.concatenate([s, s[ghost] + lane_length_m[prev_lane[ghost]]])
    order = np.lexsort((pos, lane_all))
    lane_o, pos_o, who_o = lane_all[order], pos[order], who[order]
    same_next = np.append(lane_o[1:] == lane_o[:-1], False)
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    r = rank[:n]
    nxt = np.minimum(r + 1, order.size - 1)
    d = np.where(same_next[r], pos_o[nxt] - s, INF)
    j = who_o[nxt]
    first = np.full(lane_length_m.shape[0], -1, dtype=np.int64)
    heads = np.flatnonzero(np.concatenate(([True], ~same_next[:-1])))
    first[lane_o[heads]] = heads
    fr = first[seq[:, 1:]]  # (N, K-1) rank of the rearmost vehicle per planned lane
    wj = who_o[fr]
    dk = np.where(
        (fr >= 0) & (wj != np.arange(n)[:, None]),
        seq_off[:, 1:] + pos_o[fr] - s[:, None],
        INF,
    )
    at = np.arange(n) * dk.shape[1] + np.argmin(dk, axis=1)  # flat index of the nearest
    dk_min = np.take(dk, at)
    use_k = dk_min < d
    d = np.where(use_k, dk_min, d)
    j = np.where(use_k, np.take(wj, at), j)
    gap = d - 0.5 * (length + length[j])
    return gap, np.where(d < INF, speed[j], 0.0)


def obstacle_leaders(
    match: tuple[NDArray[Any], ...] | None, speed_o: NDArray[np.float64], s: NDArray[np.float64],
    length: NDArray[np.float64], seq: NDArray[np.int64], seq_off: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:  # fmt: skip
    """Gap [m] and along-lane speed of the nearest external obstacle in each plan's corridor,
    from an :meth:`ObstacleMatcher.match` result and the obstacles' speeds (K,) [m/s]."""
    n = s.shape[0]
    if match is None:
        return np.full(n, INF), np.zeros(n)
    o, lane_q, s_o, half_long, cos_dyaw = match
    m = seq[:, :, None] == lane_q[None, None, :]  # (N, K, Q)
    d = np.where(m, seq_off[:, :, None] + (s_o[None, :] - s[:, None])[:, None, :], INF)
    d = np.where(d > 0.0, d, INF).min(axis=1)  # (N, Q)
    q = np.argmin(d, axis=1)
    d_min = np.take(d, np.arange(n) * d.shape[1] + q)
    gap = d_min - 0.5 * length - half_long[q]
    vel = np.where(d_min < INF, speed_o[o[q]] * cos_dyaw[q], 0.0)
    return gap, vel


class ObstacleMatcher:
    """Matches obstacle boxes to the lanes they stand on (see :meth:`match`); caches the last
    obstacle set, so unmoved obstacles (a stopped ego, parked props) cost nothing."""

    def __init__(self, lanes: Any, tree: cKDTree, n_lanes: int) -> None:
        self.lanes, self.tree, self.n_lanes = lanes, tree, n_lanes  # tree over lanes.xy
        self._key: bytes | None = None
        self._match: tuple[NDArray[Any], ...] | None = None

    def match(
        self, boxes: NDArray[np.float64], z: NDArray[np.float64] | None
    ) -> tuple[NDArray[Any], ...] | None:
        """The lanes each obstacle of boxes (K, 5) is on: (obstacle index, lane, s [m] along it,
        half its length along the lane [m], cos of its heading relative to the lane), one row per
        (obstacle, lane); None when on none. Each obstacle is matched to the lanes among its
        OBSTACLE_NEIGHBOURS nearest centerline samples; it is on such a lane when its box reaches
        within the lane's half width of the centerline (and, with z (K,), on the same level)."""
        key = boxes.tobytes() + (b"" if z is None else z.tobytes())
        if self._key == key:
            return self._match
        lanes = self.lanes
        self._key, self._match = key, None
        reach = 0.5 * np.hypot(boxes[:, 3], boxes[:, 4]) + OBSTACLE_REACH_M
        dist, pts = self.tree.query(
            boxes[:, :2], k=OBSTACLE_NEIGHBOURS, distance_upper_bound=float(reach.max())
        )
        o_all, slot = np.nonzero(dist <= reach[:, None])
        if o_all.size == 0:
            return None
        p_all = pts[o_all, slot]
        _, first = np.unique(o_all * self.n_lanes + lanes.lane_of_point[p_all], return_index=True)
        o, p = o_all[first], p_all[first]  # nearest sample per (obstacle, lane); query is sorted
        rel = boxes[o, :2] - lanes.xy[p]
        c, sn = np.cos(lanes.yaw_rad[p]), np.sin(lanes.yaw_rad[p])
        along, lateral = rel[:, 0] * c + rel[:, 1] * sn, -rel[:, 0] * sn + rel[:, 1] * c
        dyaw = wrap_angle(boxes[o, 2] - lanes.yaw_rad[p])
        cd, sd = np.abs(np.cos(dyaw)), np.abs(np.sin(dyaw))
        inside = np.abs(lateral) < 0.5 * (lanes.width_m[p] + sd * boxes[o, 3] + cd * boxes[o, 4])
        if z is not None:  # bridges: a lane far above or below is another level
            inside &= np.abs(lanes.z_m[p] - z[o]) < SAME_LEVEL_M
        if not inside.any():
            return None
        o, p, cd, sd, dyaw = o[inside], p[inside], cd[inside], sd[inside], dyaw[inside]
        half_long = 0.5 * (cd * boxes[o, 3] + sd * boxes[o, 4])
        s_o = lanes.s_m[p] + along[inside]
        self._match = (o, lanes.lane_of_point[p], s_o, half_long, np.cos(dyaw))
        return self._match
