"""Right-of-way rules of the background traffic: junction grants (first come, first served over
conflicting connector lanes, gated by lights, stop signs and room at the exit) and the virtual stop
lines IDM brakes for. Functions over a TrafficModel's arrays; split from traffic.py."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from harness.jit import njit
from harness.sim.embedded.lanetables import STOP_SIGN
from harness.world.state import LightState

if TYPE_CHECKING:
    from harness.sim.embedded.traffic import TrafficModel

SEQ_SLOTS = 8  # lanes in a planned sequence, current lane first [-] (TrafficModel's)
CLAIM_SLOTS = 3  # consecutive junction lanes one entry claims [-]
STOPPED_MPS = 0.1  # below this a vehicle counts as stopped (the leaderboard's stop-sign test) [m/s]
RED, YELLOW, GREEN, OFF = (int(v) for v in LightState)  # plain ints: no enum lookups per tick
INF = np.inf


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


# ---------------------------------------------------------------- compiled kernels (numba)
# The traffic step's versions of the two functions above: the same rules, one loop over vehicles.


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
    """:func:`junction_control` on arrays: updates ``granted_entry`` and ``req_since`` in place.
    Lane index -1 (padding) must read the tables' sentinel row (index L)."""
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
    """:func:`stop_gaps` on arrays into ``out`` (N,) [m]; updates the stop-sign timers and
    ``stop_done_lane`` in place. ``offset_m`` = s0 - stop margin."""
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
