"""Test oracles of the background-traffic kernels: the array (NumPy) versions of the leader
search, the obstacle-to-lane matching and the right-of-way rules that the compiled kernels of
:mod:`harness.sim.embedded.leaders` and :mod:`harness.sim.embedded.right_of_way` replaced. Tests check
the kernels against them mid-run on a real town. Not imported by production code."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from harness.geometry import wrap_angle
from harness.sim.embedded.lanetables import STOP_SIGN
from harness.sim.embedded.leaders import OBSTACLE_REACH_M, SAME_LEVEL_M
from harness.sim.embedded.right_of_way import (
    CLAIM_SLOTS,
    GREEN,
    OFF,
    RED,
    SEQ_SLOTS,
    STOPPED_MPS,
    YELLOW,
)
from harness.sim.embedded.traffic import TrafficModel

OBSTACLE_NEIGHBOURS = 32  # nearest centerline samples searched per obstacle [-]
INF = np.inf


# ---------------------------------------------------------------- leaders (leaders.py)


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
    from an :meth:`harness.sim.embedded.leaders.ObstacleMatcher.match`
    result and the obstacles' speeds (K,) [m/s]."""
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


def match_kdtree(
    lanes: Any, boxes: NDArray[np.float64], z: NDArray[np.float64] | None
) -> tuple[NDArray[Any], ...] | None:
    """:meth:`ObstacleMatcher.match` with numpy and a KD-tree over the OBSTACLE_NEIGHBOURS nearest
    centerline samples of ``lanes`` (a :class:`harness.maps.lanes.LaneSet`); the oracle of the
    compiled grid scan ``match_kernel``."""
    tree = cKDTree(np.asarray(lanes.xy))
    n_keys = int(lanes.n_lanes) + 1  # any bound above the largest lane index
    reach = 0.5 * np.hypot(boxes[:, 3], boxes[:, 4]) + OBSTACLE_REACH_M
    dist, pts = tree.query(
        boxes[:, :2], k=OBSTACLE_NEIGHBOURS, distance_upper_bound=float(reach.max())
    )
    o_all, slot = np.nonzero(dist <= reach[:, None])
    if o_all.size == 0:
        return None
    p_all = pts[o_all, slot]
    _, first = np.unique(o_all * n_keys + lanes.lane_of_point[p_all], return_index=True)
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
    return (o, lanes.lane_of_point[p], s_o, half_long, np.cos(dyaw))


# ---------------------------------------------------------------- right of way (right_of_way.py)


