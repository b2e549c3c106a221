"""Right-of-way rules of the background traffic: junction grants (first come, first served over
conflicting connector lanes, gated by lights, stop signs and room at the exit) and the virtual stop
lines IDM brakes for. Functions over a TrafficModel's arrays; split from traffic.py."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from harness.sim.embedded.lanetables import STOP_SIGN
from harness.sim.state import LightState

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
