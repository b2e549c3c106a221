"""Background traffic on the lane graph: IDM car following along each vehicle's planned lane
sequence, traffic lights, stop signs and first-come-first-served junction reservations over
conflicting connector lanes. Vectorised over vehicles; only lane transitions, plan extensions and
the few vehicles asking to enter a junction are handled one by one."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from harness.dynamics.vehicle import CARLA_DEFAULT_CAR
from harness.geometry import wrap_angle
from harness.sim.embedded.idm import IDMParams, idm_accel
from harness.sim.state import LightState

log = logging.getLogger(__name__)

SEQ_SLOTS = 8  # lanes in a planned sequence, current lane first [-]
CLAIM_SLOTS = 3  # consecutive junction lanes one entry claims [-]
STOP_LIGHT, STOP_SIGN = 0, 1  # SignalSet.stop_kind values
RED, YELLOW, GREEN, OFF = (int(v) for v in LightState)  # plain ints: no enum lookups per tick
CONFLICT_AREA_M2 = 0.2  # connector polygons overlapping by more than this conflict [m2]
RESPAWN_MIN_DIST_M = 40.0  # recycled vehicles reappear at least this far from the ego [m]
NARROW_LANE_M = 2.5  # lanes narrower than this somewhere are not driven into or spawned on [m]
SAME_LEVEL_M = 3.0  # an obstacle this close in height to a lane is on it (else bridge level) [m]
OBSTACLE_REACH_M = 3.0  # centerline samples this much beyond an obstacle's radius are searched [m]
OBSTACLE_NEIGHBOURS = 32  # nearest centerline samples searched per obstacle [-]
STOPPED_MPS = 0.1  # below this a vehicle counts as stopped (the leaderboard's stop-sign test) [m/s]
INF = np.inf
STATE_FIELDS = (
    "ids", "lane", "prev_lane", "s", "speed", "accel", "x", "y", "z", "yaw", "yaw_rate", "v0",
    "length", "width", "height", "seq", "seq_off", "req_since", "granted_entry", "stop_done_lane",
    "stop_timer",
)  # fmt: skip


@dataclass(frozen=True)
class TrafficParams:
    """Behaviour of background vehicles; dims default to CARLA's default car (Lincoln MKZ)."""

    idm: IDMParams = field(default_factory=IDMParams)
    speed_range_mps: tuple[float, float] = (8.0, 12.0)  # desired speed, sampled per vehicle [m/s]
    lookahead_m: float = 60.0  # the planned lane sequence covers at least this far ahead [m]
    request_m: float = 35.0  # ask to enter a junction from this far before its entry [m]
    stop_margin_m: float = 0.5  # the front bumper stops this far before a stop line / entry [m]
    max_brake_mps2: float = 8.0  # hardest braking a background vehicle uses [m/s2]
    yellow_brake_mps2: float = 3.0  # stop for yellow when this deceleration suffices [m/s2]
    commit_brake_mps2: float = 3.0  # a granted vehicle that cannot stop at this is committed [m/s2]
    stop_sign_hold_s: float = 1.0  # full stop held at a stop sign before proceeding [s]
    exit_free_speed_mps: float = 3.0  # a leader beyond the junction this fast frees the exit [m/s]
    spawn_spacing_m: float = 10.0  # minimum centre distance between spawned vehicles [m]
    length_m: float = CARLA_DEFAULT_CAR.length_m
    width_m: float = CARLA_DEFAULT_CAR.width_m
    height_m: float = CARLA_DEFAULT_CAR.height_m


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


