"""Background traffic on the lane graph: IDM car following along each vehicle's planned lane
sequence, traffic lights, stop signs and first-come-first-served junction reservations over
conflicting connector lanes. Vectorised over vehicles; only lane transitions, plan extensions and
the few vehicles asking to enter a junction are handled one by one. Lane tables (lanetables.py),
leader search (leaders.py) and right-of-way rules (right_of_way.py) live in their own modules."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.spatial import cKDTree

from harness.dynamics.idm import IDMParams
from harness.dynamics.vehicle import CARLA_DEFAULT_CAR
from harness.geometry import wrap_angle
from harness.sim.embedded.lanetables import (
    CONFLICT_AREA_M2,
    NARROW_LANE_M,
    STOP_LIGHT,
    STOP_SIGN,
    LaneTables,
    conflict_matrix,
)
from harness.sim.embedded.leaders import ObstacleMatcher
from harness.sim.embedded.right_of_way import CLAIM_SLOTS, SEQ_SLOTS, STOPPED_MPS
from harness.sim.embedded.stepkernel import FLAG_RESPAWN, N_PARAMS, pose_kernel, step_kernel

log = logging.getLogger(__name__)

RESPAWN_MIN_DIST_M = 40.0  # recycled vehicles reappear at least this far from the ego [m]
PERMUTE_MAX = 256  # [-] recycling: more candidate places than this are drawn, not shuffled ...
DRAWS_PER_PLACE = 8  # [-] ... with this many draws per wanted place before the full shuffle
INF = np.inf
__all__ = [  # the lane tables moved to lanetables.py; re-exported for existing imports
    "CLAIM_SLOTS", "CONFLICT_AREA_M2", "SEQ_SLOTS", "STOP_LIGHT", "STOP_SIGN", "STOPPED_MPS",
    "LaneTables", "TrafficModel", "TrafficParams", "conflict_matrix",
]  # fmt: skip
STATE_FIELDS = (
    "ids", "lane", "prev_lane", "s", "speed", "accel", "x", "y", "z", "yaw", "yaw_rate", "v0",
    "length", "width", "height", "seq", "seq_off", "req_since", "granted_entry", "stop_done_lane",
    "stop_timer", "hold_s",
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
    """LaneSet.position's lookup tables for the pose kernel: ``lane_start``, ``lane_count``
    (L + 1,) first sample and samples per lane (a neutral sentinel row last); per sample (the
    segment it starts) ``seg_dxy`` (P, 2) [m] and ``seg_dyaw`` (P,) [rad] (wrapped), zero past
    the last sample."""

    lane_start: NDArray[np.int64]
    lane_count: NDArray[np.int64]
    seg_dxy: NDArray[np.float64]
    seg_dyaw: NDArray[np.float64]

    @staticmethod
    def build(lanes: Any) -> _PoseTables:
        start, count = np.asarray(lanes.start), np.asarray(lanes.count)
        xy, yaw = np.asarray(lanes.xy), np.asarray(lanes.yaw_rad)
        dxy, dyaw = np.zeros(xy.shape), np.zeros(yaw.shape)
        dxy[:-1], dyaw[:-1] = xy[1:] - xy[:-1], wrap_angle(yaw[1:] - yaw[:-1])
        return _PoseTables(
            lane_start=np.append(start, 0).astype(np.int64),
            lane_count=np.append(count, 2).astype(np.int64),
            seg_dxy=dxy,
            seg_dyaw=dyaw,
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
        self._placeable_xy = np.asarray(lanes.xy, dtype=np.float64)[self._placeable]
        self._area_cache: tuple[tuple[bytes, float, float], NDArray[np.int64]] | None = None
        self._next_id = first_id
        self._spawn_near: NDArray[np.float64] | None = None
        self._spawn_radius = INF
        self._keep_clear = np.zeros((0, 5))
        self._pose_tables = _PoseTables.build(town.lanes)
        self._matcher = ObstacleMatcher(town.lanes)
        self._params_vec = _param_vector(params)
        self._lane_arrays = (
            np.asarray(lanes.s_m, dtype=np.float64), np.asarray(lanes.xy, dtype=np.float64),
            np.asarray(lanes.yaw_rad, dtype=np.float64), np.asarray(lanes.z_m, dtype=np.float64),
        )  # fmt: skip
        self._no_lights = np.zeros(0, dtype=np.int8)
        self._no_match: tuple[NDArray[Any], ...] = (
            np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros(0), np.zeros(0),
            np.zeros(0),
        )  # fmt: skip
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
        self.hold_s = f.copy()  # [s] still to stand after a collision with the ego
        self._flags = np.zeros(n, dtype=np.int8)  # step kernel output (FLAG_*)
        self._at_end = np.zeros(n, dtype=np.int8)  # pose kernel output
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
        if near_xy.shape[0] == 1:  # one centre (recycling, evictions): distances to every
            # placeable point beat a ball query returning thousands of them (sorted, as before)
            rel = self._placeable_xy - near_xy[0]
            d = np.sqrt(rel[:, 0] * rel[:, 0] + rel[:, 1] * rel[:, 1])
            keep = d <= radius_m
            if min_dist_m > 0.0:
                keep &= d >= min_dist_m
            return ok[keep]
        key = (near_xy.tobytes(), float(radius_m), float(min_dist_m))
        if self._area_cache is not None and self._area_cache[0] == key:  # the spawn area again
            return self._area_cache[1]  # (respawns): the same set, without the ball queries
        idx = self._candidates_multi(near_xy, radius_m, min_dist_m)
        idx.flags.writeable = False  # shared by later calls
        self._area_cache = (key, idx)
        return idx

    def _candidates_multi(
        self, near_xy: NDArray[np.float64], radius_m: float, min_dist_m: float
    ) -> NDArray[np.int64]:
        """:meth:`_candidates` for several centres (M, 2): ball queries on the sample tree."""
        hits = self._tree.query_ball_point(near_xy, radius_m, return_sorted=True)
        # sorted unique (np.unique's hashing is slow on many ints)
        idx = np.sort(np.concatenate([np.asarray(h, dtype=np.int64) for h in hits]))
        idx = idx[np.concatenate(([True], idx[1:] != idx[:-1]))]
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
        draw: bool = False,
    ) -> NDArray[np.int64]:
        """Up to ``want`` seeded candidate points spaced from taken_xy (M, 2) and the keep-clear
        boxes, within radius_m of near_xy (default: the spawn area) and min_dist_m away from it.
        Candidates are tried in a seeded shuffle; with ``draw`` (recycling, every few ticks) and
        many candidates, first by seeded random draws, which skip shuffling thousands."""
        if near_xy is None:
            near_xy, radius_m = self._spawn_near, self._spawn_radius
        xy = self.town.lanes.xy
        spacing = self.params.spawn_spacing_m
        keep = self._keep_clear
        clear_r = 0.5 * np.hypot(keep[:, 3], keep[:, 4]) + spacing
        placed = [np.asarray(taken_xy, dtype=np.float64).reshape(-1, 2)]
        chosen: list[int] = []

        def fits(p: int) -> bool:
            q = xy[p]
            others = np.concatenate(placed)
            if others.size and np.min(np.hypot(others[:, 0] - q[0], others[:, 1] - q[1])) < spacing:
                return False
            return not (
                keep.size and np.any(np.hypot(keep[:, 0] - q[0], keep[:, 1] - q[1]) < clear_r)
            )

        cand = self._candidates(near_xy, radius_m, min_dist_m)
        if draw and cand.size > PERMUTE_MAX:  # many places: seeded draws, no full shuffle
            for j in self.rng.integers(cand.size, size=DRAWS_PER_PLACE * want + 8).tolist():
                if len(chosen) >= want:
                    return np.asarray(chosen, dtype=np.int64)
                if cand[j] not in chosen and fits(int(cand[j])):
                    chosen.append(int(cand[j]))
                    placed.append(xy[cand[j]][None])
        for p in self.rng.permutation(cand).tolist():  # exhaustive: every candidate once
            if len(chosen) >= want:
                break
            if p not in chosen and fits(p):
                chosen.append(p)
                placed.append(xy[p][None])
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
        self.req_since[i], self.stop_timer[i], self.hold_s[i] = INF, 0.0, 0.0
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

    def _pose(self, idx: NDArray[np.int64], dt_s: float = 0.0) -> int:
        """Pose of vehicles idx from (lane, s) as LaneSet.position computes it, from tables
        precomputed per lane and per sample; z [m] of the nearest centerline sample (samples are
        ~1 m apart). With dt_s > 0 (the step) also yaw_rate, and ``self._at_end`` flags the
        vehicles stopped at the end of a dead end; returns their count (see pose_kernel)."""
        pt = self._pose_tables
        s_m, xy, yaw_pts, z_m = self._lane_arrays
        return int(pose_kernel(
            np.asarray(idx, dtype=np.int64), self.lane, self.s, self.tables.length_m,
            pt.lane_start, pt.lane_count, s_m, xy, yaw_pts, z_m, pt.seg_dxy, pt.seg_dyaw,
            self.x, self.y, self.z, self.yaw, self.yaw_rate, dt_s, self.speed, self.length,
            self.tables.dead_end, self._at_end,
        ))  # fmt: skip

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
            draw=True,
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
        LightState per light of town.signals; ``obstacle_z`` (K,) [m] when known (bridges).

        Leaders (leaders.py), junction grants and stop gaps (right_of_way.py), IDM and the lane advance
        run in one compiled kernel (stepkernel.py); plan extensions and respawns, which draw from
        the seeded generator, run here in Python for the few vehicles the kernel flags."""
        self.tick_count += 1
        if self.n == 0:
            return
        t = self.tables
        lights = (
            self._no_lights if light_state is None else np.asarray(light_state, dtype=np.int8)
        )  # no light information: every light OFF
        match: tuple[NDArray[Any], ...] | None = None
        ospeed = np.zeros(0)
        if obstacle_boxes is not None and len(obstacle_boxes):
            boxes = np.asarray(obstacle_boxes, dtype=np.float64).reshape(-1, 5)
            if obstacle_speed is not None:
                ospeed = np.asarray(obstacle_speed, dtype=np.float64)
            else:
                ospeed = np.zeros(boxes.shape[0])
            self._keep_clear = boxes
            z = None if obstacle_z is None else np.asarray(obstacle_z, dtype=np.float64)
            match = self._matcher.match(boxes, z)
        m = self._no_match if match is None else match
        flagged = step_kernel(
            self.lane, self.prev_lane, self.s, self.speed, self.accel, self.v0, self.length,
            self.seq, self.seq_off, self.req_since, self.granted_entry, self.stop_done_lane,
            self.stop_timer, self.ids, t.length_m, t.in_junction, t.ok, t.is_entry, t.dead_end,
            t.stop_s_m, t.stop_kind, t.stop_light, t.conn, t.conflict, lights,
            m[0], m[1], m[2], m[3], m[4], ospeed, self._params_vec, float(self.tick_count), dt_s,
            self._flags, self.hold_s,
        )  # fmt: skip
        if flagged:
            flags = self._flags
            for i in np.flatnonzero(flags).tolist():
                if flags[i] == FLAG_RESPAWN:
                    self._respawn(i)
                else:
                    self._extend(i)
        if self._pose(self._all_rows(), dt_s):
            for i in np.flatnonzero(self._at_end).tolist():
                self._respawn(i)

    def hold(self, i: int, hold_s: float) -> None:
        """Stop vehicle i at once and keep it standing for hold_s [s] (a collision)."""
        self.speed[i], self.accel[i] = 0.0, 0.0
        self.hold_s[i] = max(float(self.hold_s[i]), hold_s)

    def move_back(self, i: int, dist_m: float) -> None:
        """Move vehicle i back dist_m [m] along its current lane (not past the lane's start) and
        recompute its pose (undoing a step that ran into the ego)."""
        self.s[i] = max(float(self.s[i]) - dist_m, 0.0)
        yaw_rate = float(self.yaw_rate[i])
        self._pose(np.array([i], dtype=np.int64))
        self.yaw_rate[i] = yaw_rate

    def _all_rows(self) -> NDArray[np.int64]:
        """arange(n), cached per size."""
        rows = getattr(self, "_rows", None)
        if rows is None or rows.shape[0] != self.n:
            rows = self._rows = np.arange(self.n, dtype=np.int64)
        return rows


def _param_vector(p: TrafficParams) -> NDArray[np.float64]:
    """TrafficParams packed in stepkernel's P_* column order (the kernel takes plain floats)."""
    vec = np.array([
        p.idm.a_max_mps2, p.idm.b_comf_mps2, p.idm.s0_m, p.idm.headway_s, p.idm.delta,
        p.max_brake_mps2, p.yellow_brake_mps2, p.commit_brake_mps2, p.request_m, p.stop_margin_m,
        p.stop_sign_hold_s, p.exit_free_speed_mps, p.lookahead_m,
    ], dtype=np.float64)  # fmt: skip
    assert vec.shape == (N_PARAMS,)
    return vec
