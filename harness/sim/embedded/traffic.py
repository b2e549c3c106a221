"""Background traffic on the lane graph: IDM car following along each vehicle's planned lane
sequence, traffic lights, stop signs and first-come-first-served junction reservations over
conflicting connector lanes. Vectorised over vehicles; only lane transitions, plan extensions and
the few vehicles asking to enter a junction are handled one by one. Lane tables (lanetables.py),
leader search (leaders.py) and right-of-way rules (rules.py) live in their own modules."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from harness.dynamics.vehicle import CARLA_DEFAULT_CAR
from harness.geometry import wrap_angle
from harness.sim.embedded.idm import IDMParams, idm_accel
from harness.sim.embedded.lanetables import (
    CONFLICT_AREA_M2,
    NARROW_LANE_M,
    STOP_LIGHT,
    STOP_SIGN,
    LaneTables,
    conflict_matrix,
)
from harness.sim.embedded.leaders import ObstacleMatcher, obstacle_leaders, vehicle_leaders
from harness.sim.embedded.rules import (
    CLAIM_SLOTS,
    OFF,
    SEQ_SLOTS,
    STOPPED_MPS,
    junction_control,
    stop_gaps,
)

log = logging.getLogger(__name__)

RESPAWN_MIN_DIST_M = 40.0  # recycled vehicles reappear at least this far from the ego [m]
INF = np.inf
__all__ = [  # the lane tables moved to lanetables.py; re-exported for existing imports
    "CLAIM_SLOTS", "CONFLICT_AREA_M2", "SEQ_SLOTS", "STOP_LIGHT", "STOP_SIGN", "STOPPED_MPS",
    "LaneTables", "TrafficModel", "TrafficParams", "conflict_matrix",
]  # fmt: skip
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


@dataclass(frozen=True, eq=False)
class _PoseTables:
    """LaneSet.position's lookup tables, precomputed: ``global_s`` (P,) [m] the strictly increasing
    lane offset + s used for searchsorted, ``lane_offset`` (L,) [m], ``lane_int`` (L, 4) first
    sample, last segment start, samples - 1, unused; per sample (the segment it starts) ``seg_ds``
    (P,) [m], ``seg_dxy`` (P, 2) [m], ``seg_dyaw`` (P,) [rad] (wrapped), zero past a lane's end."""

    global_s: NDArray[np.float64]
    lane_offset: NDArray[np.float64]
    lane_int: NDArray[np.int64]
    seg_ds: NDArray[np.float64]
    seg_dxy: NDArray[np.float64]
    seg_dyaw: NDArray[np.float64]

    @staticmethod
    def build(lanes: Any) -> _PoseTables:
        start, count = np.asarray(lanes.start), np.asarray(lanes.count)
        offset = np.concatenate([[0.0], np.cumsum(lanes.length_m + 1.0)[:-1]])  # as LaneSet's
        lane_int = np.stack([start, start + count - 2, count - 1, np.zeros_like(start)], axis=1)
        s_m, xy, yaw = lanes.s_m, lanes.xy, lanes.yaw_rad
        ds, dxy, dyaw = np.zeros(s_m.shape), np.zeros(xy.shape), np.zeros(s_m.shape)
        ds[:-1], dxy[:-1], dyaw[:-1] = (
            s_m[1:] - s_m[:-1],
            xy[1:] - xy[:-1],
            wrap_angle(yaw[1:] - yaw[:-1]),
        )
        return _PoseTables(
            global_s=s_m + offset[lanes.lane_of_point], lane_offset=offset,
            lane_int=lane_int.astype(np.int64), seg_ds=ds, seg_dxy=dxy, seg_dyaw=dyaw,
        )  # fmt: skip


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
        self._pose_tables = _PoseTables.build(town.lanes)
        self._matcher = ObstacleMatcher(town.lanes, self._tree, int(self.tables.length_m.shape[0]))
        self.tick_count = 0
        self.generation = 0  # bumped whenever the vehicle set or an id changes (cache key)
        self._resize(0)
        log.debug(
            "traffic: %d connectors, %d conflicting pairs",
            self.tables.conflict.shape[0],
            int(self.tables.conflict.sum()) // 2,
        )

    # ---------------------------------------------------------------- state
    def _resize(self, n: int) -> None:
        """Grow (or create) the state arrays to n rows, keeping existing rows."""
        self.generation += 1
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
        if len(hits) == 1:  # one centre: already sorted and unique
            idx = np.asarray(hits[0], dtype=np.int64)
        else:  # sorted unique (np.unique's hashing is slow on many ints)
            idx = np.sort(np.concatenate([np.asarray(h, dtype=np.int64) for h in hits]))
            idx = idx[np.concatenate(([True], idx[1:] != idx[:-1]))]
        idx = idx[self._placeable_mask[idx]]
        if min_dist_m > 0.0 and idx.size:
            if near_xy.shape[0] == 1:  # the distance as cKDTree computes it, without a tree
                rel = self.town.lanes.xy[idx] - near_xy[0]
                d = np.sqrt(rel[:, 0] * rel[:, 0] + rel[:, 1] * rel[:, 1])
            else:
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
        self.generation += 1
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
        """Pose from (lane, s) as LaneSet.position computes it (same operations, so the same bits,
        from tables precomputed per lane and per sample); z [m] of the nearest centerline sample
        (samples are ~1 m apart)."""
        pt, lanes = self._pose_tables, self.town.lanes
        lane, s_raw = self.lane[idx], self.s[idx]
        per_lane = pt.lane_int[lane]  # (n, 4) start, last segment, last sample, -
        length = self.tables.length_m[lane]
        s = np.clip(s_raw, 0.0, length)
        i = np.searchsorted(pt.global_s, pt.lane_offset[lane] + s, side="right") - 1
        i = np.clip(i, per_lane[:, 0], per_lane[:, 1])
        s0 = lanes.s_m[i]
        ds = pt.seg_ds[i]
        t = np.where(ds > 0.0, (s - s0) / np.where(ds > 0.0, ds, 1.0), 0.0)
        t = np.clip(t, 0.0, 1.0)
        xy = lanes.xy[i] + t[..., None] * pt.seg_dxy[i]
        self.x[idx], self.y[idx] = xy[..., 0], xy[..., 1]
        self.yaw[idx] = wrap_angle(lanes.yaw_rad[i] + t * pt.seg_dyaw[i])
        last = per_lane[:, 2]
        k = np.clip(np.rint(s_raw / np.maximum(length, 1e-6) * last), 0, last)
        self.z[idx] = lanes.z_m[per_lane[:, 0] + k.astype(np.int64)]

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
        self,
        center_xy: NDArray[np.float64],
        radius_m: float,
        ego_xy: NDArray[np.float64],
        reach_m: float,
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
        """Gap [m] and speed of the nearest vehicle ahead along each plan (see vehicle_leaders)."""
        return vehicle_leaders(
            self.lane, self.prev_lane, self.s, self.length, self.speed, self.seq, self.seq_off,
            self.tables.length_m,
        )  # fmt: skip

    def _obstacle_leaders(
        self, boxes: NDArray[np.float64], speed: NDArray[np.float64], z: NDArray[np.float64] | None
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Gap [m] and along-lane speed of the nearest external obstacle in each plan's corridor."""
        match = self._matcher.match(boxes, z)
        return obstacle_leaders(match, speed, self.s, self.length, self.seq, self.seq_off)

    # ---------------------------------------------------------------- rules
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
        self.tick_count += 1
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
        junction_control(
            self,
            end_d,
            line_d,
            state,
            np.where(closer, gap_o, gap_v),
            np.where(closer, v_o, v_v),
            dt_s,
        )
        gap_s = stop_gaps(self, end_d, line_d, state, dt_s)
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
        at_last = rows * SEQ_SLOTS + last  # flat index of the last planned lane
        last_lane = np.take(self.seq, at_last)
        cover = np.take(self.seq_off, at_last) + t.length_m[last_lane] - self.s
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