class TrafficModel:
    """Background vehicles: array state per vehicle, advanced by :meth:`step`.

    Per vehicle (N,): ``lane`` LaneSet index, ``s`` [m] of the box centre along it, ``speed`` [m/s],
    ``accel`` [m/s2], pose ``x, y, z`` [m], ``yaw`` [rad], ``yaw_rate`` [rad/s], ``length, width,
    height`` [m], ``ids``; ``seq`` (N, SEQ_SLOTS) planned lanes (-1 padded) and ``seq_off``
    (N, SEQ_SLOTS) [m] where each planned lane starts, measured from the start of the current lane.
    """

    def __init__(
        self, town: Any, params: TrafficParams, rng: np.random.Generator, first_id: int = 1000
    ) -> None:
        self.town, self.params, self.rng = town, params, rng
        self.tables = LaneTables.build(town)
        self._tree = cKDTree(np.asarray(town.lanes.xy))
        lanes, t = town.lanes, self.tables
        lop = np.asarray(lanes.lane_of_point)
        half = 0.5 * params.length_m + 1.0
        self._placeable_mask = (
            t.ok[lop] & ~t.in_junction[lop] & (lanes.s_m > half) & (lanes.s_m < t.length_m[lop] - half)
            & (lanes.width_m >= NARROW_LANE_M)
        )  # fmt: skip
        self._placeable = np.flatnonzero(self._placeable_mask)
        self._next_id = first_id
        self._spawn_near: NDArray[np.float64] | None = None
        self._spawn_radius = INF
        self._keep_clear = np.zeros((0, 5))
        self._tick = 0
        self._resize(0)
        log.debug(
            "traffic: %d connectors, %d conflicting pairs",
            self.tables.conflict.shape[0],
            int(self.tables.conflict.sum()) // 2,
        )

    # ---------------------------------------------------------------- state
    def _resize(self, n: int) -> None:
        """Grow (or create) the state arrays to n rows, keeping existing rows."""
        old = {k: getattr(self, k) for k in STATE_FIELDS} if hasattr(self, "ids") else {}
        f = np.zeros(n)
        self.ids, self.lane, self.prev_lane = (np.full(n, -1, dtype=np.int64) for _ in range(3))
        self.s, self.speed, self.accel, self.v0 = f.copy(), f.copy(), f.copy(), f.copy()
        self.x, self.y, self.z, self.yaw, self.yaw_rate = (
            f.copy(),
            f.copy(),
            f.copy(),
            f.copy(),
            f.copy(),
        )
        self.length = np.full(n, self.params.length_m)
        self.width = np.full(n, self.params.width_m)
        self.height = np.full(n, self.params.height_m)
        self.seq = np.full((n, SEQ_SLOTS), -1, dtype=np.int64)
        self.seq_off = np.zeros((n, SEQ_SLOTS))
        self.req_since = np.full(n, INF)  # tick the current junction request began
        self.granted_entry = np.full(n, -1, dtype=np.int64)  # entry lane it may drive through
        self.stop_done_lane = np.full(n, -1, dtype=np.int64)  # stop-sign lane already honoured
        self.stop_timer = f.copy()  # [s] full stop held at a stop sign so far
        for k, v in old.items():
            getattr(self, k)[: v.shape[0]] = v

    @property
    def n(self) -> int:
        return int(self.ids.shape[0])

    @property
    def boxes(self) -> NDArray[np.float64]:
        """(N, 5) [x, y, yaw, length, width] as harness.boxes takes."""
        return np.stack([self.x, self.y, self.yaw, self.length, self.width], axis=-1)

    # ---------------------------------------------------------------- placing vehicles
    def _candidates(
        self, near_xy: NDArray[np.float64] | None, radius_m: float, min_dist_m: float = 0.0
    ) -> NDArray[np.int64]:
        """Centerline points where a vehicle may be placed: fit lanes outside junctions, a car
        length from the lane ends, within radius_m of any of near_xy (M, 2) (anywhere when None)
        and at least min_dist_m from all of them."""
        ok = self._placeable
        if near_xy is None or not len(near_xy):
            return ok
        hits = self._tree.query_ball_point(near_xy, radius_m, return_sorted=True)
        idx = np.unique(np.concatenate([np.asarray(h, dtype=np.int64) for h in hits]))
        idx = idx[self._placeable_mask[idx]]
        if min_dist_m > 0.0 and idx.size:
            d, _ = cKDTree(near_xy).query(self.town.lanes.xy[idx])
            idx = idx[d >= min_dist_m]
        return idx

    def _place(
        self,
        want: int,
        taken_xy: NDArray[np.float64],
        near_xy: NDArray[np.float64] | None = None,
        radius_m: float = INF,
        min_dist_m: float = 0.0,
    ) -> NDArray[np.int64]:
        """Up to ``want`` seeded candidate points spaced from taken_xy (M, 2) and the keep-clear
        boxes, within radius_m of near_xy (default: the spawn area) and min_dist_m away from it."""
        if near_xy is None:
            near_xy, radius_m = self._spawn_near, self._spawn_radius
        xy = self.town.lanes.xy
        spacing = self.params.spawn_spacing_m
        keep = self._keep_clear
        clear_r = 0.5 * np.hypot(keep[:, 3], keep[:, 4]) + spacing
        placed = [np.asarray(taken_xy, dtype=np.float64).reshape(-1, 2)]
        chosen: list[int] = []
        for p in self.rng.permutation(self._candidates(near_xy, radius_m, min_dist_m)).tolist():
            if len(chosen) >= want:
                break
            q = xy[p]
            others = np.concatenate(placed)
            if others.size and np.min(np.hypot(others[:, 0] - q[0], others[:, 1] - q[1])) < spacing:
                continue
            if keep.size and np.any(np.hypot(keep[:, 0] - q[0], keep[:, 1] - q[1]) < clear_r):
                continue
            chosen.append(p)
            placed.append(q[None])
        return np.asarray(chosen, dtype=np.int64)

    def spawn(
        self,
        n: int,
        near_xy: NDArray[np.float64] | None = None,
        radius_m: float = INF,
        keep_clear_boxes: NDArray[np.float64] | None = None,
    ) -> NDArray[np.int64]:
        """Add up to n vehicles at rest on random lanes outside junctions within radius_m of any of
        near_xy (M, 2) (anywhere when None), spaced apart and clear of keep_clear_boxes (K, 5).
        Later respawns use the same area. Returns the new ids."""
        self._spawn_near = (
            None if near_xy is None else np.asarray(near_xy, dtype=np.float64).reshape(-1, 2)
        )
        self._spawn_radius = radius_m
        if keep_clear_boxes is not None:
            self._keep_clear = np.asarray(keep_clear_boxes, dtype=np.float64).reshape(-1, 5)
        pts = self._place(n, np.stack([self.x, self.y], axis=-1))
        if pts.size < n:
            log.info("spawned %d of %d background vehicles (no more free places)", pts.size, n)
        first = self.n
        self._resize(first + pts.size)
        for i, p in enumerate(pts.tolist(), start=first):
            self._reset_vehicle(
                i, int(self.town.lanes.lane_of_point[p]), float(self.town.lanes.s_m[p])
            )
        return self.ids[first:]

    def add_vehicle(
        self, lane: int, s_m: float, speed_mps: float = 0.0, desired_mps: float | None = None
    ) -> int:
        """Place one vehicle at (lane, s) with a speed (scenario set-ups, tests); returns its id.
        No clearance check: the caller chooses a free place."""
        self._resize(self.n + 1)
        self._reset_vehicle(self.n - 1, lane, s_m, speed_mps, desired_mps)
        return int(self.ids[-1])

    def _reset_vehicle(
        self, i: int, lane: int, s_m: float, speed: float = 0.0, v0: float | None = None
    ) -> None:
        """Put vehicle i at (lane, s) with a new id, a fresh desired speed and a fresh plan."""
        self.ids[i] = self._next_id
        self._next_id += 1
        self.lane[i], self.s[i], self.speed[i], self.accel[i] = lane, s_m, speed, 0.0
        sampled = self.rng.uniform(*self.params.speed_range_mps)
        self.v0[i] = sampled if v0 is None else v0
        self.prev_lane[i] = self.granted_entry[i] = self.stop_done_lane[i] = -1
        self.req_since[i], self.stop_timer[i] = INF, 0.0
        self.seq[i], self.seq_off[i] = -1, 0.0
        self.seq[i, 0] = lane
        self._extend(i)
        self._pose(np.array([i]))
        self.yaw_rate[i] = 0.0

    def _extend(self, i: int) -> None:
        """Grow vehicle i's plan to cover the lookahead, choosing at branches with the seeded rng
        (among lanes fit to drive when there are any), so turns are known before they are reached."""
        t, seq, off = self.tables, self.seq[i], self.seq_off[i]
        k = int(np.count_nonzero(seq >= 0)) - 1
        while (
            k + 1 < SEQ_SLOTS and off[k] + t.length_m[seq[k]] - self.s[i] < self.params.lookahead_m
        ):
            opts = t.succ[seq[k]]
            opts = opts[opts >= 0]
            if opts.size == 0:
                return
            good = opts[t.ok[opts]]
            pick = good if good.size else opts
            off[k + 1] = off[k] + t.length_m[seq[k]]
            seq[k + 1] = int(pick[self.rng.integers(pick.size)]) if pick.size > 1 else int(pick[0])
            k += 1

    def _pose(self, idx: NDArray[np.int64]) -> None:
        """Pose from (lane, s); z [m] of the nearest centerline sample (samples are ~1 m apart)."""
        lanes, lane = self.town.lanes, self.lane[idx]
        xy, yaw = lanes.position(lane, self.s[idx])
        self.x[idx], self.y[idx], self.yaw[idx] = xy[..., 0], xy[..., 1], yaw
        last = lanes.count[lane] - 1
        k = np.clip(
            np.rint(self.s[idx] / np.maximum(self.tables.length_m[lane], 1e-6) * last), 0, last
        )
        self.z[idx] = lanes.z_m[lanes.start[lane] + k.astype(np.int64)]

    def _respawn(self, i: int) -> None:
        """Re-place vehicle i (new id) at a free spot of the spawn area; kept where it is if none."""
        pts = self._place(1, np.delete(np.stack([self.x, self.y], axis=-1), i, axis=0))
        if pts.size:
            lanes = self.town.lanes
            self._reset_vehicle(i, int(lanes.lane_of_point[pts[0]]), float(lanes.s_m[pts[0]]))

    def recycle(
        self,
        center_xy: NDArray[np.float64],
        despawn_radius_m: float,
        min_dist_m: float = RESPAWN_MIN_DIST_M,
    ) -> NDArray[np.int64]:
        """Re-place the vehicles farther than despawn_radius_m from center_xy (2,) (the ego) at free
        spots between min_dist_m and despawn_radius_m from it, out of the ego's immediate view,
        so traffic density stays around the ego. Returns the rows re-placed; deterministic per seed."""
        c = np.asarray(center_xy, dtype=np.float64).reshape(1, 2)
        far = np.flatnonzero(np.hypot(self.x - c[0, 0], self.y - c[0, 1]) > despawn_radius_m)
        if far.size == 0:
            return far
        keep = np.setdiff1d(np.arange(self.n), far)
        pts = self._place(
            far.size,
            np.stack([self.x[keep], self.y[keep]], axis=-1),
            c,
            despawn_radius_m,
            min_dist_m,
        )
        lanes = self.town.lanes
        for i, p in zip(far[: pts.size].tolist(), pts.tolist(), strict=True):
            self._reset_vehicle(i, int(lanes.lane_of_point[p]), float(lanes.s_m[p]))
        return far[: pts.size]

    def evict(
        self, center_xy: NDArray[np.float64], radius_m: float, ego_xy: NDArray[np.float64], reach_m: float
    ) -> int:
        """Re-place the vehicles within radius_m of center_xy at free spots within reach_m of the
        ego but outside the circle (a scenario clears its area); returns how many moved."""
        c = np.asarray(center_xy, dtype=np.float64)
        inside = np.flatnonzero(np.hypot(self.x - c[0], self.y - c[1]) <= radius_m)
        if inside.size == 0:
            return 0
        keep = np.setdiff1d(np.arange(self.n), inside)
        cand = self._candidates(np.asarray(ego_xy, dtype=np.float64).reshape(1, 2), reach_m)
        lanes = self.town.lanes
        cand = cand[np.hypot(*(lanes.xy[cand] - c).T) > radius_m + self.params.spawn_spacing_m]
        taken = [np.stack([self.x[keep], self.y[keep]], axis=-1)]
        placed = 0
        for i in inside.tolist():
            for p in self.rng.permutation(cand).tolist():
                q = lanes.xy[p]
                others = np.concatenate(taken)
                if others.size and np.min(np.hypot(*(others - q).T)) < self.params.spawn_spacing_m:
                    continue
                self._reset_vehicle(i, int(lanes.lane_of_point[p]), float(lanes.s_m[p]))
                taken.append(q[None])
                placed += 1
                break
        return placed

    # ---------------------------------------------------------------- leaders
    def _vehicle_leaders(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Gap [m] and speed of the nearest vehicle ahead along each plan (inf / 0 when none).

        Vehicles sorted by (lane, s): on the own lane the leader is the next entry; on a later
        planned lane it is that lane's rearmost vehicle. A vehicle whose rear is still on its
        previous lane is listed there too (at s + that lane's length). O(N log N + N K).
        """
        n, t = self.n, self.tables
        ghost = np.flatnonzero((self.prev_lane >= 0) & (self.s < 0.5 * self.length))
        who = np.concatenate([np.arange(n), ghost])
        lane = np.concatenate([self.lane, self.prev_lane[ghost]])
        pos = np.concatenate([self.s, self.s[ghost] + t.length_m[self.prev_lane[ghost]]])
        order = np.lexsort((pos, lane))
        lane_o, pos_o, who_o = lane[order], pos[order], who[order]
        same_next = np.append(lane_o[1:] == lane_o[:-1], False)
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        r = rank[:n]
        nxt = np.minimum(r + 1, order.size - 1)
        d = np.where(same_next[r], pos_o[nxt] - self.s, INF)
        j = who_o[nxt]
        first = np.full(t.length_m.shape[0], -1, dtype=np.int64)
        heads = np.flatnonzero(np.concatenate(([True], ~same_next[:-1])))
        first[lane_o[heads]] = heads
        fr = first[self.seq[:, 1:]]  # (N, K-1) rank of the rearmost vehicle per planned lane
        wj = who_o[fr]
        dk = np.where(
            (fr >= 0) & (wj != np.arange(n)[:, None]),
            self.seq_off[:, 1:] + pos_o[fr] - self.s[:, None],
            INF,
        )
        k = np.argmin(dk, axis=1)
        rows = np.arange(n)
        use_k = dk[rows, k] < d
        d = np.where(use_k, dk[rows, k], d)
        j = np.where(use_k, wj[rows, k], j)
        gap = d - 0.5 * (self.length + self.length[j])
        return gap, np.where(d < INF, self.speed[j], 0.0)

    def _obstacle_leaders(
        self, boxes: NDArray[np.float64], speed: NDArray[np.float64], z: NDArray[np.float64] | None
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Gap [m] and along-lane speed of the nearest external obstacle in each plan's corridor.

        Each obstacle is matched to the lanes among its OBSTACLE_NEIGHBOURS nearest centerline
        samples; it is on such a lane when its box reaches within the lane's half width of the
        centerline (and, with z, on the same level)."""
        n, lanes = self.n, self.town.lanes
        gap, vel = np.full(n, INF), np.zeros(n)
        reach = 0.5 * np.hypot(boxes[:, 3], boxes[:, 4]) + OBSTACLE_REACH_M
        dist, pts = self._tree.query(
            boxes[:, :2], k=OBSTACLE_NEIGHBOURS, distance_upper_bound=float(reach.max())
        )
        o_all, slot = np.nonzero(dist <= reach[:, None])
        if o_all.size == 0:
            return gap, vel
        p_all = pts[o_all, slot]
        _, first = np.unique(
            o_all * self.tables.length_m.shape[0] + lanes.lane_of_point[p_all], return_index=True
        )
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
            return gap, vel
        o, p, cd, sd, dyaw = o[inside], p[inside], cd[inside], sd[inside], dyaw[inside]
        half_long = 0.5 * (cd * boxes[o, 3] + sd * boxes[o, 4])
        s_o = lanes.s_m[p] + along[inside]
        m = self.seq[:, :, None] == lanes.lane_of_point[p][None, None, :]  # (N, K, Q)
        d = np.where(
            m, self.seq_off[:, :, None] + (s_o[None, :] - self.s[:, None])[:, None, :], INF
        )
        d = np.where(d > 0.0, d, INF).min(axis=1)  # (N, Q)
        q = np.argmin(d, axis=1)
        rows = np.arange(n)
        gap = d[rows, q] - 0.5 * self.length - half_long[q]
        vel = np.where(d[rows, q] < INF, speed[o[q]] * np.cos(dyaw[q]), 0.0)
        return gap, vel

    # ---------------------------------------------------------------- rules
    def _junction_control(
        self, end_d: NDArray[np.float64], line_d: NDArray[np.float64], state: NDArray[np.int64],
        gap_ahead: NDArray[np.float64], v_ahead: NDArray[np.float64], dt_s: float,
    ) -> None:  # fmt: skip
        """Update junction grants. Vehicles on, or committed to, connectors hold them; vehicles near
        an entry whose light / stop sign lets them go and whose exit has room ask, oldest request
        first, and are granted when no held or earlier-asked connector conflicts with theirs."""
        p, t, n, v = self.params, self.tables, self.n, self.speed
        rows = np.arange(n)
        ke = np.argmax(t.is_entry[self.seq], axis=1)
        entry = self.seq[rows, ke]
        has_e = t.is_entry[entry]
        entry_d = np.where(has_e, end_d[rows, ke], INF)
        slot = ke[:, None] + 1 + np.arange(CLAIM_SLOTS)
        cl = np.where(
            slot < SEQ_SLOTS, self.seq[rows[:, None], np.minimum(slot, SEQ_SLOTS - 1)], -1
        )
        cl_ok = np.logical_and.accumulate(t.in_junction[cl], axis=1) & has_e[:, None]
        claims = np.where(cl_ok, t.conn[cl], -1)  # (N, CLAIM_SLOTS) connector indices
        cur = self.seq[:, :CLAIM_SLOTS]
        cur_held = np.where(np.logical_and.accumulate(t.in_junction[cur], axis=1), t.conn[cur], -1)
        committed = has_e & (
            (entry_d <= 0.0)
            | (
                (self.granted_entry == entry)
                & (entry_d < v * v / (2.0 * p.commit_brake_mps2) + v * dt_s + 1.0)
            )
        )
        held = np.zeros(t.conflict.shape[0] + 1, dtype=bool)  # last cell absorbs -1 padding
        held[cur_held] = True
        held[np.where(self.s < 0.5 * self.length + 1.0, t.conn[self.prev_lane], -1)] = True
        held[claims[committed]] = True
        line_e = line_d[rows, ke]
        line_e = np.where(np.isnan(line_e), entry_d, line_e)
        st = state[rows, ke]
        go = (
            (st == GREEN)
            | (st == OFF)
            | ((st == YELLOW) & (line_e < v * v / (2.0 * p.yellow_brake_mps2)))
            | (line_e < 0.0)
        )
        go &= (t.stop_kind[entry] != STOP_SIGN) | (self.stop_done_lane == entry) | (line_e < 0.0)
        n_claim = cl_ok.sum(axis=1)
        exit_slot = ke + 1 + n_claim
        exit_d = np.where(
            exit_slot < SEQ_SLOTS,
            self.seq_off[rows, np.minimum(exit_slot, SEQ_SLOTS - 1)] - (self.s + 0.5 * self.length),
            INF,
        )
        room = (
            (gap_ahead > exit_d + self.length + 1.0)
            | (v_ahead > p.exit_free_speed_mps)
            | (exit_d == INF)
        )
        asking = has_e & ~committed & (entry_d < p.request_m) & go & room & (n_claim > 0)
        self.req_since = np.where(asking, np.minimum(self.req_since, self._tick), INF)
        self.granted_entry = np.where(committed, entry, -1)
        if not asking.any():
            return
        conflict = t.conflict
        for r in np.flatnonzero(asking)[
            np.lexsort((self.ids[asking], self.req_since[asking]))
        ].tolist():
            c = claims[r][claims[r] >= 0]
            if not (conflict[c] & held[:-1]).any():
                self.granted_entry[r] = entry[r]
            held[c] = True

    def _stop_gaps(
        self,
        end_d: NDArray[np.float64],
        line_d: NDArray[np.float64],
        state: NDArray[np.int64],
        dt_s: float,
    ) -> NDArray[np.float64]:
        """IDM gap [m] to the nearest place each vehicle must stop at (a stopped virtual leader):
        red or stoppable yellow lights, stop signs not yet honoured, junction entries without a
        grant, dead ends. Also counts the full stop held at a stop sign."""
        p, t, seq = self.params, self.tables, self.seq
        v2 = (self.speed * self.speed)[:, None]
        kind = t.stop_kind[seq]
        red = (state == RED) & (line_d > -1.0)
        yellow = (state == YELLOW) & (line_d > v2 / (2.0 * p.yellow_brake_mps2))
        sign = (kind == STOP_SIGN) & (self.stop_done_lane[:, None] != seq) & (line_d > -1.0)
        d = np.where(red | yellow | sign, line_d, INF)
        ungranted = t.is_entry[seq] & (self.granted_entry[:, None] != seq) & (end_d > 0.0)
        d = np.minimum(d, np.where(ungranted | t.dead_end[seq], end_d, INF)).min(axis=1)
        if sign.any():
            rows = np.arange(self.n)
            first = np.argmax(sign, axis=1)
            near = sign[rows, first] & (line_d[rows, first] < 3.0) & (self.speed < STOPPED_MPS)
            self.stop_timer = np.where(near, self.stop_timer + dt_s, 0.0)
            done = self.stop_timer >= p.stop_sign_hold_s
            self.stop_done_lane[done] = seq[rows, first][done]
            self.stop_timer[done] = 0.0
        return d - p.stop_margin_m + p.idm.s0_m

    # ---------------------------------------------------------------- tick
    def step(
        self,
        dt_s: float,
        obstacle_boxes: NDArray[np.float64] | None = None,
        obstacle_speed: NDArray[np.float64] | None = None,
        light_state: NDArray[np.int8] | None = None,
        obstacle_z: NDArray[np.float64] | None = None,
    ) -> None:
        """Advance every vehicle by dt_s [s]. ``obstacle_boxes`` (K, 5) / ``obstacle_speed`` (K,)
        [m/s] are actors the traffic must not hit (ego, scenario actors); ``light_state`` (T,)
        LightState per light of town.signals; ``obstacle_z`` (K,) [m] when known (bridges)."""
        self._tick += 1
        if self.n == 0:
            return
        p, t = self.params, self.tables
        if light_state is None:  # no light information: every light OFF
            lights = np.full(int(t.stop_light.max()) + 2, OFF)
        else:
            lights = np.append(light_state, OFF)  # index -1 (no light) reads OFF
        front = self.s + 0.5 * self.length
        rel = self.seq_off - front[:, None]  # planned lane starts ahead of the front bumper [m]
        end_d, line_d = rel + t.length_m[self.seq], rel + t.stop_s_m[self.seq]
        state = lights[t.stop_light[self.seq]]
        gap_v, v_v = self._vehicle_leaders()
        if obstacle_boxes is not None and len(obstacle_boxes):
            boxes = np.asarray(obstacle_boxes, dtype=np.float64).reshape(-1, 5)
            ospeed = (
                np.zeros(len(boxes))
                if obstacle_speed is None
                else np.asarray(obstacle_speed, dtype=np.float64)
            )
            self._keep_clear = boxes
            gap_o, v_o = self._obstacle_leaders(
                boxes,
                ospeed,
                None if obstacle_z is None else np.asarray(obstacle_z, dtype=np.float64),
            )
        else:
            gap_o, v_o = np.full(self.n, INF), np.zeros(self.n)
        closer = gap_o < gap_v
        self._junction_control(
            end_d, line_d, state, np.where(closer, gap_o, gap_v), np.where(closer, v_o, v_v), dt_s
        )
        gap_s = self._stop_gaps(end_d, line_d, state, dt_s)
        v = self.speed
        a = idm_accel(
            v, self.v0, np.stack([gap_v, gap_o, gap_s]), np.stack([v - v_v, v - v_o, v]), p.idm
        ).min(axis=0)
        v_new = np.maximum(v + np.clip(a, -p.max_brake_mps2, p.idm.a_max_mps2) * dt_s, 0.0)
        ds = np.minimum(
            v_new * dt_s, np.maximum(np.minimum(gap_v, gap_o) - 0.05, 0.0)
        )  # never into a leader
        self.speed = ds / dt_s
        self.accel = (self.speed - v) / dt_s
        self.s = self.s + ds
        for i in np.flatnonzero(self.s >= t.length_m[self.lane]).tolist():
            self._advance_lane(i)
        rows = np.arange(self.n)
        last = np.count_nonzero(self.seq >= 0, axis=1) - 1
        last_lane = self.seq[rows, last]
        cover = self.seq_off[rows, last] + t.length_m[last_lane] - self.s
        for i in np.flatnonzero(
            (cover < p.lookahead_m) & (last < SEQ_SLOTS - 1) & ~t.dead_end[last_lane]
        ).tolist():
            self._extend(i)
        yaw_old = self.yaw.copy()
        self._pose(rows)
        self.yaw_rate = wrap_angle(self.yaw - yaw_old) / dt_s
        at_end = (
            t.dead_end[self.lane]
            & (self.s + 0.5 * self.length > t.length_m[self.lane] - 3.0)
            & (self.speed < 0.1)
        )
        for i in np.flatnonzero(at_end).tolist():
            self._respawn(i)

    def _advance_lane(self, i: int) -> None:
        """Move vehicle i onto the next lane(s) of its plan once it passed the end of its lane;
        a vehicle driven into a lane unfit to drive (too narrow) is respawned."""
        t = self.tables
        while self.s[i] >= t.length_m[self.lane[i]]:
            nxt = int(self.seq[i, 1])
            if nxt < 0:
                self.s[i], self.speed[i] = t.length_m[self.lane[i]], 0.0
                return
            shift = t.length_m[self.lane[i]]
            self.s[i] -= shift
            self.prev_lane[i], self.lane[i] = self.lane[i], nxt
            self.seq[i, :-1], self.seq[i, -1] = self.seq[i, 1:], -1
            self.seq_off[i, :-1], self.seq_off[i, -1] = self.seq_off[i, 1:] - shift, 0.0
            if t.in_junction[nxt]:
                self.stop_done_lane[i] = -1
            if not t.ok[nxt] and not t.dead_end[nxt]:
                self._respawn(i)
                return
        self._extend(i)