def junction_control(
    tm: TrafficModel, end_d: NDArray[np.float64], line_d: NDArray[np.float64],
    state: NDArray[np.int64], gap_ahead: NDArray[np.float64], v_ahead: NDArray[np.float64],
    dt_s: float,
) -> None:  # fmt: skip
    """Update ``tm``'s junction grants. Vehicles on, or committed to, connectors hold them; vehicles
    near an entry whose light / stop sign lets them go and whose exit has room ask, oldest request
    first, and are granted when no held or earlier-asked connector conflicts with theirs. The held
    set and the go / room tests are only built when some vehicle is close enough to ask."""
    p, t, n, v = tm.params, tm.tables, tm.n, tm.speed
    base = np.arange(n) * SEQ_SLOTS  # flat row offsets: np.take on flat (N, SEQ_SLOTS) arrays
    ke = np.argmax(t.is_entry[tm.seq], axis=1)
    at_e = base + ke
    entry = np.take(tm.seq, at_e)
    has_e = t.is_entry[entry]
    entry_d = np.where(has_e, np.take(end_d, at_e), INF)
    committed = has_e & (
        (entry_d <= 0.0)
        | (
            (tm.granted_entry == entry)
            & (entry_d < v * v / (2.0 * p.commit_brake_mps2) + v * dt_s + 1.0)
        )
    )
    near = has_e & ~committed & (entry_d < p.request_m)
    tm.granted_entry = np.where(committed, entry, -1)
    if not near.any():  # nobody can ask: no request survives
        tm.req_since = np.full(n, INF)
        return
    slot = ke[:, None] + 1 + np.arange(CLAIM_SLOTS)
    cl = np.where(
        slot < SEQ_SLOTS, np.take(tm.seq, base[:, None] + np.minimum(slot, SEQ_SLOTS - 1)), -1
    )
    cl_ok = np.logical_and.accumulate(t.in_junction[cl], axis=1) & has_e[:, None]
    claims = np.where(cl_ok, t.conn[cl], -1)  # (N, CLAIM_SLOTS) connector indices
    line_e = np.take(line_d, at_e)
    line_e = np.where(np.isnan(line_e), entry_d, line_e)
    st = np.take(state, at_e)
    go = (
        (st == GREEN)
        | (st == OFF)
        | ((st == YELLOW) & (line_e < v * v / (2.0 * p.yellow_brake_mps2)))
        | (line_e < 0.0)
    )
    go &= (t.stop_kind[entry] != STOP_SIGN) | (tm.stop_done_lane == entry) | (line_e < 0.0)
    n_claim = cl_ok.sum(axis=1)
    exit_slot = ke + 1 + n_claim
    exit_d = np.where(
        exit_slot < SEQ_SLOTS,
        np.take(tm.seq_off, base + np.minimum(exit_slot, SEQ_SLOTS - 1)) - (tm.s + 0.5 * tm.length),
        INF,
    )
    room = (
        (gap_ahead > exit_d + tm.length + 1.0) | (v_ahead > p.exit_free_speed_mps) | (exit_d == INF)
    )
    asking = near & go & room & (n_claim > 0)
    tm.req_since = np.where(asking, np.minimum(tm.req_since, tm.tick_count), INF)
    if not asking.any():
        return
    cur = tm.seq[:, :CLAIM_SLOTS]
    cur_held = np.where(np.logical_and.accumulate(t.in_junction[cur], axis=1), t.conn[cur], -1)
    held = np.zeros(t.conflict.shape[0] + 1, dtype=bool)  # last cell absorbs -1 padding
    held[cur_held] = True
    held[np.where(tm.s < 0.5 * tm.length + 1.0, t.conn[tm.prev_lane], -1)] = True
    held[claims[committed]] = True
    conflict = t.conflict
    for r in np.flatnonzero(asking)[np.lexsort((tm.ids[asking], tm.req_since[asking]))].tolist():
        c = claims[r][claims[r] >= 0]
        if not (conflict[c] & held[:-1]).any():
            tm.granted_entry[r] = entry[r]
        held[c] = True


def stop_gaps(
    tm: TrafficModel,
    end_d: NDArray[np.float64],
    line_d: NDArray[np.float64],
    state: NDArray[np.int64],
    dt_s: float,
) -> NDArray[np.float64]:
    """IDM gap [m] of ``tm``'s vehicles to the nearest place each must stop at (a stopped virtual
    leader): red or stoppable yellow lights, stop signs not yet honoured, junction entries without
    a grant, dead ends. Also counts the full stop held at a stop sign."""
    p, t, seq = tm.params, tm.tables, tm.seq
    v2 = (tm.speed * tm.speed)[:, None]
    kind = t.stop_kind[seq]
    red = (state == RED) & (line_d > -1.0)
    yellow = (state == YELLOW) & (line_d > v2 / (2.0 * p.yellow_brake_mps2))
    sign = (kind == STOP_SIGN) & (tm.stop_done_lane[:, None] != seq) & (line_d > -1.0)
    d = np.where(red | yellow | sign, line_d, INF)
    ungranted = t.is_entry[seq] & (tm.granted_entry[:, None] != seq) & (end_d > 0.0)
    d = np.minimum(d, np.where(ungranted | t.dead_end[seq], end_d, INF)).min(axis=1)
    if sign.any():
        at = np.arange(tm.n) * SEQ_SLOTS + np.argmax(sign, axis=1)  # flat index of the first sign
        near = np.take(sign, at) & (np.take(line_d, at) < 3.0) & (tm.speed < STOPPED_MPS)
        tm.stop_timer = np.where(near, tm.stop_timer + dt_s, 0.0)
        done = tm.stop_timer >= p.stop_sign_hold_s
        tm.stop_done_lane[done] = np.take(seq, at)[done]
        tm.stop_timer[done] = 0.0
    return d - p.stop_margin_m + p.idm.s0_m
