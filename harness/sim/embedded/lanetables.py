"""Per-lane tables of the background traffic, built once per town: lengths, stop lines, junction
membership, successors and the conflict matrix of junction connector lanes (first-come-first-served
reservations). Split from traffic.py so the per-tick model reads flat arrays only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray

STOP_LIGHT, STOP_SIGN = 0, 1  # SignalSet.stop_kind values
CONFLICT_AREA_M2 = 0.2  # connector polygons overlapping by more than this conflict [m2]
NARROW_LANE_M = 2.5  # lanes narrower than this somewhere are not driven into or spawned on [m]


def conflict_matrix(
    polygons: list[Any], junction_id: NDArray[np.int64], connectors: NDArray[np.int64]
) -> NDArray[np.bool_]:
    """(C, C) connector pairs of the same junction whose lane polygons overlap by more than
    CONFLICT_AREA_M2; diverging and merging pairs are included, they share road at their ends."""
    c = connectors.shape[0]
    out = np.zeros((c, c), dtype=bool)
    if c == 0:
        return out
    polys = np.array([polygons[k] for k in connectors.tolist()], dtype=object)
    a, b = shapely.STRtree(polys).query(polys, predicate="intersects")
    keep = (a < b) & (junction_id[connectors[a]] == junction_id[connectors[b]])
    a, b = a[keep], b[keep]
    if a.size:
        hit = shapely.area(shapely.intersection(polys[a], polys[b])) > CONFLICT_AREA_M2
        out[a[hit], b[hit]] = out[b[hit], a[hit]] = True
    return out


@dataclass(frozen=True, eq=False)
class LaneTables:
    """Per-lane tables read every tick, shape (L + 1,): the extra last row is a neutral sentinel,
    so a padding lane index -1 reads length 0, no stop line, no junction, no successor."""

    length_m: NDArray[np.float64]  # [m]
    in_junction: NDArray[np.bool_]
    ok: NDArray[np.bool_]  # wide enough everywhere and not a dead end: fit to drive into
    is_entry: NDArray[np.bool_]  # outside a junction and leads into one
    dead_end: NDArray[np.bool_]  # no successor
    stop_s_m: NDArray[np.float64]  # [m] last stop line on the lane, nan if none
    stop_kind: NDArray[np.int64]  # STOP_LIGHT / STOP_SIGN / -1
    stop_light: NDArray[np.int64]  # light index of a STOP_LIGHT line, else -1
    conn: NDArray[np.int64]  # connector index into ``conflict`` or -1
    succ: NDArray[np.int64]  # (L + 1, S) successors, -1 padded
    conflict: NDArray[np.bool_]  # (C, C) conflicting connectors, see conflict_matrix

    @staticmethod
    def build(town: Any) -> LaneTables:
        lanes, n = town.lanes, int(town.lanes.length_m.shape[0])
        succ = [town.graph.successors(k) for k in range(n)] + [[]]
        succ_arr = np.full((n + 1, max(1, max(len(s) for s in succ))), -1, dtype=np.int64)
        for k, ss in enumerate(succ):
            succ_arr[k, : len(ss)] = ss
        jid = np.append(np.asarray(lanes.junction_id), -1)
        in_j = jid >= 0
        dead = succ_arr[:, 0] < 0
        width = np.append(
            np.minimum.reduceat(np.asarray(lanes.width_m), np.asarray(lanes.start)), 0.0
        )
        sig = town.signals
        stop_s = np.full(n + 1, np.nan)
        kind = np.full(n + 1, -1, dtype=np.int64)
        light = np.full(n + 1, -1, dtype=np.int64)
        for i in np.argsort(sig.stop_s_m, kind="stable").tolist():  # the last line on a lane wins
            lane = int(sig.stop_lane[i])
            stop_s[lane], kind[lane] = float(sig.stop_s_m[i]), int(sig.stop_kind[i])
            light[lane] = int(sig.stop_owner[i]) if kind[lane] == STOP_LIGHT else -1
        connectors = np.flatnonzero(in_j)
        conn = np.full(n + 1, -1, dtype=np.int64)
        conn[connectors] = np.arange(connectors.size)
        return LaneTables(
            length_m=np.append(np.asarray(lanes.length_m, dtype=np.float64), 0.0),
            in_junction=in_j,
            ok=(width >= NARROW_LANE_M) & ~dead,
            is_entry=~in_j & in_j[succ_arr].any(axis=1) & ~dead,
            dead_end=dead & (np.arange(n + 1) < n),
            stop_s_m=stop_s,
            stop_kind=kind,
            stop_light=light,
            conn=conn,
            succ=succ_arr,
            conflict=conflict_matrix(list(town.area.lane_polygons), jid, connectors),
        )
