"""Background pedestrians: walkers pacing along sidewalk paths and, where the map has crosswalks,
crossing the road when no vehicle is near the crossing. Vectorised over walkers.

Sidewalk paths are the rings of the town's sidewalk polygons inset by SIDEWALK_INSET_M, so a
walker stays on the sidewalk; a sidewalk strip's ring runs up one side and back the other, so a
walker reaching the end of a strip turns around onto its other side."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely
from numpy.typing import NDArray
from scipy.spatial import cKDTree
from shapely.geometry import LinearRing, Polygon

from harness.dynamics.vehicle import WALKER
from harness.sim.embedded.contacts import WALKER_DOWN_HEIGHT_M

log = logging.getLogger(__name__)

SIDEWALK_INSET_M = 0.6  # walker paths run this far inside the sidewalk edge [m]
MIN_RING_M = 4.0  # shorter sidewalk rings are ignored [m]
PATH_SPACING_M = 1.0  # resampling step of the sidewalk rings [m]
WALK_SPEED_MPS = (1.0, 1.6)  # walking speed range sampled per walker [m/s]
RESPAWN_MIN_DIST_M = 30.0  # [m] recycled walkers reappear at least this far from the ego
SPAWN_SPACING_M = 1.5  # minimum distance between spawned walkers [m]
CROSS_TRIGGER_M = 2.0  # a walker this close to a crosswalk end may start crossing [m]
CROSS_RATE_PER_S = 0.1  # chance per second a walker at a crosswalk end starts crossing [1/s]
CROSS_END_MAX_M = (
    3.0  # crosswalks whose ends lie farther than this from a sidewalk path are unused [m]
)
CROSS_CLEAR_M = 15.0  # no vehicle within this distance of the crosswalk centre to start [m]


@dataclass(frozen=True, eq=False)
class SidewalkPaths:
    """Closed walking paths, flat: ``xy`` (P, 2) [m] points, ``s_m`` (P,) arc length from the start
    of their ring, ``start, count, length_m`` (R,) per ring (the last point repeats the first)."""

    xy: NDArray[np.float64]
    s_m: NDArray[np.float64]
    start: NDArray[np.int64]
    count: NDArray[np.int64]
    length_m: NDArray[np.float64]

    @staticmethod
    def from_geometry(sidewalks: Any) -> SidewalkPaths:
        """Inset every sidewalk polygon and resample each ring of the result at PATH_SPACING_M."""
        inset = (
            shapely.buffer(sidewalks, -SIDEWALK_INSET_M) if not sidewalks.is_empty else sidewalks
        )
        rings: list[LinearRing] = []
        for poly in shapely.get_parts(inset):
            if isinstance(poly, Polygon) and not poly.is_empty:
                rings.extend([poly.exterior, *poly.interiors])
        xy, s, start, count, length = [], [], [], [], []
        n = 0
        for ring in rings:
            if ring.length < MIN_RING_M:
                continue
            d = np.linspace(
                0.0, ring.length, max(int(np.ceil(ring.length / PATH_SPACING_M)), 4) + 1
            )
            pts = shapely.get_coordinates(shapely.line_interpolate_point(ring, d))
            xy.append(pts)
            s.append(d)
            start.append(n)
            count.append(d.size)
            length.append(ring.length)
            n += d.size
        if not xy:
            return SidewalkPaths(
                np.zeros((0, 2)),
                np.zeros(0),
                np.zeros(0, np.int64),
                np.zeros(0, np.int64),
                np.zeros(0),
            )
        return SidewalkPaths(
            np.concatenate(xy),
            np.concatenate(s),
            np.asarray(start, np.int64),
            np.asarray(count, np.int64),
            np.asarray(length),
        )

    def position(
        self, ring: NDArray[np.int64], u: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """World xy (N, 2) [m] and heading (N,) [rad] of the ring direction at arc length u [m]."""
        step = self.length_m[ring] / (self.count[ring] - 1)  # rings are resampled uniformly
        k = np.minimum((u / step).astype(np.int64), self.count[ring] - 2)
        i = self.start[ring] + k
        t = (u - k * step) / step
        a, b = self.xy[i], self.xy[i + 1]
        d = b - a
        return a + t[:, None] * d, np.arctan2(d[:, 1], d[:, 0])

    def nearest(
        self, xy: NDArray[np.float64], tree: cKDTree
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """Ring and arc length [m] of the path point nearest to each of xy (N, 2); ``tree`` is a
        cKDTree over ``self.xy``."""
        _, p = tree.query(xy)
        ring = np.searchsorted(self.start, p, side="right") - 1
        return ring, self.s_m[p]


class PedestrianModel:
    """Walkers, array state per walker: ``x, y`` [m], ``yaw`` [rad], ``speed`` [m/s] (own walking
    speed), ``ids``, dims ``length, width, height`` [m] (CARLA walker box, harness.dynamics WALKER:
    0.375 x 0.375 x 1.86 m); ``crossing`` (N,) whether on a crosswalk."""

    def __init__(
        self,
        town: Any,
        rng: np.random.Generator,
        crosswalks: NDArray[np.float64] | None = None,
        first_id: int = 5000,
        cross_rate_per_s: float = CROSS_RATE_PER_S,
    ) -> None:
        self.rng = rng
        self.paths = SidewalkPaths.from_geometry(town.area.sidewalks)
        self.crosswalks = (
            town.crosswalks
            if crosswalks is None
            else np.asarray(crosswalks, dtype=np.float64).reshape(-1, 2, 2)
        )
        self.cross_rate_per_s = cross_rate_per_s
        self._tree = cKDTree(self.paths.xy) if self.paths.xy.shape[0] else None
        if self.paths.count.size == 0:
            log.info("town %s has no sidewalks: no pedestrians", getattr(town, "name", "?"))
            self.crosswalks = np.zeros((0, 2, 2))
        elif self.crosswalks.shape[0]:  # keep crosswalks that connect two sidewalk paths
            d, _ = cKDTree(self.paths.xy).query(self.crosswalks.reshape(-1, 2))
            self.crosswalks = self.crosswalks[(d.reshape(-1, 2) <= CROSS_END_MAX_M).all(axis=1)]
        self._next_id = first_id
        self.generation = 0  # bumped whenever the walker set or an id changes (cache key)
        self._near: NDArray[np.float64] | None = None
        self._radius = np.inf
        z = np.zeros(0)
        self.ids = np.zeros(0, dtype=np.int64)
        self.ring = np.zeros(0, dtype=np.int64)
        self.u, self.direction, self.speed, self.x, self.y, self.yaw = z, z, z, z, z, z
        self.crossing = np.zeros(0, dtype=bool)
        self.cross_to = np.zeros((0, 2))  # (N, 2) [m] crosswalk end a crossing walker heads to
        self.down = np.zeros(0, dtype=bool)  # (N,) knocked down by the ego: lies still for good

    @property
    def n(self) -> int:
        return int(self.ids.shape[0])

    @property
    def length(self) -> NDArray[np.float64]:
        return np.full(self.n, WALKER.length_m)

    @property
    def width(self) -> NDArray[np.float64]:
        return np.full(self.n, WALKER.width_m)

    @property
    def height(self) -> NDArray[np.float64]:
        return np.where(self.down, WALKER_DOWN_HEIGHT_M, WALKER.height_m)

    @property
    def boxes(self) -> NDArray[np.float64]:
        """(N, 5) [x, y, yaw, length, width]."""
        return np.stack([self.x, self.y, self.yaw, self.length, self.width], axis=-1)

    def _pick(
        self,
        want: int,
        taken_xy: NDArray[np.float64],
        near_xy: NDArray[np.float64] | None = None,
        radius_m: float = np.inf,
        min_dist_m: float = 0.0,
    ) -> NDArray[np.int64]:
        """Up to ``want`` seeded path points within radius_m of near_xy (default: the spawn area)
        and min_dist_m away from it, SPAWN_SPACING_M from taken_xy and each other."""
        paths = self.paths
        if near_xy is None:
            near_xy, radius_m = self._near, self._radius
        ok = np.ones(paths.xy.shape[0], dtype=bool)
        ok[paths.start + paths.count - 1] = False  # the closing point duplicates the first
        if near_xy is not None and len(near_xy):
            d, _ = cKDTree(near_xy).query(paths.xy, distance_upper_bound=radius_m)
            ok &= np.isfinite(d) & (d >= min_dist_m)
        chosen: list[int] = []
        taken = np.asarray(taken_xy, dtype=np.float64).reshape(-1, 2)
        for p in self.rng.permutation(np.flatnonzero(ok)).tolist():
            if len(chosen) >= want:
                break
            q = paths.xy[p]
            if (
                taken.size
                and np.hypot(taken[:, 0] - q[0], taken[:, 1] - q[1]).min() < SPAWN_SPACING_M
            ):
                continue
            chosen.append(p)
            taken = np.vstack([taken, q[None]])
        return np.asarray(chosen, dtype=np.int64)

    def _place(self, rows: NDArray[np.int64], pts: NDArray[np.int64]) -> None:
        """Put walkers ``rows`` at path points ``pts`` with new ids, speeds and directions."""
        k = rows.size
        self.generation += 1
        self.ids[rows] = np.arange(self._next_id, self._next_id + k)
        self._next_id += k
        self.ring[rows] = np.searchsorted(self.paths.start, pts, side="right") - 1
        self.u[rows] = self.paths.s_m[pts]
        self.direction[rows] = self.rng.choice([-1.0, 1.0], size=k)
        self.speed[rows] = self.rng.uniform(*WALK_SPEED_MPS, size=k)
        self.crossing[rows] = False
        self.down[rows] = False
        self._pose(rows)

    def spawn(
        self, n: int, near_xy: NDArray[np.float64] | None = None, radius_m: float = np.inf
    ) -> NDArray[np.int64]:
        """Add up to n walkers at seeded places on sidewalk paths within radius_m of any near_xy
        (M, 2) (anywhere when None), SPAWN_SPACING_M apart; later respawns use the same area.
        Returns the new ids."""
        self._near = (
            None if near_xy is None else np.asarray(near_xy, dtype=np.float64).reshape(-1, 2)
        )
        self._radius = radius_m
        if self.paths.count.size == 0 or n <= 0:
            return np.zeros(0, dtype=np.int64)
        pts = self._pick(n, np.stack([self.x, self.y], axis=-1))
        if pts.size < n:
            log.info("spawned %d of %d pedestrians (no more free sidewalk)", pts.size, n)
        first, k = self.n, pts.size
        self.generation += 1
        grow_i = np.zeros(k, dtype=np.int64)
        grow_f = np.zeros(k)
        self.ids, self.ring = (
            np.concatenate([self.ids, grow_i]),
            np.concatenate([self.ring, grow_i]),
        )
        self.u, self.direction, self.speed, self.x, self.y, self.yaw = (
            np.concatenate([a, grow_f])
            for a in (self.u, self.direction, self.speed, self.x, self.y, self.yaw)
        )
        self.crossing = np.concatenate([self.crossing, np.zeros(k, dtype=bool)])
        self.down = np.concatenate([self.down, np.zeros(k, dtype=bool)])
        self.cross_to = np.concatenate([self.cross_to, np.zeros((k, 2))])
        rows = np.arange(first, first + k)
        self._place(rows, pts)
        return self.ids[rows]

    def recycle(
        self,
        center_xy: NDArray[np.float64],
        despawn_radius_m: float,
        min_dist_m: float = RESPAWN_MIN_DIST_M,
    ) -> NDArray[np.int64]:
        """Re-place the walkers farther than despawn_radius_m from center_xy (2,) (the ego) on
        sidewalks between min_dist_m and despawn_radius_m from it; returns their row indices
        (those re-placed get new ids). Deterministic per seed."""
        far = np.flatnonzero(
            np.hypot(self.x - center_xy[0], self.y - center_xy[1]) > despawn_radius_m
        )
        if far.size == 0:
            return far
        keep = np.setdiff1d(np.arange(self.n), far)
        c = np.asarray(center_xy, dtype=np.float64).reshape(1, 2)
        pts = self._pick(
            far.size,
            np.stack([self.x[keep], self.y[keep]], axis=-1),
            c,
            despawn_radius_m,
            min_dist_m,
        )
        self._place(far[: pts.size], pts)
        return far[: pts.size]

    def evict(
        self,
        center_xy: NDArray[np.float64],
        radius_m: float,
        ego_xy: NDArray[np.float64],
        reach_m: float,
    ) -> int:
        """Re-place the walkers within radius_m of center_xy on sidewalks within reach_m of the ego
        but outside the circle; returns how many moved."""
        c = np.asarray(center_xy, dtype=np.float64)
        inside = np.flatnonzero(np.hypot(self.x - c[0], self.y - c[1]) <= radius_m)
        if inside.size == 0:
            return 0
        keep = np.setdiff1d(np.arange(self.n), inside)
        # candidates near the ego, then drop those inside the cleared circle
        pts = self._pick(4 * inside.size + 8, np.stack([self.x[keep], self.y[keep]], axis=-1),
                         np.asarray(ego_xy, dtype=np.float64).reshape(1, 2), reach_m)  # fmt: skip
        pts = pts[np.hypot(*(self.paths.xy[pts] - c).T) > radius_m][: inside.size]
        self._place(inside[: pts.size], pts)
        return int(pts.size)

    def _pose(self, idx: NDArray[np.int64]) -> None:
        xy, heading = self.paths.position(self.ring[idx], self.u[idx])
        self.x[idx], self.y[idx] = xy[:, 0], xy[:, 1]
        self.yaw[idx] = np.where(self.direction[idx] > 0, heading, heading + np.pi)

    def step(self, dt_s: float, vehicle_boxes: NDArray[np.float64] | None = None) -> None:
        """Advance every walker by dt_s [s]; ``vehicle_boxes`` (K, 5) decide whether a crossing is free."""
        if self.n == 0:
            return
        walk = ~self.crossing & ~self.down
        lengths = self.paths.length_m[self.ring]
        self.u = np.where(
            walk, np.mod(self.u + self.direction * self.speed * dt_s, lengths), self.u
        )
        idx = np.flatnonzero(walk)
        self._pose(idx)
        if self.crosswalks.shape[0]:
            self._start_crossings(dt_s, vehicle_boxes)
        if self.crossing.any():
            self._move_crossing(dt_s)

    def knock_down(self, i: int, x: float, y: float, yaw: float) -> None:
        """Walker i was hit: it lies at (x, y, yaw) [m, rad] from now on (never walks again)."""
        self.generation += 1  # its box height changes (the assembled layout caches heights)
        self.down[i], self.crossing[i], self.speed[i] = True, False, 0.0
        self.x[i], self.y[i], self.yaw[i] = x, y, yaw

    def put_back(self, i: int, x: float, y: float, yaw: float, dt_s: float) -> None:
        """Undo walker i's last step (it walked into the ego): back to (x, y, yaw), and its path
        position back by the step's length."""
        if not self.crossing[i] and not self.down[i]:
            ring = self.ring[i]
            self.u[i] = np.mod(
                self.u[i] - self.direction[i] * self.speed[i] * dt_s, self.paths.length_m[ring]
            )
        self.x[i], self.y[i], self.yaw[i] = x, y, yaw

    def _start_crossings(self, dt_s: float, vehicle_boxes: NDArray[np.float64] | None) -> None:
        """Walkers near a crosswalk end start across (seeded chance) when no vehicle is near it."""
        ends = self.crosswalks.reshape(-1, 2)  # (2C, 2)
        d = np.hypot(self.x[:, None] - ends[None, :, 0], self.y[:, None] - ends[None, :, 1])
        e = np.argmin(d, axis=1)
        roll = self.rng.random(self.n) < self.cross_rate_per_s * dt_s
        start = ~self.crossing & ~self.down & (d[np.arange(self.n), e] < CROSS_TRIGGER_M) & roll
        if not start.any():
            return
        centre = self.crosswalks.mean(axis=1)[e // 2]
        if vehicle_boxes is not None and len(vehicle_boxes):
            vb = np.asarray(vehicle_boxes, dtype=np.float64).reshape(-1, 5)
            dv = np.hypot(centre[:, None, 0] - vb[None, :, 0], centre[:, None, 1] - vb[None, :, 1])
            start &= dv.min(axis=1) > CROSS_CLEAR_M
        self.crossing |= start
        other = self.crosswalks[e // 2, 1 - e % 2]
        self.cross_to[start] = other[start]

    def _move_crossing(self, dt_s: float) -> None:
        """Walk crossing walkers straight to the far end, then on to the nearest path point, where
        they rejoin the sidewalk."""
        i = np.flatnonzero(self.crossing)
        dx, dy = self.cross_to[i, 0] - self.x[i], self.cross_to[i, 1] - self.y[i]
        dist = np.hypot(dx, dy)
        step = np.minimum(self.speed[i] * dt_s, dist)
        scale = np.where(dist > 0.0, step / np.maximum(dist, 1e-9), 0.0)
        self.x[i] += dx * scale
        self.y[i] += dy * scale
        self.yaw[i] = np.where(dist > 0.0, np.arctan2(dy, dx), self.yaw[i])
        arrived = i[dist - step < 1e-6]
        if arrived.size:
            pos = np.stack([self.x[arrived], self.y[arrived]], axis=-1)
            ring, u = self.paths.nearest(pos, self._tree)
            xy, _ = self.paths.position(ring, u)
            on_path = np.hypot(xy[:, 0] - self.x[arrived], xy[:, 1] - self.y[arrived]) < 0.05
            done = arrived[on_path]
            self.ring[done], self.u[done] = ring[on_path], u[on_path]
            self.crossing[done] = False
            self.cross_to[arrived[~on_path]] = xy[~on_path]
