"""Compiled (numba) per-tick kernels of the background traffic: the whole longitudinal step
(stop lines, leaders, junction grants, stop gaps, IDM, lane advance) in one call, and the poses
from (lane, s). Split from traffic.py, which keeps the state and the seeded, rarely-run Python
parts (spawning, plan extension, respawns); the rules themselves live in leaders.py / right_of_way.py.
Compiled with cache=True: the first call on a machine compiles (seconds), later processes load."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from harness.dynamics.idm import idm_accel_scalar
from harness.geometry import wrap_angle_scalar
from harness.jit import njit
from harness.sim.embedded.leaders import (
    obstacle_leaders_kernel,
    upper_bound,
    vehicle_leaders_kernel,
)
from harness.sim.embedded.right_of_way import OFF, junction_control_kernel, stop_gaps_kernel

INF = np.inf
# Columns of the packed parameter vector the step kernel takes (TrafficModel builds it once).
(
    P_A_MAX, P_B_COMF, P_S0, P_HEADWAY, P_DELTA, P_MAX_BRAKE, P_YELLOW_BRAKE, P_COMMIT_BRAKE,
    P_REQUEST_M, P_STOP_MARGIN, P_STOP_HOLD, P_EXIT_FREE, P_LOOKAHEAD,
) = range(13)  # fmt: skip
N_PARAMS = 13
FLAG_RESPAWN, FLAG_EXTEND = 1, 2  # what a vehicle needs from Python after the step


@njit
def step_kernel(
    lane: NDArray[np.int64], prev_lane: NDArray[np.int64], s: NDArray[np.float64],
    speed: NDArray[np.float64], accel: NDArray[np.float64], v0: NDArray[np.float64],
    length: NDArray[np.float64], seq: NDArray[np.int64], seq_off: NDArray[np.float64],
    req_since: NDArray[np.float64], granted_entry: NDArray[np.int64],
    stop_done_lane: NDArray[np.int64], stop_timer: NDArray[np.float64], ids: NDArray[np.int64],
    length_m: NDArray[np.float64], in_junction: NDArray[np.bool_], ok: NDArray[np.bool_],
    is_entry: NDArray[np.bool_], dead_end: NDArray[np.bool_], stop_s_m: NDArray[np.float64],
    stop_kind: NDArray[np.int64], stop_light: NDArray[np.int64], conn: NDArray[np.int64],
    conflict: NDArray[np.bool_], lights: NDArray[np.int8],
    m_o: NDArray[np.int64], m_lane: NDArray[np.int64], m_s: NDArray[np.float64],
    m_half: NDArray[np.float64], m_cos: NDArray[np.float64], speed_o: NDArray[np.float64],
    prm: NDArray[np.float64], tick: float, dt_s: float, flags: NDArray[np.int8],
    hold_s: NDArray[np.float64],
) -> int:  # fmt: skip
    """Advance every vehicle's (s, speed, accel, lane, plan, grants, stop-sign state) by dt_s in
    place; ``flags`` (N,) gets FLAG_RESPAWN / FLAG_EXTEND / 0; returns how many are flagged.
    Tables are LaneTables' (L + 1,) with the sentinel row; lane -1 reads it. ``lights`` (T,)
    LightState per light (lights out of range read OFF); ``m_*`` an ObstacleMatcher match's rows
    (Q,) and ``speed_o`` (K,) the obstacles' speeds [m/s]; ``prm`` the P_* parameters;
    ``hold_s`` (N,) [s] time a vehicle still stands still after a collision (counted down here)."""
    n, k_slots = seq.shape
    sentinel = length_m.shape[0] - 1
    n_lights = lights.shape[0]
    end_d = np.empty((n, k_slots))
    line_d = np.empty((n, k_slots))
    state = np.empty((n, k_slots), dtype=np.int64)
    for i in range(n):
        front = s[i] + 0.5 * length[i]
        for k in range(k_slots):
            ln = seq[i, k] if seq[i, k] >= 0 else sentinel
            rel = seq_off[i, k] - front
            end_d[i, k] = rel + length_m[ln]
            line_d[i, k] = rel + stop_s_m[ln]
            li = stop_light[ln]
            state[i, k] = lights[li] if 0 <= li < n_lights else OFF
    gap_v, v_v = np.empty(n), np.empty(n)
    vehicle_leaders_kernel(
        lane, prev_lane, s, length, speed, seq, seq_off, length_m, gap_v, v_v,
        np.full(sentinel + 1, -1, dtype=np.int64),
    )  # fmt: skip
    gap_o, v_o = np.empty(n), np.empty(n)
    obstacle_leaders_kernel(
        m_o, m_lane, m_s, m_half, m_cos, speed_o, s, length, seq, seq_off, gap_o, v_o
    )
    gap_a, v_a = np.empty(n), np.empty(n)
    for i in range(n):
        closer = gap_o[i] < gap_v[i]
        gap_a[i] = gap_o[i] if closer else gap_v[i]
        v_a[i] = v_o[i] if closer else v_v[i]
    junction_control_kernel(
        seq, seq_off, s, length, speed, prev_lane, ids, end_d, line_d, state, gap_a, v_a,
        granted_entry, req_since, stop_done_lane, tick, dt_s, is_entry, in_junction, conn,
        stop_kind, conflict, prm[P_COMMIT_BRAKE], prm[P_REQUEST_M], prm[P_YELLOW_BRAKE],
        prm[P_EXIT_FREE],
    )  # fmt: skip
    gap_s = np.empty(n)
    stop_gaps_kernel(
        seq, speed, end_d, line_d, state, granted_entry, stop_done_lane, stop_timer, dt_s,
        stop_kind, is_entry, dead_end, prm[P_YELLOW_BRAKE], prm[P_STOP_HOLD],
        prm[P_S0] - prm[P_STOP_MARGIN], gap_s,
    )  # fmt: skip
    a_max, b_comf, s0, hw, dl = prm[P_A_MAX], prm[P_B_COMF], prm[P_S0], prm[P_HEADWAY], prm[P_DELTA]
    for i in range(n):
        v = speed[i]
        a = min(
            idm_accel_scalar(v, v0[i], gap_v[i], v - v_v[i], a_max, b_comf, s0, hw, dl),
            idm_accel_scalar(v, v0[i], gap_o[i], v - v_o[i], a_max, b_comf, s0, hw, dl),
            idm_accel_scalar(v, v0[i], gap_s[i], v, a_max, b_comf, s0, hw, dl),
        )
        a = min(max(a, -prm[P_MAX_BRAKE]), a_max)
        v_new = max(v + a * dt_s, 0.0)
        ds = min(v_new * dt_s, max(min(gap_v[i], gap_o[i]) - 0.05, 0.0))  # never into a leader
        if hold_s[i] > 0.0:  # held after a collision: stands still
            hold_s[i] = max(hold_s[i] - dt_s, 0.0)
            ds = 0.0
        speed[i] = ds / dt_s
        accel[i] = (speed[i] - v) / dt_s
        s[i] += ds
    n_flagged = 0
    for i in range(n):
        flag = 0
        while s[i] >= length_m[lane[i]]:  # onto the next planned lane(s)
            nxt = seq[i, 1]
            if nxt < 0:
                s[i], speed[i] = length_m[lane[i]], 0.0
                break
            shift = length_m[lane[i]]
            s[i] -= shift
            prev_lane[i], lane[i] = lane[i], nxt
            for k in range(k_slots - 1):
                seq[i, k], seq_off[i, k] = seq[i, k + 1], seq_off[i, k + 1] - shift
            seq[i, k_slots - 1], seq_off[i, k_slots - 1] = -1, 0.0
            if in_junction[nxt]:
                stop_done_lane[i] = -1
            if not ok[nxt] and not dead_end[nxt]:
                flag = FLAG_RESPAWN
                break
        if flag == 0:
            last = -1
            for k in range(k_slots):
                if seq[i, k] >= 0:
                    last += 1
            ll = seq[i, last]
            cover = seq_off[i, last] + length_m[ll] - s[i]
            if cover < prm[P_LOOKAHEAD] and last < k_slots - 1 and not dead_end[ll]:
                flag = FLAG_EXTEND
        flags[i] = flag
        n_flagged += flag > 0
    return n_flagged


@njit
def pose_kernel(
    idx: NDArray[np.int64], lane: NDArray[np.int64], s: NDArray[np.float64],
    length_m: NDArray[np.float64], lane_start: NDArray[np.int64], lane_count: NDArray[np.int64],
    s_m: NDArray[np.float64], xy: NDArray[np.float64], yaw_pts: NDArray[np.float64],
    z_m: NDArray[np.float64], seg_dxy: NDArray[np.float64], seg_dyaw: NDArray[np.float64],
    x: NDArray[np.float64], y: NDArray[np.float64], z: NDArray[np.float64],
    yaw: NDArray[np.float64], yaw_rate: NDArray[np.float64], dt_s: float,
    speed: NDArray[np.float64], length: NDArray[np.float64], dead_end: NDArray[np.bool_],
    at_end: NDArray[np.int8],
) -> int:  # fmt: skip
    """Poses of vehicles ``idx`` from (lane, s) as LaneSet.position computes them (linear along the
    sample segment, yaw interpolated and wrapped; z of the nearest sample), in place. With
    dt_s > 0 also yaw_rate [rad/s] from the previous yaw, and ``at_end`` (N,) 1 where a vehicle
    stands at the end of a dead end (to respawn); returns their count."""
    n_end = 0
    for r in range(idx.shape[0]):
        i = idx[r]
        ln = lane[i]
        lg = length_m[ln]
        s_raw = s[i]
        sc = min(max(s_raw, 0.0), lg)
        lo = lane_start[ln]
        cnt = lane_count[ln]
        j = upper_bound(s_m, lo, lo + cnt, sc) - 1
        j = min(max(j, lo), lo + cnt - 2)
        ds = s_m[j + 1] - s_m[j]
        t = min(max((sc - s_m[j]) / ds, 0.0), 1.0) if ds > 0.0 else 0.0
        x[i] = xy[j, 0] + t * seg_dxy[j, 0]
        y[i] = xy[j, 1] + t * seg_dxy[j, 1]
        new_yaw = wrap_angle_scalar(yaw_pts[j] + t * seg_dyaw[j])
        if dt_s > 0.0:
            yaw_rate[i] = wrap_angle_scalar(new_yaw - yaw[i]) / dt_s
        yaw[i] = new_yaw
        last = cnt - 1
        kz = min(max(np.rint(s_raw / max(lg, 1e-6) * last), 0.0), float(last))
        z[i] = z_m[lo + int(kz)]
        if dt_s > 0.0:
            end = dead_end[ln] and s_raw + 0.5 * length[i] > lg - 3.0 and speed[i] < 0.1
            at_end[i] = end
            n_end += end
    return n_end
