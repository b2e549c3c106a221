"""Right-of-way rules of the background traffic: junction grants (first come, first served over
conflicting connector lanes, gated by lights, stop signs and room at the exit) and the virtual stop
lines IDM brakes for. Compiled (numba) kernels over a TrafficModel's arrays; split from
traffic.py. The array versions they replaced are test oracles
(``tests/oracles/traffic_numpy.py``)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from harness.jit import njit
from harness.sim.embedded.lanetables import STOP_SIGN
from harness.world.state import LightState

SEQ_SLOTS = 8  # lanes in a planned sequence, current lane first [-] (TrafficModel's)
CLAIM_SLOTS = 3  # consecutive junction lanes one entry claims [-]
STOPPED_MPS = 0.1  # below this a vehicle counts as stopped (the leaderboard's stop-sign test) [m/s]
RED, YELLOW, GREEN, OFF = (int(v) for v in LightState)  # plain ints: no enum lookups per tick
INF = np.inf


# ---------------------------------------------------------------- compiled kernels (numba)
# The traffic step's right-of-way rules: one loop over vehicles.


@njit
def junction_control_kernel(
    seq: NDArray[np.int64], seq_off: NDArray[np.float64], s: NDArray[np.float64],
    length: NDArray[np.float64], v: NDArray[np.float64], prev_lane: NDArray[np.int64],
    ids: NDArray[np.int64], end_d: NDArray[np.float64], line_d: NDArray[np.float64],
    state: NDArray[np.int64], gap_ahead: NDArray[np.float64], v_ahead: NDArray[np.float64],
    granted_entry: NDArray[np.int64], req_since: NDArray[np.float64],
    stop_done_lane: NDArray[np.int64], tick: float, dt_s: float,
    is_entry: NDArray[np.bool_], in_junction: NDArray[np.bool_], conn: NDArray[np.int64],
    stop_kind: NDArray[np.int64], conflict: NDArray[np.bool_],
    commit_brake: float, request_m: float, yellow_brake: float, exit_free_mps: float,
) -> None:  # fmt: skip
    """Update the junction grants: ``granted_entry`` and ``req_since`` in place. Vehicles on, or
    committed to, connectors hold them; vehicles near an entry whose light / stop sign lets them
    go and whose exit has room ask, oldest request first, and are granted when no held or
    earlier-asked connector conflicts with theirs. Lane index -1 (padding) must read the tables'
    sentinel row (index L)."""
    n, k_slots = seq.shape
    sentinel = is_entry.shape[0] - 1
    entry = np.empty(n, dtype=np.int64)
    ke = np.zeros(n, dtype=np.int64)
    committed = np.zeros(n, dtype=np.bool_)
    asking = np.zeros(n, dtype=np.bool_)
    claims = np.full((n, CLAIM_SLOTS), -1, dtype=np.int64)
    any_near = False
    for i in range(n):
        k0 = 0
        for k in range(k_slots):
            ln = seq[i, k] if seq[i, k] >= 0 else sentinel
            if is_entry[ln]:
                k0 = k
                break
        ke[i] = k0
        e = seq[i, k0] if seq[i, k0] >= 0 else sentinel
        entry[i] = seq[i, k0]
        has_e = is_entry[e]
        entry_d = end_d[i, k0] if has_e else INF
        vi = v[i]
        com = has_e and (
            entry_d <= 0.0
            or (
                granted_entry[i] == entry[i]
                and entry_d < vi * vi / (2.0 * commit_brake) + vi * dt_s + 1.0
            )
        )
        committed[i] = com
        granted_entry[i] = entry[i] if com else -1
        if has_e:
            n_claim = 0
            for c in range(CLAIM_SLOTS):
                slot = k0 + 1 + c
                if slot >= k_slots or seq[i, slot] < 0 or not in_junction[seq[i, slot]]:
                    break
                claims[i, c] = conn[seq[i, slot]]
                n_claim += 1
        if not (has_e and not com and entry_d < request_m):
            continue
        any_near = True
        line_e = line_d[i, k0]
        if np.isnan(line_e):
            line_e = entry_d
        st = state[i, k0]
        go = (
            st in (GREEN, OFF)
            or (st == YELLOW and line_e < vi * vi / (2.0 * yellow_brake)) or line_e < 0.0
        )  # fmt: skip
        go = go and (stop_kind[e] != STOP_SIGN or stop_done_lane[i] == entry[i] or line_e < 0.0)
        exit_slot = k0 + 1 + n_claim
        exit_d = seq_off[i, exit_slot] - (s[i] + 0.5 * length[i]) if exit_slot < k_slots else INF
        room = (
            gap_ahead[i] > exit_d + length[i] + 1.0 or v_ahead[i] > exit_free_mps or exit_d == INF
        )
        asking[i] = go and room and n_claim > 0
    if not any_near:
        req_since[:] = INF
        return
    order = np.empty(n, dtype=np.int64)
    m = 0
    for i in range(n):
        if asking[i]:
            req_since[i] = min(req_since[i], tick)
            order[m] = i
            m += 1
        else:
            req_since[i] = INF
    if m == 0:
        return
    for a in range(1, m):  # insertion sort by (req_since, id): oldest request first
        r = order[a]
        b = a - 1
        while b >= 0 and (
            req_since[order[b]] > req_since[r]
            or (req_since[order[b]] == req_since[r] and ids[order[b]] > ids[r])
        ):
            order[b + 1] = order[b]
            b -= 1
        order[b + 1] = r
    held = np.zeros(conflict.shape[0], dtype=np.bool_)
    for i in range(n):
        for k in range(min(CLAIM_SLOTS, k_slots)):
            ln = seq[i, k]
            if ln < 0 or not in_junction[ln]:
                break
            held[conn[ln]] = True
        if prev_lane[i] >= 0 and s[i] < 0.5 * length[i] + 1.0 and conn[prev_lane[i]] >= 0:
            held[conn[prev_lane[i]]] = True
        if committed[i]:
            for c in range(CLAIM_SLOTS):
                if claims[i, c] >= 0:
                    held[claims[i, c]] = True
    for a in range(m):
        r = order[a]
        free = True
        for c in range(CLAIM_SLOTS):
            cr = claims[r, c]
            if cr < 0 or not free:
                continue
            for h in range(held.shape[0]):
                if held[h] and conflict[cr, h]:
                    free = False
                    break
        if free:
            granted_entry[r] = entry[r]
        for c in range(CLAIM_SLOTS):
            if claims[r, c] >= 0:
                held[claims[r, c]] = True


@njit
def stop_gaps_kernel(
    seq: NDArray[np.int64], speed: NDArray[np.float64], end_d: NDArray[np.float64],
    line_d: NDArray[np.float64], state: NDArray[np.int64], granted_entry: NDArray[np.int64],
    stop_done_lane: NDArray[np.int64], stop_timer: NDArray[np.float64], dt_s: float,
    stop_kind: NDArray[np.int64], is_entry: NDArray[np.bool_], dead_end: NDArray[np.bool_],
    yellow_brake: float, hold_s: float, offset_m: float, out: NDArray[np.float64],
) -> None:  # fmt: skip
    """IDM gap [m] of each vehicle to the nearest place it must stop at (a stopped virtual
    leader: red or stoppable yellow lights, stop signs not yet honoured, junction entries without
    a grant, dead ends) into ``out`` (N,); counts the full stop held at a stop sign (updates the
    stop-sign timers and ``stop_done_lane`` in place). ``offset_m`` = s0 - stop margin."""
    n, k_slots = seq.shape
    sentinel = stop_kind.shape[0] - 1
    first_sign = np.full(n, -1, dtype=np.int64)
    any_sign = False
    for i in range(n):
        v2 = speed[i] * speed[i]
        d = INF
        for k in range(k_slots):
            ln = seq[i, k] if seq[i, k] >= 0 else sentinel
            ld, st = line_d[i, k], state[i, k]
            red = st == RED and ld > -1.0
            yellow = st == YELLOW and ld > v2 / (2.0 * yellow_brake)
            sign = stop_kind[ln] == STOP_SIGN and stop_done_lane[i] != seq[i, k] and ld > -1.0
            if sign and first_sign[i] < 0:
                first_sign[i] = k
                any_sign = True
            if (red or yellow or sign) and ld < d:
                d = ld
            ungranted = is_entry[ln] and granted_entry[i] != seq[i, k] and end_d[i, k] > 0.0
            if (ungranted or dead_end[ln]) and end_d[i, k] < d:
                d = end_d[i, k]
        out[i] = d + offset_m
    if any_sign:
        for i in range(n):
            k = first_sign[i]
            near = k >= 0 and line_d[i, k] < 3.0 and speed[i] < STOPPED_MPS
            stop_timer[i] = stop_timer[i] + dt_s if near else 0.0
            if stop_timer[i] >= hold_s:
                stop_done_lane[i] = seq[i, k]
                stop_timer[i] = 0.0
